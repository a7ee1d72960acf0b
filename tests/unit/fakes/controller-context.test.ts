// The fake world the reconcile tests run in: its ControllerContext, Events, restarts and lost answers.
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { AppBinding } from '../../../api/index.ts';
import { AppBindingReconciler } from '../../../controllers/appbinding/reconciler.ts';
import { SecretEngineReconciler } from '../../../controllers/secretengine/reconciler.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';
import { fakeWorld, nextPassInMs, outcomeOf } from '../../fakes/controller-context.ts';
import {
  APP_BINDINGS,
  NS,
  SECRETS,
  SECRET_ENGINES,
  applyGuideBindings,
  secretEngine,
  vaultAppBinding,
} from '../../fakes/fixtures.ts';

const EVENTS = { group: '', version: 'v1', plural: 'events', kind: 'Event' };

test("Events are kept to assert on and written to the API server as the operator's recorder writes them", async (t) => {
  const w = fakeWorld();
  const ab = w.kube.put(APP_BINDINGS, vaultAppBinding());
  w.context.events('leasehold-test').event(ab, 'Warning', 'VaultUnreachable', 'Vault: connection refused');
  w.context.events('leasehold-test').event(ab, 'Warning', 'VaultUnreachable', 'Vault: connection refused');
  await w.events.flush();
  t.deepEqual(w.events.summary(ab), ['Warning VaultUnreachable', 'Warning VaultUnreachable']);
  const stored = w.kube.objects<KubernetesObject & { reason?: string; count?: number }>(EVENTS, NS);
  t.is(stored.length, 1, 'the second is folded into the first, as client-go does');
  t.is(stored[0]?.reason, 'VaultUnreachable');
  t.deepEqual(
    w.kube.writes({ resource: 'events' }).map((r) => r.verb),
    ['create'],
  );
});

test("the context's Vault connections hand out the FakeVault, and the issuer token owns issued leases unless it is unavailable", async (t) => {
  const w = fakeWorld();
  const ab = vaultAppBinding();
  const conn = await w.context.connections.forAppBinding(ab);
  t.is(conn.client, w.vault);
  t.is((await conn.issuingClient()).ownedBy, 'issuer-token');
  w.connections.issuer = { kind: 'unavailable', reason: 'IssuerTokenUnavailable', message: 'no token role' };
  t.is((await conn.issuingClient()).ownedBy, 'login-token');
  w.vault.down();
  const err = await conn.login().catch((e: unknown) => e);
  t.true(err instanceof VaultRequestError && err.kind === 'Unreachable');
  t.is(w.connections.calls.forAppBinding, 1);
});

test('a restarted operator reads the cluster afresh and has forgotten what the last process remembered', async (t) => {
  const w = fakeWorld();
  applyGuideBindings(w.kube);
  w.kube.put(SECRET_ENGINES, secretEngine());
  const key = { namespace: NS, name: 'postgresql-engine' };
  await w.reconcile(new SecretEngineReconciler(w.context), key);
  const before = w.caches;
  w.vault.resetCalls();
  w.restartOperator();
  t.not(w.caches, before);
  t.is(
    w.caches.secretEngines.get(NS, 'postgresql-engine')?.status?.phase,
    'Success',
    'the new cache lists what is there',
  );
  await w.reconcile(new SecretEngineReconciler(w.context), key);
  t.is(w.vault.calls.writeConnection, 1, 'a new process applies once more: what it applied was process memory');
});

test('an answer lost after Vault issued leaves a live lease nobody recorded', async (t) => {
  const w = fakeWorld();
  await w.vault.enableDatabaseMount('db', '', {});
  await w.vault.writeConnection('db', 'c', {
    pluginName: 'p',
    connectionUrl: 'u',
    username: 'u',
    password: 'p',
    allowedRoles: ['*'],
    verifyConnection: false,
  });
  await w.vault.writeRole('db', 'r', {
    dbName: 'c',
    creationStatements: [],
    revocationStatements: [],
    rollbackStatements: [],
    renewStatements: [],
    defaultTtlSeconds: 60,
    maxTtlSeconds: 120,
  });
  w.vault.fail('issueCredential', { network: 'ETIMEDOUT' }, { times: 1, after: true });
  const err = await w.vault.issueCredential('db', 'r').catch((e: unknown) => e);
  t.true(err instanceof VaultRequestError && err.kind === 'Unreachable');
  t.is(w.vault.liveLeases('db/creds/r/').length, 1);
});

test('a write whose answer is lost still took effect in the API server', async (t) => {
  const w = fakeWorld();
  w.kube.fail(
    { verb: 'create', resource: 'secrets' },
    { code: 504, reason: 'Timeout', message: 'request timed out' },
    { times: 1, after: true },
  );
  const err = await w.kube
    .create(SECRETS, NS, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: NS } })
    .catch((e: unknown) => e);
  t.truthy(err);
  t.truthy(w.kube.object(SECRETS, NS, 's'));
  t.truthy(w.caches.secrets.get(NS, 's'), 'and the cache saw it');
});

test("what reconcilers log is kept, redacted as the operator's sink redacts it", (t) => {
  const w = fakeWorld();
  w.context.log.child({ reconcileID: 'x' }).info('issued', { password: 'hunter2', leaseId: 'db/creds/r/1' });
  t.deepEqual(w.logs, [
    { level: 'info', message: 'issued', meta: { reconcileID: 'x', password: '[REDACTED]', leaseId: 'db/creds/r/1' } },
  ]);
});

test('a run on the fake clock follows requeueAfter: a Vault AppBinding is checked every 30 s while Vault is down, hourly once it answers', async (t) => {
  const w = fakeWorld();
  w.kube.put(APP_BINDINGS, vaultAppBinding());
  w.vault.fail('health', 'Unreachable', { times: 2 });
  const start = w.clock.now();
  const trace = await w.run(
    new AppBindingReconciler(w.context),
    { namespace: NS, name: 'vault' },
    { forMs: 2 * 3600_000 },
  );
  t.deepEqual(
    trace.map((p) => (p.at - start) / 1000),
    [0, 30, 60, 3660],
  );
  t.deepEqual(
    trace.map((p) => nextPassInMs(outcomeOf(p))),
    [30_000, 30_000, 3600_000, 3600_000],
  );
  t.is(w.vault.calls.health, 4);
  t.is(
    w.kube.object<AppBinding>(APP_BINDINGS, NS, 'vault')?.status?.conditions?.find((c) => c.type === 'Ready')?.status,
    'True',
  );
});
