import test from 'ava';
import type { DatabaseAccessRequest } from '../../../api/index.ts';
import { run } from '../../../cmd/kubectl-vault/cli.ts';
import {
  accessRow,
  accessRows,
  parseSince,
  reportCsv,
  reportJson,
  reportTable,
  type AccessRow,
} from '../../../cmd/kubectl-vault/report.ts';
import { FakeApi, NOW, fakeIo, request } from './fake.ts';

const at = (minutesBeforeNow: number) => new Date(NOW.getTime() - minutesBeforeNow * 60_000).toISOString();
const hours = (h: number) => h * 60;
const WEEK = { since: new Date(NOW.getTime() - 7 * 86_400_000), now: NOW };

function approvedCondition(by: string, minutesAgo: number) {
  return {
    type: 'Approved',
    status: 'True' as const,
    reason: 'KubectlApprove',
    message: `This was approved by: ${by} (with kubectl vault approve)`,
    lastTransitionTime: at(minutesAgo),
  };
}

/** A request as the operator leaves it: approved by `by` an hour ago, issued right after, lease for an hour more. */
function issued(name: string, extra: { status?: Record<string, unknown>; ns?: string } = {}): DatabaseAccessRequest {
  const dar = request(name, extra.ns ?? 'demo', {
    status: {
      phase: 'Approved',
      requester: { username: 'alice' },
      conditions: [approvedCondition('bob', 61)],
      lease: { id: `database/creds/ro/${name}`, issuedAt: at(60), expiresAt: at(-60) },
      ...extra.status,
    } as DatabaseAccessRequest['status'],
  });
  dar.spec.reason = 'INC-7: looking at the orders table';
  return dar;
}

test('an issued request is one active row: role, subjects, requester, approver, from the lease', (t) => {
  t.deepEqual(accessRow(issued('r'), WEEK), {
    namespace: 'demo',
    request: 'r',
    roleKind: 'PostgresRole',
    role: 'psql-role',
    subjects: ['ServiceAccount/demo-sa'],
    requester: 'alice',
    reason: 'INC-7: looking at the orders table',
    approvedBy: ['bob'],
    autoApproved: false,
    breakGlass: false,
    from: at(60).replace('.000Z', 'Z'),
    ended: 'active',
    leaseIds: ['database/creds/ro/r'],
  } satisfies AccessRow);
});

test('the approval policy fields win: every approver, the grant start, break-glass and its reviewer, the TTL', (t) => {
  const dar = issued('r', {
    status: {
      approvals: [
        { username: 'alice', approvedAt: at(62), breakGlass: true, message: 'INC-9' },
        { username: 'carol', approvedAt: at(61) },
      ],
      review: { username: 'dave', reviewedAt: at(30) },
      grant: { ttl: '30m', accessStartedAt: at(90) },
      lease: { id: 'database/creds/ro/new', issuedAt: at(10), expiresAt: at(-20) },
      previousLeases: [{ id: 'database/creds/ro/old' }],
    },
  });
  const row = accessRow(dar, WEEK)!;
  t.deepEqual(row.approvedBy, ['alice', 'carol']);
  t.is(row.from, at(90).replace('.000Z', 'Z'));
  t.true(row.breakGlass);
  t.is(row.reviewedBy, 'dave');
  t.is(row.ttl, '30m');
  t.deepEqual(row.leaseIds, ['database/creds/ro/new', 'database/creds/ro/old']);
});

test('a rotated request without grant.accessStartedAt starts at its approval, not at the latest lease', (t) => {
  const dar = issued('r', {
    status: {
      lease: { id: 'database/creds/ro/second', issuedAt: at(5), expiresAt: at(-55) },
      previousLeases: [{ id: 'database/creds/ro/first' }],
    },
  });
  t.is(accessRow(dar, WEEK)!.from, at(61).replace('.000Z', 'Z'));
});

test("an auto-approved request names no person: the operator's rules approved it", (t) => {
  const dar = issued('r', {
    status: {
      conditions: [
        {
          type: 'Approved',
          status: 'True',
          reason: 'AutoApproved',
          message: 'This was approved by: leasehold (autoApprove of PostgresRole psql-role: subject in group ops)',
          lastTransitionTime: at(61),
        },
      ],
    },
  });
  const row = accessRow(dar, WEEK)!;
  t.true(row.autoApproved);
  t.deepEqual(row.approvedBy, []);
});

