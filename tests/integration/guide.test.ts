// KubeVault's PostgreSQL guide, step by step, with its own manifests (addresses aside), against the real
// stack and the operator running as its own process.
import anyTest, { type TestFn } from 'ava';
import { AuthorizationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { startOperator, type OperatorProcess } from './helpers/operator.ts';
import { configureVaultForOperator, installCrds, kubectl } from './helpers/setup.ts';
import { vaultRequest } from './helpers/vault.ts';

type Ctx = StackContext & { operator: OperatorProcess; startedAt: number };
const test = anyTest as TestFn<Ctx>;
useStack(test);

const GROUP = 'engine.kubevault.com';
const VERSION = 'v1alpha1';
const LOGIN_MAX_TTL_S = 30;

function sample(file: string): Record<string, unknown>[] {
  return YAML.parseAllDocuments(fs.readFileSync(path.join('manifests/samples', file), 'utf8')).map((d) => d.toJS()).filter(Boolean);
}

/** The guide's manifests, with the addresses pointed at the test stack. */
function guideManifests(t: { context: Ctx }): string {
  const { env } = t.context;
  const docs = [...sample('00-namespace.yaml'), ...sample('10-vault-appbinding.yaml'), ...sample('20-postgres-app.yaml')];
  for (const d of docs as Array<{ kind: string; metadata: { name: string }; spec?: { clientConfig?: Record<string, unknown> }; data?: Record<string, string> }>) {
    if (d.kind === 'AppBinding' && d.metadata.name === 'vault') {
      d.spec!.clientConfig = { url: env.vault.addr, caBundle: Buffer.from(env.vault.caCert).toString('base64') };
      (d.spec as { parameters: Record<string, unknown> }).parameters.vaultRole = 'leasehold-operator';
    }
    if (d.kind === 'AppBinding' && d.metadata.name === 'postgres-app') {
      d.spec!.clientConfig = { url: `postgresql://127.0.0.1:${env.postgres.port}/postgres?sslmode=disable`, insecureSkipTLSVerify: true };
    }
    if (d.kind === 'Secret') d.data = { username: Buffer.from(env.postgres.user).toString('base64'), password: Buffer.from(env.postgres.password).toString('base64') };
  }
  return docs.map((d) => YAML.stringify(d)).join('---\n');
}

async function getCr(t: { context: Ctx }, plural: string, name: string, namespace = 'demo'): Promise<any | undefined> /* eslint-disable-line @typescript-eslint/no-explicit-any -- a CR read for assertions */ {
  try {
    return await t.context.env.kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name });
  } catch {
    return undefined;
  }
}

