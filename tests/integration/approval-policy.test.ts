// A role's approval policy beyond one approval, against the real stack with manifests/admission installed:
// N-of-M approvals, an approver shortening the grant (--ttl), break-glass and its review, and the cap on total
// access time. Users (static tokens, no groups but system:authenticated):
//   alice: requests (leasehold-requester) and may approve (leasehold-approver) in demo;
//   bob, carol: approve (leasehold-approver) in demo.
// The operator runs as its own process (as a cluster administrator, as everywhere in the tests).
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import YAML from 'yaml';
import { parseDurationSeconds } from '../../api/index.ts';
import { credentialsOf, getCr as getCrIn, loginWorks, sample } from './helpers/leasehold.ts';
import { kubectlAs, prepareGuideForPeople, type Person } from './helpers/people.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import { kubectl, vaultRequest } from '../../scripts/stack/leasehold-setup.ts';

type Ctx = StackContext & { operator: OperatorProcess };
const test = anyTest as TestFn<Ctx>;
useStack(test);

type User = Person;
const NS = 'demo';

/** kubectl as a user; never throws. */
const as = (t: ExecutionContext<Ctx>, user: User, args: string[], input?: string) =>
  kubectlAs(t.context.env, user, args, input);

const vault = (t: ExecutionContext<Ctx>, user: User, args: string[]) => as(t, user, ['vault', ...args]);
const getDar = (t: ExecutionContext<Ctx>, name: string) => getCrIn(t.context.env, 'databaseaccessrequests', NS, name);

/** The guide's PostgresRole under another name, with an approval policy. */
function roleYaml(name: string, approval: Record<string, unknown>): string {
  const doc = sample('40-postgres-role.yaml')[0] as { metadata: object; spec: Record<string, unknown> };
  doc.metadata = { name, namespace: NS };
  doc.spec.approval = approval;
  return YAML.stringify(doc);
}

/** The guide's DatabaseAccessRequest under another name, for another role, with more spec. */
function requestYaml(name: string, role: string, spec: Record<string, unknown> = {}): string {
  const doc = sample('50-postgres-access-request.yaml')[0] as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown> & { roleRef: Record<string, unknown> };
  };
  doc.metadata = { name, namespace: NS };
  doc.spec.roleRef = { ...doc.spec.roleRef, name: role, namespace: NS };
  Object.assign(doc.spec, spec);
  return YAML.stringify(doc);
}

