// Every revocation path ends access only once Vault has revoked the lease: deletion keeps the finalizer, revoke-now
// and expiry keep the phase, a rotation keeps the previous lease; each records the Revoked condition with Vault's
// words (one Warning Event) and retries with a growing delay. Against a fake VaultClient and a fake API server
// (the real stack covers deletion and revoke-now: tests/integration/revocation.test.ts).
import test from 'ava';
import { FINALIZER, type DatabaseAccessRequest } from '../../../api/index.ts';
import { RequestControllerState } from '../../../controllers/databaseaccessrequest/controller-state.ts';
import { REVOCATION_RETRY_BASE_MS, REVOCATION_RETRY_MAX_MS, RevocationRetries, revocationRetryDelayMs } from '../../../controllers/databaseaccessrequest/decide.ts';
import { expire, finalize, revokeNow } from '../../../controllers/databaseaccessrequest/ending.ts';
import { sweep } from '../../../controllers/databaseaccessrequest/issuance.ts';
import { revokeDuePrevious, wake } from '../../../controllers/databaseaccessrequest/lease-keeper.ts';
import type { ControllerContext } from '../../../controllers/shared/context.ts';
import { DONE, PatchType, type Logger, type ReconcileContext, type Result } from '../../../lib/runtime/index.ts';
import type { RevokeOutcome, VaultClient } from '../../../lib/vault/client.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const LEASE = 'my-postgres-se/creds/k8s.-.demo.role/current';
const OLD = 'my-postgres-se/creds/k8s.-.demo.role/previous';
const VAULT_WORDS = 'failed to revoke entry: pq: role "v-k8s-role-x" cannot be dropped because some objects depend on it';
const dropRefused = () => new VaultRequestError('RevocationFailed', `revoking lease ${LEASE}`, VAULT_WORDS, 400);
const unreachable = () => new VaultRequestError('Unreachable', `revoking lease ${LEASE}`, 'connection refused (is Vault running and listening on that address?)');

type Answer = RevokeOutcome | Error;
type Event = { type: string; reason: string; message: string };

const noLog: Logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined, child: () => noLog };

function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** One request in a fake API server, a fake Vault that answers revocations from a script, and the Events. */
function world(dar: DatabaseAccessRequest, answers: Answer[], more: Partial<VaultClient> = {}) {
  let stored: DatabaseAccessRequest = structuredClone(dar);
  let version = 1;
  const events: Event[] = [];
  const revoked: string[] = [];
  const secretsCleared: string[] = [];
  const vault = {
    async revokeLease(leaseId: string): Promise<RevokeOutcome> {
      revoked.push(leaseId);
      const a = answers.length > 1 ? answers.shift()! : answers[0]!;
      if (a instanceof Error) throw a;
      return a;
    },
    ...more,
  } as VaultClient;
  const kube = {
    async patch(resource: { plural: string }, _ns: string, _name: string, body: unknown, type: PatchType, opts: { subresource?: string } = {}) {
      if (resource.plural === 'secrets') {
        secretsCleared.push(_name);
        return {};
      }
      if (type === PatchType.json) {
        for (const op of body as Array<{ op: string; path: string }>) {
          if (op.op !== 'remove') continue;
          const i = Number(op.path.split('/').pop());
          stored = { ...stored, metadata: { ...stored.metadata, finalizers: stored.metadata.finalizers!.filter((_, j) => j !== i) } };
        }
      } else if (opts.subresource === 'status') {
        stored = { ...stored, status: applyMergePatch(stored.status, (body as { status: unknown }).status) as DatabaseAccessRequest['status'] };
      }
      stored = { ...stored, metadata: { ...stored.metadata, resourceVersion: String(++version) } };
      return structuredClone(stored);
    },
    async get() {
      return structuredClone(stored);
    },
    async tryGet() {
      return undefined;
    },
  };
  const appBinding = { metadata: { name: 'vault', namespace: 'demo' }, spec: {} };
  const none = { get: () => undefined, list: () => [] };
  const c = {
    kube, clusterName: '-', log: noLog,
    caches: { appBindings: { get: () => appBinding, list: () => [appBinding] }, secretEngines: none, postgresRoles: none, requests: none, secrets: none, grantRoles: none, grantBindings: none },
    connections: { forAppBinding: async () => ({ client: vault }) },
    events: () => ({ event: (_obj: unknown, type: string, reason: string, message: string) => events.push({ type, reason, message }) }),
  } as unknown as ControllerContext;
  const state = new RequestControllerState(c);
  let nowMs = T0;
  const ctx: ReconcileContext = { reconcileId: 'test', signal: new AbortController().signal, log: noLog, now: () => new Date(nowMs) };
  return {
    state, ctx, events, revoked, secretsCleared,
    get dar() {
      return structuredClone(stored);
    },
    advance(ms: number) {
      nowMs += ms;
    },
    warnings: () => events.filter((e) => e.type === 'Warning'),
    condition: (type: string) => (stored.status?.conditions ?? []).find((c) => c.type === type),
  };
}

