// plan(): (request × role × lease × Secret × time) → steps, status, Events, when to run again. Literal in, literal
// out; no I/O anywhere. Each row names what a person would see happen.
import test from 'ava';
import { Annotations, FINALIZER, Reason, RequestPhase, type DatabaseAccessRequest } from '../../../api/index.ts';
import type { AccessRole } from '../../../controllers/databaseaccessrequest/engine.ts';
import { postgres } from '../../../controllers/databaseaccessrequest/engines/postgres.ts';
import type { Observed } from '../../../controllers/databaseaccessrequest/observe.ts';
import { plan, type Plan } from '../../../controllers/databaseaccessrequest/plan.ts';
import type { Layout } from '../../../controllers/databaseaccessrequest/credential-secret.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const at = (offsetSeconds: number) =>
  new Date(NOW.getTime() + offsetSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const LEASE = 'db/creds/k8s.-.demo.role/current';
const OLD = 'db/creds/k8s.-.demo.role/old';
const VAB = { namespace: 'demo', name: 'vault' };
const approved = {
  type: 'Approved',
  status: 'True',
  reason: 'KubectlApprove',
  message: 'This was approved by: bob',
  lastTransitionTime: at(-600),
} as const;
const availableTrue = {
  type: 'Available',
  status: 'True',
  reason: 'SuccessfullyIssuedCredential',
  message: 'ok',
  lastTransitionTime: at(-600),
} as const;

const role: AccessRole = {
  metadata: { name: 'role', namespace: 'demo' },
  spec: { defaultTTL: '1h', maxTTL: '24h' },
  status: { phase: 'Success', vaultRole: 'k8s.-.demo.role' },
};
const layout: Layout = {
  templates: { templates: {}, origin: {} },
  address: { values: {}, unavailable: {} },
  problems: [],
  hash: '',
  credentialVariables: postgres.variables.credential,
};

type Over = Partial<Omit<Observed, 'request'>> & {
  status?: DatabaseAccessRequest['status'];
  metadata?: Partial<DatabaseAccessRequest['metadata']>;
  spec?: Partial<DatabaseAccessRequest['spec']>;
};

/** An approved request issued 10 minutes ago (a 1 h lease), its Secret intact; `over` changes any part. */
function issued(over: Over = {}): Observed {
  return observed({
    status: {
      phase: RequestPhase.Approved,
      conditions: [approved, availableTrue],
      secret: { name: 'req-abc123' },
      lease: { id: LEASE, duration: '1h0m0s', renewable: true, issuedAt: at(-600), expiresAt: at(3000) },
      issuance: {
        vaultAppBinding: VAB,
        mount: 'db',
        connection: 'c',
        role: 'k8s.-.demo.role',
        attempt: 'a1',
        startedAt: at(-601),
        completed: true,
      },
    },
    ...over,
  });
}

function observed(over: Over = {}): Observed {
  const { status, metadata, spec, ...rest } = over;
  const request: DatabaseAccessRequest = {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: {
      name: 'req',
      namespace: 'demo',
      uid: 'uid-1',
      finalizers: [FINALIZER],
      creationTimestamp: at(-3600) as never,
      ...metadata,
    },
    spec: {
      roleRef: { kind: 'PostgresRole', name: 'role' },
      subjects: [{ kind: 'ServiceAccount', name: 'app' }],
      ...spec,
    },
    ...(status ? { status } : {}),
  };
  const stage = request.metadata.deletionTimestamp
    ? 'finalize'
    : status?.conditions?.some((c) => c.type === 'Denied')
      ? 'denied'
      : !status?.conditions?.some((c) => c.type === 'Approved')
        ? 'waitForApproval'
        : status?.phase === 'Revoked' || status?.phase === 'Expired'
          ? 'finished'
          : request.metadata.annotations?.[Annotations.revokeNow]
            ? 'revokeNow'
            : 'approved';
  return {
    request,
    stage,
    finalized: { ours: true, any: true },
    engine: postgres,
    roleName: 'PostgresRole demo/role',
    role,
    layout,
    target: {
      vaultAppBinding: { metadata: { name: 'vault', namespace: 'demo' } } as never,
      mount: 'db',
      connection: 'c',
    },
    secret: {
      name: status?.secret?.name,
      present: !!status?.secret?.name,
      drift: 'intact',
      leaseId: status?.lease?.id,
      attempt: 'a1',
    },
    liveness: 'alive',
    vaultAppBindings: new Set(['demo/vault']),
    revocationRetryAt: {},
    ...rest,
  };
}

const kinds = (p: Plan) => p.steps.map((s) => s.kind);
const cond = (p: Plan, type: string) => p.status.conditions?.find((c) => c.type === type);

// ---- the table --------------------------------------------------------------------------------------------------

const rows: Array<[string, Observed, (t: import('ava').ExecutionContext, p: Plan) => void]> = [
  [
    'a new request gets the finalizer and waits, saying until when',
    observed({ finalized: { ours: false, any: false } }),
    (t, p) => {
      t.deepEqual(kinds(p), ['addFinalizer']);
      t.is(p.status.phase, RequestPhase.WaitingForApproval);
      t.is(cond(p, 'Available')?.reason, Reason.WaitingForApproval);
      t.is(p.requeueAtMs, NOW.getTime() + 60 * 60_000); // 24 h pendingTTL: looked at again within the hour
    },
  ],
  [
    'a request nobody decided within pendingTTL expires with nothing issued',
    observed({ metadata: { creationTimestamp: at(-25 * 3600) as never } }),
    (t, p) => {
      t.deepEqual(kinds(p), []);
      t.is(p.status.phase, RequestPhase.Expired);
      t.is(cond(p, 'Expired')?.reason, Reason.ApprovalTimedOut);
      t.true(p.forget);
    },
  ],
  [
    'an autoApprove rule that matches approves as the operator',
    observed({ role: { ...role, spec: { ...role.spec, approval: { autoApprove: { namespaces: ['demo'] } } } } }),
    (t, p) => {
      t.is(cond(p, 'Approved')?.reason, Reason.AutoApproved);
      t.deepEqual(kinds(p), []);
    },
  ],
  [
    'a denied request records the decision with one Event',
    observed({
      status: {
        conditions: [
          {
            type: 'Denied',
            status: 'True',
            reason: 'KubectlDeny',
            message: 'This was denied by: bob',
            lastTransitionTime: at(-1),
          },
        ],
      },
    }),
    (t, p) => {
      t.is(p.status.phase, RequestPhase.Denied);
      t.deepEqual(
        p.events.map((e) => e.reason),
        ['RequestDenied'],
      );
      t.deepEqual(
        p.audits.map((a) => a.action),
        ['RequestDenied'],
      );
    },
  ],
  [
    'a newly approved request is issued, the decision audited and recorded with the checkpoint',
    observed({ status: { conditions: [approved] } }),
    (t, p) => {
      t.deepEqual(kinds(p), ['issue', 'ensureGrants']);
      t.is(p.status.phase, RequestPhase.Approved);
      t.deepEqual(
        p.audits.map((a) => a.action),
        ['RequestApproved'],
      );
      t.deepEqual(p.events, []);
      t.true(p.awaitingFirstIssue);
    },
  ],
  [
    'a request whose role does not exist waits for it',
    observed({
      status: { conditions: [approved] },
      role: undefined,
      roleProblem: {
        reason: 'ReferenceNotFound',
        message: 'PostgresRole demo/role named by spec.roleRef does not exist',
      },
    }),
    (t, p) => {
      t.deepEqual(kinds(p), []);
      t.is(p.failure?.reason, 'ReferenceNotFound');
      t.falsy(p.failure?.terminal);
    },
  ],
  [
    'a role that is not ready yet holds issuance back',
    observed({ status: { conditions: [approved] }, role: { ...role, status: { phase: 'Processing' } } }),
    (t, p) => {
      t.is(p.failure?.reason, 'RoleNotReady');
    },
  ],
  [
    'a role requiring a reason refuses a request without one, for good',
    observed({
      status: { conditions: [approved] },
      role: { ...role, spec: { ...role.spec, approval: { requireReason: true } } },
    }),
    (t, p) => {
      t.is(p.failure?.reason, Reason.ReasonRequired);
      t.true(p.failure?.terminal);
    },
  ],
  [
    'nothing new is issued through an object being deleted',
    observed({ status: { conditions: [approved] }, terminating: 'SecretEngine demo/engine' }),
    (t, p) => {
      t.is(p.failure?.reason, Reason.ReferenceTerminating);
    },
  ],
  [
    'a template that can not render issues nothing and polls for the address',
    observed({
      status: { conditions: [approved] },
      layout: { ...layout, problems: ['spec.secretTemplate key "uri": unknown variable "x"'] },
    }),
    (t, p) => {
      t.deepEqual(kinds(p), []);
      t.is(p.failure?.reason, Reason.InvalidSecretTemplate);
      t.is(p.failure?.retryAfterMs, 60_000);
    },
  ],
  [
    'an unfinished attempt whose Secret holds its lease is adopted',
    observed({
      status: {
        conditions: [approved],
        phase: 'Approved',
        secret: { name: 'req-abc123' },
        issuance: { vaultAppBinding: VAB, attempt: 'a1', startedAt: at(-5), completed: false, mount: 'db', role: 'r' },
      },
      secret: { name: 'req-abc123', present: true, drift: 'intact', leaseId: LEASE, attempt: 'a1' },
    }),
    (t, p) => {
      const step = p.steps[0];
      t.is(step?.kind === 'issue' ? step.order.adopt : undefined, LEASE);
      t.truthy(step?.kind === 'issue' ? step.order.sweep : undefined);
    },
  ],
  [
    'a recorded lease between renewals just waits for its renewal point',
    issued(),
    (t, p) => {
      t.deepEqual(kinds(p), ['ensureGrants']);
      t.true(p.requeueAtMs! > NOW.getTime() && p.requeueAtMs! < NOW.getTime() + 3000_000);
    },
  ],
  [
    'a lease at its renewal point is renewed first, alone, and planned again with the answer',
    issued({
      status: {
        ...issued().request.status,
        lease: { ...issued().request.status!.lease, issuedAt: at(-3000), expiresAt: at(600) },
      },
    }),
    (t, p) => {
      t.deepEqual(kinds(p), ['renewLease']);
      t.true(p.replan);
    },
  ],
  [
    'a renewal Vault truncated rotates',
    issued({
      renewal: { kind: 'renewed', grantedSeconds: 600, askedSeconds: 3600, termSeconds: 3600, failuresBefore: 0 },
    }),
    (t, p) => {
      t.is(p.status.rotation?.reason, 'RenewalTruncated');
      t.deepEqual(
        p.status.previousLeases?.map((l) => l.id),
        [LEASE],
      );
      t.deepEqual(kinds(p), ['issue', 'ensureGrants']);
    },
  ],
  [
    'a renewal Vault refused rotates',
    issued({ renewal: { kind: 'refused', detail: 'lease is not renewable' } }),
    (t, p) => {
      t.is(p.status.rotation?.reason, 'RenewalRefused');
    },
  ],
  [
    'a renewal that finds the lease gone rotates without keeping it',
    issued({ renewal: { kind: 'gone' } }),
    (t, p) => {
      t.is(p.status.rotation?.reason, 'LeaseRevoked');
      t.is(p.status.previousLeases, undefined);
      t.is(cond(p, 'Available')?.status, 'False');
    },
  ],
  [
    'a renewal that failed is retried before the lease runs out, with one Warning on the first failure',
    issued({ renewal: { kind: 'failed', message: 'Vault: connection refused', failures: 1 } }),
    (t, p) => {
      t.deepEqual(
        p.events.map((e) => `${e.type} ${e.reason}`),
        ['Warning LeaseRenewalFailed'],
      );
      t.is(p.requeueAtMs, NOW.getTime() + 30_000);
    },
  ],
  [
    'a renewal that worked again after failures says so',
    issued({
      renewal: { kind: 'renewed', grantedSeconds: 3600, askedSeconds: 3600, termSeconds: 3600, failuresBefore: 2 },
    }),
    (t, p) => {
      t.deepEqual(
        p.events.map((e) => e.reason),
        [Reason.LeaseRenewed],
      );
      t.is(p.status.lease?.expiresAt, at(3600));
    },
  ],
  [
    'a deleted Secret rotates into a new one of the same name',
    issued({ secret: { name: 'req-abc123', present: false, drift: 'intact' } }),
    (t, p) => {
      t.is(p.status.rotation?.reason, 'SecretDeleted');
      const step = p.steps.find((s) => s.kind === 'issue');
      t.is(step?.kind === 'issue' ? step.order.secretName : undefined, 'req-abc123');
    },
  ],
  [
    'a credential changed by hand rotates, Available False meanwhile',
    issued({ secret: { name: 'req-abc123', present: true, drift: 'credential' } }),
    (t, p) => {
      t.is(p.status.rotation?.reason, 'SecretModified');
      t.is(cond(p, 'Available')?.status, 'False');
    },
  ],
  [
    'other keys changed by hand are rendered again',
    issued({ secret: { name: 'req-abc123', present: true, drift: 'layout' } }),
    (t, p) => {
      t.deepEqual(kinds(p), ['ensureGrants', 'rerenderSecret']);
    },
  ],
  [
    'a lease revoked behind our back rotates',
    issued({ liveness: 'gone' }),
    (t, p) => {
      t.is(p.status.rotation?.reason, 'LeaseRevoked');
    },
  ],
  [
    'a new rotate-now value rotates once and records it',
    issued({ metadata: { annotations: { [Annotations.rotateNow]: 't1' } } }),
    (t, p) => {
      t.is(p.status.rotation?.reason, 'RotateRequested');
      t.is(p.status.lastRotateRequest, 't1');
    },
  ],
  [
    'a rotate-now value already handled does nothing',
    issued({
      metadata: { annotations: { [Annotations.rotateNow]: 't1' } },
      status: { ...issued().request.status, lastRotateRequest: 't1' },
    }),
    (t, p) => {
      t.is(p.status.rotation, undefined);
    },
  ],
  [
    'a lease that ran out is replaced',
    issued({ status: { ...issued().request.status, lease: { ...issued().request.status!.lease, expiresAt: at(-1) } } }),
    (t, p) => {
      t.is(p.status.rotation?.reason, 'LeaseExpired');
    },
  ],
  [
    'with renew false, a lease that ran out ends the request: revoked, Secret emptied, phase Expired',
    issued({
      spec: { renew: false },
      status: { ...issued().request.status, lease: { ...issued().request.status!.lease, expiresAt: at(-1) } },
    }),
    (t, p) => {
      t.deepEqual(kinds(p), ['ensureGrants', 'revokeLease', 'clearSecret']);
      t.is(p.onSuccess?.phase, RequestPhase.Expired);
    },
  ],
  [
    'a previous lease past its grace period is revoked; one whose retry is not due waits',
    issued({
      status: {
        ...issued().request.status,
        previousLeases: [
          { id: OLD, revokeAt: at(-1), vaultAppBinding: VAB },
          { id: 'db/creds/x/later', revokeAt: at(-1), vaultAppBinding: VAB },
        ],
      },
      revocationRetryAt: { 'db/creds/x/later': NOW.getTime() + 10_000 },
    }),
    (t, p) => {
      t.deepEqual(
        p.steps
          .filter((s) => s.kind === 'revokeLease')
          .map((s) => (s.kind === 'revokeLease' ? s.revocation.leaseId : '')),
        [OLD],
      );
      t.is(p.requeueAtMs, NOW.getTime() + 10_000);
    },
  ],
  [
    'a rotation completed restarts the workloads once',
    issued({
      spec: { rolloutRestartTargets: [{ kind: 'Deployment', name: 'app' }] },
      status: {
        ...issued().request.status,
        rotation: { reason: 'RotateRequested', requestedAt: at(-60), completedAt: at(-59) },
      },
    }),
    (t, p) => {
      t.true(kinds(p).includes('restartWorkloads'));
    },
  ],
  [
    'a reference no longer admitted stops renewals, and says until when the lease works',
    issued({ refusal: 'AppBinding other/db does not admit namespace demo' }),
    (t, p) => {
      t.is(cond(p, 'Available')?.reason, Reason.ReferenceNotAllowed);
      t.false(kinds(p).includes('renewLease'));
    },
  ],
  [
    'revoke-now revokes, empties the Secret and ends in Revoked',
    issued({ metadata: { annotations: { [Annotations.revokeNow]: 'x' } } }),
    (t, p) => {
      t.deepEqual(kinds(p), ['revokeLease', 'clearSecret']);
      t.is(p.onSuccess?.phase, RequestPhase.Revoked);
    },
  ],
  [
    'revoke-now after a completed rotation revokes the recorded lease once, not the rotated-out one a lagging Secret cache still shows',
    issued({
      metadata: { annotations: { [Annotations.revokeNow]: 'x' } },
      secret: { name: 'req-abc123', present: true, drift: 'intact', leaseId: OLD, attempt: 'a0' },
    }),
    (t, p) => {
      t.deepEqual(kinds(p), ['revokeLease', 'clearSecret']);
    },
  ],
  [
    'revoke-now without the Vault the lease came from waits for it',
    issued({ metadata: { annotations: { [Annotations.revokeNow]: 'x' } }, vaultAppBindings: new Set() }),
    (t, p) => {
      t.is(p.failure?.reason, Reason.ReferenceNotFound);
    },
  ],
  [
    'a request that ended does nothing more',
    issued({ status: { ...issued().request.status, phase: 'Revoked' } }),
    (t, p) => {
      t.deepEqual(kinds(p), []);
      t.true(p.forget);
    },
  ],
  [
    "deletion revokes the current lease, the Secret's, an unfinished attempt's and previous ones, then lets go",
    issued({
      metadata: { deletionTimestamp: at(-1) as never },
      status: {
        ...issued().request.status,
        issuance: { ...issued().request.status!.issuance, completed: false },
        previousLeases: [{ id: OLD, revokeAt: at(30), vaultAppBinding: VAB }],
      },
      secret: { name: 'req-abc123', present: true, drift: 'intact', leaseId: 'db/creds/k8s.-.demo.role/in-secret' },
    }),
    (t, p) => {
      t.deepEqual(kinds(p), ['revokeLease', 'revokeLease', 'sweep', 'revokeLease', 'releaseFinalizer']);
      t.deepEqual(
        p.eventsOnSuccess?.map((e) => e.reason),
        ['LeaseRevoked'],
      );
    },
  ],
  [
    'deletion without the Vault AppBinding leaves the lease to expire, and says so',
    issued({ metadata: { deletionTimestamp: at(-1) as never }, vaultAppBindings: new Set() }),
    (t, p) => {
      t.deepEqual(kinds(p), ['releaseFinalizer']);
      t.deepEqual(
        p.events.map((e) => `${e.type} ${e.reason}`),
        ['Warning LeaseNotRevoked'],
      );
    },
  ],
  [
    'a deleted request without a finalizer is let go at once',
    observed({
      metadata: { deletionTimestamp: at(-1) as never, finalizers: [] },
      finalized: { ours: false, any: false },
    }),
    (t, p) => {
      t.deepEqual(kinds(p), []);
    },
  ],
];

for (const [name, o, check] of rows) {
  test(name, (t) => check(t, plan(o, NOW)));
}

test('plan is pure: the same input plans the same steps and status', (t) => {
  const o = issued({ renewal: { kind: 'refused', detail: 'no' } });
  const a = plan(o, NOW);
  const b = plan(o, NOW);
  t.deepEqual(kinds(a), kinds(b));
  t.deepEqual({ ...a.status, issuance: undefined }, { ...b.status, issuance: undefined });
  t.is(o.request.status?.lease?.id, LEASE, 'the observed request is not changed');
});
