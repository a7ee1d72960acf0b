// What each engine reads from a database AppBinding, and what its credential Secret's keys hold: the address
// variables, escaping of awkward passwords, the default keys, and the connection Vault's plugin is given.
import test from 'ava';
import type { AppBinding, EngineDatabase } from '../../../api/index.ts';
import { ENGINES } from '../../../controllers/databaseaccessrequest/engine.ts';
import { cnfEscape, mysql } from '../../../controllers/databaseaccessrequest/engines/mysql.ts';
import { redis } from '../../../controllers/databaseaccessrequest/engines/redis.ts';
import {
  checkTemplates,
  mergeTemplates,
  renderSecretData,
  templateView,
} from '../../../controllers/databaseaccessrequest/template.ts';
import { databaseEndpoint, vaultConnectionConfig } from '../../../controllers/shared/database-connection.ts';

const ab = (clientConfig: AppBinding['spec']['clientConfig'], name = 'db'): AppBinding => ({
  apiVersion: 'appcatalog.appscode.com/v1alpha1',
  kind: 'AppBinding',
  metadata: { name, namespace: 'demo' },
  spec: { secret: { name: 'admin' }, clientConfig } as AppBinding['spec'],
});

/** The Secret an engine writes for `cred`, with its default keys only; and what checkTemplates finds wrong with them. */
function secretFor(
  engine: typeof mysql,
  appBinding: AppBinding | undefined,
  cred: { username: string; password: string },
): Record<string, unknown> {
  const address = engine.variables.address(
    appBinding ? engine.address(appBinding) : undefined,
    'no database AppBinding',
  );
  const templates = mergeTemplates(engine.variables.defaults?.(address), 'role', undefined);
  const data = renderSecretData(templates, templateView(address, engine.variables.credential(cred)));
  return { problems: checkTemplates(templates, address, engine.variables.known), ...data };
}

test('every role kind Leasehold serves has an engine, under the kind a request names', (t) => {
  t.deepEqual(Object.keys(ENGINES).sort(), ['MariaDBRole', 'MySQLRole', 'PostgresRole', 'RedisRole']);
  for (const [kind, engine] of Object.entries(ENGINES)) t.is(engine.roleKind, kind);
});

test("a MySQL AppBinding is read in the Go driver's tcp(host:port)/db form KubeDB writes, and as a URL or a service", (t) => {
  t.like(databaseEndpoint(ab({ url: 'tcp(mysql.demo.svc:3307)/shop?tls=skip-verify' }), 3306), {
    host: 'mysql.demo.svc',
    port: 3307,
    path: 'shop',
    params: { tls: 'skip-verify' },
  });
  t.like(databaseEndpoint(ab({ url: 'tcp([fd00::1])/' }), 3306), { host: 'fd00::1', port: 3306, path: '' });
  t.like(databaseEndpoint(ab({ url: 'mysql://mysql.demo.svc/app' }), 3306), {
    host: 'mysql.demo.svc',
    port: 3306,
    path: 'app',
  });
  t.like(databaseEndpoint(ab({ service: { name: 'mariadb', scheme: 'mysql', port: 3306 } }), 3306), {
    host: 'mariadb.demo.svc',
    port: 3306,
    path: '',
  });
});

test('a MySQL Secret: host, port, database and a mysql:// uri whose user and password are percent-encoded', (t) => {
  const data = secretFor(mysql, ab({ url: 'tcp(mysql.demo.svc:3306)/my db' }), {
    username: 'v-k8s-ro-abc',
    password: 'p@ss:w/rd?#%',
  });
  t.deepEqual(data, {
    problems: [],
    host: 'mysql.demo.svc',
    port: '3306',
    database: 'my db',
    username: 'v-k8s-ro-abc',
    password: 'p@ss:w/rd?#%',
    uri: 'mysql://v-k8s-ro-abc:p%40ss%3Aw%2Frd%3F%23%25@mysql.demo.svc:3306/my%20db',
  });
});

test('a MySQL AppBinding naming no database: no database key, and the uri ends at the slash', (t) => {
  const data = secretFor(mysql, ab({ url: 'tcp(10.0.0.5:3306)/' }), { username: 'u', password: 'p' });
  t.deepEqual(data.problems, []);
  t.false('database' in data);
  t.is(data.uri, 'mysql://u:p@10.0.0.5:3306/');
});

test("a MySQL role without a database AppBinding (a databaseName) still gets username and password, and nothing it can't fill in", (t) => {
  const data = secretFor(mysql, undefined, { username: 'u', password: 'p' });
  t.deepEqual(data, { problems: [], username: 'u', password: 'p' });
});

