// The SecretEngine reconciler against a FakeKube and a FakeVault: what a person sees in status, Events and Vault
// after each pass, for the guide's engine (demo/postgresql-engine at my-postgres-se).
import test from 'ava';
import { EnginePhase, FINALIZER, Reason, type PostgresRole, type SecretEngine } from '../../../api/index.ts';
import { SecretEngineReconciler } from '../../../controllers/secretengine/reconciler.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';
import { comesBack, fakeWorld } from '../../fakes/controller-context.ts';
import {
  NS,
  POSTGRES_ROLES,
  SECRET_ENGINES,
  applyGuideBindings,
  conditionOf,
  postgresRole,
  secretEngine,
} from '../../fakes/fixtures.ts';

const ENGINE = 'postgresql-engine';
const MOUNT = 'my-postgres-se';
const CONNECTION = 'k8s.test.demo.postgres-app';

function world() {
  const w = fakeWorld();
  applyGuideBindings(w.kube);
  w.kube.put(SECRET_ENGINES, secretEngine());
  const reconciler = new SecretEngineReconciler(w.context);
  const engine = () => w.kube.object<SecretEngine>(SECRET_ENGINES, NS, ENGINE);
  const pass = () => w.attempt(reconciler, { namespace: NS, name: ENGINE });
  return Object.assign(w, { reconciler, engine, pass });
}

test('a SecretEngine whose Vault answers reaches Success and emits no Warning', async (t) => {
  const w = world();
  t.deepEqual(await w.pass(), { kind: 'done' });
  t.is(w.engine()?.status?.phase, EnginePhase.Success);
  t.is(conditionOf(w.engine(), 'Ready')?.status, 'True');
  t.deepEqual(w.events.warnings(), [], w.events.summary().join(', '));
});

test('a SecretEngine enables its own mount and connects Vault to its database as k8s.<cluster>.<namespace>.<database>', async (t) => {
  const w = world();
  await w.pass();
  t.deepEqual(w.vault.mountAt(MOUNT)?.description, `managed by leasehold for SecretEngine ${NS}/${ENGINE}`);
  const conn = w.vault.connectionAt(MOUNT, CONNECTION);
  t.is(conn?.connectionUrl, 'postgresql://{{username}}:{{password}}@postgres.demo.svc:5432/postgres?sslmode=disable');
  t.is(conn?.username, 'postgres');
  t.deepEqual(conn?.allowedRoles, ['*']);
  t.deepEqual(w.engine()?.metadata.finalizers, [FINALIZER]);
  t.is(w.engine()?.status?.path, MOUNT);
});

test('a SecretEngine already in place costs no Vault call and no write on the next pass', async (t) => {
  const w = world();
  await w.pass();
  w.vault.resetCalls();
  w.kube.resetRequests();
  await w.pass();
  t.is(w.vault.totalCalls(), 0);
  t.deepEqual(w.kube.writes(), []);
});

test('a SecretEngine whose Vault is down records VaultUnreachable and one Warning', async (t) => {
  const w = world();
  w.vault.down();
  t.true(comesBack(await w.pass()), 'retried');
  t.is(w.engine()?.status?.phase, EnginePhase.Failed);
  const ready = conditionOf(w.engine(), 'Ready');
  t.is(ready?.status, 'False');
  t.is(ready?.reason, Reason.VaultUnreachable);
  t.regex(ready?.message ?? '', /connection refused/);
  t.deepEqual(w.events.summary(), [`Warning ${Reason.VaultUnreachable}`]);
});

test('a SecretEngine recovers once Vault is back, without a person doing anything', async (t) => {
  const w = world();
  w.vault.down();
  await w.pass();
  w.vault.up();
  await w.pass();
  t.is(w.engine()?.status?.phase, EnginePhase.Success);
  t.truthy(w.vault.connectionAt(MOUNT, CONNECTION));
});

test("a connection Vault refuses (a wrong admin password) is FailedToCreateSecretEngineConfig with Vault's words, looked at again later", async (t) => {
  const w = world();
  w.vault.fail('writeConnection', 'Invalid', {
    detail:
      'error creating database object: error verifying connection: password authentication failed for user "postgres"',
  });
  t.true(comesBack(await w.pass()), 'looked at again');
  const ready = conditionOf(w.engine(), 'Ready');
  t.is(ready?.reason, Reason.FailedToCreateSecretEngineConfig);
  t.regex(ready?.message ?? '', /password authentication failed/);
  t.false(/root/.test(JSON.stringify(w.engine()?.status)), 'the admin password is in no status');
});