test('how access ended: revoked and expired at their conditions, deleted at the deletion, a passed lease as expired', (t) => {
  const revoked = issued('revoked', {
    status: {
      phase: 'Revoked',
      conditions: [
        approvedCondition('bob', 61),
        { type: 'Revoked', status: 'True', reason: 'RevokedOnDemand', lastTransitionTime: at(20) },
      ],
    },
  });
  const expired = issued('expired', {
    status: {
      phase: 'Expired',
      conditions: [
        approvedCondition('bob', 61),
        { type: 'Expired', status: 'True', reason: 'LeaseExpired', lastTransitionTime: at(1) },
      ],
    },
  });
  const deleted = issued('deleted');
  deleted.metadata.deletionTimestamp = new Date(at(3));
  const lapsed = issued('lapsed', { status: { lease: { id: 'x', issuedAt: at(60), expiresAt: at(2) } } });
  // A revocation Vault hasn't done yet (Revoked False): the login may still work, so access goes on.
  const pendingRevocation = issued('pending-revocation', {
    status: {
      conditions: [
        approvedCondition('bob', 61),
        { type: 'Revoked', status: 'False', reason: 'VaultUnreachable', lastTransitionTime: at(4) },
      ],
    },
  });
  const ends = [revoked, expired, deleted, lapsed, pendingRevocation].map((d) => {
    const row = accessRow(d, WEEK)!;
    return [row.request, row.ended, row.until];
  });
  t.deepEqual(ends, [
    ['revoked', 'Revoked', at(20).replace('.000Z', 'Z')],
    ['expired', 'Expired', at(1).replace('.000Z', 'Z')],
    ['deleted', 'Deleted', at(3).replace('.000Z', 'Z')],
    ['lapsed', 'Expired', at(2).replace('.000Z', 'Z')],
    ['pending-revocation', 'active', undefined],
  ]);
});

test('no row for a request that never gave access: pending, denied, approved but not yet issued', (t) => {
  const pending = request('pending');
  const denied = request('denied', 'demo', {
    status: {
      conditions: [{ type: 'Denied', status: 'True', reason: 'KubectlDeny', message: 'This was denied by: bob' }],
    },
  });
  const approved = request('approved', 'demo', { status: { conditions: [approvedCondition('bob', 1)] } });
  t.deepEqual(accessRows([pending, denied, approved], WEEK), []);
});

test('the window: access that ended before --since is left out; access that began before it and overlaps is in', (t) => {
  const window = { since: new Date(NOW.getTime() - hours(24) * 60_000), now: NOW };
  const endedLongAgo = issued('old', {
    status: {
      lease: { id: 'a', issuedAt: at(hours(50)), expiresAt: at(hours(49)) },
      conditions: [
        approvedCondition('bob', hours(50)),
        { type: 'Expired', status: 'True', reason: 'LeaseExpired', lastTransitionTime: at(hours(49)) },
      ],
    },
  });
  const overlapping = issued('overlapping', {
    status: {
      lease: { id: 'b', issuedAt: at(hours(30)), expiresAt: at(hours(20)) },
      conditions: [
        approvedCondition('bob', hours(30)),
        { type: 'Expired', status: 'True', reason: 'LeaseExpired', lastTransitionTime: at(hours(20)) },
      ],
    },
  });
  const active = issued('active');
  t.deepEqual(
    accessRows([active, endedLongAgo, overlapping], window).map((r) => r.request),
    ['overlapping', 'active'],
    'oldest access first',
  );
});

test('--since takes a duration back from now or an RFC 3339 time, and nothing else', (t) => {
  t.deepEqual(parseSince('7d', NOW), new Date('2026-02-22T12:00:00Z'));
  t.deepEqual(parseSince('1d12h', NOW), new Date('2026-02-28T00:00:00Z'));
  t.deepEqual(parseSince('2w', NOW), new Date('2026-02-15T12:00:00Z'));
  t.deepEqual(parseSince('90m', NOW), new Date('2026-03-01T10:30:00Z'));
  t.deepEqual(parseSince('2026-02-01T00:00:00Z', NOW), new Date('2026-02-01T00:00:00Z'));
  t.deepEqual(parseSince('2026-02-01T01:00:00+01:00', NOW), new Date('2026-02-01T00:00:00Z'));
  for (const bad of ['', '7', 'd', '7 days', '-7d', '1.5h', 'yesterday', '2026-02-01'])
    t.is(parseSince(bad, NOW), undefined, bad);
});

const rows = (): AccessRow[] =>
  accessRows(
    [
      issued('r1'),
      issued('r2', {
        ns: 'shop',
        status: {
          approvals: [{ username: 'bob' }, { username: 'carol, the "second"' }],
          conditions: [
            approvedCondition('carol', 61),
            { type: 'Revoked', status: 'True', reason: 'RevokedOnDemand', lastTransitionTime: at(30) },
          ],
        },
      }),
    ],
    WEEK,
  );