async function decide(t: { context: Ctx }, name: string, type: 'Approved' | 'Denied') {
  const co = t.context.env.kubeConfig.makeApiClient(CustomObjectsApi);
  const { setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node');
  await co.patchNamespacedCustomObjectStatus({
    group: GROUP, version: VERSION, namespace: 'demo', plural: 'databaseaccessrequests', name,
    body: { status: { conditions: [{ type, status: 'True', reason: type === 'Approved' ? 'KubectlApprove' : 'KubectlDeny', message: `${type} by the test`, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z/, 'Z') }] } },
  }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

async function login(t: { context: Ctx }, user: string, password: string, sql: string) {
  const c = new pg.Client({ host: '127.0.0.1', port: t.context.env.postgres.port, database: 'postgres', user, password });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

test.before(async (t) => {
  const { env } = t.context;
  installCrds(env);
  kubectl(env, ['create', 'namespace', 'leasehold-system']);
  kubectl(env, ['apply', '-f', '-'], guideManifests(t));
  kubectl(env, ['-n', 'demo', 'create', 'serviceaccount', 'vault']);
  kubectl(env, ['-n', 'demo', 'create', 'serviceaccount', 'demo-sa']);
  await configureVaultForOperator(env, { loginTtl: '15s', loginMaxTtl: `${LOGIN_MAX_TTL_S}s`, serviceAccount: { namespace: 'demo', name: 'vault' } });
  const admin = new pg.Client({ connectionString: env.postgres.url });
  await admin.connect();
  await admin.query('CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2)');
  await admin.end();
  t.context.operator = await startOperator(env);
  t.context.startedAt = Date.now();
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
});

test('the SecretEngine enables the mount and reaches phase Success', async (t) => {
  kubectl(t.context.env, ['apply', '-f', 'manifests/samples/30-postgres-secret-engine.yaml']);
  const se = await eventually(t, 'SecretEngine phase Success', async () => {
    const o = await getCr(t, 'secretengines', 'postgresql-engine');
    return o?.status?.phase === 'Success' ? o : undefined;
  }, 60_000);
  t.is(se.status.path, 'my-postgres-se');
  const mounts = (await vaultRequest(t.context.env, 'GET', 'sys/mounts')).body as Record<string, { type: string }>;
  t.is(mounts['my-postgres-se/']?.type, 'database');
  const conn = (await vaultRequest(t.context.env, 'GET', 'my-postgres-se/config/k8s.-.demo.postgres-app')).body as { data: { plugin_name: string; allowed_roles: string[] } };
  t.is(conn.data.plugin_name, 'postgresql-database-plugin');
  t.deepEqual(conn.data.allowed_roles, ['*']);
});

test('the PostgresRole becomes the Vault role k8s.-.demo.psql-role with the guide\'s fields', async (t) => {
  kubectl(t.context.env, ['apply', '-f', 'manifests/samples/40-postgres-role.yaml']);
  await eventually(t, 'PostgresRole phase Success', async () => (await getCr(t, 'postgresroles', 'psql-role'))?.status?.phase === 'Success', 60_000);
  const role = (await vaultRequest(t.context.env, 'GET', 'my-postgres-se/roles/k8s.-.demo.psql-role')).body as { data: Record<string, unknown> };
  t.is(role.data.db_name, 'k8s.-.demo.postgres-app');
  t.is(role.data.default_ttl, 3600);
  t.is(role.data.max_ttl, 86400);
  t.deepEqual(role.data.creation_statements, [
    'CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\' VALID UNTIL \'{{expiration}}\';',
    'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";',
  ]);
});

test('a request waits for approval, then yields a Secret whose login can read but not write, readable only by its subjects', async (t) => {
  const { env } = t.context;
  kubectl(env, ['apply', '-f', 'manifests/samples/50-postgres-access-request.yaml']);
  await eventually(t, 'phase WaitingForApproval', async () => (await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst'))?.status?.phase === 'WaitingForApproval', 30_000);
  const waiting = await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst');
  t.falsy(waiting?.status?.lease, 'nothing is issued before approval');

  await decide(t, 'postgres-cred-rqst', 'Approved');
  const dar = await eventually(t, 'a lease recorded in status', async () => {
    const o = await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst');
    return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
  }, 60_000);
  t.is(dar.status.phase, 'Approved');
  t.regex(dar.status.lease.id, /^my-postgres-se\/creds\/k8s\.-\.demo\.psql-role\//);
  t.is(dar.status.lease.duration, '1h0m0s');

  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  const secret = await core.readNamespacedSecret({ namespace: 'demo', name: dar.status.secret.name });
  t.is(secret.metadata?.ownerReferences?.[0]?.kind, 'DatabaseAccessRequest');
  t.true(secret.metadata?.ownerReferences?.[0]?.controller);
  const username = Buffer.from(secret.data!.username!, 'base64').toString();
  const password = Buffer.from(secret.data!.password!, 'base64').toString();
  const rows = await login(t, username, password, 'SELECT count(*)::int AS n FROM items');
  t.is(rows.rows[0].n, 2);
  await t.throwsAsync(() => login(t, username, password, 'INSERT INTO items VALUES (3)'), { message: /permission denied/ });

  const authz = env.kubeConfig.makeApiClient(AuthorizationV1Api);
  const canGet = async (user: string) => (await authz.createSubjectAccessReview({ body: { spec: { user, resourceAttributes: { namespace: 'demo', verb: 'get', resource: 'secrets', name: dar.status.secret.name } } } })).status?.allowed;
  t.true(await canGet('system:serviceaccount:demo:demo-sa'));
  t.false(await canGet('system:serviceaccount:demo:someone-else'));
});

test('the credential outlives the operator\'s login token, and deleting the request revokes it', async (t) => {
  const { env } = t.context;
  const dar = (await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst'))!;
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  const secret = await core.readNamespacedSecret({ namespace: 'demo', name: dar.status.secret.name });
  const username = Buffer.from(secret.data!.username!, 'base64').toString();
  const password = Buffer.from(secret.data!.password!, 'base64').toString();
  // Past the max TTL of the operator's first login token: had the lease been issued with it, Vault would
  // have revoked the lease together with the token.
  const wait = t.context.startedAt + (LOGIN_MAX_TTL_S + 5) * 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const rows = await login(t, username, password, 'SELECT 1 AS one');
  t.is(rows.rows[0].one, 1);

  kubectl(env, ['-n', 'demo', 'delete', 'databaseaccessrequest', 'postgres-cred-rqst', '--timeout=60s']);
  await t.throwsAsync(() => login(t, username, password, 'SELECT 1'), { message: /password authentication failed|does not exist/ });
});

test('a denied request issues nothing', async (t) => {
  const { env } = t.context;
  const doc = sample('50-postgres-access-request.yaml')[0] as { metadata: { name: string } };
  doc.metadata.name = 'denied-rqst';
  kubectl(env, ['apply', '-f', '-'], YAML.stringify(doc));
  await eventually(t, 'WaitingForApproval', async () => (await getCr(t, 'databaseaccessrequests', 'denied-rqst'))?.status?.phase === 'WaitingForApproval', 30_000);
  await decide(t, 'denied-rqst', 'Denied');
  const o = await eventually(t, 'phase Denied', async () => {
    const x = await getCr(t, 'databaseaccessrequests', 'denied-rqst');
    return x?.status?.phase === 'Denied' ? x : undefined;
  }, 30_000);
  t.falsy(o.status.lease);
  t.falsy(o.status.secret);
});

test('deleting the PostgresRole deletes the Vault role', async (t) => {
  kubectl(t.context.env, ['-n', 'demo', 'delete', 'postgresrole', 'psql-role', '--timeout=60s']);
  const res = await vaultRequest(t.context.env, 'GET', 'my-postgres-se/roles/k8s.-.demo.psql-role', undefined, { allowError: true });
  t.is(res.status, 404);
});
