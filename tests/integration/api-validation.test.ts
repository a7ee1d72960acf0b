// The API against a real kube-apiserver: the generated CRDs install, KubeVault's guide applies unchanged, bad
// input is refused with a message naming the field, an approval decision freezes what was judged, `kubectl get`
// prints the columns, and the install kustomization (with its RBAC) works as people and the operator need.
//
// Everything goes through the real kubectl where a user would use kubectl; status writes go through the status
// subresource, as `kubectl vault approve` does.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { KINDS } from '../../api/index.ts';
import { crdName } from '../../api/crd.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test, {
  withoutLeaseAudit:
    'request statuses here are written by hand to test the schema and the printer columns; no operator runs',
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SAMPLES = path.join(root, 'manifests/samples');
const NS = 'bad-inputs';

type Obj = Record<string, unknown> & { metadata: { name: string; namespace?: string } };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(
  t: ExecutionContext<StackContext>,
  args: string[],
  opts: { input?: string; kubeconfig?: string } = {},
): Promise<Run> {
  const { kubernetes } = t.context.env;
  return new Promise((resolve) => {
    const child = execFile(
      kubernetes.kubectl,
      ['--kubeconfig', opts.kubeconfig ?? kubernetes.kubeconfig, ...args],
      { timeout: 120_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}

async function kubectlOk(
  t: ExecutionContext<StackContext>,
  args: string[],
  opts: { input?: string; kubeconfig?: string } = {},
): Promise<string> {
  const r = await kubectl(t, args, opts);
  if (r.code !== 0) t.fail(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function getObject(
  t: ExecutionContext<StackContext>,
  resource: string,
  ns: string,
  name: string,
): Promise<Obj & { spec: Record<string, unknown>; status?: Record<string, unknown> }> {
  return JSON.parse(await kubectlOk(t, ['get', resource, '-n', ns, name, '-o', 'json']));
}

/** Writes `status` through the status subresource (a PUT, as `kubectl vault approve` does). */
async function writeStatus(
  t: ExecutionContext<StackContext>,
  resource: string,
  ns: string,
  name: string,
  status: unknown,
): Promise<Run> {
  const current = await getObject(t, resource, ns, name);
  return kubectl(t, ['replace', '--subresource=status', '-f', '-'], { input: JSON.stringify({ ...current, status }) });
}

test.before(async (t) => {
  await kubectlOk(t, ['apply', '-f', path.join(root, 'manifests/crds')]);
  for (const def of KINDS)
    await kubectlOk(t, ['wait', '--for=condition=Established', `crd/${crdName(def)}`, '--timeout=60s']);
  await kubectlOk(t, ['create', 'namespace', NS]);
});

// ---- Valid objects the table below breaks one field at a time ------------------------------------------------

const appBinding = (): Obj => ({
  apiVersion: 'appcatalog.appscode.com/v1alpha1',
  kind: 'AppBinding',
  metadata: { name: 'db', namespace: NS },
  spec: {
    secret: { name: 'db-admin' },
    clientConfig: {
      service: { name: 'postgres', scheme: 'postgresql', port: 5432, path: 'postgres', query: 'sslmode=disable' },
    },
  },
});
const secretEngine = (): Obj => ({
  apiVersion: 'engine.kubevault.com/v1alpha1',
  kind: 'SecretEngine',
  metadata: { name: 'se', namespace: NS },
  spec: {
    vaultRef: { name: 'vault' },
    path: 'my-postgres-se',
    postgres: { databaseRef: { name: 'db', namespace: NS } },
    defaultLeaseTTL: '1h',
    maxLeaseTTL: '24h',
  },
});
const postgresRole = (): Obj => ({
  apiVersion: 'engine.kubevault.com/v1alpha1',
  kind: 'PostgresRole',
  metadata: { name: 'role', namespace: NS },
  spec: {
    vaultRef: { name: 'vault' },
    path: 'my-postgres-se',
    databaseRef: { name: 'db', namespace: NS },
    creationStatements: ['CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\';'],
    defaultTTL: '1h',
    maxTTL: '24h',
  },
});
/** KubeVault's MySQL, MariaDB and Redis guides' SecretEngine and role (the guides' manifests, addresses aside). */
const engineFor = (type: 'mysql' | 'mariadb' | 'redis'): Obj => ({
  apiVersion: 'engine.kubevault.com/v1alpha1',
  kind: 'SecretEngine',
  metadata: { name: `${type}-engine`, namespace: NS },
  spec: {
    vaultRef: { name: 'vault' },
    [type]: {
      databaseRef: { name: type, namespace: NS },
      pluginName: type === 'redis' ? 'redis-database-plugin' : 'mysql-database-plugin',
    },
  },
});
const mysqlRole = (kind: 'MySQLRole' | 'MariaDBRole' = 'MySQLRole'): Obj => ({
  apiVersion: 'engine.kubevault.com/v1alpha1',
  kind,
  metadata: { name: `${kind.toLowerCase()}-superuser-role`, namespace: NS },
  spec: {
    secretEngineRef: { name: kind === 'MySQLRole' ? 'mysql-engine' : 'mariadb-engine' },
    creationStatements: [
      "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';",
      "GRANT SELECT ON *.* TO '{{name}}'@'%';",
    ],
    defaultTTL: '1h',
    maxTTL: '24h',
  },
});
const redisRole = (): Obj => ({
  apiVersion: 'engine.kubevault.com/v1alpha1',
  kind: 'RedisRole',
  metadata: { name: 'write-read-role', namespace: NS },
  spec: {
    secretEngineRef: { name: 'redis-engine' },
    creationStatements: ['["~*", "+@read","+@write"]'],
    defaultTTL: '1h',
    maxTTL: '24h',
  },
});
const accessRequest = (name = 'req'): Obj => ({
  apiVersion: 'engine.kubevault.com/v1alpha1',
  kind: 'DatabaseAccessRequest',
  metadata: { name, namespace: NS },
  spec: {
    roleRef: { kind: 'PostgresRole', name: 'role', namespace: NS },
    subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: NS }],
    ttl: '1h',
  },
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the table's mutations reach anywhere in a spec
type Loose = any;
function spec(o: Obj): Loose {
  return o.spec;
}

// Not in this table because the API server can't judge them (they depend on other objects, or on who asks);
// the controllers report them as conditions instead:
//   - a referenced AppBinding, SecretEngine, PostgresRole or Secret that doesn't exist (ReferenceNotFound);
//   - a roleRef into another namespace that the role's allowedRequestNamespaces doesn't admit (NamespaceNotAllowed);
//   - a ttl above the role's maxTTL (TTLExceedsMaxTTL), a missing reason where the role requires one;
//   - self-approval and auto-approval, which depend on who created the request;
//   - a PostgresRole path that no SecretEngine mounts, two SecretEngines claiming one path.
interface BadInput {
  what: string;
  object: Obj;
  /** Must match kubectl's error output; each names the offending field. */
  expect: RegExp;
}

function bad(what: string, base: () => Obj, change: (o: Obj) => void, expect: RegExp): BadInput {
  const object = base();
  change(object);
  return { what, object, expect };
}

const BAD_INPUTS: BadInput[] = [
  // AppBinding
  bad(
    'an AppBinding without clientConfig',
    appBinding,
    (o) => delete spec(o).clientConfig,
    /spec\.clientConfig: Required value/,
  ),
  bad(
    'an AppBinding with both url and service',
    appBinding,
    (o) => {
      spec(o).clientConfig.url = 'https://vault:8200';
    },
    /spec\.clientConfig: Invalid value.*set exactly one of url and service/,
  ),
  bad(
    'an AppBinding with neither url nor service',
    appBinding,
    (o) => {
      spec(o).clientConfig = { insecureSkipTLSVerify: true };
    },
    /spec\.clientConfig: Invalid value.*set exactly one of url and service/,
  ),
  bad(
    'an AppBinding whose url is not a URL',
    appBinding,
    (o) => {
      spec(o).clientConfig = { url: 'vault 8200' };
    },
    /spec\.clientConfig\.url: Invalid value.*absolute URL/,
  ),
  bad(
    'an AppBinding service port above 65535',
    appBinding,
    (o) => {
      spec(o).clientConfig.service.port = 70000;
    },
    /spec\.clientConfig\.service\.port: Invalid value: 70000.*65535/,
  ),
  bad(
    'an AppBinding service without scheme',
    appBinding,
    (o) => delete spec(o).clientConfig.service.scheme,
    /spec\.clientConfig\.service\.scheme: Required value/,
  ),
  bad(
    'an AppBinding service name that is not a DNS label',
    appBinding,
    (o) => {
      spec(o).clientConfig.service.name = 'Postgres_Svc';
    },
    /spec\.clientConfig\.service\.name: Invalid value: "Postgres_Svc"/,
  ),
  bad(
    'an AppBinding caBundle that is not base64',
    appBinding,
    (o) => {
      spec(o).clientConfig.caBundle = 'not base64!';
    },
    /spec\.clientConfig\.caBundle: Invalid value.*byte/,
  ),
  bad(
    'AppBinding parameters without apiVersion and kind',
    appBinding,
    (o) => {
      spec(o).parameters = { path: 'kubernetes' };
    },
    /spec\.parameters\.kind: Required value/,
  ),
  bad(
    'an AppBinding secret transform doing two things',
    appBinding,
    (o) => {
      spec(o).secretTransforms = [{ renameKey: { from: 'user', to: 'username' }, removeKey: { key: 'x' } }];
    },
    /spec\.secretTransforms\[0\]: Invalid value.*exactly one of renameKey/,
  ),
  bad(
    'an AppBinding secret without a name',
    appBinding,
    (o) => {
      spec(o).secret = {};
    },
    /spec\.secret\.name: Required value/,
  ),
  // SecretEngine
  bad(
    "a SecretEngine without a database (KubeVault's other engines are not supported)",
    secretEngine,
    (o) => delete spec(o).postgres,
    /spec: Invalid value.*set exactly one of postgres, mysql, mariadb, redis/,
  ),
  bad(
    'a SecretEngine connected to two databases',
    secretEngine,
    (o) => {
      spec(o).mysql = { databaseRef: { name: 'db' } };
    },
    /spec: Invalid value.*set exactly one of postgres, mysql, mariadb, redis/,
  ),
  bad(
    'a MySQL SecretEngine allowing no roles',
    () => engineFor('mysql'),
    (o) => {
      spec(o).mysql.allowedRoles = [];
    },
    /spec\.mysql\.allowedRoles: Invalid value.*at least 1 items/,
  ),
  bad(
    'a Redis SecretEngine without databaseRef',
    () => engineFor('redis'),
    (o) => {
      spec(o).redis = { pluginName: 'redis-database-plugin' };
    },
    /spec\.redis\.databaseRef: Required value/,
  ),
  bad(
    "a Redis SecretEngine with MySQL's pool settings",
    () => engineFor('redis'),
    (o) => {
      spec(o).redis.maxOpenConnections = 4;
    },
    /unknown field "spec\.redis\.maxOpenConnections"/,
  ),
  bad(
    'a SecretEngine for another engine kind',
    secretEngine,
    (o) => {
      spec(o).aws = { region: 'eu-west-1' };
    },
    /unknown field "spec\.aws"/,
  ),
  bad(
    'a SecretEngine path with a leading slash',
    secretEngine,
    (o) => {
      spec(o).path = '/my-postgres-se';
    },
    /spec\.path: Invalid value: "\/my-postgres-se"/,
  ),
  bad(
    'a SecretEngine path climbing out with ..',
    secretEngine,
    (o) => {
      spec(o).path = 'my-se/../sys';
    },
    /spec\.path: Invalid value.*must not contain '\.\.'/,
  ),
  bad(
    'a SecretEngine allowing no roles',
    secretEngine,
    (o) => {
      spec(o).postgres.allowedRoles = [];
    },
    /spec\.postgres\.allowedRoles: Invalid value.*at least 1 items/,
  ),
  bad(
    'a SecretEngine without databaseRef',
    secretEngine,
    (o) => {
      spec(o).postgres = { pluginName: 'postgresql-database-plugin' };
    },
    /spec\.postgres\.databaseRef: Required value/,
  ),
  bad(
    'a SecretEngine whose maxLeaseTTL is below defaultLeaseTTL',
    secretEngine,
    (o) => {
      spec(o).maxLeaseTTL = '30m';
    },
    /spec\.maxLeaseTTL: Invalid value.*at least defaultLeaseTTL/,
  ),
  bad(
    'a SecretEngine vaultRef name with capitals',
    secretEngine,
    (o) => {
      spec(o).vaultRef.name = 'Vault';
    },
    /spec\.vaultRef\.name: Invalid value: "Vault"/,
  ),
  bad(
    'a SecretEngine with negative maxOpenConnections',
    secretEngine,
    (o) => {
      spec(o).postgres.maxOpenConnections = -5;
    },
    /spec\.postgres\.maxOpenConnections: Invalid value: -5/,
  ),
  // PostgresRole
  bad(
    'a PostgresRole without creationStatements',
    postgresRole,
    (o) => delete spec(o).creationStatements,
    /spec\.creationStatements: Required value/,
  ),
  bad(
    'a PostgresRole with empty creationStatements',
    postgresRole,
    (o) => {
      spec(o).creationStatements = [];
    },
    /spec\.creationStatements: Invalid value.*at least 1 items/,
  ),
  bad(
    'a PostgresRole with neither secretEngineRef nor vaultRef',
    postgresRole,
    (o) => {
      delete spec(o).vaultRef;
      delete spec(o).path;
      delete spec(o).databaseRef;
    },
    /spec: Invalid value.*exactly one of secretEngineRef and vaultRef/,
  ),
  bad(
    'a PostgresRole with both secretEngineRef and vaultRef',
    postgresRole,
    (o) => {
      spec(o).secretEngineRef = { name: 'se' };
    },
    /spec: Invalid value.*exactly one of secretEngineRef and vaultRef/,
  ),
  bad(
    'a secretEngineRef PostgresRole that also names a path',
    postgresRole,
    (o) => {
      delete spec(o).vaultRef;
      delete spec(o).databaseRef;
      spec(o).secretEngineRef = { name: 'se' };
    },
    /spec: Invalid value.*path, databaseRef and databaseName go with vaultRef/,
  ),
  bad(
    'a vaultRef PostgresRole naming no database',
    postgresRole,
    (o) => delete spec(o).databaseRef,
    /spec: Invalid value.*with vaultRef, set exactly one of databaseRef and databaseName/,
  ),
  bad(
    'a PostgresRole defaultTTL in words',
    postgresRole,
    (o) => {
      spec(o).defaultTTL = '1 hour';
    },
    /spec\.defaultTTL: Invalid value: "1 hour"/,
  ),
  bad(
    'a PostgresRole whose maxTTL is below defaultTTL',
    postgresRole,
    (o) => {
      spec(o).maxTTL = '30m';
    },
    /spec\.maxTTL: Invalid value.*maxTTL must be at least defaultTTL/,
  ),
  bad(
    'a PostgresRole whose maxTTL in seconds is below defaultTTL',
    postgresRole,
    (o) => {
      spec(o).maxTTL = '1800';
    },
    /spec\.maxTTL: Invalid value.*maxTTL must be at least defaultTTL/,
  ),
  bad(
    'a PostgresRole path with a leading slash',
    postgresRole,
    (o) => {
      spec(o).path = '/database';
    },
    /spec\.path: Invalid value: "\/database"/,
  ),
  bad(
    'a PostgresRole renewFraction above 0.95',
    postgresRole,
    (o) => {
      spec(o).renewFraction = 0.99;
    },
    /spec\.renewFraction: Invalid value: 0\.99.*0\.95/,
  ),
  bad(
    'a PostgresRole allowing a namespace that is not a DNS label',
    postgresRole,
    (o) => {
      spec(o).allowedRequestNamespaces = ['Team_A'];
    },
    /spec\.allowedRequestNamespaces\[0\]: Invalid value: "Team_A"/,
  ),
  bad(
    'a PostgresRole secretTemplate key that a Secret cannot hold',
    postgresRole,
    (o) => {
      spec(o).secretTemplate = { 'bad key!': '{{username}}' };
    },
    /spec\.secretTemplate: Invalid value.*valid Secret keys/,
  ),
  bad(
    'a PostgresRole auto-approving everyone',
    postgresRole,
    (o) => {
      spec(o).approval = { autoApprove: { maxTTL: '1h' } };
    },
    /spec\.approval\.autoApprove: Invalid value.*subjects or namespaces/,
  ),
  // MySQLRole, MariaDBRole, RedisRole: the shared fields are checked as on a PostgresRole
  bad(
    'a MySQLRole without creationStatements',
    mysqlRole,
    (o) => delete spec(o).creationStatements,
    /spec\.creationStatements: Required value/,
  ),
  bad(
    'a MySQLRole with both secretEngineRef and vaultRef',
    mysqlRole,
    (o) => {
      spec(o).vaultRef = { name: 'vault' };
    },
    /spec: Invalid value.*exactly one of secretEngineRef and vaultRef/,
  ),
  bad(
    'a MySQLRole whose maxTTL is below defaultTTL',
    mysqlRole,
    (o) => {
      spec(o).maxTTL = '30m';
    },
    /spec\.maxTTL: Invalid value.*maxTTL must be at least defaultTTL/,
  ),
  bad(
    'a MySQLRole auto-approving everyone',
    mysqlRole,
    (o) => {
      spec(o).approval = { autoApprove: { maxTTL: '1h' } };
    },
    /spec\.approval\.autoApprove: Invalid value.*subjects or namespaces/,
  ),
  bad(
    'a MariaDBRole without secretEngineRef',
    () => mysqlRole('MariaDBRole'),
    (o) => delete spec(o).secretEngineRef,
    /spec\.secretEngineRef: Required value/,
  ),
  bad(
    "a MariaDBRole in KubeVault's 2021 style (MariaDBRole never had it)",
    () => mysqlRole('MariaDBRole'),
    (o) => {
      spec(o).vaultRef = { name: 'vault' };
    },
    /unknown field "spec\.vaultRef"/,
  ),
  bad(
    'a MariaDBRole renewFraction above 0.95',
    () => mysqlRole('MariaDBRole'),
    (o) => {
      spec(o).renewFraction = 0.99;
    },
    /spec\.renewFraction: Invalid value: 0\.99.*0\.95/,
  ),
  bad(
    'a RedisRole creation statement that is not a JSON list of ACL rules',
    redisRole,
    (o) => {
      spec(o).creationStatements = ['+@read ~*'];
    },
    /spec\.creationStatements\[0\]: Invalid value.*JSON list of ACL rules/,
  ),
  bad(
    'a RedisRole with rollbackStatements (the Redis plugin has none)',
    redisRole,
    (o) => {
      spec(o).rollbackStatements = ['[]'];
    },
    /unknown field "spec\.rollbackStatements"/,
  ),
  bad(
    'a RedisRole secretTemplate key that a Secret cannot hold',
    redisRole,
    (o) => {
      spec(o).secretTemplate = { 'bad key!': 'x' };
    },
    /spec\.secretTemplate: Invalid value.*valid Secret keys/,
  ),
  // DatabaseAccessRequest
  bad('a request without subjects', accessRequest, (o) => delete spec(o).subjects, /spec\.subjects: Required value/),
  bad(
    'a request with an empty subjects list',
    accessRequest,
    (o) => {
      spec(o).subjects = [];
    },
    /spec\.subjects: Invalid value.*at least 1 items/,
  ),
  bad(
    'a request for a role kind Leasehold does not serve',
    accessRequest,
    (o) => {
      spec(o).roleRef.kind = 'MongoDBRole';
    },
    /spec\.roleRef\.kind: Unsupported value: "MongoDBRole"/,
  ),
  bad(
    'a request whose roleRef names another API group',
    accessRequest,
    (o) => {
      spec(o).roleRef.apiGroup = 'rbac.authorization.k8s.io';
    },
    /spec\.roleRef\.apiGroup: Unsupported value/,
  ),
  bad(
    'a request whose roleRef has no name',
    accessRequest,
    (o) => delete spec(o).roleRef.name,
    /spec\.roleRef\.name: Required value/,
  ),
  bad(
    'a subject of an unknown kind',
    accessRequest,
    (o) => {
      spec(o).subjects[0].kind = 'Robot';
    },
    /spec\.subjects\[0\]\.kind: Unsupported value: "Robot"/,
  ),
  bad(
    'a ServiceAccount subject whose name is not a DNS name',
    accessRequest,
    (o) => {
      spec(o).subjects[0].name = 'Demo SA';
    },
    /spec\.subjects\[0\]\.name: Invalid value.*DNS-1123/,
  ),
  bad(
    'a User subject with a namespace',
    accessRequest,
    (o) => {
      spec(o).subjects = [{ kind: 'User', name: 'alice', namespace: NS }];
    },
    /spec\.subjects\[0\]\.namespace: Invalid value.*ServiceAccount subjects only/,
  ),
  bad(
    'a ServiceAccount subject with the RBAC apiGroup',
    accessRequest,
    (o) => {
      spec(o).subjects[0].apiGroup = 'rbac.authorization.k8s.io';
    },
    /spec\.subjects\[0\]\.apiGroup: Invalid value.*empty for a ServiceAccount/,
  ),
  bad(
    'a request for zero time',
    accessRequest,
    (o) => {
      spec(o).ttl = '0s';
    },
    /spec\.ttl: Invalid value.*longer than zero/,
  ),
  bad(
    'a request ttl in days (not a Go duration)',
    accessRequest,
    (o) => {
      spec(o).ttl = '1d';
    },
    /spec\.ttl: Invalid value: "1d"/,
  ),
  bad(
    'a request restarting a CronJob',
    accessRequest,
    (o) => {
      spec(o).rolloutRestartTargets = [{ kind: 'CronJob', name: 'nightly' }];
    },
    /spec\.rolloutRestartTargets\[0\]\.kind: Unsupported value: "CronJob"/,
  ),
  bad(
    'a request restarting the same workload twice',
    accessRequest,
    (o) => {
      spec(o).rolloutRestartTargets = [
        { kind: 'Deployment', name: 'app' },
        { kind: 'Deployment', name: 'app' },
      ];
    },
    /spec\.rolloutRestartTargets\[1\]: Duplicate value/,
  ),
  bad(
    'a request renewing at 5 % of the lease',
    accessRequest,
    (o) => {
      spec(o).renewFraction = 0.05;
    },
    /spec\.renewFraction: Invalid value: 0\.05.*0\.1/,
  ),
];

for (const c of BAD_INPUTS) {
  test(`refused: ${c.what}`, async (t) => {
    const r = await kubectl(t, ['create', '-f', '-'], { input: JSON.stringify(c.object) });
    t.not(r.code, 0, `the API server accepted ${c.what}`);
    t.regex(r.stderr, c.expect);
  });
}

test('the valid objects the bad-input table starts from are accepted, in both PostgresRole styles', async (t) => {
  for (const o of [appBinding(), secretEngine(), postgresRole(), accessRequest('valid')]) {
    await kubectlOk(t, ['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(o) });
  }
  const newer = postgresRole();
  newer.spec = {
    secretEngineRef: { name: 'se' },
    creationStatements: ['SELECT 1'],
    defaultTTL: '3600',
    maxTTL: '1h30m',
    allowedRequestNamespaces: ['team-a', '*'],
    secretTemplate: { uri: 'postgresql://{{username}}:{{password}}@db/app' },
    renewFraction: 0.5,
    approval: {
      pendingTTL: '24h',
      requireReason: true,
      autoApprove: { namespaces: ['ci'], subjects: [{ kind: 'Group', name: 'sre' }], maxTTL: '15m' },
    },
  };
  await kubectlOk(t, ['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(newer) });
  t.pass();
});

test("KubeVault's MySQL, MariaDB and Redis guides' SecretEngines and roles apply unchanged, and requests may name every role kind", async (t) => {
  // KubeDB's MySQL AppBinding gives its address in the Go driver's form.
  const kubedbMySQL = appBinding();
  spec(kubedbMySQL).clientConfig = { url: 'tcp(mysql.bad-inputs.svc:3306)/' };
  const objects = [
    kubedbMySQL,
    engineFor('mysql'),
    engineFor('mariadb'),
    engineFor('redis'),
    mysqlRole(),
    mysqlRole('MariaDBRole'),
    redisRole(),
  ];
  for (const o of objects) {
    const created = JSON.parse(
      await kubectlOk(t, ['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(o) }),
    );
    assertKept(t, o.spec, created.spec, `${o.kind} spec`);
  }
  // A MySQLRole in KubeVault's 2021 style, as a PostgresRole may be.
  const old = mysqlRole();
  old.spec = {
    vaultRef: { name: 'vault' },
    databaseRef: { name: 'mysql', namespace: NS },
    path: 'database',
    creationStatements: ['SELECT 1'],
  };
  await kubectlOk(t, ['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(old) });
  for (const kind of ['MySQLRole', 'MariaDBRole', 'RedisRole']) {
    const req = accessRequest(`for-${kind.toLowerCase()}`);
    spec(req).roleRef.kind = kind;
    await kubectlOk(t, ['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(req) });
  }
  // Every role kind prints the same columns as a PostgresRole.
  const shown = { ...redisRole(), metadata: { name: 'shown-redis', namespace: NS } };
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(shown) });
  t.is(
    (
      await writeStatus(t, 'redisrole', NS, 'shown-redis', {
        phase: 'Success',
        path: 'k8s.-.redis.bad-inputs.redis-engine',
        vaultRole: 'k8s.-.bad-inputs.shown-redis',
      })
    ).code,
    0,
  );
  const columns = table(await kubectlOk(t, ['get', 'redisroles', '-n', NS, 'shown-redis']));
  t.deepEqual(columns[0], ['NAME', 'STATUS', 'VAULT ROLE', 'PATH', 'AGE']);
  t.deepEqual(columns[1]?.slice(0, 4), [
    'shown-redis',
    'Success',
    'k8s.-.bad-inputs.shown-redis',
    'k8s.-.redis.bad-inputs.redis-engine',
  ]);
});

// ---- The guide, unchanged --------------------------------------------------------------------------------------

/** Every leaf of `want` is in `got` with the same value: nothing the user wrote was pruned or altered. */
function assertKept(t: ExecutionContext, want: unknown, got: unknown, at: string): void {
  if (want !== null && typeof want === 'object') {
    t.true(got !== null && typeof got === 'object', `${at} was dropped`);
    for (const [k, v] of Object.entries(want)) assertKept(t, v, (got as Record<string, unknown>)?.[k], `${at}.${k}`);
  } else {
    t.is(got, want, at);
  }
}

test('every manifest of the KubeVault guide applies unchanged and nothing in it is dropped', async (t) => {
  const out = await kubectlOk(t, ['apply', '-f', SAMPLES]);
  for (const made of [
    'namespace/demo',
    'appbinding.appcatalog.appscode.com/vault',
    'appbinding.appcatalog.appscode.com/postgres-app',
    'secret/postgres-user-cred',
    'secretengine.engine.kubevault.com/postgresql-engine',
    'postgresrole.engine.kubevault.com/psql-role',
    'databaseaccessrequest.engine.kubevault.com/postgres-cred-rqst',
  ])
    t.true(out.includes(made), `${made} not created: ${out}`);

  for (const file of fs.readdirSync(SAMPLES)) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(SAMPLES, file), 'utf8'))) {
      const sample = doc.toJS() as Obj & { kind: string; spec?: unknown; data?: unknown };
      if (sample.spec === undefined) continue;
      const stored = await getObject(
        t,
        sample.kind.toLowerCase(),
        sample.metadata.namespace ?? '',
        sample.metadata.name,
      );
      assertKept(t, sample.spec, stored.spec, `${file}: ${sample.kind} spec`);
    }
  }
  // The guide lists them by their plural names (and `dar` is the short name).
  await kubectlOk(t, ['get', 'appbinding,secretengines,postgresrole,databaseaccessrequest,dar', '-n', 'demo']);
});

test('the status the guide shows (KubeVault v0.3 conditions with lastUpdateTime) is accepted and reads as approved', async (t) => {
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(accessRequest('guide-status')) });
  const r = await writeStatus(t, 'databaseaccessrequest', NS, 'guide-status', {
    conditions: [
      {
        lastUpdateTime: '2019-11-20T11:40:26Z',
        message: 'This was approved by kubectl vault approve databaseaccessrequest',
        reason: 'KubectlApprove',
        type: 'Approved',
      },
    ],
    lease: {
      duration: '1h0m0s',
      id: 'my-postgres-se/creds/k8s.-.demo.psql-role/chQO2c89Wf2zieXYA9KoL9sb',
      renewable: true,
    },
    secret: { name: 'postgres-cred-rqst-pmq5gp' },
  });
  t.is(r.code, 0, r.stderr);
  const stored = await getObject(t, 'dar', NS, 'guide-status');
  const [condition] = (stored.status as { conditions: Array<Record<string, unknown>> }).conditions;
  // KubeVault v0.3 had no status field: a present condition meant True.
  t.like(condition, { type: 'Approved', status: 'True', lastUpdateTime: '2019-11-20T11:40:26Z' });
});

// ---- Decisions are permanent and freeze what was judged --------------------------------------------------------

const approved = (message = 'ticket OPS-1') => ({
  type: 'Approved',
  status: 'True',
  reason: 'KubectlApprove',
  message,
  lastTransitionTime: '2025-01-01T00:00:00Z',
});
const denied = () => ({
  type: 'Denied',
  status: 'True',
  reason: 'KubectlDeny',
  message: 'no',
  lastTransitionTime: '2025-01-01T00:00:00Z',
});

async function patchSpec(t: ExecutionContext<StackContext>, name: string, specPatch: unknown): Promise<Run> {
  return kubectl(t, ['patch', 'dar', name, '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: specPatch })]);
}

test('before a decision the request can still be edited', async (t) => {
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(accessRequest('undecided')) });
  const r = await patchSpec(t, 'undecided', { ttl: '2h', subjects: [{ kind: 'User', name: 'alice' }] });
  t.is(r.code, 0, r.stderr);
});

test('once Approved, the role, subjects, ttl and reason of a request can no longer change', async (t) => {
  const req = accessRequest('approved');
  spec(req).reason = 'INC-42: fix the billing report';
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(req) });
  const approve = await writeStatus(t, 'dar', NS, 'approved', { conditions: [approved()] });
  t.is(approve.code, 0, approve.stderr);

  const changes: Array<[string, unknown, RegExp]> = [
    [
      'subjects',
      { subjects: [{ kind: 'ServiceAccount', name: 'mallory', namespace: NS }] },
      /spec\.subjects: Invalid value.*immutable once the request is Approved or Denied/,
    ],
    [
      'roleRef',
      { roleRef: { name: 'admin-role' } },
      /spec\.roleRef: Invalid value.*immutable once the request is Approved or Denied/,
    ],
    ['ttl', { ttl: '720h' }, /spec\.ttl: Invalid value.*immutable once the request is Approved or Denied/],
    ['ttl (removed)', { ttl: null }, /spec\.ttl: Invalid value.*immutable/],
    ['reason', { reason: 'something else' }, /spec\.reason: Invalid value.*immutable/],
  ];
  for (const [what, change, expect] of changes) {
    const r = await patchSpec(t, 'approved', change);
    t.not(r.code, 0, `changing ${what} after approval was accepted`);
    t.regex(r.stderr, expect, what);
  }
  // What wasn't judged stays adjustable.
  const tweak = await patchSpec(t, 'approved', {
    renew: false,
    rolloutRestartTargets: [{ kind: 'Deployment', name: 'app' }],
  });
  t.is(tweak.code, 0, tweak.stderr);
});

test('an Approved decision cannot be flipped to Denied, withdrawn, set False or reworded', async (t) => {
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(accessRequest('no-flip')) });
  t.is((await writeStatus(t, 'dar', NS, 'no-flip', { conditions: [approved()] })).code, 0);

  const attempts: Array<[string, unknown, RegExp]> = [
    ['flipped to Denied', { conditions: [denied()] }, /status\.conditions: Invalid value.*decision is permanent/],
    [
      'Denied added',
      { conditions: [approved(), denied()] },
      /status\.conditions: Invalid value.*can't be both Approved and Denied/,
    ],
    ['withdrawn', { conditions: [] }, /status\.conditions: Invalid value.*decision is permanent/],
    ['status emptied', {}, /status\.conditions: Invalid value.*decision is permanent/],
    [
      'set False',
      { conditions: [{ ...approved(), status: 'False' }] },
      /status\.conditions: Invalid value.*can only have status True/,
    ],
    [
      'reworded',
      { conditions: [approved('approved by someone else')] },
      /status\.conditions: Invalid value.*decision is permanent/,
    ],
  ];
  for (const [what, status, expect] of attempts) {
    const r = await writeStatus(t, 'dar', NS, 'no-flip', status);
    t.not(r.code, 0, `Approved ${what} was accepted`);
    t.regex(r.stderr, expect, what);
  }
  // The controller can still add its own conditions and fields next to the decision.
  const progress = await writeStatus(t, 'dar', NS, 'no-flip', {
    phase: 'Approved',
    conditions: [
      approved(),
      {
        type: 'Available',
        status: 'True',
        reason: 'SuccessfullyIssuedCredential',
        message: 'issued',
        lastTransitionTime: '2025-01-01T00:01:00Z',
      },
    ],
    secret: { name: 'no-flip-abc123' },
    lease: {
      id: 'my-postgres-se/creds/role/xyz',
      duration: '1h0m0s',
      renewable: true,
      expiresAt: '2025-01-01T01:01:00Z',
    },
  });
  t.is(progress.code, 0, progress.stderr);
});

test('a Denied request is final too: it cannot become Approved and its spec is frozen', async (t) => {
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(accessRequest('denied')) });
  t.is((await writeStatus(t, 'dar', NS, 'denied', { phase: 'Denied', conditions: [denied()] })).code, 0);
  const flip = await writeStatus(t, 'dar', NS, 'denied', { conditions: [approved()] });
  t.regex(flip.stderr, /status\.conditions: Invalid value.*decision is permanent/);
  const edit = await patchSpec(t, 'denied', { subjects: [{ kind: 'Group', name: 'everyone' }] });
  t.regex(edit.stderr, /spec\.subjects: Invalid value.*immutable/);
});

test('malformed status is refused, naming the field', async (t) => {
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(accessRequest('bad-status')) });
  const attempts: Array<[string, unknown, RegExp]> = [
    [
      'a Denied condition with status Unknown',
      { conditions: [{ ...denied(), status: 'Unknown' }] },
      /status\.conditions: Invalid value.*can only have status True/,
    ],
    ['an unknown phase', { phase: 'Done' }, /status\.phase: Unsupported value: "Done"/],
    [
      'a reason that is not CamelCase',
      { conditions: [{ type: 'Failed', status: 'True', reason: 'it broke!', message: 'x' }] },
      /status\.conditions\[0\]\.reason: Invalid value: "it broke!"/,
    ],
    [
      'an expiry that is not a timestamp',
      { lease: { expiresAt: 'tomorrow' } },
      /status\.lease\.expiresAt: Invalid value: "tomorrow"/,
    ],
    [
      'two conditions of the same type',
      {
        conditions: [
          { type: 'Failed', status: 'True' },
          { type: 'Failed', status: 'False' },
        ],
      },
      /status\.conditions\[1\]: Duplicate value/,
    ],
  ];
  for (const [what, status, expect] of attempts) {
    const r = await writeStatus(t, 'dar', NS, 'bad-status', status);
    t.not(r.code, 0, `${what} was accepted`);
    t.regex(r.stderr, expect, what);
  }
});

