// `kubectl vault approve --ttl / --break-glass` and `kubectl vault review` against the fake API server, with the
// request's role readable (its approval policy) or not.
import test from 'ava';
import { Annotations, type DatabaseRole } from '../../../api/index.ts';
import { run } from '../../../cmd/kubectl-vault/cli.ts';
import { requestTable } from '../../../cmd/kubectl-vault/format.ts';
import { FakeApi, NOW, fakeIo, request } from './fake.ts';

async function cli(api: FakeApi, argv: string[]) {
  const { io, out } = fakeIo(api);
  const code = await run(argv, io);
  return { code, ...out };
}

function role(approval: NonNullable<DatabaseRole['spec']['approval']>): DatabaseRole {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'PostgresRole',
    metadata: { name: 'psql-role', namespace: 'demo' },
    spec: { creationStatements: [], defaultTTL: '1h', approval },
  };
}

const byCarol = {
  metadata: {
    name: 'r',
    namespace: 'demo',
    generation: 1,
    annotations: { [Annotations.requester]: JSON.stringify({ username: 'carol', uid: 'c', groups: [] }) },
  },
};

function api(approval?: NonNullable<DatabaseRole['spec']['approval']>, spec = {}) {
  const a = new FakeApi();
  a.identity = { username: 'bob', groups: ['system:authenticated'] };
  const dar = request('r');
  a.add({ ...dar, metadata: { ...dar.metadata, ...byCarol.metadata }, spec: { ...dar.spec, ...spec } });
  if (approval) a.roles.set('PostgresRole demo/psql-role', role(approval));
  return a;
}

const stored = (a: FakeApi) => a.requests.get('demo/r')!;

test('with two approvals required, approve records the approval only and says "1 of 2 approvals"', async (t) => {
  const a = api({ approvals: 2 });
  const r = await cli(a, ['approve', 'dar', 'r', '--message', 'OPS-1']);
  t.is(r.code, 0, r.stderr);
  t.is(
    r.stdout,
    'databaseaccessrequest.engine.kubevault.com/r approval recorded (1 of 2 approvals; the operator approves once all are in)\n',
  );
  t.deepEqual(stored(a).status?.approvals, [{ username: 'bob', approvedAt: '2026-03-01T12:00:00Z', message: 'OPS-1' }]);
  t.falsy(stored(a).status?.conditions);
  const again = await cli(a, ['approve', 'dar', 'r']);
  t.is(again.code, 1);
  t.regex(
    again.stderr,
    /you \(bob\) approved databaseaccessrequest demo\/r already at 2026-03-01T12:00:00Z; it has 1 of 2 approvals/,
  );
  a.mutate('demo', 'r', (d) => void (d.status!.requiredApprovals = 2));
  t.regex(requestTable([stored(a)], { allNamespaces: false, now: NOW }), /APPROVALS[\s\S]*1 of 2 approvals/);
  t.notRegex(requestTable([request('one')], { allNamespaces: false, now: NOW }), /APPROVALS/);
});

test('with one approval (the role says so, or the operator recorded it for a caller who cannot read the role), approve writes the approval and the Approved condition', async (t) => {
  const unreadable = api();
  unreadable.mutate('demo', 'r', (d) => void (d.status = { ...d.status, requiredApprovals: 1 }));
  for (const a of [api({}), unreadable]) {
    const r = await cli(a, ['approve', 'dar', 'r']);
    t.is(r.code, 0, r.stderr);
    t.is(stored(a).status?.approvals?.[0]?.username, 'bob');
    t.is(stored(a).status?.conditions?.[0]?.type, 'Approved');
  }
});

test('--ttl shortens the grant; longer than the request (or the role by default) asks is refused; not a duration is a usage error', async (t) => {
  const a = api({}, { ttl: '2h' });
  t.is((await cli(a, ['approve', 'dar', 'r', '--ttl', '30m'])).code, 0);
  t.is(stored(a).status?.approvals?.[0]?.ttl, '30m');
  const longer = await cli(api({}, { ttl: '2h' }), ['approve', 'dar', 'r', '--ttl', '3h']);
  t.is(longer.code, 1);
  t.regex(longer.stderr, /--ttl 3h is longer than the 2h the request asks for/);
  const overDefault = await cli(api({}), ['approve', 'dar', 'r', '--ttl', '90m']);
  t.regex(overDefault.stderr, /--ttl 90m is longer than the 1h PostgresRole demo\/psql-role gives by default/);
  const bad = await cli(api({}), ['approve', 'dar', 'r', '--ttl', 'soon']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--ttl must be a duration of at least 1s/);
});

