// A role's approval policy beyond one approval: N-of-M, approvers shortening the grant, break-glass with its
// review, and the cap on total access time. approval.ts (pure tallies) and plan() rows: literal in, literal out.
import test from 'ava';
import {
  Annotations,
  FINALIZER,
  Reason,
  RequestPhase,
  type Approval,
  type DatabaseAccessRequest,
} from '../../../api/index.ts';
import {
  approvalsDecision,
  auditFields,
  grantOf,
  issueRefusal,
  tallyApprovals,
} from '../../../controllers/databaseaccessrequest/approval.ts';
import type { AccessRole } from '../../../controllers/databaseaccessrequest/engine.ts';
import { postgres } from '../../../controllers/databaseaccessrequest/engines/postgres.ts';
import type { Observed } from '../../../controllers/databaseaccessrequest/observe.ts';
import { plan, type Plan } from '../../../controllers/databaseaccessrequest/plan.ts';
import { decisionChanged } from '../../../controllers/databaseaccessrequest/setup.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const at = (offsetSeconds: number) =>
  new Date(NOW.getTime() + offsetSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const LEASE = 'db/creds/k8s.-.demo.role/current';
const requester = JSON.stringify({ username: 'carol', uid: 'carol-uid', groups: ['system:authenticated'] });

function role(approval: NonNullable<AccessRole['spec']['approval']> = {}, spec: Partial<AccessRole['spec']> = {}) {
  return {
    metadata: { name: 'role', namespace: 'demo' },
    spec: { defaultTTL: '1h', maxTTL: '24h', approval, ...spec },
    status: { phase: 'Success', vaultRole: 'k8s.-.demo.role' },
  } as AccessRole;
}

const approval = (username: string, extra: Partial<Approval> = {}): Approval => ({
  username,
  approvedAt: at(-60),
  ...extra,
});

function request(
  status: DatabaseAccessRequest['status'] = {},
  spec: Partial<DatabaseAccessRequest['spec']> = {},
): DatabaseAccessRequest {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: {
      name: 'req',
      namespace: 'demo',
      uid: 'uid-1',
      finalizers: [FINALIZER],
      creationTimestamp: at(-600) as never,
      annotations: { [Annotations.requester]: requester },
    },
    spec: {
      roleRef: { kind: 'PostgresRole', name: 'role' },
      subjects: [{ kind: 'ServiceAccount', name: 'app' }],
      ...spec,
    },
    status,
  };
}

function observed(dar: DatabaseAccessRequest, r: AccessRole, over: Partial<Observed> = {}): Observed {
  const conditions = dar.status?.conditions ?? [];
  const stage = conditions.some((c) => c.type === 'Approved')
    ? dar.status?.phase === 'Expired'
      ? 'finished'
      : 'approved'
    : 'waitForApproval';
  return {
    request: dar,
    stage,
    finalized: { ours: true, any: true },
    engine: postgres,
    roleName: 'PostgresRole demo/role',
    role: r,
    layout: {
      templates: { templates: {}, origin: {} },
      address: { values: {}, unavailable: {} },
      problems: [],
      hash: '',
      credentialVariables: postgres.variables.credential,
    },
    target: {
      vaultAppBinding: { metadata: { name: 'vault', namespace: 'demo' } } as never,
      mount: 'db',
      connection: 'c',
    },
    secret: {
      name: dar.status?.secret?.name,
      present: !!dar.status?.secret?.name,
      drift: 'intact',
      leaseId: dar.status?.lease?.id,
      attempt: 'a1',
    },
    liveness: 'alive',
    vaultAppBindings: new Set(['demo/vault']),
    revocationRetryAt: {},
    ...over,
  };
}

const cond = (p: Plan, type: string) => p.status.conditions?.find((c) => c.type === type);
const issueStep = (p: Plan) =>
  p.steps.find((s) => s.kind === 'issue') as { order: { ttlSeconds?: number } } | undefined;