// ---- What kubectl shows ----------------------------------------------------------------------------------------

function table(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/));
}

test('kubectl get prints status, role, secret and expiry for requests, and status, Vault role and path for engines and roles', async (t) => {
  const ns = 'columns';
  await kubectlOk(t, ['create', 'namespace', ns]);
  const req = { ...accessRequest('shown'), metadata: { name: 'shown', namespace: ns } };
  const se = { ...secretEngine(), metadata: { name: 'se', namespace: ns } };
  const role = { ...postgresRole(), metadata: { name: 'role', namespace: ns } };
  for (const o of [req, se, role]) await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(o) });
  t.is(
    (
      await writeStatus(t, 'dar', ns, 'shown', {
        phase: 'Approved',
        conditions: [approved()],
        secret: { name: 'shown-x1y2z3' },
        lease: {
          id: 'my-postgres-se/creds/k8s.-.columns.role/abc',
          duration: '1h0m0s',
          renewable: true,
          expiresAt: '2030-01-01T00:00:00Z',
        },
      })
    ).code,
    0,
  );
  t.is((await writeStatus(t, 'secretengine', ns, 'se', { phase: 'Success', path: 'my-postgres-se' })).code, 0);
  t.is(
    (
      await writeStatus(t, 'postgresrole', ns, 'role', {
        phase: 'Success',
        path: 'my-postgres-se',
        vaultRole: 'k8s.-.columns.role',
      })
    ).code,
    0,
  );

  const dar = table(await kubectlOk(t, ['get', 'dar', '-n', ns]));
  t.deepEqual(dar[0], ['NAME', 'STATUS', 'ROLE', 'SECRET', 'EXPIRES', 'AGE']);
  t.deepEqual(dar[1]?.slice(0, 5), ['shown', 'Approved', 'role', 'shown-x1y2z3', '2030-01-01T00:00:00Z']);

  const engines = table(await kubectlOk(t, ['get', 'secretengines', '-n', ns]));
  t.deepEqual(engines[0], ['NAME', 'STATUS', 'PATH', 'AGE']);
  t.deepEqual(engines[1]?.slice(0, 3), ['se', 'Success', 'my-postgres-se']);

  const roles = table(await kubectlOk(t, ['get', 'postgresroles', '-n', ns]));
  t.deepEqual(roles[0], ['NAME', 'STATUS', 'VAULT ROLE', 'PATH', 'AGE']);
  t.deepEqual(roles[1]?.slice(0, 4), ['role', 'Success', 'k8s.-.columns.role', 'my-postgres-se']);

  // One word lists everything Leasehold serves in a namespace.
  const all = await kubectlOk(t, ['get', 'leasehold', '-n', ns, '-o', 'name']);
  for (const name of [
    'databaseaccessrequest.engine.kubevault.com/shown',
    'secretengine.engine.kubevault.com/se',
    'postgresrole.engine.kubevault.com/role',
  ])
    t.true(all.includes(name), all);
});