test('--break-glass: needs a reason, only the requester, only on a role that allows it; records the reason and capped ttl', async (t) => {
  const noReason = await cli(api({ breakGlass: { maxTTL: '15m' } }), ['approve', 'dar', 'r', '--break-glass']);
  t.is(noReason.code, 2);
  t.regex(noReason.stderr, /--break-glass needs --reason TEXT/);
  const notRequester = await cli(api({ breakGlass: { maxTTL: '15m' } }), [
    'approve',
    'dar',
    'r',
    '--break-glass',
    '--reason',
    'INC-1',
  ]);
  t.regex(notRequester.stderr, /--break-glass is for the requester's own request .* requested by carol/);
  const carol = (approval?: NonNullable<DatabaseRole['spec']['approval']>) => {
    const a = api(approval, { ttl: '2h' });
    a.identity = { username: 'carol', groups: [] };
    return a;
  };
  const notAllowed = await cli(carol({}), ['approve', 'dar', 'r', '--break-glass', '--reason', 'INC-1']);
  t.regex(notAllowed.stderr, /PostgresRole demo\/psql-role doesn't allow break-glass approvals/);
  const tooLong = await cli(carol({ breakGlass: { maxTTL: '15m' } }), [
    'approve',
    'dar',
    'r',
    '--break-glass',
    '--reason',
    'INC-1',
    '--ttl',
    '1h',
  ]);
  t.regex(tooLong.stderr, /--ttl 1h is longer than the 15m PostgresRole demo\/psql-role allows a break-glass approval/);
  const a = carol({ breakGlass: { maxTTL: '15m' } });
  const ok = await cli(a, ['approve', 'dar', 'r', '--break-glass', '--reason', 'INC-123: primary down']);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /approved \(break-glass/);
  t.deepEqual(stored(a).status?.approvals, [
    {
      username: 'carol',
      approvedAt: '2026-03-01T12:00:00Z',
      message: 'INC-123: primary down',
      ttl: '15m',
      breakGlass: true,
    },
  ]);
  t.falsy(stored(a).status?.conditions, 'the operator writes the decision');
});

test('review: only a break-glass approval, only by someone else, once', async (t) => {
  const plain = await cli(api({}), ['review', 'dar', 'r']);
  t.regex(plain.stderr, /has no break-glass approval: there is nothing to review/);
  const a = api({ breakGlass: { maxTTL: '15m' } });
  a.mutate('demo', 'r', (d) => {
    d.status = { approvals: [{ username: 'carol', approvedAt: 'x', breakGlass: true, message: 'INC-1' }] };
  });
  a.identity = { username: 'carol', groups: [] };
  t.regex((await cli(a, ['review', 'dar', 'r'])).stderr, /you \(carol\) made the break-glass approval/);
  a.identity = { username: 'bob', groups: [] };
  const ok = await cli(a, ['review', 'dar', 'r', '--message', 'checked']);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, 'databaseaccessrequest.engine.kubevault.com/r reviewed\n');
  t.deepEqual(stored(a).status?.review, { username: 'bob', reviewedAt: '2026-03-01T12:00:00Z', message: 'checked' });
  t.regex((await cli(a, ['review', 'dar', 'r'])).stderr, /was reviewed already, by bob/);
});

test("an approver who can't read the role records only their approval when the operator says two are required", async (t) => {
  const a = api();
  a.mutate('demo', 'r', (d) => void (d.status = { ...d.status, requiredApprovals: 2 }));
  const r = await cli(a, ['approve', 'dar', 'r']);
  t.is(r.code, 0, r.stderr);
  t.is(stored(a).status?.approvals?.length, 1);
  t.falsy(stored(a).status?.conditions?.find((c) => c.type === 'Approved'));
});

test('--ttl under a second is refused: a grant that short is no grant', async (t) => {
  const r = await cli(api({ approvals: 1 }), ['approve', 'dar', 'r', '--ttl', '500ms']);
  t.is(r.code, 2);
  t.regex(r.stderr, /--ttl must be a duration of at least 1s/);
});