/** Approved by the operator from the approvals, issued 10 minutes ago, the grant recorded. */
function issuedWith(status: Partial<NonNullable<DatabaseAccessRequest['status']>>, spec = {}): DatabaseAccessRequest {
  return request(
    {
      phase: RequestPhase.Approved,
      approvals: [approval('alice'), approval('bob')],
      observedApprovals: 2,
      conditions: [
        {
          type: 'Approved',
          status: 'True',
          reason: Reason.RequiredApprovalsReached,
          message: 'This was approved by: leasehold (2 of 2 approvals (alice, bob))',
          lastTransitionTime: at(-600),
        },
        {
          type: 'Available',
          status: 'True',
          reason: 'SuccessfullyIssuedCredential',
          message: 'ok',
          lastTransitionTime: at(-600),
        },
      ],
      secret: { name: 'req-abc123' },
      lease: { id: LEASE, duration: '1h0m0s', renewable: true, issuedAt: at(-600), expiresAt: at(3000) },
      issuance: {
        vaultAppBinding: { namespace: 'demo', name: 'vault' },
        mount: 'db',
        connection: 'c',
        role: 'k8s.-.demo.role',
        attempt: 'a1',
        startedAt: at(-601),
        completed: true,
      },
      ...status,
    },
    spec,
  );
}

// ---- the tally ----------------------------------------------------------------------------------------------------

test('approvals are counted once per person, never the requester, and suffice at the number the role asks', (t) => {
  const r = role({ approvals: 2 });
  const one = tallyApprovals(request({ approvals: [approval('alice'), approval('alice')] }), r);
  t.deepEqual(
    one.counted.map((a) => a.username),
    ['alice'],
  );
  t.false(one.satisfied);
  const own = tallyApprovals(request({ approvals: [approval('alice'), approval('carol')] }), r);
  t.false(own.satisfied);
  t.deepEqual(own.ignored, [{ username: 'carol', why: "the requester can't approve their own request (four eyes)" }]);
  const two = tallyApprovals(request({ approvals: [approval('alice'), approval('bob', { ttl: '30m' })] }), r);
  t.true(two.satisfied);
  t.is(two.ttlSeconds, 1800);
  t.true(tallyApprovals(request({ approvals: [approval('carol')] }), role({ allowSelfApproval: true })).satisfied);
});

test('a break-glass approval counts only from the requester, with a reason, on a role that allows it, within maxTTL', (t) => {
  const glass = (extra: Partial<Approval> = {}) =>
    request({ approvals: [approval('carol', { breakGlass: true, message: 'INC-123', ...extra })] });
  const allows = role({ approvals: 2, breakGlass: { maxTTL: '15m' } });
  t.is(tallyApprovals(glass(), allows).breakGlass?.username, 'carol');
  t.true(tallyApprovals(glass(), allows).satisfied);
  t.false(tallyApprovals(glass(), role({ approvals: 2 })).satisfied);
  t.regex(tallyApprovals(glass(), role()).ignored[0]!.why, /no approval\.breakGlass/);
  t.regex(tallyApprovals(glass({ message: ' ' }), allows).ignored[0]!.why, /without a reason/);
  t.regex(tallyApprovals(glass({ ttl: '1h' }), allows).ignored[0]!.why, /longer than breakGlass\.maxTTL 15m/);
});

test('the operator approves once the approvals suffice, naming who approved; not before, and not without any', (t) => {
  const r = role({ approvals: 2 });
  t.is(approvalsDecision(request({ approvals: [approval('alice')] }), r), undefined);
  t.is(approvalsDecision(request({}), role()), undefined);
  t.like(approvalsDecision(request({ approvals: [approval('alice'), approval('bob')] }), r), {
    reason: Reason.RequiredApprovalsReached,
    message: 'This was approved by: leasehold (2 of 2 approvals (alice, bob) of PostgresRole demo/role)',
  });
  const glass = request({ approvals: [approval('carol', { breakGlass: true, message: 'INC-123' })] });
  t.like(approvalsDecision(glass, role({ approvals: 2, breakGlass: { maxTTL: '15m' } })), {
    reason: Reason.BreakGlassApproved,
    message: 'This was approved by: leasehold (break-glass approval by carol: INC-123)',
  });
});

