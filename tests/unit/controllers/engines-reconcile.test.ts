// KubeVault's MySQL, MariaDB and Redis guides, whole passes against a FakeKube and a FakeVault: the SecretEngine
// connects Vault to the database, the role writes its Vault role, and an approved request gets a Secret with its
// engine's keys. (The real stack pins the same stories end to end: tests/integration/.)
import test from 'ava';
import {
  Annotations,
  ConditionType,
  EnginePhase,
  Reason,
  RequestPhase,
  type DatabaseAccessRequest,
  type DatabaseRole,
  type SecretEngine,
} from '../../../api/index.ts';
import { DatabaseAccessRequestReconciler } from '../../../controllers/databaseaccessrequest/reconciler.ts';
import { RoleReconciler } from '../../../controllers/role/reconciler.ts';
import { SecretEngineReconciler } from '../../../controllers/secretengine/reconciler.ts';
import { fakeWorld } from '../../fakes/controller-context.ts';
import {
  DATABASE_ACCESS_REQUESTS,
  NS,
  POSTGRES_ROLES,
  SECRET_ENGINES,
  SECRETS,
  applyEngineFixture,
  conditionOf,
  engineFixture,
  type EngineFixture,
} from '../../fakes/fixtures.ts';

const approvedByBob = {
  type: 'Approved',
  status: 'True',
  reason: 'KubectlApprove',
  message: 'This was approved by: bob',
  lastTransitionTime: '2026-03-01T12:00:00Z',
};
type Secret = { metadata?: { name?: string; annotations?: Record<string, string> }; data?: Record<string, string> };
const decode = (data: Record<string, string> = {}) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

/** The guide's objects of `f`, the SecretEngine and the role reconciled once, and a request for the role approved by bob. */
async function world(f: EngineFixture) {
  const w = fakeWorld({ startMs: Date.parse('2026-03-01T12:00:00Z') });
  applyEngineFixture(w.kube, f);
  const engineOutcome = await w.attempt(new SecretEngineReconciler(w.context), {
    namespace: NS,
    name: f.secretEngine.metadata.name!,
  });
  const roleOutcome = await w.attempt(new RoleReconciler(w.context, f.kind), {
    namespace: NS,
    name: f.role.metadata.name!,
  });
  const key = { namespace: NS, name: `${f.type}-cred-rqst` };
  w.kube.put(DATABASE_ACCESS_REQUESTS, {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: {
      ...key,
      uid: `${f.type}-uid`,
      annotations: { [Annotations.requester]: JSON.stringify({ username: 'alice', groups: [] }) },
    },
    spec: {
      roleRef: { kind: f.kind, name: f.role.metadata.name! },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: NS }],
    },
    status: { conditions: [approvedByBob] },
  } as unknown as DatabaseAccessRequest);
  const reconciler = new DatabaseAccessRequestReconciler(w.context);
  return Object.assign(w, {
    engineOutcome,
    roleOutcome,
    engine: () => w.kube.object<SecretEngine>(SECRET_ENGINES, NS, f.secretEngine.metadata.name!)!,
    role: () => w.kube.object<DatabaseRole>(f.roleResource, NS, f.role.metadata.name!)!,
    dar: () => w.kube.object<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, key.name)!,
    secret: () => {
      const name = w.kube.object<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, key.name)?.status?.secret?.name;
      return name ? w.kube.object<Secret>(SECRETS, NS, name) : undefined;
    },
    pass: () => w.reconcile(reconciler, key),
  });
}

