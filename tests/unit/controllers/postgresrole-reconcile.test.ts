// The PostgresRole reconciler against a FakeKube and a FakeVault: the guide's role (demo/psql-role, vaultRef + path
// my-postgres-se + databaseRef), the Vault role it writes, and what status and Events say.
import test from 'ava';
import { EnginePhase, FINALIZER, Reason, type PostgresRole } from '../../../api/index.ts';
import { PostgresRoleReconciler } from '../../../controllers/role/reconciler.ts';
import { SecretEngineReconciler } from '../../../controllers/secretengine/reconciler.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';
import { comesBack, fakeWorld } from '../../fakes/controller-context.ts';
import {
  DATABASE_ACCESS_REQUESTS,
  NS,
  POSTGRES_ROLES,
  SECRET_ENGINES,
  applyGuideBindings,
  conditionOf,
  postgresRole,
  requestHoldingLease,
  secretEngine,
} from '../../fakes/fixtures.ts';

const MOUNT = 'my-postgres-se';
const VAULT_ROLE = 'k8s.test.demo.psql-role';

/** The guide's bindings and role; the mount is there unless `mounted` is false. */
async function world(opts: { mounted?: boolean } = {}) {
  const w = fakeWorld();
  applyGuideBindings(w.kube);
  if (opts.mounted ?? true) {
    w.kube.put(SECRET_ENGINES, secretEngine());
    await w.reconcile(new SecretEngineReconciler(w.context), { namespace: NS, name: 'postgresql-engine' });
  }
  w.kube.put(POSTGRES_ROLES, postgresRole());
  w.events.clear();
  w.vault.resetCalls();
  w.kube.resetRequests();
  const reconciler = new PostgresRoleReconciler(w.context);
  const role = () => w.kube.object<PostgresRole>(POSTGRES_ROLES, NS, 'psql-role');
  const pass = () => w.attempt(reconciler, { namespace: NS, name: 'psql-role' });
  return Object.assign(w, { reconciler, role, pass });
}

test('a PostgresRole written to Vault is named k8s.<cluster>.<ns>.<name>, with its statements and TTLs as written', async (t) => {
  const w = await world();
  t.deepEqual(await w.pass(), { kind: 'done' });
  const written = w.vault.roleAt(MOUNT, VAULT_ROLE);
  t.is(written?.dbName, 'k8s.test.demo.postgres-app');
  t.deepEqual(written?.creationStatements, postgresRole().spec.creationStatements);
  t.is(written?.defaultTtlSeconds, 3600);
  t.is(written?.maxTtlSeconds, 24 * 3600);
  t.is(w.role()?.status?.phase, EnginePhase.Success);
  t.is((w.role()?.status as { vaultRole?: string }).vaultRole, VAULT_ROLE);
  t.deepEqual(w.role()?.metadata.finalizers, [FINALIZER]);
});

test('a PostgresRole whose Vault answers emits no Warning', async (t) => {
  const w = await world();
  await w.pass();
  t.deepEqual(w.events.warnings(), [], w.events.summary().join(', '));
});

test("a credential can be issued from the Vault role the SecretEngine and PostgresRole set up, for the role's default TTL", async (t) => {
  const w = await world();
  await w.pass();
  const cred = await w.vault.issueCredential(MOUNT, VAULT_ROLE);
  t.is(cred.leaseDurationSeconds, 3600);
  t.true(cred.leaseId.startsWith(`${MOUNT}/creds/${VAULT_ROLE}/`));
});

test('a PostgresRole already written costs no Vault call on the next pass', async (t) => {
  const w = await world();
  await w.pass();
  w.vault.resetCalls();
  w.kube.resetRequests();
  await w.pass();
  t.is(w.vault.totalCalls(), 0);
  t.deepEqual(w.kube.requests, []);
});

