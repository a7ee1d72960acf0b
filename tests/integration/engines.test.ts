// KubeVault's MySQL, MariaDB and Redis guides, with their own SecretEngine and role manifests (addresses aside),
// against the real stack's MariaDB (the MySQL tests' server too) and Redis 7, with the operator running: the
// connection and the Vault role, a request approved with the plugin, a login that works with the engine's own
// client with exactly the privileges of the statements, and is refused once the request is deleted.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import YAML from 'yaml';
import { getCr as getCrIn, type Cr } from './helpers/leasehold.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import {
  configureVaultForOperator,
  guideManifests,
  installCrds,
  kubectl,
  vaultRequest,
} from '../../scripts/stack/leasehold-setup.ts';

type Ctx = StackContext & { operator: OperatorProcess };
const test = anyTest as TestFn<Ctx>;
useStack(test, { databases: ['mariadb', 'redis'] });

const NS = 'demo';
const repo = process.cwd();
const b64 = (s: string) => Buffer.from(s).toString('base64');
const getCr = (t: { context: Ctx }, plural: string, name: string) => getCrIn(t.context.env, plural, NS, name);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The engine's own command-line client (mariadb, redis-cli), with `env` added to the environment. */
function client(cmd: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** `kubectl vault credentials … -o env`, as a user's shell would eval it: the variables it exports. */
function credentialsEnv(t: { context: Ctx }, name: string): Record<string, string> {
  const { env } = t.context;
  const out = execFileSync(
    env.kubernetes.kubectl,
    ['vault', 'credentials', 'dar', name, '-n', NS, `--kubeconfig=${env.kubernetes.kubeconfig}`],
    {
      encoding: 'utf8',
      env: {
        ...process.env,
        PATH: `${path.join(repo, 'bin')}:${path.join(repo, 'node_modules/.bin')}:${process.env.PATH}`,
      },
    },
  );
  // Evaluated by the shell itself, so the quoting is what is tested.
  const dumped = execFileSync('bash', ['--norc', '--noprofile', '-c', `${out}\nenv -0`], { encoding: 'utf8', env: {} });
  return Object.fromEntries(
    dumped
      .split('\0')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

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

/** SQL as the stack's MariaDB admin. */
function adminSql(t: { context: Ctx }, sql: string): string {
  const m = t.context.env.mariadb;
  return execFileSync(
    'mariadb',
    ['-h', m.host, '-P', String(m.port), '-u', m.user, '--batch', '--skip-column-names', '-e', sql],
    { encoding: 'utf8', env: { ...process.env, MYSQL_PWD: m.password } },
  );
}

/** SQL as an issued login, with the variables `kubectl vault credentials` exported. */
function loginSql(vars: Record<string, string>, sql: string): Promise<Run> {
  return client(
    'mariadb',
    [
      '-h',
      vars.MYSQL_HOST!,
      '-P',
      vars.MYSQL_TCP_PORT!,
      '-u',
      vars.MYSQL_USER!,
      '--batch',
      '--skip-column-names',
      '-e',
      sql,
      vars.MYSQL_DATABASE ?? '',
    ],
    { MYSQL_PWD: vars.MYSQL_PWD! },
  );
}

function redisCli(vars: Record<string, string>, ...command: string[]): Promise<Run> {
  return client(
    'redis-cli',
    ['-h', vars.REDIS_HOST!, '-p', vars.REDIS_PORT!, '--user', vars.REDIS_USER!, '--no-auth-warning', ...command],
    { REDISCLI_AUTH: vars.REDISCLI_AUTH! },
  );
}

const yaml = (docs: object[]) => docs.map((d) => YAML.stringify(d)).join('---\n');

/** The database AppBindings and admin Secrets, pointed at the stack (KubeDB's tcp() form for MySQL). */
function databaseBindings(t: { context: Ctx }, adminPassword?: { mariadb?: string }): string {
  const { mariadb, redis } = t.context.env;
  const binding = (name: string, url: string) => ({
    apiVersion: 'appcatalog.appscode.com/v1alpha1',
    kind: 'AppBinding',
    metadata: { name, namespace: NS },
    spec: { secret: { name: `${name}-admin` }, clientConfig: { url } },
  });
  const secret = (name: string, username: string, password: string) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${name}-admin`, namespace: NS },
    data: { username: b64(username), password: b64(password) },
  });
  return yaml([
    binding('mysql', `tcp(${mariadb.host}:${mariadb.port})/app`),
    secret('mysql', mariadb.user, adminPassword?.mariadb ?? mariadb.password),
    binding('mariadb', `mysql://${mariadb.host}:${mariadb.port}/app`),
    secret('mariadb', mariadb.user, mariadb.password),
    binding('redis-standalone', `redis://${redis.host}:${redis.port}`),
    secret('redis-standalone', redis.user, redis.password),
  ]);
}

// The guides' SecretEngines and roles (docs/guides/secret-engines/{mysql,mariadb,redis}/overview.md), the role's
// secretEngineRef pointing at the guide's own SecretEngine; the read-only roles' grants narrowed to the database.
const guide = {
  mysql: {
    engine: {
      apiVersion: 'engine.kubevault.com/v1alpha1',
      kind: 'SecretEngine',
      metadata: { name: 'mysql-engine', namespace: NS },
      spec: {
        vaultRef: { name: 'vault' },
        mysql: { databaseRef: { name: 'mysql', namespace: NS }, pluginName: 'mysql-database-plugin' },
      },
    },
    role: {
      apiVersion: 'engine.kubevault.com/v1alpha1',
      kind: 'MySQLRole',
      metadata: { name: 'mysql-superuser-role', namespace: NS },
      spec: {
        secretEngineRef: { name: 'mysql-engine' },
        creationStatements: [
          "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';",
          "GRANT SELECT ON app.* TO '{{name}}'@'%';",
        ],
        defaultTTL: '1h',
        maxTTL: '24h',
      },
    },
  },
  mariadb: {
    engine: {
      apiVersion: 'engine.kubevault.com/v1alpha1',
      kind: 'SecretEngine',
      metadata: { name: 'mariadb-engine', namespace: NS },
      spec: {
        vaultRef: { name: 'vault' },
        mariadb: { databaseRef: { name: 'mariadb', namespace: NS }, pluginName: 'mysql-database-plugin' },
      },
    },
    role: {
      apiVersion: 'engine.kubevault.com/v1alpha1',
      kind: 'MariaDBRole',
      metadata: { name: 'mariadb-superuser-role', namespace: NS },
      spec: {
        secretEngineRef: { name: 'mariadb-engine' },
        creationStatements: [
          "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';",
          "GRANT SELECT ON app.* TO '{{name}}'@'%';",
        ],
        defaultTTL: '1h',
        maxTTL: '24h',
      },
    },
  },
  redis: {
    engine: {
      apiVersion: 'engine.kubevault.com/v1alpha1',
      kind: 'SecretEngine',
      metadata: { name: 'redis-secret-engine', namespace: NS },
      spec: {
        vaultRef: { name: 'vault', namespace: NS },
        redis: { databaseRef: { name: 'redis-standalone', namespace: NS }, pluginName: 'redis-database-plugin' },
      },
    },
    role: {
      apiVersion: 'engine.kubevault.com/v1alpha1',
      kind: 'RedisRole',
      metadata: { name: 'read-only-role', namespace: NS },
      spec: {
        secretEngineRef: { name: 'redis-secret-engine' },
        creationStatements: ['["~*", "+@read"]'],
        defaultTTL: '1h',
        maxTTL: '24h',
      },
    },
  },
} as const;

const request = (name: string, kind: string, role: string) => ({
  apiVersion: 'engine.kubevault.com/v1alpha1',
  kind: 'DatabaseAccessRequest',
  metadata: { name, namespace: NS },
  spec: { roleRef: { kind, name: role }, subjects: [{ kind: 'ServiceAccount', name: 'demo-sa', namespace: NS }] },
});

test.before(async (t) => {
  const { env } = t.context;
  installCrds(env);
  kubectl(env, ['create', 'namespace', 'leasehold-system']);
  kubectl(env, ['apply', '-f', '-'], guideManifests(env, { vaultRole: 'leasehold-operator' }));
  kubectl(env, ['-n', NS, 'create', 'serviceaccount', 'vault']);
  kubectl(env, ['-n', NS, 'create', 'serviceaccount', 'demo-sa']);
  await configureVaultForOperator(env, {
    loginTtl: '15m',
    loginMaxTtl: '1h',
    serviceAccount: { namespace: NS, name: 'vault' },
  });
  adminSql(t, 'CREATE DATABASE app; CREATE TABLE app.items (id int); INSERT INTO app.items VALUES (1), (2);');
  kubectl(env, ['apply', '-f', '-'], databaseBindings(t));
  t.context.operator = await startOperator(env);
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
});

async function ready(t: ExecutionContext<Ctx>, plural: string, name: string): Promise<Cr> {
  return eventually(
    t,
    `${plural} ${name} phase Success`,
    async () => {
      const o = await getCr(t, plural, name);
      return o?.status?.phase === 'Success' ? o : undefined;
    },
    60_000,
  );
}

/** A request for `role`, approved with the plugin; the request once its Secret is written. */
async function approved(t: ExecutionContext<Ctx>, name: string, kind: string, role: string): Promise<Cr> {
  kubectl(t.context.env, ['apply', '-f', '-'], yaml([request(name, kind, role)]));
  await eventually(
    t,
    `${name} WaitingForApproval`,
    async () => (await getCr(t, 'databaseaccessrequests', name))?.status?.phase === 'WaitingForApproval',
    30_000,
  );
  t.regex(kubectlVault(t, ['approve', 'databaseaccessrequest', name, '-n', NS]), /approved/i);
  return eventually(
    t,
    `${name} issued`,
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', name);
      return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
    },
    60_000,
  );
}

