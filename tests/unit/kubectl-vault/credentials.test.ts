import test from 'ava';
import {
  decodeSecret,
  engineOfRoleKind,
  formatCredentials,
  shellQuote,
} from '../../../cmd/kubectl-vault/credentials.ts';
import { CommandError } from '../../../cmd/kubectl-vault/errors.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const full = { host: 'db.demo.svc', port: '5432', dbname: 'app', username: 'v-token-x', password: "p'w d$x" };

test('decodeSecret decodes every key', (t) => {
  t.deepEqual(decodeSecret({ data: { username: b64('u'), password: b64('p') } }), { password: 'p', username: 'u' });
  t.deepEqual(decodeSecret({}), {});
});

test('env: libpq variables, shell-quoted so eval is safe', (t) => {
  t.is(
    formatCredentials(full, 'env'),
    "export PGHOST=db.demo.svc\nexport PGPORT=5432\nexport PGDATABASE=app\nexport PGUSER=v-token-x\nexport PGPASSWORD='p'\\''w d$x'\n",
  );
  t.is(shellQuote('$(rm -rf /)'), "'$(rm -rf /)'");
  t.is(formatCredentials({ username: 'u', password: 'p' }, 'env'), 'export PGUSER=u\nexport PGPASSWORD=p\n');
});

test('json: all keys', (t) => {
  t.deepEqual(JSON.parse(formatCredentials({ ...full, extra: 'x' }, 'json')), { ...full, extra: 'x' });
});

test("uri: the Secret's own uri, else built and percent-encoded", (t) => {
  t.is(formatCredentials({ ...full, uri: 'postgresql://given' }, 'uri'), 'postgresql://given\n');
  t.is(formatCredentials(full, 'uri'), "postgresql://v-token-x:p'w%20d%24x@db.demo.svc:5432/app\n");
  t.is(
    formatCredentials({ username: 'u', password: 'p@ss/:', host: '::1', sslmode: 'require' }, 'uri'),
    'postgresql://u:p%40ss%2F%3A@[::1]/?sslmode=require\n',
  );
});

test('uri without a host, or an empty Secret, is an error rather than a guess', (t) => {
  t.throws(() => formatCredentials({ username: 'u', password: 'p' }, 'uri'), {
    instanceOf: CommandError,
    message: /names no host/,
  });
  t.throws(() => formatCredentials({}, 'env'), { instanceOf: CommandError, message: /empty/ });
  t.throws(() => formatCredentials({ other: 'x' }, 'env'), { instanceOf: CommandError, message: /use -o json/ });
});

test('env for a MySQL or MariaDB credential: the names the mysql client reads, the password in MYSQL_PWD', (t) => {
  const mysql = {
    host: 'mysql.demo.svc',
    port: '3306',
    database: 'app',
    username: 'v-k8s-ro-x',
    password: "p'w",
    uri: 'mysql://v-k8s-ro-x:p%27w@mysql.demo.svc:3306/app',
  };
  t.is(
    formatCredentials(mysql, 'env', engineOfRoleKind('MySQLRole')),
    'export MYSQL_HOST=mysql.demo.svc\nexport MYSQL_TCP_PORT=3306\nexport MYSQL_DATABASE=app\nexport MYSQL_USER=v-k8s-ro-x\n' +
      "export MYSQL_PWD='p'\\''w'\nexport DATABASE_URL=mysql://v-k8s-ro-x:p%27w@mysql.demo.svc:3306/app\n",
  );
  t.is(engineOfRoleKind('MariaDBRole'), 'mysql');
  t.notRegex(formatCredentials(mysql, 'env', 'mysql'), /PGPASSWORD/);
});

test('env for a Redis credential: the password in REDISCLI_AUTH, which redis-cli reads', (t) => {
  const redis = {
    host: '127.0.0.1',
    port: '6379',
    database: '0',
    username: 'V_K8S_RW_X',
    password: 'secret',
    uri: 'redis://V_K8S_RW_X:secret@127.0.0.1:6379/0',
  };
  t.is(
    formatCredentials(redis, 'env', engineOfRoleKind('RedisRole')),
    'export REDIS_HOST=127.0.0.1\nexport REDIS_PORT=6379\nexport REDIS_DB=0\nexport REDIS_USER=V_K8S_RW_X\nexport REDISCLI_AUTH=secret\n' +
      'export REDIS_URL=redis://V_K8S_RW_X:secret@127.0.0.1:6379/0\n',
  );
});

test("uri without a uri key is built in the engine's scheme", (t) => {
  t.is(
    formatCredentials({ host: 'm', port: '3306', username: 'u', password: 'p@' }, 'uri', 'mysql'),
    'mysql://u:p%40@m:3306/\n',
  );
  t.is(
    formatCredentials({ host: 'r', port: '6379', username: 'u', password: 'p', database: '2' }, 'uri', 'redis'),
    'redis://u:p@r:6379/2\n',
  );
  t.is(engineOfRoleKind(undefined), 'postgres');
});