test('a mount path holding another kind of secrets engine is a terminal failure that says to choose another spec.path', async (t) => {
  const w = world();
  w.vault.addMount(MOUNT, { type: 'kv' });
  t.like(await w.pass(), { kind: 'terminal', reason: Reason.FailedToEnableSecretEngine });
  t.is(conditionOf(w.engine(), 'Ready')?.reason, Reason.FailedToEnableSecretEngine);
  t.regex(conditionOf(w.engine(), 'Ready')?.message ?? '', /choose another spec\.path/);
  t.is(w.vault.calls.writeConnection, 0);
});

test('a SecretEngine whose database AppBinding is missing says ReferenceNotFound and writes nothing to Vault', async (t) => {
  const w = world();
  w.kube.put(SECRET_ENGINES, secretEngine({ postgres: { databaseRef: { name: 'nowhere', namespace: NS } } }));
  t.true(comesBack(await w.pass()), 'a missing reference may appear: looked at again');
  t.is(conditionOf(w.engine(), 'Ready')?.reason, Reason.ReferenceNotFound);
  t.is(w.vault.totalCalls(), 0);
});

test('a pass on a stale copy of the SecretEngine ends in a retryable Conflict before anything is written to Vault', async (t) => {
  const w = world();
  w.kube.pauseWatch();
  w.kube.edit(SECRET_ENGINES, NS, ENGINE, (e) => (e.metadata!.labels = { team: 'payments' }));
  t.like(await w.pass(), { kind: 'retry', reason: 'Conflict' });
  t.is(w.vault.totalCalls(), 0);
  w.kube.resumeWatch();
  await w.pass();
  t.is(w.engine()?.status?.phase, EnginePhase.Success);
});

test('deleting a SecretEngine disables the mount it enabled, revoking every lease under it, then lets the object go', async (t) => {
  const w = world();
  await w.pass();
  await w.vault.writeRole(MOUNT, 'k8s.test.demo.psql-role', {
    dbName: CONNECTION,
    creationStatements: ['CREATE ROLE'],
    revocationStatements: [],
    rollbackStatements: [],
    renewStatements: [],
    defaultTtlSeconds: 3600,
    maxTtlSeconds: 7200,
  });
  await w.vault.issueCredential(MOUNT, 'k8s.test.demo.psql-role');
  w.kube.remove(SECRET_ENGINES, NS, ENGINE);
  t.deepEqual(await w.pass(), { kind: 'done' });
  t.is(w.vault.mountAt(MOUNT), undefined);
  t.deepEqual(w.vault.liveLeases(), []);
  t.is(w.engine(), undefined, 'finalizer released: the object is gone');
  t.deepEqual(w.events.summary().slice(-1), ['Normal MountDisabled']);
});

test('deleting a SecretEngine waits, Terminating, while a PostgresRole keeps a Vault role under it', async (t) => {
  const w = world();
  await w.pass();
  w.kube.put(POSTGRES_ROLES, {
    ...postgresRole(),
    metadata: { name: 'psql-role', namespace: NS, finalizers: [FINALIZER] },
  } as PostgresRole);
  w.kube.remove(SECRET_ENGINES, NS, ENGINE);
  const result = await w.pass();
  t.is(result.kind, 'requeueAfter');
  const terminating = conditionOf(w.engine(), 'Terminating');
  t.is(terminating?.reason, Reason.InUse);
  t.regex(terminating?.message ?? '', /1 PostgresRole still uses it \(demo\/psql-role\)/);
  t.truthy(w.vault.mountAt(MOUNT));
  t.deepEqual(w.engine()?.metadata.finalizers, [FINALIZER]);
});

test('deleting a SecretEngine while Vault is down keeps the finalizer and says why', async (t) => {
  const w = world();
  await w.pass();
  w.vault.down();
  w.kube.remove(SECRET_ENGINES, NS, ENGINE);
  const o = await w.pass();
  t.true(
    o.kind === 'error' && o.error instanceof VaultRequestError && o.error.kind === 'Unreachable',
    JSON.stringify(o),
  );
  const terminating = conditionOf(w.engine(), 'Terminating');
  t.is(terminating?.reason, Reason.VaultUnreachable);
  t.regex(
    terminating?.message ?? '',
    /removing connection k8s\.test\.demo\.postgres-app and the mount at my-postgres-se\/ failed, retried/,
  );
  t.deepEqual(w.engine()?.metadata.finalizers, [FINALIZER]);
  t.is(w.events.warnings().filter((e) => e.reason === Reason.VaultUnreachable).length, 1);
});