test("the grant: an approver's ttl shortens the lease, break-glass caps it and the access, maxAccessDuration ends access", (t) => {
  const start = NOW.getTime();
  t.deepEqual(grantOf(request({}, { ttl: '2h' }), role(), start), { ttlSeconds: 7200 });
  t.deepEqual(grantOf(request({ approvals: [approval('alice', { ttl: '30m' })] }, { ttl: '2h' }), role(), start), {
    ttlSeconds: 1800,
  });
  // No ttl asked: the role's defaultTTL is what an approver's ttl shortens.
  t.deepEqual(grantOf(request({ approvals: [approval('alice', { ttl: '2h' })] }), role(), start), {
    ttlSeconds: 3600,
  });
  const glass = request({ approvals: [approval('carol', { breakGlass: true, message: 'INC-1' })] }, { ttl: '2h' });
  t.deepEqual(grantOf(glass, role({ breakGlass: { maxTTL: '15m' }, maxAccessDuration: '8h' }), start), {
    ttlSeconds: 900,
    accessEndsAtMs: start + 900_000,
  });
  t.deepEqual(grantOf(request({}), role({ maxAccessDuration: '20s' }), start), { accessEndsAtMs: start + 20_000 });
});

test('before the first issuance, a person approving alone where the role needs two is refused, saying how far it got', (t) => {
  const dar = request({
    approvals: [approval('alice')],
    conditions: [
      {
        type: 'Approved',
        status: 'True',
        reason: 'KubectlApprove',
        message: 'This was approved by: alice',
        lastTransitionTime: at(-1),
      },
    ],
  });
  const refusal = issueRefusal(dar, role({ approvals: 2 }), 'PostgresRole demo/role');
  t.is(refusal?.reason, Reason.NotEnoughApprovals);
  t.regex(refusal!.message, /requires 2 distinct approvals .* has 1 of 2 approvals \(alice\)/);
  t.is(issueRefusal(dar, role(), 'PostgresRole demo/role'), undefined);
});

test('the audit record lists every approver by name', (t) => {
  t.deepEqual(auditFields(request({ approvals: [approval('alice'), approval('bob')] })).approvals, ['alice', 'bob']);
  t.false('approvals' in auditFields(request({})));
});

// ---- plan rows -----------------------------------------------------------------------------------------------------

test('one approval of two: nothing issued, the wait says "1 of 2 approvals", the approval is audited once', (t) => {
  const p = plan(
    observed(request({ approvals: [approval('alice', { message: 'OPS-1' })] }), role({ approvals: 2 })),
    NOW,
  );
  t.deepEqual(
    p.steps.map((s) => s.kind),
    [],
  );
  t.regex(cond(p, 'Available')!.message!, /^1 of 2 approvals \(alice\); waiting for someone/);
  t.is(p.status.requiredApprovals, 2);
  t.is(p.status.observedApprovals, 1);
  t.deepEqual(p.audits, [{ action: Reason.ApprovalRecorded, message: 'approval by alice: OPS-1' }]);
  const again = plan(observed(request({ ...p.status }), role({ approvals: 2 })), NOW);
  t.deepEqual(again.audits, []);
});

test('the second approval: the operator writes the Approved condition; the next pass issues', (t) => {
  const p = plan(
    observed(
      request({ approvals: [approval('alice'), approval('bob')], observedApprovals: 1 }),
      role({ approvals: 2 }),
    ),
    NOW,
  );
  t.like(cond(p, 'Approved'), { status: 'True', reason: Reason.RequiredApprovalsReached });
  t.deepEqual(
    p.audits.map((a) => a.action),
    [Reason.ApprovalRecorded],
  );
  const next = plan(observed(request(p.status), role({ approvals: 2 })), NOW);
  t.is(next.status.phase, RequestPhase.Approved);
  t.truthy(issueStep(next));
  t.is(next.status.grant?.accessStartedAt, at(0));
});

