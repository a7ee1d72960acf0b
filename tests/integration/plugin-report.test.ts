// `kubectl vault report` against the real stack, in a scripted scenario: the operator issues real leases, people
// with Leasehold's ClusterRoles request and approve through the plugin (the admission policies record who asked),
// one request is revoked, one denied, one left pending. The report must list exactly the two people who had
// access, who approved each, from their first issuance until the revocation or "active", and never a password.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import YAML from 'yaml';
import { credentialsOf, getCr as getCrIn, sample } from './helpers/leasehold.ts';
import { kubectlAs, prepareGuideForPeople, type Person } from './helpers/people.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import type { AccessRow } from '../../cmd/kubectl-vault/report.ts';

type Ctx = StackContext & { operator: OperatorProcess };
const test = anyTest as TestFn<Ctx>;
useStack(test);
type T = ExecutionContext<Ctx>;

type User = Person;
const NS = 'demo';

/** kubectl as a user, the plugin from this checkout on PATH; never throws. */
const as = (t: T, user: User, args: string[], input?: string) => kubectlAs(t.context.env, user, args, input);

function vault(t: T, user: User, args: string[]): string {
  const r = as(t, user, ['vault', ...args]);
  if (r.code !== 0) t.fail(`kubectl vault ${args.join(' ')} as ${user} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const getCr = (t: T, name: string) => getCrIn(t.context.env, 'databaseaccessrequests', NS, name);

function requestYaml(name: string): string {
  const doc = sample('50-postgres-access-request.yaml')[0] as { metadata: Record<string, unknown> };
  doc.metadata = { name, namespace: NS };
  return YAML.stringify(doc);
}

function createAs(t: T, user: User, name: string): void {
  const r = as(t, user, ['create', '-f', '-'], requestYaml(name));
  if (r.code !== 0) t.fail(`${user} creating ${name}: ${r.stderr}`);
}

async function phase(t: T, name: string, want: string) {
  return eventually(
    t,
    `${name} in phase ${want}`,
    async () => {
      const o = await getCr(t, name);
      return o?.status?.phase === want ? o : undefined;
    },
    90_000,
  );
}

async function issued(t: T, name: string) {
  return eventually(
    t,
    `${name} issued`,
    async () => {
      const o = await getCr(t, name);
      return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
    },
    90_000,
  );
}

test.before(async (t) => {
  const { env } = t.context;
  // alice and carol ask for access; alice and bob may approve (and not their own requests: four eyes).
  await prepareGuideForPeople(env, [
    ['alice', 'leasehold-requester'],
    ['alice', 'leasehold-approver'],
    ['bob', 'leasehold-approver'],
    ['carol', 'leasehold-requester'],
  ]);
  t.context.operator = await startOperator(env);
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
  await eventually(
    t,
    'psql-role ready',
    async () =>
      (await getCrIn(env, 'postgresroles', NS, 'psql-role'))?.status?.phase === 'Success' ? true : undefined,
    90_000,
  );
});

test('the report lists exactly who had access: approvers, from first issuance, until the revocation or active; no password', async (t) => {
  // alice's request, approved by bob: still active. carol's, approved by alice: revoked. One denied, one pending.
  createAs(t, 'alice', 'report-alice');
  createAs(t, 'carol', 'report-carol');
  createAs(t, 'alice', 'report-denied');
  createAs(t, 'carol', 'report-pending');
  vault(t, 'bob', ['approve', 'dar', 'report-alice', '-n', NS, '--message', 'OPS-1']);
  vault(t, 'alice', ['approve', 'dar', 'report-carol', '-n', NS]);
  vault(t, 'bob', ['deny', 'dar', 'report-denied', '-n', NS]);
  const alice = await issued(t, 'report-alice');
  const carolIssued = await issued(t, 'report-carol');
  // The credentials, read (as the admin) to show the report holds none of them.
  const passwords = [
    (await credentialsOf(t.context.env, NS, alice.status.secret.name)).password,
    (await credentialsOf(t.context.env, NS, carolIssued.status.secret.name)).password,
  ].filter(Boolean);
  vault(t, 'admin', ['revoke', 'dar', 'report-carol', '-n', NS]);
  const carol = await phase(t, 'report-carol', 'Revoked');
  const revokedAt = carol.status.conditions.find((c: { type: string }) => c.type === 'Revoked').lastTransitionTime;

  const json = vault(t, 'admin', ['report', '-n', NS, '-o', 'json', '--since', '1h']);
  const report = JSON.parse(json) as { kind: string; namespace: string; items: AccessRow[] };
  t.like(report, { kind: 'AccessReport', namespace: NS });
  const firstIssued = (o: { status: { grant?: { accessStartedAt?: string }; lease: { issuedAt: string } } }) =>
    o.status.grant?.accessStartedAt ?? o.status.lease.issuedAt;
  t.deepEqual(
    report.items
      .map((r) => ({
        request: r.request,
        requester: r.requester,
        approvedBy: r.approvedBy,
        from: Date.parse(r.from),
        until: r.until && Date.parse(r.until),
        ended: r.ended,
        subjects: r.subjects,
        role: `${r.roleKind}/${r.role}`,
      }))
      .sort((a, b) => a.request.localeCompare(b.request)),
    [
      {
        request: 'report-alice',
        requester: 'alice',
        approvedBy: ['bob'],
        from: Date.parse(firstIssued(alice)),
        until: undefined,
        ended: 'active',
        subjects: ['ServiceAccount/demo-sa'],
        role: 'PostgresRole/psql-role',
      },
      {
        request: 'report-carol',
        requester: 'carol',
        approvedBy: ['alice'],
        from: Date.parse(firstIssued(carol)),
        until: Date.parse(revokedAt),
        ended: 'Revoked',
        subjects: ['ServiceAccount/demo-sa'],
        role: 'PostgresRole/psql-role',
      },
    ],
  );
  // The Vault lease ids (not credentials), as the requests record them.
  t.deepEqual(Object.fromEntries(report.items.map((r) => [r.request, r.leaseIds[0]])), {
    'report-alice': alice.status.lease.id,
    'report-carol': carolIssued.status.lease.id,
  });

  // The table and csv say the same; bob, an approver, may run it (list on requests is all it needs).
  const table = vault(t, 'bob', ['report', '-n', NS]);
  const rows = table
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));
  t.deepEqual(rows[0], [
    'REQUEST',
    'ROLE',
    'SUBJECTS',
    'REQUESTER',
    'APPROVED-BY',
    'BREAK-GLASS',
    'FROM',
    'UNTIL',
    'ENDED',
  ]);
  t.deepEqual(
    rows
      .slice(1)
      .map((r) => [r[0], r[3], r[4], r[5], r[8]])
      .sort(),
    [
      ['report-alice', 'alice', 'bob', 'no', '-'],
      ['report-carol', 'carol', 'alice', 'no', 'Revoked'],
    ],
  );
  t.is(rows.find((r) => r[0] === 'report-alice')![7], 'active');
  const csv = vault(t, 'admin', ['report', '-A', '-o', 'csv']);
  t.deepEqual(
    csv
      .trim()
      .split('\r\n')
      .slice(1)
      .map((l) => l.split(',').slice(0, 2).join('/'))
      .sort(),
    [`${NS}/report-alice`, `${NS}/report-carol`],
  );

  // A window starting after the revocation leaves carol's access out.
  const after = new Date(Date.parse(revokedAt) + 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const later = JSON.parse(vault(t, 'admin', ['report', '-n', NS, '-o', 'json', '--since', after])) as {
    items: AccessRow[];
  };
  t.deepEqual(
    later.items.map((r) => r.request),
    ['report-alice'],
  );

  t.true(passwords.length === 2, 'both credentials were read to check the report against');
  for (const output of [json, table, csv]) for (const p of passwords) t.false(output.includes(p!));
});