test('a PostgresRole whose mount is not there yet says so and is retried with backoff', async (t) => {
  const w = await world({ mounted: false });
  t.is((await w.pass()).kind, 'retry', "with the queue's backoff: the SecretEngine enabling it may be on its way");
  t.is(w.role()?.status?.phase, EnginePhase.Failed);
  t.is(conditionOf(w.role(), 'Ready')?.reason, 'VaultNotFound');
});

test('a PostgresRole whose Vault is down records VaultUnreachable and one Warning', async (t) => {
  const w = await world();
  w.vault.down();
  t.true(comesBack(await w.pass()), 'retried');
  t.is(conditionOf(w.role(), 'Ready')?.reason, Reason.VaultUnreachable);
  t.deepEqual(w.events.summary(), [`Warning ${Reason.VaultUnreachable}`]);
});

test("SQL Vault refuses is FailedToCreateDatabaseRole with Vault's words", async (t) => {
  const w = await world();
  w.vault.fail('writeRole', 'Invalid', { detail: 'pq: syntax error at or near "CREAT"' });
  t.true(comesBack(await w.pass()), "looked at again (Vault's side may be fixed by hand)");
  const ready = conditionOf(w.role(), 'Ready');
  t.is(ready?.reason, Reason.FailedToCreateDatabaseRole);
  t.regex(ready?.message ?? '', /syntax error/);
});

test('deleting a PostgresRole deletes its Vault role, then lets the object go', async (t) => {
  const w = await world();
  await w.pass();
  w.kube.remove(POSTGRES_ROLES, NS, 'psql-role');
  t.deepEqual(await w.pass(), { kind: 'done' });
  t.is(w.vault.roleAt(MOUNT, VAULT_ROLE), undefined);
  t.is(w.role(), undefined);
});

test('deleting a PostgresRole waits while a request holds a lease issued from it, then finishes once the request is gone', async (t) => {
  const w = await world();
  await w.pass();
  const { leaseId } = await w.vault.issueCredential(MOUNT, VAULT_ROLE);
  w.kube.put(DATABASE_ACCESS_REQUESTS, requestHoldingLease(leaseId));
  w.events.clear();
  w.kube.remove(POSTGRES_ROLES, NS, 'psql-role');
  t.is((await w.pass()).kind, 'requeueAfter');
  const terminating = conditionOf(w.role(), 'Terminating');
  t.is(terminating?.reason, Reason.LeasesOutstanding);
  t.regex(terminating?.message ?? '', /demo\/postgres-cred-rqst/);
  t.truthy(w.vault.roleAt(MOUNT, VAULT_ROLE), 'renewing that lease still reads the Vault role');
  t.deepEqual(w.events.warnings(), [], 'waiting is not bad news');
  w.kube.edit(DATABASE_ACCESS_REQUESTS, NS, 'postgres-cred-rqst', (d) => (d.metadata!.finalizers = []));
  await w.pass();
  t.is(w.role(), undefined);
});

test('deleting a PostgresRole while Vault is down keeps the finalizer and says why', async (t) => {
  const w = await world();
  await w.pass();
  w.vault.down();
  w.kube.remove(POSTGRES_ROLES, NS, 'psql-role');
  const o = await w.pass();
  t.true(
    o.kind === 'error' && o.error instanceof VaultRequestError && o.error.kind === 'Unreachable',
    JSON.stringify(o),
  );
  const terminating = conditionOf(w.role(), 'Terminating');
  t.is(terminating?.reason, Reason.VaultUnreachable);
  t.regex(terminating?.message ?? '', /deleting Vault role k8s\.test\.demo\.psql-role failed, retried/);
  t.deepEqual(w.role()?.metadata.finalizers, [FINALIZER]);
});

test('a PostgresRole whose mount was disabled already is let go on deletion (its Vault role went with the mount)', async (t) => {
  const w = await world();
  await w.pass();
  await w.vault.disableMount(MOUNT);
  w.kube.remove(POSTGRES_ROLES, NS, 'psql-role');
  t.deepEqual(await w.pass(), { kind: 'done' });
  t.is(w.role(), undefined);
});