function request(o: { deleting?: boolean; previous?: Array<{ id: string; revokeAt?: string }> } = {}): DatabaseAccessRequest {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1', kind: 'DatabaseAccessRequest',
    metadata: {
      name: 'req', namespace: 'demo', uid: 'uid-1', resourceVersion: '1', finalizers: [FINALIZER],
      ...(o.deleting ? { deletionTimestamp: new Date(T0) as never } : {}),
    },
    spec: { roleRef: { kind: 'PostgresRole', name: 'role', namespace: 'demo' }, subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: 'demo' }] },
    status: {
      phase: 'Approved',
      conditions: [
        { type: 'Approved', status: 'True', reason: 'KubectlApprove', message: 'approved', lastTransitionTime: iso(T0) },
        { type: 'Available', status: 'True', reason: 'SuccessfullyIssuedCredential', message: 'issued', lastTransitionTime: iso(T0) },
      ],
      lease: { id: LEASE, duration: '1h', renewable: true, issuedAt: iso(T0), expiresAt: iso(T0 + 3_600_000) },
      issuance: { vaultAppBinding: { namespace: 'demo', name: 'vault' }, mount: 'my-postgres-se', role: 'k8s.-.demo.role', attempt: 'a1', startedAt: iso(T0), completed: true },
      ...(o.previous ? { previousLeases: o.previous.map((p) => ({ ...p, vaultAppBinding: { namespace: 'demo', name: 'vault' } })) } : {}),
    } as never,
  };
}

const delayOf = (r: Result) => (r.kind === 'requeueAfter' ? r.delayMs : undefined);

// ---- the schedule -----------------------------------------------------------------------------------------------

test('a failed revocation is retried after 5 s, then twice as long each time, at most every 5 minutes', (t) => {
  t.deepEqual([1, 2, 3, 4].map(revocationRetryDelayMs), [5_000, 10_000, 20_000, 40_000]);
  t.is(revocationRetryDelayMs(1), REVOCATION_RETRY_BASE_MS);
  t.is(revocationRetryDelayMs(50), REVOCATION_RETRY_MAX_MS);
  const retries = new RevocationRetries();
  t.is(retries.failed('a', T0), 5_000);
  t.is(retries.failed('a', T0 + 5_000), 10_000);
  t.is(retries.retryAtMs('a'), T0 + 15_000);
  t.is(retries.failed('b', T0), 5_000, 'each lease has its own schedule');
  retries.done('a');
  t.is(retries.retryAtMs('a'), undefined);
  t.is(retries.failed('a', T0), 5_000, 'a success starts the schedule over');
});

// ---- deletion -----------------------------------------------------------------------------------------------------