test('a my.cnf template gets the password with backslashes and double quotes escaped', (t) => {
  t.is(cnfEscape('a"b\\c'), 'a\\"b\\\\c');
  const address = mysql.variables.address(mysql.address(ab({ url: 'tcp(db:3306)/' })), '');
  const templates = mergeTemplates(
    { 'my.cnf': '[client]\nuser="<%cnfUser%>"\npassword="<%cnfPassword%>"\nhost=<%host%>\n' },
    'role',
    undefined,
  );
  t.deepEqual(checkTemplates(templates, address, mysql.variables.known), []);
  const data = renderSecretData(
    templates,
    templateView(address, mysql.variables.credential({ username: 'u', password: 'x"y\\z' })),
  );
  t.is(data['my.cnf'], '[client]\nuser="u"\npassword="x\\"y\\\\z"\nhost=db\n');
});

test('a template naming the database of a MySQL AppBinding without one is refused, saying why', (t) => {
  const address = mysql.variables.address(mysql.address(ab({ url: 'tcp(db:3306)/' })), '');
  const problems = checkTemplates(
    mergeTemplates({ db: '<%dbname%>' }, 'MySQLRole demo/r spec.secretTemplate', undefined),
    address,
    mysql.variables.known,
  );
  t.is(problems.length, 1);
  t.regex(problems[0]!, /variable "dbname" has no value: the database AppBinding's URL names no database/);
});

test('a Redis Secret: host, port, logical database and a redis:// uri; rediss:// when the AppBinding says TLS', (t) => {
  const plain = secretFor(redis, ab({ service: { name: 'redis', scheme: 'redis', port: 6380 } }), {
    username: 'V_K8S_RW_1',
    password: 'a b@c',
  });
  t.deepEqual(plain, {
    problems: [],
    host: 'redis.demo.svc',
    port: '6380',
    database: '0',
    username: 'V_K8S_RW_1',
    password: 'a b@c',
    uri: 'redis://V_K8S_RW_1:a%20b%40c@redis.demo.svc:6380/0',
  });
  const tls = secretFor(redis, ab({ url: 'rediss://cache.example.com/3' }), { username: 'u', password: 'p' });
  t.is(tls.uri, 'rediss://u:p@cache.example.com:6379/3');
});

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const mysqlDb: EngineDatabase = { type: 'mysql', config: { databaseRef: { name: 'db' } } };
const redisDb: EngineDatabase = { type: 'redis', config: { databaseRef: { name: 'db' }, allowedRoles: ['k8s.*'] } };

test("Vault's MySQL connection: {{username}}:{{password}}@tcp(host:port)/ with the driver's parameters kept, the CA as tls_ca", (t) => {
  const c = vaultConnectionConfig(
    mysqlDb,
    ab({ url: 'tcp(mysql.demo.svc:3306)/app?tls=custom', caBundle: Buffer.from(CA).toString('base64') }),
    { username: 'root', password: 'pw' },
  );
  t.like(c, {
    pluginName: 'mysql-database-plugin',
    connectionUrl: '{{username}}:{{password}}@tcp(mysql.demo.svc:3306)/?tls=custom',
    username: 'root',
    password: 'pw',
    allowedRoles: ['*'],
  });
  t.deepEqual(c.parameters, { tls_ca: CA });
  t.is(
    vaultConnectionConfig(
      { type: 'mariadb', config: { databaseRef: { name: 'db' }, pluginName: 'mysql-legacy-database-plugin' } },
      ab({ url: 'tcp([::1]:3306)/' }),
      { username: 'r', password: 'p' },
    ).connectionUrl,
    '{{username}}:{{password}}@tcp([::1]:3306)/',
  );
});

test("Vault's Redis connection: host, port and tls fields, no URL; a caBundle turns TLS on and is passed as ca_cert", (t) => {
  const plain = vaultConnectionConfig(redisDb, ab({ service: { name: 'redis', scheme: 'redis', port: 6379 } }), {
    username: 'admin',
    password: 'pw',
  });
  t.like(plain, { pluginName: 'redis-database-plugin', username: 'admin', password: 'pw', allowedRoles: ['k8s.*'] });
  t.is(plain.connectionUrl, undefined);
  t.deepEqual(plain.parameters, { host: 'redis.demo.svc', port: 6379, tls: false });
  const tls = vaultConnectionConfig(
    redisDb,
    ab({ url: 'rediss://cache:6380', caBundle: Buffer.from(CA).toString('base64'), insecureSkipTLSVerify: true }),
    { password: 'pw' },
  );
  t.deepEqual(tls.parameters, { host: 'cache', port: 6380, tls: true, insecure_tls: true, ca_cert: CA });
  t.is(tls.username, 'default', "Redis's default user when the Secret names none");
});

test('a MySQL admin Secret without a username is refused naming the keys it needs', (t) => {
  t.throws(() => vaultConnectionConfig(mysqlDb, ab({ url: 'tcp(db:3306)/' }), { password: 'pw' }), {
    message: /must hold "username" and "password" keys/,
  });
});