// ---- Installing, and who may do what ---------------------------------------------------------------------------

test('the install kustomization applies, and its roles let people request, approve and administer as intended', async (t) => {
  const { env } = t.context;
  // A server-side dry run can't create the namespace its namespaced objects go into: create it for real first.
  await kubectlOk(t, ['create', 'namespace', 'leasehold-system']);
  const dry = await kubectlOk(t, ['apply', '-k', path.join(root, 'manifests'), '--dry-run=server']);
  t.regex(dry, /deployment\.apps\/leasehold created \(server dry run\)/);
  t.notRegex(dry, /mutatingadmissionpolic/, 'the default install needs no alpha API');
  // Where MutatingAdmissionPolicy is served (as on the test stack), the requester policy is added on top.
  const withRequester = await kubectlOk(t, [
    'apply',
    '-f',
    path.join(root, 'manifests/admission/requester-mutating.yaml'),
    '--dry-run=server',
  ]);
  t.regex(
    withRequester,
    /mutatingadmissionpolicy\.admissionregistration\.k8s\.io\/leasehold-requester created \(server dry run\)/,
  );
  await kubectlOk(t, ['apply', '-k', path.join(root, 'manifests')]);

  const ns = 'team';
  await kubectlOk(t, ['create', 'namespace', ns]);
  await kubectlOk(t, ['create', 'rolebinding', 'alice-edit', '-n', ns, '--clusterrole=edit', '--user=alice']);
  await kubectlOk(t, [
    'create',
    'rolebinding',
    'bob-approves',
    '-n',
    ns,
    '--clusterrole=leasehold-approver',
    '--user=bob',
  ]);
  await kubectlOk(t, [
    'create',
    'rolebinding',
    'carol-admin',
    '-n',
    ns,
    '--clusterrole=leasehold-admin',
    '--user=carol',
  ]);
  const as = (user: 'alice' | 'bob' | 'carol') => ({ kubeconfig: env.kubernetes.users[user].kubeconfig });
  const base = accessRequest('alices');
  // For a role in the request's namespace, where bob's RoleBinding grants `approve` on it (manifests/admission).
  const req = {
    ...base,
    metadata: { name: 'alices', namespace: ns },
    spec: { ...spec(base), roleRef: { kind: 'PostgresRole', name: 'role', namespace: ns } },
  };

  // Namespace editors may request (leasehold-requester is aggregated into edit by kube-controller-manager)...
  await eventually(
    t,
    'alice (edit) to be allowed to create a DatabaseAccessRequest',
    async () => (await kubectl(t, ['create', '-f', '-'], { ...as('alice'), input: JSON.stringify(req) })).code === 0,
    60_000,
  );
  // ...but not approve their own request.
  const selfApprove = await kubectl(t, ['replace', '--subresource=status', '-f', '-'], {
    ...as('alice'),
    input: JSON.stringify({ ...req, status: { conditions: [approved()] } }),
  });
  t.regex(selfApprove.stderr, /forbidden/i);
  // Approvers may approve, and may not create requests or roles.
  const current = await getObject(t, 'dar', ns, 'alices');
  // The admission policies (manifests/admission) want the decider named in the message.
  const approve = await kubectl(t, ['replace', '--subresource=status', '-f', '-'], {
    ...as('bob'),
    input: JSON.stringify({
      ...current,
      status: { conditions: [approved('This was approved by: bob (ticket OPS-1)')] },
    }),
  });
  t.is(approve.code, 0, approve.stderr);
  t.regex(
    (
      await kubectl(t, ['create', '-f', '-'], {
        ...as('bob'),
        input: JSON.stringify({ ...req, metadata: { name: 'bobs', namespace: ns } }),
      })
    ).stderr,
    /forbidden/i,
  );
  // Editors can't configure what is requestable; Leasehold admins can.
  const role = { ...postgresRole(), metadata: { name: 'role', namespace: ns } };
  t.regex(
    (await kubectl(t, ['create', '-f', '-'], { ...as('alice'), input: JSON.stringify(role) })).stderr,
    /forbidden/i,
  );
  t.is((await kubectl(t, ['create', '-f', '-'], { ...as('carol'), input: JSON.stringify(role) })).code, 0);
});