for (const type of ['mysql', 'mariadb'] as const) {
  const g = guide[type];
  test(`${g.role.kind}: the guide's SecretEngine and role reach Success, the Vault role named k8s.-.demo.<name>, the SQL as written`, async (t) => {
    kubectl(t.context.env, ['apply', '-f', '-'], yaml([g.engine, g.role]));
    const engine = await ready(t, 'secretengines', g.engine.metadata.name);
    const mount = `k8s.-.${type}.${NS}.${g.engine.metadata.name}`;
    t.is(engine.status.path, mount);
    const conn = (await vaultRequest(t.context.env, 'GET', `${mount}/config/k8s.-.${NS}.${type}`)).body as {
      data: { plugin_name: string; connection_details: { connection_url: string } };
    };
    t.is(conn.data.plugin_name, 'mysql-database-plugin');
    t.is(
      conn.data.connection_details.connection_url,
      `{{username}}:{{password}}@tcp(${t.context.env.mariadb.host}:${t.context.env.mariadb.port})/`,
    );
    const role = await ready(t, `${type}roles`, g.role.metadata.name);
    t.is(role.status.vaultRole, `k8s.-.${NS}.${g.role.metadata.name}`);
    const vaultRole = (await vaultRequest(t.context.env, 'GET', `${mount}/roles/k8s.-.${NS}.${g.role.metadata.name}`))
      .body as { data: Record<string, unknown> };
    t.deepEqual(vaultRole.data.creation_statements, g.role.spec.creationStatements);
    t.is(vaultRole.data.db_name, `k8s.-.${NS}.${type}`);
  });

  test(`${g.role.kind}: an approved request's login works with the mariadb client, reads but can't write, and is refused once the request is deleted`, async (t) => {
    const name = `${type}-cred-rqst`;
    const dar = await approved(t, name, g.role.kind, g.role.metadata.name);
    const vars = credentialsEnv(t, name);
    t.like(vars, {
      MYSQL_HOST: t.context.env.mariadb.host,
      MYSQL_TCP_PORT: String(t.context.env.mariadb.port),
      MYSQL_DATABASE: 'app',
    });
    t.truthy(vars.MYSQL_PWD);
    t.regex(
      vars.DATABASE_URL ?? '',
      new RegExp(`^mysql://${vars.MYSQL_USER}:[^@]+@${t.context.env.mariadb.host}:${t.context.env.mariadb.port}/app$`),
    );
    const read = await loginSql(vars, 'SELECT count(*) FROM items');
    t.is(read.code, 0, read.stderr);
    t.is(read.stdout.trim(), '2');
    const write = await loginSql(vars, 'INSERT INTO items VALUES (3)');
    t.not(write.code, 0, "a read-only role can't write");
    t.regex(write.stderr, /INSERT command denied/);

    kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', name, '--wait=true', '--timeout=60s']);
    const after = await loginSql(vars, 'SELECT 1');
    t.not(after.code, 0, 'the login is dropped with the lease');
    t.regex(after.stderr, /Access denied/);
    t.is(adminSql(t, `SELECT count(*) FROM mysql.user WHERE user = '${vars.MYSQL_USER}'`).trim(), '0');
    t.truthy(dar);
  });
}

