// The AppBinding reconciler for database AppBindings (KubeVault's PostgreSQL, MySQL, MariaDB and Redis guides)
// against a FakeKube, with fake login probes: which database an AppBinding is taken for, the target each probe is
// given, and what status and Events say when the login works or is refused.
import test from 'ava';
import { Reason, type AppBinding } from '../../../api/index.ts';
import { targetKind, type DatabaseProbes } from '../../../controllers/appbinding/database-health.ts';
import { AppBindingReconciler } from '../../../controllers/appbinding/reconciler.ts';
import type { DatabaseProbeOutcome } from '../../../lib/probe/common.ts';
import { fakeWorld } from '../../fakes/controller-context.ts';
import {
  APP_BINDINGS,
  NS,
  SECRETS,
  SECRET_ENGINES,
  adminSecret,
  applyEngineFixture,
  conditionOf,
  engineFixture,
  postgresAppBinding,
  secretEngine,
  type EngineFixture,
} from '../../fakes/fixtures.ts';

type Protocol = keyof DatabaseProbes;

/** Probes that record what they were asked and answer `outcome` (a function of the target's password). */
function fakeProbes(outcome: (password: string, where: string) => DatabaseProbeOutcome = () => ({ ok: true })) {
  const calls: Array<{ protocol: Protocol; target: Record<string, unknown>; where: string }> = [];
  const probe = (protocol: Protocol) => (target: object, where: string) => {
    calls.push({ protocol, target: target as Record<string, unknown>, where });
    return Promise.resolve(outcome((target as { password: string }).password, where));
  };
  const probes: DatabaseProbes = { postgres: probe('postgres'), mysql: probe('mysql'), redis: probe('redis') };
  return { probes, calls };
}

function world(f: EngineFixture, outcome?: Parameters<typeof fakeProbes>[0]) {
  const w = fakeWorld();
  applyEngineFixture(w.kube, f);
  const { probes, calls } = fakeProbes(outcome);
  const reconciler = new AppBindingReconciler(w.context, probes);
  const name = f.appBinding.metadata.name!;
  const appBinding = () => w.kube.object<AppBinding>(APP_BINDINGS, NS, name);
  const pass = () => w.attempt(reconciler, { namespace: NS, name });
  return Object.assign(w, { calls, appBinding, pass });
}

const refusesWrongPassword =
  (right: string) =>
  (password: string, where: string): DatabaseProbeOutcome =>
    password === right
      ? { ok: true }
      : {
          ok: false,
          reason: 'AuthenticationFailed',
          message: `${where}: the username or password in the AppBinding's Secret was refused`,
        };

test("the guide's MySQL AppBinding (KubeDB's tcp() address) is checked with a MySQL login and is Ready", async (t) => {
  const w = world(engineFixture('MySQLRole'));
  t.deepEqual(await w.pass(), { kind: 'requeueAfter', delayMs: 60 * 60_000 });
  t.deepEqual(
    w.calls.map((c) => c.protocol),
    ['mysql'],
  );
  t.like(w.calls[0]!.target, {
    host: 'mysql.demo.svc',
    port: 3306,
    database: 'app',
    username: 'root',
    password: 'r00t:"pw"',
    tls: false,
  });
  const ready = conditionOf(w.appBinding(), 'Ready');
  t.is(ready?.status, 'True');
  t.is(ready?.message, 'MySQL at mysql.demo.svc:3306 accepts the admin login');
  t.deepEqual(w.events.warnings(), []);
});

test('an AppBinding a MariaDB SecretEngine names is a MariaDB, whatever its address says', async (t) => {
  const w = world(engineFixture('MariaDBRole'));
  await w.pass();
  t.deepEqual(
    w.calls.map((c) => c.protocol),
    ['mysql'],
  );
  t.is(conditionOf(w.appBinding(), 'Ready')?.message, 'MariaDB at mariadb.demo.svc:3306 accepts the admin login');
});

test("the guide's Redis AppBinding is checked with a Redis login as the default user and is Ready", async (t) => {
  const w = world(engineFixture('RedisRole'));
  await w.pass();
  t.deepEqual(
    w.calls.map((c) => c.protocol),
    ['redis'],
  );
  t.like(w.calls[0]!.target, {
    host: 'redis-standalone.demo.svc',
    port: 6379,
    username: 'default',
    password: 'redis-admin-pw',
    tls: false,
  });
  t.is(
    conditionOf(w.appBinding(), 'Ready')?.message,
    'Redis at redis-standalone.demo.svc:6379 accepts the admin login',
  );
});

test('a MySQL AppBinding whose admin password is refused is not Ready (AuthenticationFailed), with one Warning, and no password in either', async (t) => {
  const w = world(engineFixture('MySQLRole'), refusesWrongPassword('something else'));
  const o = await w.pass();
  t.is(o.kind === 'retry' ? o.retryAfterMs : undefined, 30_000, 'looked at again in 30 s');
  const ready = conditionOf(w.appBinding(), 'Ready');
  t.is(ready?.status, 'False');
  t.is(ready?.reason, Reason.AuthenticationFailed);
  t.regex(ready?.message ?? '', /^MySQL at mysql\.demo\.svc:3306: the username or password/);
  t.deepEqual(w.events.summary(), ['Warning AuthenticationFailed']);
  t.false(JSON.stringify([w.appBinding()?.status, w.events.recorded]).includes('r00t'));
});