test("the operator's ClusterRole allows what the operator does and no more", async (t) => {
  // Installed by the previous test if it ran first; apply is idempotent either way.
  await kubectl(t, ['create', 'namespace', 'leasehold-system']);
  await kubectlOk(t, ['apply', '-k', path.join(root, 'manifests')]);
  const sa = 'system:serviceaccount:leasehold-system:leasehold';
  const can = async (...args: string[]) => (await kubectl(t, ['auth', 'can-i', `--as=${sa}`, ...args])).stdout.trim();
  const ns = 'operator-rbac';
  await kubectlOk(t, ['create', 'namespace', ns]);

  // `kubectl auth can-i VERB TYPE/NAME`: a subresource goes in --subresource, not after a slash.
  for (const [verb, resource, subresource] of [
    ['patch', 'databaseaccessrequests.engine.kubevault.com', ''],
    ['update', 'databaseaccessrequests.engine.kubevault.com', 'status'],
    ['patch', 'postgresroles.engine.kubevault.com', 'status'],
    ['patch', 'appbindings.appcatalog.appscode.com', 'status'],
    ['patch', 'mysqlroles.engine.kubevault.com', 'status'],
    ['patch', 'mariadbroles.engine.kubevault.com', 'status'],
    ['patch', 'redisroles.engine.kubevault.com', 'status'],
    ['update', 'mysqlroles.engine.kubevault.com', 'finalizers'],
    ['watch', 'redisroles.engine.kubevault.com', ''],
    ['create', 'secrets', ''],
    ['create', 'serviceaccounts', 'token'],
    ['create', 'rolebindings.rbac.authorization.k8s.io', ''],
    ['patch', 'deployments.apps', ''],
    ['create', 'events.events.k8s.io', ''],
    ['create', 'events', ''],
    // A Vault AppBinding's in-use finalizer (a JSON patch guarded by a test of the list).
    ['patch', 'appbindings.appcatalog.appscode.com', ''],
  ] as const)
    t.is(
      await can(verb, resource, `--subresource=${subresource}`, '-n', ns),
      'yes',
      `${verb} ${resource} ${subresource}`,
    );
  for (const [verb, resource, subresource] of [
    ['delete', 'namespaces', ''],
    ['create', 'clusterrolebindings.rbac.authorization.k8s.io', ''],
    ['delete', 'deployments.apps', ''],
    ['create', 'pods', ''],
    ['create', 'pods', 'exec'],
    ['update', 'appbindings.appcatalog.appscode.com', ''],
    ['create', 'databaseaccessrequests.engine.kubevault.com', ''],
    ['delete', 'postgresroles.engine.kubevault.com', ''],
    ['get', 'serviceaccounts', 'token'],
    ['update', 'deployments.apps', 'scale'],
  ] as const)
    t.is(
      await can(verb, resource, `--subresource=${subresource}`, '-n', ns),
      'no',
      `${verb} ${resource} ${subresource}`,
    );
  t.is(await can('update', 'leases.coordination.k8s.io', '-n', 'leasehold-system'), 'yes');
  t.is(await can('update', 'leases.coordination.k8s.io', '-n', ns), 'no');

  // RBAC refuses to grant what the granter doesn't hold: the operator must be able to create the Role that
  // lets a request's subjects read its Secret, and the RoleBinding for it.
  const grant = [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'cred-reader', namespace: ns },
      rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['req-abc123'], verbs: ['get'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'cred-reader', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cred-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: ns }],
    },
  ];
  for (const o of grant) await kubectlOk(t, ['create', `--as=${sa}`, '-f', '-'], { input: JSON.stringify(o) });
  t.pass();
});