test("MySQLRole: a role name long enough to matter still yields a working login (the plugin's user name fits MySQL's limit)", async (t) => {
  const long = {
    ...guide.mysql.role,
    metadata: { name: 'reporting-read-only-for-the-finance-team-and-auditors', namespace: NS },
  };
  kubectl(t.context.env, ['apply', '-f', '-'], yaml([long]));
  await ready(t, 'mysqlroles', long.metadata.name);
  await approved(t, 'long-name-rqst', 'MySQLRole', long.metadata.name);
  const vars = credentialsEnv(t, 'long-name-rqst');
  t.true(vars.MYSQL_USER!.length <= 32, vars.MYSQL_USER);
  const read = await loginSql(vars, 'SELECT count(*) FROM items');
  t.is(read.code, 0, read.stderr);
  kubectl(t.context.env, [
    '-n',
    NS,
    'delete',
    'databaseaccessrequest',
    'long-name-rqst',
    '--wait=true',
    '--timeout=60s',
  ]);
});

test("RedisRole: the guide's SecretEngine connects with host and port, the ACL rules go to Vault as written", async (t) => {
  const g = guide.redis;
  kubectl(t.context.env, ['apply', '-f', '-'], yaml([g.engine, g.role]));
  const engine = await ready(t, 'secretengines', g.engine.metadata.name);
  const mount = engine.status.path as string;
  t.is(mount, `k8s.-.redis.${NS}.${g.engine.metadata.name}`);
  const conn = (await vaultRequest(t.context.env, 'GET', `${mount}/config/k8s.-.${NS}.redis-standalone`)).body as {
    data: { plugin_name: string; connection_details: Record<string, unknown> };
  };
  t.is(conn.data.plugin_name, 'redis-database-plugin');
  t.like(conn.data.connection_details, { host: t.context.env.redis.host, port: t.context.env.redis.port, tls: false });
  await ready(t, 'redisroles', g.role.metadata.name);
  const vaultRole = (await vaultRequest(t.context.env, 'GET', `${mount}/roles/k8s.-.${NS}.${g.role.metadata.name}`))
    .body as { data: Record<string, unknown> };
  t.deepEqual(vaultRole.data.creation_statements, ['["~*", "+@read"]']);
});