test('table: kubectl layout, NAMESPACE with -A, "active" until it ends', (t) => {
  const lines = reportTable(rows(), { allNamespaces: true }).trimEnd().split('\n');
  t.deepEqual(
    lines.map((l) => l.split(/\s{2,}/)),
    [
      ['NAMESPACE', 'REQUEST', 'ROLE', 'SUBJECTS', 'REQUESTER', 'APPROVED-BY', 'BREAK-GLASS', 'FROM', 'UNTIL', 'ENDED'],
      [
        'demo',
        'r1',
        'PostgresRole/psql-role',
        'ServiceAccount/demo-sa',
        'alice',
        'bob',
        'no',
        '2026-03-01T11:00:00Z',
        'active',
        '-',
      ],
      [
        'shop',
        'r2',
        'PostgresRole/psql-role',
        'ServiceAccount/demo-sa',
        'alice',
        'bob,carol, the "second"',
        'no',
        '2026-03-01T11:00:00Z',
        '2026-03-01T11:30:00Z',
        'Revoked',
      ],
    ],
  );
  t.regex(reportTable(rows(), { allNamespaces: false }), /^REQUEST {3,}ROLE/);
});

test('csv: a header, RFC 4180 quoting, lists space-separated, CRLF line ends', (t) => {
  const csv = reportCsv(rows());
  const lines = csv.split('\r\n');
  t.is(
    lines[0],
    'namespace,request,roleKind,role,subjects,requester,reason,approvedBy,autoApproved,breakGlass,reviewedBy,reviewedAt,ttl,from,until,ended,leaseIds',
  );
  t.is(
    lines[1],
    'demo,r1,PostgresRole,psql-role,ServiceAccount/demo-sa,alice,INC-7: looking at the orders table,bob,false,false,,,,2026-03-01T11:00:00Z,,active,database/creds/ro/r1',
  );
  t.true(lines[2]!.includes(',"bob carol, the ""second""",'));
  t.is(lines[3], '');
  t.is(lines.length, 4);
});

test('json: a versioned AccessReport with its window and the rows', (t) => {
  const doc = JSON.parse(reportJson(rows(), WEEK, { namespace: 'demo' })) as Record<string, unknown>;
  t.like(doc, {
    apiVersion: 'leasehold.dev/v1',
    kind: 'AccessReport',
    since: '2026-02-22T12:00:00Z',
    until: '2026-03-01T12:00:00Z',
    namespace: 'demo',
  });
  t.deepEqual(doc.items, JSON.parse(JSON.stringify(rows())));
});

async function cli(api: FakeApi, argv: string[]) {
  const { io, out } = fakeIo(api, {});
  const code = await run(argv, io);
  return { code, ...out };
}

test('kubectl vault report lists the namespace by default, everything with -A, and reads no Secret', async (t) => {
  const api = new FakeApi();
  api.add(issued('r1'));
  api.add(issued('r2', { ns: 'shop' }));
  api.forbidden.add('get secrets demo');
  api.forbidden.add('get secrets shop');
  const ns = await cli(api, ['report', '-n', 'demo']);
  t.is(ns.code, 0, ns.stderr);
  t.deepEqual(
    ns.stdout
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/\s+/)[0]),
    ['REQUEST', 'r1'],
  );
  const all = await cli(api, ['report', '-A', '-o', 'csv', '--since', '30d']);
  t.is(all.code, 0, all.stderr);
  t.deepEqual(
    all.stdout
      .trim()
      .split('\r\n')
      .slice(1)
      .map((l) => l.split(',').slice(0, 2).join('/')),
    ['demo/r1', 'shop/r2'],
  );
});

test('kubectl vault report: nothing in the window says so on stderr; bad flags are usage errors', async (t) => {
  const api = new FakeApi();
  const empty = await cli(api, ['report', '-n', 'demo']);
  t.is(empty.code, 0);
  t.is(empty.stdout, '');
  t.is(empty.stderr, 'No access since 2026-02-22T12:00:00.000Z in demo namespace.\n');
  const json = await cli(api, ['report', '-n', 'demo', '-o', 'json']);
  t.deepEqual((JSON.parse(json.stdout) as { items: unknown[] }).items, []);
  for (const [argv, message] of [
    [['report', '--since', 'yesterday'], /--since "yesterday" is neither a duration/],
    [['report', '-o', 'yaml'], /unknown output format "yaml": use one of table, json, csv/],
    [['report', '-A', '-n', 'demo'], /either -n NAMESPACE or -A/],
    [['report', 'dar'], /report takes no arguments/],
    [['report', '--pending'], /unknown flag: --pending for "kubectl vault report"/],
  ] as const) {
    const r = await cli(api, [...argv]);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.stderr, message);
  }
});
