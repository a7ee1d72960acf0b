// What a person reading `kubectl describe` sees when status changes: one Event per transition, from the kind's
// summary condition, a Warning only for bad news. report() is run as the reconcilers run it, against a fake API
// server that applies the status patches, with the in-memory Events recorder.
import test from 'ava';
import { ConditionType, KINDS, Reason, SummaryCondition, type EventReason } from '../../../api/index.ts';
import {
  engineFailed,
  engineSucceeded,
  explain,
  report,
  terminating,
  type Reportable,
  type StatusUpdate,
} from '../../../controllers/shared/report.ts';
import { APP_BINDINGS, DATABASE_ACCESS_REQUESTS, SECRET_ENGINES } from '../../../controllers/shared/resources.ts';
import {
  MemoryEventRecorder,
  RetryableError,
  TerminalError,
  type KubeClient,
  type ResourceType,
} from '../../../lib/runtime/index.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';

const NOW = new Date('2026-03-01T12:00:00Z');

function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** An object of `resource`'s kind in a fake API server; `write` reports an update as a reconciler does. */
function world(resource: ResourceType) {
  let stored: Reportable = {
    apiVersion: 'v1',
    kind: resource.kind,
    metadata: { name: 'x', namespace: 'demo', uid: 'u1', resourceVersion: '1', generation: 1 },
  };
  let version = 1;
  const kube = {
    async patch(_r: ResourceType, _ns: string, _name: string, body: { status: unknown }) {
      stored = {
        ...stored,
        status: applyMergePatch(stored.status, body.status) as object,
        metadata: { ...stored.metadata, resourceVersion: String(++version) },
      };
      return structuredClone(stored);
    },
  } as unknown as KubeClient;
  const events = new MemoryEventRecorder<EventReason>();
  return {
    events,
    async write(update: StatusUpdate<EventReason>) {
      stored = await report(kube, resource, events, stored, update, NOW);
    },
    /** The Events as `type reason`, in order. */
    seen: () => events.events.map((e) => `${e.type} ${e.reason}`),
  };
}

test('a SecretEngine that succeeds emits one Normal Event and no Warning', async (t) => {
  const w = world(SECRET_ENGINES);
  await w.write({ conditions: engineSucceeded('database secrets engine at db/ connected as k8s.-.demo.pg') });
  t.deepEqual(
    w.events.events.map((e) => ({ type: e.type, reason: e.reason, message: e.message })),
    [{ type: 'Normal', reason: 'Provisioned', message: 'database secrets engine at db/ connected as k8s.-.demo.pg' }],
  );
});

test("a SecretEngine that fails emits one Warning with the failure's reason and words", async (t) => {
  const w = world(SECRET_ENGINES);
  const { reason, message } = explain(
    new VaultRequestError('Unreachable', 'enabling the mount at db/', 'connection refused'),
  );
  await w.write({ conditions: engineFailed(reason, message) });
  t.deepEqual(
    w.events.events.map((e) => ({ type: e.type, reason: e.reason, message: e.message })),
    [{ type: 'Warning', reason: 'VaultUnreachable', message: 'Vault: enabling the mount at db/: connection refused' }],
  );
});

test('a PostgresRole that fails, fails again the same way, then recovers: one Warning, then one Normal', async (t) => {
  const w = world({ ...SECRET_ENGINES, kind: 'PostgresRole' });
  await w.write({ conditions: engineFailed(Reason.FailedToCreateDatabaseRole, 'Vault: bad SQL') });
  await w.write({ conditions: engineFailed(Reason.FailedToCreateDatabaseRole, 'Vault: bad SQL, said again') });
  await w.write({ conditions: engineSucceeded('Vault role written') });
  await w.write({ conditions: engineSucceeded('Vault role written') });
  t.deepEqual(w.seen(), ['Warning FailedToCreateDatabaseRole', 'Normal Provisioned']);
});

test('an object being deleted: waiting for dependents is Normal, a failed cleanup a Warning', async (t) => {
  const w = world(SECRET_ENGINES);
  await w.write({ conditions: [terminating(Reason.LeasesOutstanding, 'deletion waits: 2 requests hold leases')] });
  await w.write({ conditions: [terminating(Reason.InUse, 'deletion waits: a PostgresRole')] });
  await w.write({ conditions: [terminating(Reason.VaultUnreachable, 'removing the mount failed, retried')] });
  t.deepEqual(w.seen(), ['Normal LeasesOutstanding', 'Normal InUse', 'Warning VaultUnreachable']);
});

test('an AppBinding: one Event from Ready; its LeaseOwnership alone turning False is a Warning', async (t) => {
  const w = world(APP_BINDINGS);
  await w.write({
    conditions: [
      { type: ConditionType.Ready, status: 'True', reason: Reason.Reachable, message: 'Vault answers' },
      { type: ConditionType.LeaseOwnership, status: 'True', reason: Reason.IssuerToken, message: 'issuer token' },
    ],
  });
  await w.write({
    conditions: [
      { type: ConditionType.Ready, status: 'True', reason: Reason.Reachable, message: 'Vault answers' },
      {
        type: ConditionType.LeaseOwnership,
        status: 'False',
        reason: Reason.IssuerTokenRoleUnavailable,
        message: 'no token role',
      },
    ],
  });
  t.deepEqual(w.seen(), ['Normal Reachable', 'Warning IssuerTokenRoleUnavailable']);
});