test("RedisRole: an approved request's login works with redis-cli (REDISCLI_AUTH), reads but can't write, and is refused once the request is deleted", async (t) => {
  const admin = t.context.env.redis;
  await client(
    'redis-cli',
    ['-h', admin.host, '-p', String(admin.port), '--user', admin.user, '--no-auth-warning', 'SET', 'greeting', 'hello'],
    { REDISCLI_AUTH: admin.password },
  );
  const name = 'redis-cred-rqst';
  await approved(t, name, 'RedisRole', guide.redis.role.metadata.name);
  const vars = credentialsEnv(t, name);
  t.like(vars, { REDIS_HOST: admin.host, REDIS_PORT: String(admin.port) });
  t.regex(vars.REDIS_URL ?? '', new RegExp(`^redis://${vars.REDIS_USER}:[^@]+@${admin.host}:${admin.port}/0$`));
  const read = await redisCli(vars, 'GET', 'greeting');
  t.is(read.stdout.trim(), 'hello', read.stderr);
  const write = await redisCli(vars, 'SET', 'greeting', 'bye');
  t.regex(write.stdout + write.stderr, /NOPERM/);

  kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', name, '--wait=true', '--timeout=60s']);
  const after = await redisCli(vars, 'GET', 'greeting');
  t.regex(after.stdout + after.stderr, /WRONGPASS|invalid username-password/i);
});

