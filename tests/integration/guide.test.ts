// KubeVault's PostgreSQL guide, step by step, with its own manifests (addresses aside), against the real
// stack and the operator running as its own process.
import anyTest, { type TestFn } from 'ava';
import { AuthorizationV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import {
  credentialsOf,
  decide as decideIn,
  getCr as getCrIn,
  guideBindings,
  login,
  sample,
} from './helpers/leasehold.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import { configureVaultForOperator, installCrds, kubectl, vaultRequest } from '../../scripts/stack/leasehold-setup.ts';

type Ctx = StackContext & { operator: OperatorProcess; startedAt: number };
const test = anyTest as TestFn<Ctx>;
useStack(test);

const LOGIN_MAX_TTL_S = 30;
const repo = process.cwd();

const getCr = (t: { context: Ctx }, plural: string, name: string, namespace = 'demo') =>
  getCrIn(t.context.env, plural, namespace, name);
const decide = (t: { context: Ctx }, name: string, type: 'Approved' | 'Denied') =>
  decideIn(t.context.env, 'demo', name, type);

/** The real kubectl, finding our plugin (and Node 24 for it) first on PATH, as a user's shell would. */
function kubectlVault(t: { context: Ctx }, args: string[]): string {
  const { env } = t.context;
  return execFileSync(env.kubernetes.kubectl, ['vault', ...args, `--kubeconfig=${env.kubernetes.kubeconfig}`], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${path.join(repo, 'bin')}:${path.join(repo, 'node_modules/.bin')}:${process.env.PATH}`,
    },
  });
}

/** Whether `user` may read the Secret `name` in demo, as the apiserver decides it. */
async function canGet(t: { context: Ctx }, user: string, name: string): Promise<boolean | undefined> {
  const authz = t.context.env.kubeConfig.makeApiClient(AuthorizationV1Api);
  const review = await authz.createSubjectAccessReview({
    body: { spec: { user, resourceAttributes: { namespace: 'demo', verb: 'get', resource: 'secrets', name } } },
  });
  return review.status?.allowed;
}

test.before(async (t) => {
  const { env } = t.context;
  installCrds(env);
  kubectl(env, ['create', 'namespace', 'leasehold-system']);
  kubectl(env, ['apply', '-f', '-'], guideBindings(env));
  kubectl(env, ['-n', 'demo', 'create', 'serviceaccount', 'vault']);
  kubectl(env, ['-n', 'demo', 'create', 'serviceaccount', 'demo-sa']);
  await configureVaultForOperator(env, {
    loginTtl: '15s',
    loginMaxTtl: `${LOGIN_MAX_TTL_S}s`,
    serviceAccount: { namespace: 'demo', name: 'vault' },
  });
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
  const se = await eventually(
    t,
    'SecretEngine phase Success',
    async () => {
      const o = await getCr(t, 'secretengines', 'postgresql-engine');
      return o?.status?.phase === 'Success' ? o : undefined;
    },
    60_000,
  );
  t.is(se.status.path, 'my-postgres-se');
  const mounts = (await vaultRequest(t.context.env, 'GET', 'sys/mounts')).body as Record<string, { type: string }>;
  t.is(mounts['my-postgres-se/']?.type, 'database');
  const conn = (await vaultRequest(t.context.env, 'GET', 'my-postgres-se/config/k8s.-.demo.postgres-app')).body as {
    data: { plugin_name: string; allowed_roles: string[] };
  };
  t.is(conn.data.plugin_name, 'postgresql-database-plugin');
  t.deepEqual(conn.data.allowed_roles, ['*']);
});

test('the Vault AppBinding reports Vault reachable through its own CA bundle, and leases owned by the issuer token', async (t) => {
  const ab = await eventually(
    t,
    'AppBinding vault Ready=True',
    async () => {
      const o = await getCr(t, 'appbindings', 'vault');
      return o?.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status === 'True'
        ? o
        : undefined;
    },
    60_000,
  );
  const ready = ab.status.conditions.find((c: { type: string }) => c.type === 'Ready');
  t.is(ready.reason, 'Reachable');
  t.regex(ready.message, /answers; logged in/);
  t.is(ab.status.conditions.find((c: { type: string }) => c.type === 'LeaseOwnership')?.status, 'True');
});

test("the PostgresRole becomes the Vault role k8s.-.demo.psql-role with the guide's fields", async (t) => {
  kubectl(t.context.env, ['apply', '-f', 'manifests/samples/40-postgres-role.yaml']);
  await eventually(
    t,
    'PostgresRole phase Success',
    async () => (await getCr(t, 'postgresroles', 'psql-role'))?.status?.phase === 'Success',
    60_000,
  );
  const role = (await vaultRequest(t.context.env, 'GET', 'my-postgres-se/roles/k8s.-.demo.psql-role')).body as {
    data: Record<string, unknown>;
  };
  t.is(role.data.db_name, 'k8s.-.demo.postgres-app');
  t.is(role.data.default_ttl, 3600);
  t.is(role.data.max_ttl, 86400);
  t.deepEqual(role.data.creation_statements, [
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
    'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";',
  ]);
});

test('a request waits for approval, then yields a Secret whose login can read but not write, readable only by its subjects', async (t) => {
  const { env } = t.context;
  kubectl(env, ['apply', '-f', 'manifests/samples/50-postgres-access-request.yaml']);
  await eventually(
    t,
    'phase WaitingForApproval',
    async () =>
      (await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst'))?.status?.phase === 'WaitingForApproval',
    30_000,
  );
  const waiting = await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst');
  t.falsy(waiting?.status?.lease, 'nothing is issued before approval');

  t.regex(kubectlVault(t, ['approve', 'databaseaccessrequest', 'postgres-cred-rqst', '-n', 'demo']), /approved/i);
  const dar = await eventually(
    t,
    'a lease recorded in status',
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst');
      return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
    },
    60_000,
  );
  t.is(dar.status.phase, 'Approved');
  t.regex(dar.status.lease.id, /^my-postgres-se\/creds\/k8s\.-\.demo\.psql-role\//);
  t.is(dar.status.lease.duration, '1h0m0s');

  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  const secret = await core.readNamespacedSecret({ namespace: 'demo', name: dar.status.secret.name });
  t.is(secret.metadata?.ownerReferences?.[0]?.kind, 'DatabaseAccessRequest');
  t.true(secret.metadata?.ownerReferences?.[0]?.controller);
  const { username, password } = await credentialsOf(env, 'demo', dar.status.secret.name);
  const rows = await login(env, username, password, 'SELECT count(*)::int AS n FROM items');
  t.is(rows.rows[0].n, 2);
  await t.throwsAsync(() => login(env, username, password, 'INSERT INTO items VALUES (3)'), {
    message: /permission denied/,
  });

  t.true(await canGet(t, 'system:serviceaccount:demo:demo-sa', dar.status.secret.name));
  t.false(await canGet(t, 'system:serviceaccount:demo:someone-else', dar.status.secret.name));
});

test("the subjects' access stays as the request says: a deleted RoleBinding and a widened Role are put back", async (t) => {
  const { env } = t.context;
  const name = (await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst'))!.status.secret.name as string;
  kubectl(env, ['-n', 'demo', 'delete', 'rolebinding', name]);
  kubectl(env, [
    '-n',
    'demo',
    'patch',
    'role',
    name,
    '--type=json',
    '-p',
    JSON.stringify([{ op: 'replace', path: '/rules/0/verbs', value: ['get', 'list', 'watch'] }]),
  ]);
  const rbac = env.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await eventually(
    t,
    "the RoleBinding back and the Role's verbs get only",
    async () => {
      const [binding, role] = await Promise.all([
        rbac.readNamespacedRoleBinding({ namespace: 'demo', name }).catch(() => undefined),
        rbac.readNamespacedRole({ namespace: 'demo', name }),
      ]);
      return !!binding && JSON.stringify(role.rules?.[0]?.verbs) === '["get"]';
    },
    30_000,
  );
  t.true(await canGet(t, 'system:serviceaccount:demo:demo-sa', name));
});

test("the credential outlives the operator's login token, and deleting the request revokes it", async (t) => {
  const { env } = t.context;
  const dar = (await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst'))!;
  const { username, password } = await credentialsOf(env, 'demo', dar.status.secret.name);
  // Past the max TTL of the operator's first login token: had the lease been issued with it, Vault would
  // have revoked the lease together with the token.
  const wait = t.context.startedAt + (LOGIN_MAX_TTL_S + 5) * 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const rows = await login(env, username, password, 'SELECT 1 AS one');
  t.is(rows.rows[0].one, 1);

  kubectl(env, ['-n', 'demo', 'delete', 'databaseaccessrequest', 'postgres-cred-rqst', '--timeout=60s']);
  await t.throwsAsync(() => login(env, username, password, 'SELECT 1'), {
    message: /password authentication failed|does not exist/,
  });
});

test('a denied request issues nothing', async (t) => {
  const { env } = t.context;
  const doc = sample('50-postgres-access-request.yaml')[0] as { metadata: { name: string } };
  doc.metadata.name = 'denied-rqst';
  kubectl(env, ['apply', '-f', '-'], YAML.stringify(doc));
  await eventually(
    t,
    'WaitingForApproval',
    async () => (await getCr(t, 'databaseaccessrequests', 'denied-rqst'))?.status?.phase === 'WaitingForApproval',
    30_000,
  );
  await decide(t, 'denied-rqst', 'Denied');
  const o = await eventually(
    t,
    'phase Denied',
    async () => {
      const x = await getCr(t, 'databaseaccessrequests', 'denied-rqst');
      return x?.status?.phase === 'Denied' ? x : undefined;
    },
    30_000,
  );
  t.falsy(o.status.lease);
  t.falsy(o.status.secret);
});

test('kubectl vault revoke ends the access: phase Revoked and the login stops working', async (t) => {
  const { env } = t.context;
  kubectl(
    env,
    ['apply', '-f', '-'],
    YAML.stringify({
      ...(sample('50-postgres-access-request.yaml')[0] as object),
      metadata: { name: 'revoke-rqst', namespace: 'demo' },
    }),
  );
  kubectlVault(t, ['approve', 'dar', 'revoke-rqst', '-n', 'demo']);
  const dar = await eventually(
    t,
    'credentials issued',
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', 'revoke-rqst');
      return o?.status?.lease?.id ? o : undefined;
    },
    60_000,
  );
  const printed = JSON.parse(
    kubectlVault(t, ['credentials', 'databaseaccessrequest', 'revoke-rqst', '-n', 'demo', '-o', 'json']),
  ) as { username: string; password: string };
  const { username, password } = await credentialsOf(env, 'demo', dar.status.secret.name);
  t.is(printed.username, username);
  t.is((await login(env, username, password)).rows[0].one, 1);

  kubectlVault(t, ['revoke', 'databaseaccessrequest', 'revoke-rqst', '-n', 'demo']);
  await eventually(
    t,
    'phase Revoked',
    async () => (await getCr(t, 'databaseaccessrequests', 'revoke-rqst'))?.status?.phase === 'Revoked',
    60_000,
  );
  await t.throwsAsync(() => login(env, username, password), {
    message: /password authentication failed|does not exist/,
  });
});

test('deleting the PostgresRole deletes the Vault role', async (t) => {
  kubectl(t.context.env, ['-n', 'demo', 'delete', 'postgresrole', 'psql-role', '--timeout=60s']);
  const res = await vaultRequest(t.context.env, 'GET', 'my-postgres-se/roles/k8s.-.demo.psql-role', undefined, {
    allowError: true,
  });
  t.is(res.status, 404);
});