test('a request waiting for approval is not bad news; its normal ends are Normal; a refusal is a Warning', async (t) => {
  const waiting = world(DATABASE_ACCESS_REQUESTS);
  await waiting.write({
    conditions: [
      { type: ConditionType.Available, status: 'False', reason: Reason.WaitingForApproval, message: 'waiting' },
    ],
  });
  await waiting.write({
    conditions: [
      {
        type: ConditionType.Available,
        status: 'False',
        reason: Reason.ApprovalTimedOut,
        message: 'nobody decided within 24h',
      },
      {
        type: ConditionType.Expired,
        status: 'True',
        reason: Reason.ApprovalTimedOut,
        message: 'nobody decided within 24h',
      },
    ],
  });
  t.deepEqual(waiting.seen(), ['Normal WaitingForApproval', 'Normal ApprovalTimedOut']);

  const revoked = world(DATABASE_ACCESS_REQUESTS);
  await revoked.write({
    conditions: [
      {
        type: ConditionType.Available,
        status: 'False',
        reason: Reason.RevokedOnDemand,
        message: 'the lease was revoked on request',
      },
      { type: ConditionType.Revoked, status: 'True', reason: Reason.RevokedOnDemand, message: 'lease l1 revoked' },
    ],
  });
  t.deepEqual(
    revoked.events.events.map((e) => `${e.type} ${e.reason}: ${e.message}`),
    ['Normal RevokedOnDemand: the lease was revoked on request'],
    'from Available, the summary',
  );

  const refused = world(DATABASE_ACCESS_REQUESTS);
  await refused.write({
    conditions: [
      {
        type: ConditionType.Available,
        status: 'False',
        reason: Reason.ReasonRequired,
        message: 'the role requires a reason',
      },
      {
        type: ConditionType.Failed,
        status: 'True',
        reason: Reason.ReasonRequired,
        message: 'the role requires a reason',
      },
    ],
  });
  t.deepEqual(refused.seen(), ['Warning ReasonRequired']);
});

test('a rotation forced by a lease that ran out is bad news, though its reason names an end', async (t) => {
  const w = world(DATABASE_ACCESS_REQUESTS);
  await w.write({
    conditions: [
      {
        type: ConditionType.Available,
        status: 'False',
        reason: Reason.LeaseExpired,
        message: 'the lease ran out before it was renewed; issuing a new credential',
      },
    ],
  });
  t.deepEqual(w.seen(), ['Warning LeaseExpired']);
});

test('a revocation Vault did not do is a Warning from Revoked; dropping the condition once it succeeds is silent', async (t) => {
  const w = world(DATABASE_ACCESS_REQUESTS);
  await w.write({
    conditions: [
      {
        type: ConditionType.Revoked,
        status: 'False',
        reason: Reason.RevocationFailed,
        message: 'Vault could not revoke lease l1',
      },
    ],
  });
  await w.write({ conditions: [], dropConditions: [ConditionType.Revoked] });
  t.deepEqual(w.seen(), ['Warning RevocationFailed']);
});

test('a status write that changes nothing emits nothing', async (t) => {
  const w = world(SECRET_ENGINES);
  await w.write({ conditions: engineSucceeded('ok'), phase: 'Success' });
  await w.write({ conditions: engineSucceeded('ok'), phase: 'Success' });
  await w.write({ conditions: [], fields: { path: 'db' } });
  t.is(w.events.events.length, 1);
});

test('explain names failures in the vocabulary; a reason outside it is an InternalError that keeps it in the message', (t) => {
  t.like(explain(new TerminalError(Reason.FailedToEnableSecretEngine, 'db/ holds a kv engine')), {
    reason: 'FailedToEnableSecretEngine',
    retryable: false,
  });
  t.like(explain(new RetryableError(Reason.ReferenceNotFound, 'no AppBinding')), {
    reason: 'ReferenceNotFound',
    retryable: true,
  });
  t.like(explain(new VaultRequestError('PermissionDenied', 'writing role r', 'permission denied', 403)), {
    reason: 'VaultPermissionDenied',
    retryable: true,
  });
  t.like(explain(new VaultRequestError('Sealed', 'reading the mount', 'sealed', 503)), { reason: 'VaultUnreachable' });
  t.deepEqual(explain(new RetryableError('Misspelt', 'something')), {
    reason: 'InternalError',
    message: 'Misspelt: something',
    retryable: true,
  });
  t.is(explain(new Error('boom')).reason, 'InternalError');
});

test('every kind Leasehold serves has a summary condition its Events are written from', (t) => {
  t.deepEqual(Object.fromEntries(KINDS.map((k) => [k.kind, SummaryCondition[k.kind]])), {
    AppBinding: 'Ready',
    SecretEngine: 'Ready',
    PostgresRole: 'Ready',
    MySQLRole: 'Ready',
    MariaDBRole: 'Ready',
    RedisRole: 'Ready',
    DatabaseAccessRequest: 'Available',
    AccessNotifier: 'Ready',
    ClusterAccessNotifier: 'Ready',
  });
});

test('a misspelt reason does not compile (checked by `npm run lint`; the recorder itself takes what it is given)', (t) => {
  const events = new MemoryEventRecorder<EventReason>();
  const obj = { apiVersion: 'v1', kind: 'SecretEngine', metadata: { name: 'x', namespace: 'demo' } };
  // @ts-expect-error: 'Provisoned' is not an EventReason
  events.event(obj, 'Normal', 'Provisoned', 'mounted');
  // @ts-expect-error: nor a ConditionReason, which engineFailed takes
  engineFailed('VaultUnreachabel', 'Vault: connection refused');
  t.deepEqual(
    events.events.map((e) => e.reason),
    ['Provisoned'],
  );
});