/** The database AppBinding `name` once its Ready condition has `status` (and `reason`, when given). */
async function appBindingReady(
  t: ExecutionContext<Ctx>,
  name: string,
  status: 'True' | 'False',
  reason?: string,
): Promise<{ reason: string; message: string }> {
  let last: unknown;
  return eventually(
    t,
    `AppBinding ${name} Ready ${status} ${reason ?? ''}`,
    async () => {
      const o = await getCr(t, 'appbindings', name);
      const c = o?.status?.conditions?.find((x: { type: string }) => x.type === 'Ready');
      last = c;
      return c?.status === status && (!reason || c.reason === reason) ? c : undefined;
    },
    90_000,
  ).catch((err: unknown) => {
    t.log(`last Ready: ${JSON.stringify(last)}`);
    throw err;
  });
}

test("the guides' MySQL, MariaDB and Redis AppBindings are Ready: each checked with its own engine's login, without a Warning", async (t) => {
  const { mariadb, redis } = t.context.env;
  for (const [name, label, where] of [
    ['mysql', 'MySQL', `${mariadb.host}:${mariadb.port}`],
    ['mariadb', 'MariaDB', `${mariadb.host}:${mariadb.port}`],
    ['redis-standalone', 'Redis', `${redis.host}:${redis.port}`],
  ] as const) {
    const ready = await appBindingReady(t, name, 'True');
    t.is(ready.reason, 'Reachable');
    t.is(ready.message, `${label} at ${where} accepts the admin login`);
  }
  const warnings = kubectl(t.context.env, [
    '-n',
    NS,
    'get',
    'events',
    '--field-selector',
    'type=Warning,involvedObject.kind=AppBinding',
    '-o',
    'jsonpath={range .items[*]}{.involvedObject.name} {.reason}: {.message}{"\\n"}{end}',
  ]);
  t.deepEqual(
    warnings.split('\n').filter((l) => /^(mysql|mariadb|redis-standalone) /.test(l)),
    [],
    'no Warning about a database AppBinding',
  );
});