/** A status patch by hand (kubectl patch --subresource=status) as `user`. */
function statusPatch(t: ExecutionContext<Ctx>, user: User, name: string, status: Record<string, unknown>) {
  return as(t, user, [
    'patch',
    '-n',
    NS,
    'dar',
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/** alice creates a request and the operator has seen it (phase WaitingForApproval). */
async function requested(t: ExecutionContext<Ctx>, name: string, role: string, spec: Record<string, unknown> = {}) {
  const r = as(t, 'alice', ['create', '-f', '-'], requestYaml(name, role, spec));
  t.is(r.code, 0, r.stderr);
  return eventually(t, `${name} waiting`, async () => {
    const o = await getDar(t, name);
    return o?.status?.phase === 'WaitingForApproval' ? o : undefined;
  });
}

async function issued(t: ExecutionContext<Ctx>, name: string) {
  return eventually(
    t,
    `${name} issued`,
    async () => {
      const o = await getDar(t, name);
      return o?.status?.lease?.id && o.status.secret?.name && o.status.issuance?.completed ? o : undefined;
    },
    90_000,
  );
}

/** A user's `kubectl vault` command, retried while the admission policies may not know a new role yet. */
async function settled(t: ExecutionContext<Ctx>, what: string, run: () => ReturnType<typeof as>, ok: RegExp) {
  return eventually(t, what, async () => {
    const r = run();
    return ok.test(`${r.stdout}${r.stderr}`) ? r : undefined;
  });
}

const condition = (o: { status?: { conditions?: { type: string }[] } } | undefined, type: string) =>
  o?.status?.conditions?.find((c) => c.type === type) as
    { status: string; reason: string; message: string } | undefined;

/** Vault's own word on how long a lease has left (seconds). */
async function vaultTtl(t: ExecutionContext<Ctx>, leaseId: string): Promise<number> {
  const r = await vaultRequest(t.context.env, 'PUT', 'sys/leases/lookup', { lease_id: leaseId });
  return (r.body as { data: { ttl: number } }).data.ttl;
}

function auditLines(t: ExecutionContext<Ctx>, request: string) {
  return t.context.operator
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{"audit":') && l.includes(`"${NS}/${request}"`))
    .map((l) => (JSON.parse(l) as { audit: { action: string; approvals?: string[]; requester: string } }).audit);
}

test.before(async (t) => {
  const { env } = t.context;
  await prepareGuideForPeople(env, [
    ['alice', 'leasehold-requester'],
    ['alice', 'leasehold-approver'],
    ['bob', 'leasehold-approver'],
    ['carol', 'leasehold-approver'],
  ]);
  kubectl(env, ['apply', '-f', '-'], roleYaml('two-eyes', { approvals: 2 }));
  kubectl(env, ['apply', '-f', '-'], roleYaml('glass', { breakGlass: { maxTTL: '10m' } }));
  kubectl(env, ['apply', '-f', '-'], roleYaml('capped', { maxAccessDuration: '20s' }));
  t.context.operator = await startOperator(env);
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
  for (const role of ['psql-role', 'two-eyes', 'glass', 'capped'])
    await eventually(
      t,
      `${role} ready`,
      async () => (await getCrIn(env, 'postgresroles', NS, role))?.status?.phase === 'Success',
      90_000,
    );
});

test.serial(
  '2 of M: one approval issues nothing; the same person twice and the requester are refused by the API server; a second approver issues',
  async (t) => {
    await requested(t, 'two', 'two-eyes');
    const first = vault(t, 'bob', ['approve', 'dar', 'two', '-n', NS, '--message', 'OPS-7']);
    t.is(first.code, 0, first.stderr);
    t.regex(first.stdout, /two approval recorded \(1 of 2 approvals; the operator approves once all are in\)/);
    const waiting = await eventually(t, 'the wait says 1 of 2', async () => {
      const o = await getDar(t, 'two');
      return /^1 of 2 approvals \(bob\); waiting for/.test(condition(o, 'Available')?.message ?? '') ? o : undefined;
    });
    t.is(waiting.status.phase, 'WaitingForApproval');
    t.falsy(condition(waiting, 'Approved'));
    t.falsy(waiting.status.lease);
    t.deepEqual(
      waiting.status.approvals.map((a: { username: string; message?: string }) => [a.username, a.message]),
      [['bob', 'OPS-7']],
    );
    const get = vault(t, 'bob', ['get', 'dar', 'two', '-n', NS]);
    t.regex(get.stdout, /APPROVALS/);
    t.regex(get.stdout, /1 of 2 approvals/);

    // The same person again: the plugin says so, and by hand the API server refuses it.
    t.regex(vault(t, 'bob', ['approve', 'dar', 'two', '-n', NS]).stderr, /you \(bob\) approved .* already/);
    const twice = statusPatch(t, 'bob', 'two', {
      approvals: [...waiting.status.approvals, { username: 'bob', approvedAt: now() }],
    });
    t.not(twice.code, 0);
    t.regex(twice.stderr, /one approval per user/);
    // Nor can bob's approval be written under another name.
    const forged = statusPatch(t, 'bob', 'two', {
      approvals: [...waiting.status.approvals, { username: 'carol', approvedAt: now() }],
    });
    t.regex(forged.stderr, /an approval must name who gives it: .* username bob/);
    // The requester, who may approve other requests for the role: four eyes.
    const own = vault(t, 'alice', ['approve', 'dar', 'two', '-n', NS]);
    t.is(own.code, 1);
    t.regex(own.stderr, /user alice created this request and can't approve it too \(four eyes\)/);
    // Writing the Approved condition by hand doesn't skip the count.
    const alone = statusPatch(t, 'carol', 'two', {
      conditions: [
        ...(await getDar(t, 'two')).status.conditions,
        {
          type: 'Approved',
          status: 'True',
          reason: 'KubectlApprove',
          message: 'This was approved by: carol',
          lastTransitionTime: now(),
        },
      ],
    });
    t.regex(alone.stderr, /PostgresRole demo\/two-eyes requires 2 distinct approvals/);
    t.falsy((await getDar(t, 'two')).status.lease);

    const second = vault(t, 'carol', ['approve', 'dar', 'two', '-n', NS]);
    t.is(second.code, 0, second.stderr);
    const done = await issued(t, 'two');
    t.deepEqual(
      done.status.approvals.map((a: { username: string }) => a.username),
      ['bob', 'carol'],
    );
    t.like(condition(done, 'Approved'), { reason: 'RequiredApprovalsReached' });
    t.regex(condition(done, 'Approved')!.message, /2 of 2 approvals \(bob, carol\)/);
    await eventually(t, 'the audit records name both approvers', async () => {
      const lines = auditLines(t, 'two');
      const issue = lines.find((l) => l.action === 'SuccessfullyIssuedCredential');
      return (
        lines.filter((l) => l.action === 'ApprovalRecorded').length === 2 &&
        issue?.approvals?.join(',') === 'bob,carol' &&
        issue.requester === 'alice'
      );
    });
  },
);

test.serial(
  '--ttl 30m on a 2h request: the lease is at most 30 minutes; a --ttl longer than asked is refused',
  async (t) => {
    await requested(t, 'short', 'psql-role', { ttl: '2h' });
    const r = vault(t, 'bob', ['approve', 'dar', 'short', '-n', NS, '--ttl', '30m']);
    t.is(r.code, 0, r.stderr);
    const dar = await issued(t, 'short');
    t.is(dar.status.grant.ttl, '30m0s');
    t.true(parseDurationSeconds(dar.status.lease.duration) <= 1800, dar.status.lease.duration);
    t.true((await vaultTtl(t, dar.status.lease.id)) <= 1800);

    await requested(t, 'long', 'psql-role', { ttl: '2h' });
    const longer = vault(t, 'bob', ['approve', 'dar', 'long', '-n', NS, '--ttl', '3h']);
    t.is(longer.code, 1);
    t.regex(
      longer.stderr,
      /--ttl 3h is longer than the 2h the request asks for: an approver may shorten a grant, never lengthen it/,
    );
    const byHand = statusPatch(t, 'bob', 'long', { approvals: [{ username: 'bob', approvedAt: now(), ttl: '3h' }] });
    t.not(byHand.code, 0);
    t.regex(byHand.stderr, /an approver may shorten the grant, never lengthen it/);
    // No ttl on the request: the role's defaultTTL (1h) is what is asked.
    await requested(t, 'default-ttl', 'psql-role');
    const overDefault = statusPatch(t, 'bob', 'default-ttl', {
      approvals: [{ username: 'bob', approvedAt: now(), ttl: '90m' }],
    });
    t.regex(overDefault.stderr, /can't be longer than the 1h PostgresRole demo\/psql-role gives by default/);
    t.falsy((await getDar(t, 'long')).status.approvals);
  },
);

test.serial(
  'break-glass: refused without a reason and on a role without it; with one, issued at once for at most its maxTTL, ReviewRequired until someone else reviews',
  async (t) => {
    await requested(t, 'no-glass', 'psql-role');
    const noReason = vault(t, 'alice', ['approve', 'dar', 'no-glass', '-n', NS, '--break-glass']);
    t.is(noReason.code, 2);
    t.regex(noReason.stderr, /--break-glass needs --reason TEXT/);
    const notAllowed = vault(t, 'alice', [
      'approve',
      'dar',
      'no-glass',
      '-n',
      NS,
      '--break-glass',
      '--reason',
      'INC-1',
    ]);
    t.is(notAllowed.code, 1);
    t.regex(notAllowed.stderr, /PostgresRole demo\/psql-role doesn't allow break-glass approvals/);
    // By hand, the API server refuses it the same.
    const byHand = statusPatch(t, 'alice', 'no-glass', {
      approvals: [{ username: 'alice', approvedAt: now(), breakGlass: true, message: 'INC-1' }],
    });
    t.regex(byHand.stderr, /doesn't allow break-glass approvals \(no approval\.breakGlass\)/);

    await requested(t, 'glass', 'glass', { ttl: '2h' });
    const bare = statusPatch(t, 'alice', 'glass', {
      approvals: [{ username: 'alice', approvedAt: now(), breakGlass: true }],
    });
    t.regex(bare.stderr, /a break-glass approval needs a reason/);
    const someoneElse = statusPatch(t, 'bob', 'glass', {
      approvals: [{ username: 'bob', approvedAt: now(), breakGlass: true, message: 'INC-123' }],
    });
    t.regex(someoneElse.stderr, /a break-glass approval is the requester's own/);

    const ok = await settled(
      t,
      'alice breaks the glass',
      () =>
        vault(t, 'alice', ['approve', 'dar', 'glass', '-n', NS, '--break-glass', '--reason', 'INC-123: primary down']),
      /approved \(break-glass/,
    );
    t.is(ok.code, 0, ok.stderr);
    const dar = await issued(t, 'glass');
    t.like(condition(dar, 'Approved'), { reason: 'BreakGlassApproved' });
    t.like(condition(dar, 'ReviewRequired'), { status: 'True', reason: 'BreakGlassApproved' });
    t.is(dar.status.grant.ttl, '10m0s');
    t.true(parseDurationSeconds(dar.status.lease.duration) <= 600, dar.status.lease.duration);
    t.true((await vaultTtl(t, dar.status.lease.id)) <= 600);
    await eventually(t, 'the break-glass audit record', async () =>
      auditLines(t, 'glass').some((l) => l.action === 'BreakGlassApproved' && l.approvals?.includes('alice')),
    );

    // The requester can't review their own; someone else with approve can, once.
    const self = vault(t, 'alice', ['review', 'dar', 'glass', '-n', NS]);
    t.is(self.code, 1);
    t.regex(self.stderr, /someone else with "approve" on its role must review it/);
    const selfByHand = statusPatch(t, 'alice', 'glass', { review: { username: 'alice', reviewedAt: now() } });
    t.regex(selfByHand.stderr, /made the break-glass approval and can't review it/);
    t.like(condition(await getDar(t, 'glass'), 'ReviewRequired'), { status: 'True' });
    const review = vault(t, 'bob', ['review', 'dar', 'glass', '-n', NS, '--message', 'checked INC-123']);
    t.is(review.code, 0, review.stderr);
    const reviewed = await eventually(t, 'ReviewRequired False', async () => {
      const o = await getDar(t, 'glass');
      return condition(o, 'ReviewRequired')?.status === 'False' ? o : undefined;
    });
    t.like(condition(reviewed, 'ReviewRequired'), { reason: 'Reviewed' });
    t.regex(condition(reviewed, 'ReviewRequired')!.message, /reviewed by bob .*: checked INC-123/);
    await eventually(t, 'the review audit record', async () =>
      auditLines(t, 'glass').some((l) => l.action === 'Reviewed'),
    );
  },
);

test.serial('the total-access cap ends access on time: lease revoked, login refused, phase Expired', async (t) => {
  await requested(t, 'capped', 'capped', { renew: true });
  t.is(vault(t, 'bob', ['approve', 'dar', 'capped', '-n', NS]).code, 0);
  const dar = await issued(t, 'capped');
  const started = Date.parse(dar.status.grant.accessStartedAt);
  t.is(Date.parse(dar.status.grant.accessEndsAt), started + 20_000);
  const creds = await credentialsOf(t.context.env, NS, dar.status.secret.name);
  t.true(await loginWorks(t.context.env, creds.username, creds.password));
  const ended = await eventually(
    t,
    'phase Expired',
    async () => {
      const o = await getDar(t, 'capped');
      return o?.status?.phase === 'Expired' ? o : undefined;
    },
    60_000,
  );
  t.like(condition(ended, 'Expired'), { status: 'True', reason: 'AccessDurationReached' });
  t.like(condition(ended, 'Available'), { status: 'False', reason: 'AccessDurationReached' });
  t.false(await loginWorks(t.context.env, creds.username, creds.password));
  const lookup = await vaultRequest(
    t.context.env,
    'PUT',
    'sys/leases/lookup',
    { lease_id: dar.status.lease.id },
    {
      allowError: true,
    },
  );
  t.not(lookup.status, 200);
  await eventually(t, 'the audit record', async () =>
    auditLines(t, 'capped').some((l) => l.action === 'AccessDurationReached'),
  );
});
