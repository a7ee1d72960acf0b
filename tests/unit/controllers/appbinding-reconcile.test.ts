// The AppBinding reconciler for Vault AppBindings against a FakeKube and a FakeVault: whether status says Vault
// answers and who owns the leases, the in-use finalizer on the AppBinding and its token Secret, and deletion
// waiting for what still goes through it.
import test from 'ava';
import { FINALIZER, IN_USE_FINALIZER, Reason, type AppBinding, type SecretEngine } from '../../../api/index.ts';
import { ConditionType } from '../../../api/index.ts';
import { AppBindingReconciler } from '../../../controllers/appbinding/reconciler.ts';
import { fakeWorld } from '../../fakes/controller-context.ts';
import {
  APP_BINDINGS,
  NS,
  SECRETS,
  SECRET_ENGINES,
  conditionOf,
  secretEngine,
  vaultAppBinding,
} from '../../fakes/fixtures.ts';

function world(ab: AppBinding = vaultAppBinding()) {
  const w = fakeWorld();
  w.kube.put(APP_BINDINGS, ab);
  const reconciler = new AppBindingReconciler(w.context);
  const appBinding = () => w.kube.object<AppBinding>(APP_BINDINGS, NS, 'vault');
  const pass = () => w.attempt(reconciler, { namespace: NS, name: 'vault' });
  return Object.assign(w, { reconciler, appBinding, pass });
}

test('a Vault AppBinding whose Vault answers is Ready, says its leases are owned by the issuer token, and holds the in-use finalizer', async (t) => {
  const w = world();
  t.deepEqual(await w.pass(), { kind: 'requeueAfter', delayMs: 60 * 60_000 });
  const ready = conditionOf(w.appBinding(), 'Ready');
  t.is(ready?.status, 'True');
  t.regex(ready?.message ?? '', /^Vault 1\.17\.0-fake at https:\/\/vault\.demo\.svc:8200 answers/);
  t.is(conditionOf(w.appBinding(), ConditionType.LeaseOwnership)?.reason, 'IssuerToken');
  t.deepEqual(w.appBinding()?.metadata.finalizers, [IN_USE_FINALIZER]);
  t.deepEqual(w.events.warnings(), []);
});

test('a Vault AppBinding without an issuer token says LeaseOwnership False with the reason, and is still Ready', async (t) => {
  const w = world();
  w.connections.issuer = {
    kind: 'unavailable',
    reason: 'IssuerTokenRoleUnavailable',
    message: 'the token role leasehold-issuer does not exist',
  };
  await w.pass();
  t.is(conditionOf(w.appBinding(), 'Ready')?.status, 'True');
  const ownership = conditionOf(w.appBinding(), ConditionType.LeaseOwnership);
  t.is(ownership?.status, 'False');
  t.is(ownership?.reason, 'IssuerTokenRoleUnavailable');
});

test('a healthy Vault AppBinding is not asked again before the hour is up', async (t) => {
  const w = world();
  await w.pass();
  w.vault.resetCalls();
  w.kube.resetRequests();
  w.clock.advance(10 * 60_000);
  t.deepEqual(await w.pass(), { kind: 'requeueAfter', delayMs: 50 * 60_000 });
  t.is(w.vault.totalCalls(), 0);
  t.deepEqual(w.kube.requests, []);
});

test('a Vault AppBinding whose Vault is down is not Ready (VaultUnreachable), with one Warning, and is checked again in 30 s', async (t) => {
  const w = world();
  w.vault.down();
  const o = await w.pass();
  t.is(
    o.kind === 'requeueAfter' ? o.delayMs : o.kind === 'retry' ? o.retryAfterMs : undefined,
    30_000,
    'looked at again in 30 s',
  );
  const ready = conditionOf(w.appBinding(), 'Ready');
  t.is(ready?.status, 'False');
  t.is(ready?.reason, Reason.VaultUnreachable);
  t.deepEqual(w.events.summary(), [`Warning ${Reason.VaultUnreachable}`]);
  t.deepEqual(w.connections.calls.invalidated, [], 'an outage keeps the login it holds');
});

test('a sealed Vault makes its AppBinding not Ready (VaultSealed)', async (t) => {
  const w = world();
  w.vault.seal();
  await w.pass();
  t.is(conditionOf(w.appBinding(), 'Ready')?.reason, 'VaultSealed');
  t.deepEqual(w.events.summary(), ['Warning VaultSealed']);
});

test('a Vault AppBinding whose login is refused drops its connection, to log in afresh next time', async (t) => {
  const w = world();
  w.vault.fail('health', 'PermissionDenied');
  await w.pass();
  t.is(conditionOf(w.appBinding(), 'Ready')?.reason, 'VaultPermissionDenied');
  t.deepEqual(w.connections.calls.invalidated, [`${NS}/vault`]);
});

test('the token Secret a Vault AppBinding names holds the in-use finalizer too', async (t) => {
  const w = world(vaultAppBinding({ secret: { name: 'vault-token' } }));
  w.kube.put(SECRETS, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'vault-token', namespace: NS },
    data: { token: Buffer.from('hvs.test').toString('base64') },
  });
  await w.pass();
  t.deepEqual(w.kube.object(SECRETS, NS, 'vault-token')?.metadata?.finalizers, [IN_USE_FINALIZER]);
});

test('a Vault AppBinding being deleted waits, Terminating, while a SecretEngine still cleans up through it, then is released', async (t) => {
  const w = world();
  await w.pass();
  w.kube.put(SECRET_ENGINES, {
    ...secretEngine(),
    metadata: { name: 'postgresql-engine', namespace: NS, finalizers: [FINALIZER] },
  } as SecretEngine);
  w.kube.remove(APP_BINDINGS, NS, 'vault');
  t.is((await w.pass()).kind, 'requeueAfter');
  const terminating = conditionOf(w.appBinding(), 'Terminating');
  t.is(terminating?.reason, Reason.InUse);
  t.regex(terminating?.message ?? '', /1 SecretEngine still uses it \(demo\/postgresql-engine\)/);
  t.deepEqual(w.appBinding()?.metadata.finalizers, [IN_USE_FINALIZER]);
  w.kube.edit(SECRET_ENGINES, NS, 'postgresql-engine', (e) => (e.metadata!.finalizers = []));
  t.deepEqual(await w.pass(), { kind: 'done' });
  t.is(w.appBinding(), undefined);
});

test("a Vault AppBinding being deleted whose Vault is down says deletion waits on a login it can't make", async (t) => {
  const w = world();
  await w.pass();
  w.kube.put(SECRET_ENGINES, {
    ...secretEngine(),
    metadata: { name: 'postgresql-engine', namespace: NS, finalizers: [FINALIZER] },
  } as SecretEngine);
  w.vault.down();
  w.events.clear();
  w.kube.remove(APP_BINDINGS, NS, 'vault');
  const o = await w.pass();
  t.true(o.kind === 'requeueAfter' || o.kind === 'retry', JSON.stringify(o));
  const terminating = conditionOf(w.appBinding(), 'Terminating');
  t.is(terminating?.reason, Reason.VaultUnreachable);
  t.regex(terminating?.message ?? '', /Waiting on this login: 1 SecretEngine still uses it/);
  t.deepEqual(w.events.summary(), [`Warning ${Reason.VaultUnreachable}`]);
});