test("a wrong MySQL admin password and bad statements surface MariaDB's own words in status", async (t) => {
  const { env } = t.context;
  // The admin Secret with a wrong password: the SecretEngine says what MariaDB said.
  const wrong = YAML.parseAllDocuments(databaseBindings(t, { mariadb: 'not-the-password' }))
    .map((d) => d.toJS())
    .filter((d) => d.metadata.name === 'mysql-admin');
  kubectl(env, ['apply', '-f', '-'], yaml(wrong));
  const failed = await eventually(
    t,
    'mysql-engine Failed',
    async () => {
      const o = await getCr(t, 'secretengines', 'mysql-engine');
      return o?.status?.phase === 'Failed' ? o : undefined;
    },
    90_000,
  );
  const condition = failed.status.conditions.find((c: { type: string }) => c.type === 'Failed');
  t.regex(condition.message, /Access denied for user/);
  t.notRegex(condition.message, /not-the-password/);
  // The AppBinding says so too, in its own words.
  const refused = await appBindingReady(t, 'mysql', 'False', 'AuthenticationFailed');
  t.regex(refused.message, /^MySQL at .*: the username or password in the AppBinding's Secret was refused$/);
  kubectl(env, ['apply', '-f', '-'], databaseBindings(t));
  await ready(t, 'secretengines', 'mysql-engine');
  await appBindingReady(t, 'mysql', 'True');

  // Bad SQL: Vault writes the role (it doesn't run it), the request fails with MariaDB's words.
  const bad = {
    ...guide.mysql.role,
    metadata: { name: 'bad-sql-role', namespace: NS },
    spec: { ...guide.mysql.role.spec, creationStatements: ["CREATE USERR '{{name}}'@'%';"] },
  };
  kubectl(env, ['apply', '-f', '-'], yaml([bad]));
  await ready(t, 'mysqlroles', 'bad-sql-role');
  kubectl(env, ['apply', '-f', '-'], yaml([request('bad-sql-rqst', 'MySQLRole', 'bad-sql-role')]));
  t.regex(kubectlVault(t, ['approve', 'databaseaccessrequest', 'bad-sql-rqst', '-n', NS]), /approved/i);
  let last: unknown;
  const available = await eventually(
    t,
    "bad-sql-rqst Available=False with MariaDB's error",
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', 'bad-sql-rqst');
      last = o?.status;
      return o?.status?.conditions?.find(
        (c: { type: string; status: string; message?: string }) =>
          c.type === 'Available' && c.status === 'False' && /SQL syntax/.test(c.message ?? ''),
      );
    },
    60_000,
  ).catch((err: unknown) => {
    t.log(`last status: ${JSON.stringify(last)}`);
    throw err;
  });
  t.is(available.reason, 'FailedToGetCredential');
  t.regex(available.message, /You have an error in your SQL syntax/);
  t.falsy((await getCr(t, 'databaseaccessrequests', 'bad-sql-rqst')).status.lease, 'no lease is held');
});

test('MySQLRole: past its maxTTL the credential is rotated into the same Secret, and the new login works', async (t) => {
  const short = {
    ...guide.mysql.role,
    metadata: { name: 'short-lived-role', namespace: NS },
    spec: { ...guide.mysql.role.spec, defaultTTL: '10s', maxTTL: '20s' },
  };
  kubectl(t.context.env, ['apply', '-f', '-'], yaml([short]));
  await ready(t, 'mysqlroles', short.metadata.name);
  const first = await approved(t, 'rotating-rqst', 'MySQLRole', short.metadata.name);
  const before = credentialsEnv(t, 'rotating-rqst');
  const rotated = await eventually(
    t,
    'a rotation completed',
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', 'rotating-rqst');
      return o?.status?.rotation?.completedAt && o.status.lease?.id !== first.status.lease.id ? o : undefined;
    },
    90_000,
  );
  t.is(rotated.status.secret.name, first.status.secret.name, 'the same Secret');
  const after = credentialsEnv(t, 'rotating-rqst');
  t.not(after.MYSQL_USER, before.MYSQL_USER);
  const read = await loginSql(after, 'SELECT count(*) FROM items');
  t.is(read.code, 0, read.stderr);
  kubectl(t.context.env, [
    '-n',
    NS,
    'delete',
    'databaseaccessrequest',
    'rotating-rqst',
    '--wait=true',
    '--timeout=60s',
  ]);
});