test('a Redis AppBinding whose admin password is refused is not Ready (AuthenticationFailed)', async (t) => {
  const w = world(engineFixture('RedisRole'), refusesWrongPassword('something else'));
  await w.pass();
  t.is(conditionOf(w.appBinding(), 'Ready')?.reason, Reason.AuthenticationFailed);
  t.deepEqual(w.events.summary(), ['Warning AuthenticationFailed']);
});

test('a MySQL AppBinding whose Secret has no username says so (InvalidDatabaseSecret) without probing', async (t) => {
  const f = engineFixture('MySQLRole');
  const w = world({ ...f, adminSecret: { ...f.adminSecret, data: { password: f.adminSecret.data!.password! } } });
  await w.pass();
  t.deepEqual(w.calls, []);
  t.is(conditionOf(w.appBinding(), 'Ready')?.reason, 'InvalidDatabaseSecret');
});

test("the guide's PostgreSQL AppBinding is still checked with a PostgreSQL login", async (t) => {
  const w = fakeWorld();
  w.kube.put(SECRETS, adminSecret());
  w.kube.put(APP_BINDINGS, postgresAppBinding());
  w.kube.put(SECRET_ENGINES, secretEngine());
  const { probes, calls } = fakeProbes();
  await w.attempt(new AppBindingReconciler(w.context, probes), { namespace: NS, name: 'postgres-app' });
  t.deepEqual(
    calls.map((c) => c.protocol),
    ['postgres'],
  );
  t.like(calls[0]!.target, {
    host: 'postgres.demo.svc',
    port: 5432,
    database: 'postgres',
    username: 'postgres',
    sslmode: 'disable',
  });
  t.is(conditionOf(w.kube.object<AppBinding>(APP_BINDINGS, NS, 'postgres-app'), 'Ready')?.status, 'True');
});

const binding = (clientConfig: AppBinding['spec']['clientConfig'], type?: string): AppBinding => ({
  apiVersion: 'appcatalog.appscode.com/v1alpha1',
  kind: 'AppBinding',
  metadata: { name: 'db', namespace: NS },
  spec: { clientConfig, ...(type ? { type } : {}) } as AppBinding['spec'],
});

test("with no SecretEngine naming it, an AppBinding's kind comes from its URL scheme, then from its spec.type", (t) => {
  t.is(targetKind(binding({ url: 'postgresql://db:5432/app' })), 'postgres');
  t.is(targetKind(binding({ url: 'tcp(db:3306)/app' })), 'mysql');
  t.is(targetKind(binding({ url: 'mysql://db:3306/app' })), 'mysql');
  t.is(targetKind(binding({ url: 'mariadb://db:3306/app' })), 'mariadb');
  t.is(targetKind(binding({ url: 'rediss://cache:6380' })), 'redis');
  t.is(targetKind(binding({ service: { name: 'redis', scheme: 'redis', port: 6379 } })), 'redis');
  t.is(targetKind(binding({ service: { name: 'db', scheme: 'tcp', port: 3306 } }, 'kubedb.com/mariadb')), 'mariadb');
  t.is(targetKind(binding({ url: 'https://vault:8200' }, 'vault')), 'vault');
  t.is(targetKind(binding({ url: 'constructor://x' })), 'other');
  t.is(targetKind(binding({ url: 'https://example.com' })), 'other');
});

test('a SecretEngine naming an AppBinding as its database decides its kind; one using it only as its Vault does not', (t) => {
  const redisEngine = engineFixture('RedisRole').secretEngine;
  const named = {
    ...redisEngine,
    spec: { ...redisEngine.spec, redis: { databaseRef: { name: 'db', namespace: NS } } },
  } as typeof redisEngine;
  t.is(targetKind(binding({ url: 'tcp(db:3306)/app' }), [named]), 'redis');
  const asVault = {
    ...redisEngine,
    spec: { vaultRef: { name: 'db' }, redis: { databaseRef: { name: 'other' } } },
  } as typeof redisEngine;
  t.is(targetKind(binding({ url: 'tcp(db:3306)/app' }), [asVault]), 'mysql');
});

test("a Redis AppBinding's rediss:// scheme and database number reach the probe", async (t) => {
  const f = engineFixture('RedisRole');
  const ab = {
    ...f.appBinding,
    spec: {
      ...f.appBinding.spec,
      clientConfig: { url: 'rediss://cache.demo.svc:6380/2', insecureSkipTLSVerify: true },
    },
  };
  const w = world({ ...f, appBinding: ab });
  await w.pass();
  t.like(w.calls[0]!.target, {
    host: 'cache.demo.svc',
    port: 6380,
    database: 2,
    tls: true,
    insecureSkipTLSVerify: true,
  });
});
