import test from 'ava';
import { decodeSecret, formatCredentials, shellQuote } from '../../../cmd/kubectl-vault/credentials.ts';
import { CommandError } from '../../../cmd/kubectl-vault/errors.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const full = { host: 'db.demo.svc', port: '5432', dbname: 'app', username: 'v-token-x', password: "p'w d$x" };

test('decodeSecret decodes every key', (t) => {
  t.deepEqual(decodeSecret({ data: { username: b64('u'), password: b64('p') } }), { password: 'p', username: 'u' });
  t.deepEqual(decodeSecret({}), {});
});

test('env: libpq variables, shell-quoted so eval is safe', (t) => {
  t.is(formatCredentials(full, 'env'),
    'export PGHOST=db.demo.svc\nexport PGPORT=5432\nexport PGDATABASE=app\nexport PGUSER=v-token-x\nexport PGPASSWORD=\'p\'\\\'\'w d$x\'\n');
  t.is(shellQuote('$(rm -rf /)'), "'$(rm -rf /)'");
  t.is(formatCredentials({ username: 'u', password: 'p' }, 'env'), 'export PGUSER=u\nexport PGPASSWORD=p\n');
});

test('json: all keys', (t) => {
  t.deepEqual(JSON.parse(formatCredentials({ ...full, extra: 'x' }, 'json')), { ...full, extra: 'x' });
});

test('uri: the Secret\'s own uri, else built and percent-encoded', (t) => {
  t.is(formatCredentials({ ...full, uri: 'postgresql://given' }, 'uri'), 'postgresql://given\n');
  t.is(formatCredentials(full, 'uri'), "postgresql://v-token-x:p'w%20d%24x@db.demo.svc:5432/app\n");
  t.is(formatCredentials({ username: 'u', password: 'p@ss/:', host: '::1', sslmode: 'require' }, 'uri'), 'postgresql://u:p%40ss%2F%3A@[::1]/?sslmode=require\n');
});

test('uri without a host, or an empty Secret, is an error rather than a guess', (t) => {
  t.throws(() => formatCredentials({ username: 'u', password: 'p' }, 'uri'), { instanceOf: CommandError, message: /names no host/ });
  t.throws(() => formatCredentials({}, 'env'), { instanceOf: CommandError, message: /empty/ });
  t.throws(() => formatCredentials({ other: 'x' }, 'env'), { instanceOf: CommandError, message: /use -o json/ });
});