test("mixed: a PostgresRole, a MySQLRole and a RedisRole in one namespace, approved at once: each Secret has its engine's keys, and deleting the three revokes the three leases", async (t) => {
  const { env } = t.context;
  kubectl(env, [
    'apply',
    '-f',
    'manifests/samples/30-postgres-secret-engine.yaml',
    '-f',
    'manifests/samples/40-postgres-role.yaml',
  ]);
  await ready(t, 'postgresroles', 'psql-role');
  const requests = [
    ['mixed-pg', 'PostgresRole', 'psql-role'],
    ['mixed-mysql', 'MySQLRole', guide.mysql.role.metadata.name],
    ['mixed-redis', 'RedisRole', guide.redis.role.metadata.name],
  ] as const;
  kubectl(env, ['apply', '-f', '-'], yaml(requests.map(([name, kind, role]) => request(name, kind, role))));
  for (const [name] of requests) {
    await eventually(
      t,
      `${name} WaitingForApproval`,
      async () => (await getCr(t, 'databaseaccessrequests', name))?.status?.phase === 'WaitingForApproval',
      30_000,
    );
  }
  t.regex(kubectlVault(t, ['approve', 'dar', ...requests.map(([name]) => name), '-n', NS]), /approved/i);
  const issued = await Promise.all(
    requests.map(([name]) =>
      eventually(
        t,
        `${name} issued`,
        async () => {
          const o = await getCr(t, 'databaseaccessrequests', name);
          return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
        },
        60_000,
      ),
    ),
  );
  const keys = (name: string) =>
    Object.keys(JSON.parse(kubectlVault(t, ['credentials', 'dar', name, '-n', NS, '-o', 'json']))).sort();
  t.deepEqual(keys('mixed-pg'), ['password', 'username']);
  t.deepEqual(keys('mixed-mysql'), ['database', 'host', 'password', 'port', 'uri', 'username']);
  t.deepEqual(keys('mixed-redis'), ['database', 'host', 'password', 'port', 'uri', 'username']);
  const leases = issued.map((d) => d.status.lease.id as string);
  kubectl(env, ['-n', NS, 'delete', 'dar', ...requests.map(([name]) => name), '--wait=true', '--timeout=90s']);
  for (const id of leases) {
    const lookup = await vaultRequest(env, 'PUT', 'sys/leases/lookup', { lease_id: id }, { allowError: true });
    t.true(lookup.status >= 400, `lease ${id} is revoked`);
  }
});

test("a wrong Redis admin password and a bad ACL rule surface Redis's own words in status", async (t) => {
  const { env } = t.context;
  const secret = (password: string) =>
    yaml([
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'redis-standalone-admin', namespace: NS },
        data: { username: b64(env.redis.user), password: b64(password) },
      },
    ]);
  kubectl(env, ['apply', '-f', '-'], secret('not-the-password'));
  const failed = await eventually(
    t,
    'redis-secret-engine Failed',
    async () => {
      const o = await getCr(t, 'secretengines', 'redis-secret-engine');
      return o?.status?.phase === 'Failed' ? o : undefined;
    },
    90_000,
  );
  const condition = failed.status.conditions.find((c: { type: string }) => c.type === 'Failed');
  t.regex(condition.message, /WRONGPASS/);
  t.notRegex(condition.message, /not-the-password/);
  const refused = await appBindingReady(t, 'redis-standalone', 'False', 'AuthenticationFailed');
  t.regex(refused.message, /^Redis at .*: the username or password in the AppBinding's Secret was refused$/);
  kubectl(env, ['apply', '-f', '-'], secret(env.redis.password));
  await ready(t, 'secretengines', 'redis-secret-engine');
  await appBindingReady(t, 'redis-standalone', 'True');

  const bad = {
    ...guide.redis.role,
    metadata: { name: 'bad-acl-role', namespace: NS },
    spec: { ...guide.redis.role.spec, creationStatements: ['["~*", "+@no-such-category"]'] },
  };
  kubectl(env, ['apply', '-f', '-'], yaml([bad]));
  await ready(t, 'redisroles', 'bad-acl-role');
  kubectl(env, ['apply', '-f', '-'], yaml([request('bad-acl-rqst', 'RedisRole', 'bad-acl-role')]));
  t.regex(kubectlVault(t, ['approve', 'databaseaccessrequest', 'bad-acl-rqst', '-n', NS]), /approved/i);
  let last: unknown;
  const available = await eventually(
    t,
    "bad-acl-rqst Available=False with Redis's error",
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', 'bad-acl-rqst');
      last = o?.status;
      return o?.status?.conditions?.find(
        (c: { type: string; status: string; message?: string }) =>
          c.type === 'Available' && c.status === 'False' && /no-such-category/.test(c.message ?? ''),
      );
    },
    60_000,
  ).catch((err: unknown) => {
    t.log(`last status: ${JSON.stringify(last)}`);
    throw err;
  });
  t.is(available.reason, 'FailedToGetCredential');
  t.regex(available.message, /ERR Error in ACL SETUSER modifier/);
});