test('an approver allowing 30m of a 2h request: the issued lease is asked for 30m and the grant records it', (t) => {
  const dar = request(
    {
      approvals: [approval('bob', { ttl: '30m' })],
      conditions: [
        {
          type: 'Approved',
          status: 'True',
          reason: 'KubectlApprove',
          message: 'This was approved by: bob',
          lastTransitionTime: at(-1),
        },
      ],
    },
    { ttl: '2h' },
  );
  const p = plan(observed(dar, role()), NOW);
  t.is(issueStep(p)?.order.ttlSeconds, 1800);
  t.like(p.status.grant, { ttl: '30m0s', accessStartedAt: at(0) });
});

test('a break-glass approval: a Warning Event and audit record at once, approved by the operator, ReviewRequired', (t) => {
  const r = role({ breakGlass: { maxTTL: '15m' } });
  const dar = request(
    { approvals: [approval('carol', { breakGlass: true, message: 'INC-123', ttl: '15m' })] },
    { ttl: '2h' },
  );
  const p = plan(observed(dar, r), NOW);
  t.like(p.events[0], { type: 'Warning', reason: Reason.BreakGlassApproved, audit: true });
  t.regex(
    p.events[0]!.message,
    /carol approved their own request in an emergency \(break-glass\) for at most 15m: INC-123/,
  );
  t.like(cond(p, 'Approved'), { reason: Reason.BreakGlassApproved });
  t.like(cond(p, 'ReviewRequired'), { status: 'True', reason: Reason.BreakGlassApproved });
  t.regex(cond(p, 'ReviewRequired')!.message!, /kubectl vault review databaseaccessrequest req -n demo/);
  const next = plan(observed(request(p.status, { ttl: '2h' }), r), NOW);
  t.is(issueStep(next)?.order.ttlSeconds, 900);
  t.like(next.status.grant, { ttl: '15m0s', accessEndsAt: at(900) });
});

test("a review by someone else clears ReviewRequired (audited once); the requester's own review doesn't", (t) => {
  const r = role({ breakGlass: { maxTTL: '15m' } });
  const glass = [approval('carol', { breakGlass: true, message: 'INC-123' })];
  const reviewed = issuedWith({
    approvals: glass,
    observedApprovals: 1,
    review: { username: 'alice', reviewedAt: at(-5), message: 'checked' },
  });
  const p = plan(observed(reviewed, r), NOW);
  t.like(cond(p, 'ReviewRequired'), { status: 'False', reason: Reason.Reviewed });
  t.true(p.events.some((e) => e.reason === Reason.Reviewed && e.audit));
  t.false(plan(observed(request(p.status), r), NOW).events.some((e) => e.reason === Reason.Reviewed));
  const own = issuedWith({ approvals: glass, observedApprovals: 1, review: { username: 'carol', reviewedAt: at(-5) } });
  t.like(cond(plan(observed(own, r), NOW), 'ReviewRequired'), { status: 'True' });
});

test('access ends at grant.accessEndsAt: the lease is revoked, the Secret emptied, phase Expired (AccessDurationReached)', (t) => {
  const r = role({ maxAccessDuration: '20s' });
  const before = plan(observed(issuedWith({ grant: { accessStartedAt: at(-10), accessEndsAt: at(10) } }), r), NOW);
  t.false(before.steps.some((s) => s.kind === 'revokeLease'));
  t.is(before.requeueAtMs, Date.parse(at(10)) + 100);
  const p = plan(observed(issuedWith({ grant: { accessStartedAt: at(-20), accessEndsAt: at(0) } }), r), NOW);
  t.deepEqual(
    p.steps.map((s) => s.kind),
    ['revokeLease', 'clearSecret'],
  );
  t.like(p.onSuccess, { phase: RequestPhase.Expired });
  t.like(p.onSuccess?.conditions?.[0], { type: 'Available', reason: Reason.AccessDurationReached });
});