test('a deleted request whose lease Vault could not revoke keeps its finalizer, says so with Vault\'s words once, and retries with backoff', async (t) => {
  const w = world(request({ deleting: true }), [dropRefused(), dropRefused(), 'revoked']);
  t.is(delayOf(await finalize(w.state, w.dar, w.ctx)), 5_000);
  t.deepEqual(w.dar.metadata.finalizers, [FINALIZER]);
  const revoked = w.condition('Revoked');
  t.is(revoked?.status, 'False');
  t.is(revoked?.reason, 'RevocationFailed');
  t.true(revoked?.message?.includes(VAULT_WORDS), revoked?.message);
  t.regex(revoked?.message ?? '', /login was not dropped/);
  t.regex(revoked?.message ?? '', /REASSIGN OWNED/);
  t.is(w.dar.status?.phase, 'Approved', 'the status does not claim access ended');

  w.advance(5_000);
  t.is(delayOf(await finalize(w.state, w.dar, w.ctx)), 10_000, 'the next retry waits longer');
  t.deepEqual(w.dar.metadata.finalizers, [FINALIZER]);
  t.is(w.warnings().length, 1, 'one Warning for the failure, not one per attempt');
  t.is(w.warnings()[0]!.reason, 'RevocationFailed');

  w.advance(10_000);
  t.is(await finalize(w.state, w.dar, w.ctx), DONE);
  t.deepEqual(w.dar.metadata.finalizers, [], 'the finalizer goes once Vault revoked the lease');
  t.deepEqual(w.revoked, [LEASE, LEASE, LEASE]);
  t.true(w.events.some((e) => e.type === 'Normal' && e.reason === 'LeaseRevoked'));
});

test('a deleted request while Vault is unreachable keeps its finalizer, with a VaultUnreachable condition and a Warning', async (t) => {
  const w = world(request({ deleting: true }), [unreachable()]);
  t.is(delayOf(await finalize(w.state, w.dar, w.ctx)), 5_000);
  t.deepEqual(w.dar.metadata.finalizers, [FINALIZER]);
  t.is(w.condition('Revoked')?.reason, 'VaultUnreachable');
  t.regex(w.condition('Revoked')?.message ?? '', /connection refused/);
  t.deepEqual(w.warnings().map((e) => e.reason), ['VaultUnreachable']);
});

test('a lease that is already gone from Vault counts as revoked: the deleted request goes', async (t) => {
  const w = world(request({ deleting: true }), ['gone']);
  t.is(await finalize(w.state, w.dar, w.ctx), DONE);
  t.deepEqual(w.dar.metadata.finalizers, []);
  t.is(w.warnings().length, 0);
});

test('a previous lease Vault could not revoke keeps a deleted request too', async (t) => {
  const w = world(request({ deleting: true, previous: [{ id: OLD, revokeAt: iso(T0 + 60_000) }] }), ['revoked']);
  let calls = 0;
  w.state.c.connections.forAppBinding = async () => ({
    client: { revokeLease: async (id: string) => { calls++; if (id === OLD) throw dropRefused(); return 'revoked'; } },
  }) as never;
  t.is(delayOf(await finalize(w.state, w.dar, w.ctx)), 5_000);
  t.is(calls, 2);
  t.deepEqual(w.dar.metadata.finalizers, [FINALIZER]);
  t.regex(w.condition('Revoked')?.message ?? '', new RegExp(OLD));
});

// ---- revoke-now and expiry -------------------------------------------------------------------------------------

