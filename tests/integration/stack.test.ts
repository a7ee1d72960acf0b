// Proves the local stack is made of real parts: garbage collection, TokenRequest + Vault kubernetes auth,
// the database engine against PostgreSQL, RBAC, restarts that keep state, and a clean stop.
import anyTest, { type TestFn } from 'ava';
import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import fs from 'node:fs';
import pg from 'pg';
import { isListening } from '../../scripts/stack/ports.ts';
import { vaultRequest } from '../../scripts/stack/leasehold-setup.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test, {
  withoutLeaseAudit: 'this file tests the stack itself and stops it in its last test; no operator runs',
});

test('deleting a ConfigMap garbage-collects the Secret it owns', async (t) => {
  const core = t.context.env.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'gc-test' } } });
  const cm: V1ConfigMap = await core.createNamespacedConfigMap({
    namespace: 'gc-test',
    body: { metadata: { name: 'owner' }, data: { a: 'b' } },
  });
  await core.createNamespacedSecret({
    namespace: 'gc-test',
    body: {
      metadata: {
        name: 'owned',
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: cm.metadata!.uid! }],
      },
      stringData: { k: 'v' },
    },
  });
  await core.deleteNamespacedConfigMap({ namespace: 'gc-test', name: 'owner' });
  await eventually(
    t,
    'the owned Secret to be garbage-collected',
    async () => {
      try {
        await core.readNamespacedSecret({ namespace: 'gc-test', name: 'owned' });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    },
    90_000,
  );
  t.pass();
});

test('a TokenRequest token logs into Vault through the kubernetes auth method; another account is refused', async (t) => {
  const { env } = t.context;
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'auth-test' } } });
  for (const name of ['allowed', 'other'])
    await core.createNamespacedServiceAccount({ namespace: 'auth-test', body: { metadata: { name } } });
  await vaultRequest(env, 'POST', 'auth/kubernetes/role/auth-test', {
    bound_service_account_names: ['allowed'],
    bound_service_account_namespaces: ['auth-test'],
    token_policies: ['default'],
    ttl: '5m',
  });
  const tokenOf = async (name: string) =>
    (
      await core.createNamespacedServiceAccountToken({
        namespace: 'auth-test',
        name,
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      })
    ).status!.token;

  const login = await vaultRequest(env, 'POST', 'auth/kubernetes/login', {
    role: 'auth-test',
    jwt: await tokenOf('allowed'),
  });
  t.truthy((login.body as { auth?: { client_token?: string } }).auth?.client_token);

  const refused = await vaultRequest(
    env,
    'POST',
    'auth/kubernetes/login',
    { role: 'auth-test', jwt: await tokenOf('other') },
    { allowError: true },
  );
  t.is(refused.status, 403);
});

test('the database engine issues a PostgreSQL login that stops working once its lease is revoked', async (t) => {
  const { env } = t.context;
  await vaultRequest(env, 'POST', 'sys/mounts/db', { type: 'database' });
  await vaultRequest(env, 'POST', 'db/config/pg', {
    plugin_name: 'postgresql-database-plugin',
    allowed_roles: ['reader'],
    connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${env.postgres.port}/postgres?sslmode=disable`,
    username: env.postgres.user,
    password: env.postgres.password,
  });
  await vaultRequest(env, 'POST', 'db/roles/reader', {
    db_name: 'pg',
    default_ttl: '10m',
    max_ttl: '1h',
    creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
  });
  const creds = (await vaultRequest(env, 'GET', 'db/creds/reader')).body as {
    lease_id: string;
    data: { username: string; password: string };
  };
  const connect = async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: env.postgres.port,
      database: 'postgres',
      user: creds.data.username,
      password: creds.data.password,
    });
    await client.connect();
    try {
      return (await client.query<{ who: string }>('select current_user as who')).rows[0]!.who;
    } finally {
      await client.end();
    }
  };
  t.is(await connect(), creds.data.username);
  await vaultRequest(env, 'PUT', 'sys/leases/revoke', { lease_id: creds.lease_id });
  await t.throwsAsync(connect, { message: /password authentication failed|does not exist/ });
});

test('the non-admin user is refused by RBAC until granted, then allowed exactly what was granted', async (t) => {
  const { env } = t.context;
  const alice = env.kubeConfigFor('alice').makeApiClient(CoreV1Api);
  const err = await t.throwsAsync(() => alice.listNamespacedSecret({ namespace: 'default' }));
  t.is((err as unknown as { code: number }).code, 403);
  const admin = env.kubeConfig;
  const { RbacAuthorizationV1Api } = await import('@kubernetes/client-node');
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace: 'default',
    body: { metadata: { name: 'cm-reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }] },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: 'default',
    body: {
      metadata: { name: 'cm-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' }],
    },
  });
  await eventually(
    t,
    'alice to list ConfigMaps',
    async () => (await alice.listNamespacedConfigMap({ namespace: 'default' })).items,
  );
  const still = await t.throwsAsync(() => alice.listNamespacedSecret({ namespace: 'default' }));
  t.is((still as unknown as { code: number }).code, 403);
});

test('Vault and kube-apiserver restarted by fault injection come back with their state', async (t) => {
  const { env } = t.context;
  await vaultRequest(env, 'POST', 'sys/mounts/restart-db', { type: 'database' });
  await vaultRequest(env, 'POST', 'restart-db/roles/survivor', { db_name: 'none', creation_statements: ['SELECT 1'] });
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespacedConfigMap({
    namespace: 'default',
    body: { metadata: { name: 'survivor' }, data: { x: '1' } },
  });

  await env.restart('vault');
  await env.restart('kube-apiserver');

  const role = (await vaultRequest(env, 'GET', 'restart-db/roles/survivor')).body as {
    data: { creation_statements: string[] };
  };
  t.deepEqual(role.data.creation_statements, ['SELECT 1']);
  const cm = await core.readNamespacedConfigMap({ namespace: 'default', name: 'survivor' });
  t.is(cm.data?.x, '1');
});

test('a test process killed outright (SIGKILL) still leaves no process or directory behind', async (t) => {
  const { execFile } = await import('node:child_process');
  const stdout = await new Promise<string>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'tests/integration/fixtures/killed-parent.ts'],
      { encoding: 'utf8' },
      (_err, out) => resolve(out),
    );
  });
  const { dir, pids } = JSON.parse(stdout.trim().split('\n').pop()!) as { dir: string; pids: Record<string, number> };
  const gone = async () =>
    !fs.existsSync(dir) &&
    Object.values(pids).every((pid) => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  await eventually(t, 'the orphaned stack to be reaped', gone, 15_000);
  t.pass();
});

// Must stay the last test of this file: it stops the stack.
test('stop() leaves no process, port or temporary directory behind', async (t) => {
  const { env } = t.context;
  const pids = Object.values(env.pids).filter((p): p is number => typeof p === 'number');
  t.is(pids.length, 5);
  const ports = [new URL(env.kubernetes.server).port, new URL(env.vault.addr).port, String(env.postgres.port)].map(
    Number,
  );
  await env.stop();
  for (const pid of pids) t.throws(() => process.kill(pid, 0), undefined, `process ${pid} is still alive`);
  for (const port of ports) t.false(await isListening(port), `port ${port} still accepts connections`);
  t.false(fs.existsSync(env.dir), `${env.dir} still exists`);
});