test('renewals never reach past the end of access: asked for what is left, or skipped when the lease outlasts it', (t) => {
  const r = role({ maxAccessDuration: '2h' });
  // The lease runs out in 10 minutes, access in 5: no renewal, the end revokes it.
  const outlasting = plan(
    observed(
      issuedWith({
        lease: { id: LEASE, duration: '1h0m0s', renewable: true, issuedAt: at(-3000), expiresAt: at(600) },
        grant: { accessStartedAt: at(-6900), accessEndsAt: at(300) },
      }),
      r,
    ),
    NOW,
  );
  t.false(outlasting.steps.some((s) => s.kind === 'renewLease'));
  t.is(outlasting.requeueAtMs, Date.parse(at(300)) + 100);
  // The lease runs out in 10 minutes, access in 20: renewed for the 20 left, no more.
  const renewing = plan(
    observed(
      issuedWith({
        lease: { id: LEASE, duration: '1h0m0s', renewable: true, issuedAt: at(-3000), expiresAt: at(600) },
        grant: { accessStartedAt: at(-6000), accessEndsAt: at(1200) },
      }),
      r,
    ),
    NOW,
  );
  const renew = renewing.steps.find((s) => s.kind === 'renewLease') as { askSeconds: number } | undefined;
  t.is(renew?.askSeconds, 1200);
});

test('an approval or a review written into status wakes the controller, as a decision does', (t) => {
  const before = request({ phase: RequestPhase.WaitingForApproval });
  t.true(decisionChanged(before, request({ ...before.status, approvals: [approval('bob')] })));
  t.true(decisionChanged(before, request({ ...before.status, review: { username: 'bob', reviewedAt: at(0) } })));
  t.false(decisionChanged(before, request({ ...before.status, observedApprovals: 0, requiredApprovals: 2 })));
});

test("the operator's decision on approvals is audited as the approvers' (or the break-glass requester's)", (t) => {
  const byOperator = (reason: string, approvals: Approval[]) =>
    request({
      approvals,
      conditions: [
        {
          type: 'Approved',
          status: 'True',
          reason,
          message: 'This was approved by: leasehold (…)',
          lastTransitionTime: at(0),
        },
      ],
    });
  t.is(
    auditFields(byOperator(Reason.RequiredApprovalsReached, [approval('alice'), approval('bob')])).decidedBy,
    'alice, bob',
  );
  t.is(
    auditFields(byOperator(Reason.BreakGlassApproved, [approval('carol', { breakGlass: true, message: 'INC' })]))
      .decidedBy,
    'carol (break-glass)',
  );
});

test('a user name with a space approving alone counts once, not as two people (the condition names them whole)', (t) => {
  const dar = request({
    approvals: [approval('Dave Smith')],
    conditions: [
      {
        type: 'Approved',
        status: 'True',
        reason: 'KubectlApprove',
        message: 'This was approved by: Dave Smith (with kubectl vault approve)',
        lastTransitionTime: at(-1),
      },
    ],
  });
  const tally = tallyApprovals(dar, role({ approvals: 2 }));
  t.deepEqual(
    tally.counted.map((a) => a.username),
    ['Dave Smith'],
  );
  t.false(tally.satisfied);
  t.is(issueRefusal(dar, role({ approvals: 2 }), 'PostgresRole demo/role')?.reason, Reason.NotEnoughApprovals);
});

test("an approver's ttl under a second still caps the lease at a second, never at Vault's default", (t) => {
  const g = grantOf(request({ approvals: [approval('alice', { ttl: '500ms' })] }), role(), NOW.getTime());
  t.is(g.ttlSeconds, 1);
});

test('a role that adds maxAccessDuration after the grant was recorded ends the access it already gave, counted from its start', (t) => {
  const started = issuedWith({ grant: { accessStartedAt: at(-6000) } });
  const p = plan(observed(started, role({ maxAccessDuration: '2h' })), NOW);
  t.is(p.status.grant?.accessEndsAt, at(-6000 + 7200));
  // A later, longer maxAccessDuration never moves a recorded end later.
  const ended = issuedWith({ grant: { accessStartedAt: at(-6000), accessEndsAt: at(1200) } });
  const q = plan(observed(ended, role({ maxAccessDuration: '8h' })), NOW);
  t.is(q.status.grant?.accessEndsAt, at(1200));
});