test('revoke-now keeps the phase until Vault revoked the lease; then the request is Revoked', async (t) => {
  const w = world(request(), [dropRefused(), 'revoked']);
  t.is(delayOf(await revokeNow(w.state, w.dar, w.ctx)), 5_000);
  t.is(w.dar.status?.phase, 'Approved');
  t.is(w.condition('Revoked')?.status, 'False');
  t.is(w.condition('Revoked')?.reason, 'RevocationFailed');
  t.is(w.condition('Available')?.status, 'True', 'the credential still works, and status says so');
  t.deepEqual(w.secretsCleared, []);

  w.advance(5_000);
  t.is(await revokeNow(w.state, w.dar, w.ctx), DONE);
  t.is(w.dar.status?.phase, 'Revoked');
  t.is(w.condition('Revoked')?.status, 'True');
  t.is(w.condition('Revoked')?.reason, 'RevokedOnDemand');
  t.is(w.warnings().filter((e) => e.reason === 'RevocationFailed').length, 1);
});

test('expiry keeps the phase until Vault revoked the lease; then the request is Expired and the failure is gone from status', async (t) => {
  const w = world(request(), [dropRefused(), 'gone']);
  t.is(delayOf(await expire(w.state, w.dar, w.ctx)), 5_000);
  t.is(w.dar.status?.phase, 'Approved');
  t.is(w.condition('Expired'), undefined);
  t.is(w.condition('Revoked')?.reason, 'RevocationFailed');

  w.advance(5_000);
  t.is(await expire(w.state, w.dar, w.ctx), DONE);
  t.is(w.dar.status?.phase, 'Expired');
  t.is(w.condition('Expired')?.status, 'True');
  t.is(w.condition('Revoked'), undefined);
});

// ---- a rotation's grace period -----------------------------------------------------------------------------------

test('a previous lease Vault could not revoke stays recorded and is retried with backoff, not in a loop', async (t) => {
  const w = world(request({ previous: [{ id: OLD, revokeAt: iso(T0 - 1000) }] }), [dropRefused(), dropRefused(), 'revoked']);
  let dar = await revokeDuePrevious(w.state, w.dar, w.ctx);
  t.deepEqual(dar.status?.previousLeases?.map((p) => p.id), [OLD]);
  t.is(w.condition('Revoked')?.reason, 'RevocationFailed');
  t.regex(w.condition('Revoked')?.message ?? '', new RegExp(`${OLD}.*rotation's grace period`));
  t.is(delayOf(wake(w.state, dar, undefined, w.ctx)), 5_000, 'the request comes back when the retry is due, not at once');

  w.advance(5_000);
  dar = await revokeDuePrevious(w.state, w.dar, w.ctx);
  t.deepEqual(dar.status?.previousLeases?.map((p) => p.id), [OLD]);
  t.is(delayOf(wake(w.state, dar, undefined, w.ctx)), 10_000);
  t.is(w.warnings().length, 1);

  w.advance(10_000);
  dar = await revokeDuePrevious(w.state, w.dar, w.ctx);
  t.is(dar.status?.previousLeases, undefined);
  t.is(w.condition('Revoked'), undefined, 'the failure leaves status once the lease is revoked');
  t.true(w.events.some((e) => e.type === 'Normal' && e.reason === 'LeaseRevoked'));
});

// ---- the sweep -------------------------------------------------------------------------------------------------------

test('the sweep does not take an unrecorded lease Vault could not revoke for gone', async (t) => {
  const orphan = 'my-postgres-se/creds/k8s.-.demo.role/orphan';
  const w = world(request(), [dropRefused()], {
    listLeases: async () => [orphan],
    lookupLease: async (id: string) => ({ leaseId: id, issueTime: iso(T0 + 1000), ttlSeconds: 3600, renewable: true }),
  });
  const attempt = { vaultAppBinding: { namespace: 'demo', name: 'vault' }, mount: 'my-postgres-se', role: 'k8s.-.demo.role', attempt: 'a2', startedAt: iso(T0), completed: false };
  const vault = (await w.state.c.connections.forAppBinding(undefined as never)).client;
  const err = await t.throwsAsync(sweep(w.state, w.dar, attempt, vault, w.ctx), { instanceOf: VaultRequestError });
  t.is(err.kind, 'RevocationFailed');
  t.false(w.events.some((e) => e.reason === 'OrphanLeaseRevoked'));
});