test("what routes leases can't move under them: a SecretEngine's Vault and database, a PostgresRole's Vault, mount and database", async (t) => {
  const se = { ...secretEngine(), metadata: { name: 'routed', namespace: NS } };
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(se) });
  for (const [patch, message] of [
    [{ spec: { vaultRef: { name: 'other-vault' } } }, /spec\.vaultRef: Invalid value.*vaultRef is immutable/],
    [
      { spec: { postgres: { databaseRef: { name: 'other-db' } } } },
      /spec\.postgres\.databaseRef: Invalid value.*postgres\.databaseRef is immutable/,
    ],
  ] as const) {
    const r = await kubectl(t, [
      'patch',
      'secretengine',
      'routed',
      '-n',
      NS,
      '--type=merge',
      '-p',
      JSON.stringify(patch),
    ]);
    t.regex(r.stderr, message);
  }
  const role = { ...postgresRole(), metadata: { name: 'routed', namespace: NS } };
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(role) });
  for (const [field, value] of [
    ['databaseRef', { name: 'other-db' }],
    ['path', 'elsewhere'],
    ['vaultRef', { name: 'other-vault' }],
  ] as const) {
    const r = await kubectl(t, [
      'patch',
      'postgresrole',
      'routed',
      '-n',
      NS,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { [field]: value } }),
    ]);
    t.regex(r.stderr, new RegExp(`spec\\.${field}: Invalid value.*${field} is immutable`), field);
  }
  // The same for the other kinds: a MySQL engine's database and kind, a RedisRole's SecretEngine.
  const mysqlEngine = { ...engineFor('mysql'), metadata: { name: 'routed-mysql', namespace: NS } };
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(mysqlEngine) });
  const moved = await kubectl(t, [
    'patch',
    'secretengine',
    'routed-mysql',
    '-n',
    NS,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { mysql: { databaseRef: { name: 'other-db' } } } }),
  ]);
  t.regex(moved.stderr, /spec\.mysql\.databaseRef: Invalid value.*mysql\.databaseRef is immutable/);
  const switched = await kubectl(t, [
    'patch',
    'secretengine',
    'routed-mysql',
    '-n',
    NS,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { mysql: null, mariadb: { databaseRef: { name: 'mysql' } } } }),
  ]);
  t.regex(switched.stderr, /the kind of database/);
  const redis = { ...redisRole(), metadata: { name: 'routed-redis', namespace: NS } };
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(redis) });
  const r = await kubectl(t, [
    'patch',
    'redisrole',
    'routed-redis',
    '-n',
    NS,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { secretEngineRef: { name: 'other' } } }),
  ]);
  t.regex(
    r.stderr,
    /spec\.secretEngineRef: Invalid value.*secretEngineRef is immutable.*create another RedisRole instead/,
  );
  const ok = await kubectl(t, [
    'patch',
    'postgresrole',
    'routed',
    '-n',
    NS,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { maxTTL: '48h' } }),
  ]);
  t.is(ok.code, 0, ok.stderr);
});

test("a SecretEngine's mount path cannot be moved (it would revoke every lease under it), other fields can change", async (t) => {
  const se = { ...secretEngine(), metadata: { name: 'moving', namespace: NS } };
  await kubectlOk(t, ['create', '-f', '-'], { input: JSON.stringify(se) });
  for (const path of ['elsewhere', null]) {
    const r = await kubectl(t, [
      'patch',
      'secretengine',
      'moving',
      '-n',
      NS,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { path } }),
    ]);
    t.regex(r.stderr, /spec\.path: Invalid value.*path is immutable/, `path → ${path}`);
  }
  const ok = await kubectl(t, [
    'patch',
    'secretengine',
    'moving',
    '-n',
    NS,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { maxLeaseTTL: '48h' } }),
  ]);
  t.is(ok.code, 0, ok.stderr);
});