for (const kind of ['MySQLRole', 'MariaDBRole'] as const) {
  test(`${kind}: the guide's SecretEngine connects Vault's mysql-database-plugin with the {{username}}:{{password}}@tcp(host:port)/ URL`, async (t) => {
    const f = engineFixture(kind);
    const w = await world(f);
    t.deepEqual(w.engineOutcome, { kind: 'done' });
    const mount = `k8s.test.${f.type}.${NS}.${f.type}-engine`;
    t.is(w.engine().status?.path, mount, "KubeVault's default path, with the engine's type");
    const conn = w.vault.connectionAt(mount, `k8s.test.${NS}.${f.type}`);
    t.is(conn?.pluginName, 'mysql-database-plugin');
    t.is(conn?.connectionUrl, `{{username}}:{{password}}@tcp(${f.type}.${NS}.svc:3306)/`);
    t.is(conn?.username, 'root');
    t.is(conn?.password, 'r00t:"pw"');
    t.deepEqual(w.events.warnings(), []);
  });

  test(`${kind}: its Vault role is k8s.<cluster>.<ns>.<name>, the SQL passed untouched, and an approved request gets a Secret with host, port, database and a mysql:// uri`, async (t) => {
    const f = engineFixture(kind);
    const w = await world(f);
    t.deepEqual(w.roleOutcome, { kind: 'done' });
    t.is(w.role().status?.phase, EnginePhase.Success);
    t.is(w.role().status?.vaultRole, `k8s.test.${NS}.${f.type}-role`);
    const vaultRole = w.vault.roleAt(`k8s.test.${f.type}.${NS}.${f.type}-engine`, `k8s.test.${NS}.${f.type}-role`);
    t.deepEqual(vaultRole?.creationStatements, f.role.spec.creationStatements);
    t.is(vaultRole?.dbName, `k8s.test.${NS}.${f.type}`);
    t.is(vaultRole?.defaultTtlSeconds, 3600);

    await w.pass();
    t.is(w.dar().status?.phase, RequestPhase.Approved);
    t.is(conditionOf(w.dar(), ConditionType.Available)?.status, 'True');
    const data = decode(w.secret()?.data);
    t.deepEqual(Object.keys(data).sort(), ['database', 'host', 'password', 'port', 'uri', 'username']);
    t.like(data, { host: `${f.type}.${NS}.svc`, port: '3306', database: 'app' });
    t.is(
      data.uri,
      `mysql://${encodeURIComponent(data.username!)}:${encodeURIComponent(data.password!)}@${f.type}.${NS}.svc:3306/app`,
    );
    t.is(w.vault.liveLeases().length, 1);
  });
}

test("RedisRole: the guide's SecretEngine gives Vault's redis-database-plugin host, port and TLS off, the admin as the default user", async (t) => {
  const f = engineFixture('RedisRole');
  const w = await world(f);
  t.deepEqual(w.engineOutcome, { kind: 'done' });
  const mount = `k8s.test.redis.${NS}.redis-engine`;
  const conn = w.vault.connectionAt(mount, `k8s.test.${NS}.redis`);
  t.is(conn?.pluginName, 'redis-database-plugin');
  t.is(conn?.connectionUrl, undefined, 'the Redis plugin takes no connection_url');
  t.deepEqual(conn?.parameters, { host: `redis-standalone.${NS}.svc`, port: 6379, tls: false });
  t.is(conn?.username, 'default');
  t.is(conn?.password, 'redis-admin-pw');
});

test('RedisRole: its ACL rules go to Vault untouched, and an approved request gets a Secret with a redis:// uri', async (t) => {
  const f = engineFixture('RedisRole');
  const w = await world(f);
  t.is(w.role().status?.phase, EnginePhase.Success);
  const vaultRole = w.vault.roleAt(`k8s.test.redis.${NS}.redis-engine`, `k8s.test.${NS}.redis-role`);
  t.deepEqual(vaultRole?.creationStatements, ['["~*", "+@read"]']);
  await w.pass();
  const data = decode(w.secret()?.data);
  t.like(data, { host: `redis-standalone.${NS}.svc`, port: '6379', database: '0' });
  t.is(
    data.uri,
    `redis://${encodeURIComponent(data.username!)}:${encodeURIComponent(data.password!)}@redis-standalone.${NS}.svc:6379/0`,
  );
});

test('a role whose SecretEngine connects to another kind of database is Failed with EngineKindMismatch, and nothing is written to Vault', async (t) => {
  const redis = engineFixture('RedisRole');
  const f = engineFixture('MySQLRole', { secretEngineRef: { name: redis.secretEngine.metadata.name! } });
  const w = fakeWorld({ startMs: Date.parse('2026-03-01T12:00:00Z') });
  applyEngineFixture(w.kube, redis);
  w.kube.put(f.roleResource, f.role);
  await w.attempt(new SecretEngineReconciler(w.context), { namespace: NS, name: redis.secretEngine.metadata.name! });
  const outcome = await w.attempt(new RoleReconciler(w.context, 'MySQLRole'), {
    namespace: NS,
    name: f.role.metadata.name!,
  });
  t.is(outcome.kind, 'terminal', 'an edit of the role fixes it, not a retry');
  const role = w.kube.object<DatabaseRole>(f.roleResource, NS, f.role.metadata.name!)!;
  t.is(role.status?.phase, EnginePhase.Failed);
  const failed = conditionOf(role, ConditionType.Failed);
  t.is(failed?.reason, Reason.EngineKindMismatch);
  t.regex(
    failed?.message ?? '',
    /connects to a redis database \(spec\.redis\); a MySQLRole needs a SecretEngine with spec\.mysql/,
  );
  t.is(w.vault.roleAt(`k8s.test.redis.${NS}.redis-engine`, `k8s.test.${NS}.mysql-role`), undefined);
  t.deepEqual(w.events.summary(role), ['Warning EngineKindMismatch']);
});

test('requests for a MySQLRole and a PostgresRole of the same name wait for their own role only', async (t) => {
  const f = engineFixture('MySQLRole');
  const w = await world(f);
  // A PostgresRole named like the MySQLRole, never ready: the MySQL request must not wait for it.
  w.kube.put(POSTGRES_ROLES, {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'PostgresRole',
    metadata: { name: f.role.metadata.name, namespace: NS },
    spec: { secretEngineRef: { name: 'missing' }, creationStatements: ['CREATE ROLE x'] },
  });
  await w.pass();
  t.is(conditionOf(w.dar(), ConditionType.Available)?.status, 'True');
});

test('deleting a Redis SecretEngine waits, Terminating, while its RedisRole keeps a Vault role under it; then the role, then the engine go', async (t) => {
  const f = engineFixture('RedisRole');
  const w = await world(f);
  const engineKey = { namespace: NS, name: f.secretEngine.metadata.name! };
  const roleKey = { namespace: NS, name: f.role.metadata.name! };
  w.kube.remove(SECRET_ENGINES, NS, engineKey.name);
  t.is((await w.attempt(new SecretEngineReconciler(w.context), engineKey)).kind, 'requeueAfter');
  t.regex(
    conditionOf(w.engine(), ConditionType.Terminating)?.message ?? '',
    /1 RedisRole still uses it \(demo\/redis-role\)/,
  );
  w.kube.remove(f.roleResource, NS, roleKey.name);
  t.deepEqual(await w.attempt(new RoleReconciler(w.context, 'RedisRole'), roleKey), { kind: 'done' });
  t.is(
    w.vault.roleAt(`k8s.test.redis.${NS}.redis-engine`, `k8s.test.${NS}.redis-role`),
    undefined,
    'the Vault role is deleted',
  );
  t.deepEqual(await w.attempt(new SecretEngineReconciler(w.context), engineKey), { kind: 'done' });
  t.is(w.vault.mountAt(`k8s.test.redis.${NS}.redis-engine`), undefined);
});

test('deleting a MySQLRole waits while a request holds a lease issued from it', async (t) => {
  const f = engineFixture('MySQLRole');
  const w = await world(f);
  await w.pass();
  const roleKey = { namespace: NS, name: f.role.metadata.name! };
  w.kube.remove(f.roleResource, NS, roleKey.name);
  t.is((await w.attempt(new RoleReconciler(w.context, 'MySQLRole'), roleKey)).kind, 'requeueAfter');
  t.regex(
    conditionOf(w.role(), ConditionType.Terminating)?.message ?? '',
    /1 DatabaseAccessRequest still holds leases through it \(demo\/mysql-cred-rqst\)/,
  );
  t.truthy(w.vault.roleAt(`k8s.test.mysql.${NS}.mysql-engine`, `k8s.test.${NS}.mysql-role`));
});
