// A Redis AppBinding's login check says why it failed in words a person can act on, and never repeats the admin
// password, whatever the server or the driver says.
import test from 'ava';
import net from 'node:net';
import { describeRedisError, probeRedis } from '../../../lib/redis/probe.ts';

const WHERE = 'Redis at cache.demo:6379';
const PASSWORD = 'S3cret-Pa55word';
const serverError = (message: string) => Object.assign(new Error(message), { name: 'SimpleError' });
const socketError = (code: string, message: string) => Object.assign(new Error(message), { code });

test('each known failure has its own reason and a message saying what to check', (t) => {
  const cases: Array<[Error, string, RegExp]> = [
    [
      serverError('WRONGPASS invalid username-password pair or user is disabled.'),
      'AuthenticationFailed',
      /username or password in the AppBinding's Secret was refused/,
    ],
    [serverError('ERR invalid password'), 'AuthenticationFailed', /was refused/],
    [serverError('NOAUTH Authentication required.'), 'AuthenticationFailed', /requires a login/],
    [
      serverError(
        'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
      ),
      'AuthenticationFailed',
      /has no password set/,
    ],
    [
      serverError(`NOPERM User admin has no permissions to run the 'ping' command`),
      'AuthenticationFailed',
      /its ACL refuses the probe's commands \(NOPERM User admin has no permissions to run the 'ping' command\)/,
    ],
    [
      serverError('ERR DB index is out of range'),
      'DatabaseNotFound',
      /database number in the AppBinding's path does not exist/,
    ],
    [
      Object.assign(new Error('Connection timeout'), { name: 'ConnectionTimeoutError' }),
      'Unreachable',
      /connection timed out$/,
    ],
    [socketError('ENOTFOUND', 'getaddrinfo ENOTFOUND cache.demo'), 'DNSLookupFailed', /host name does not resolve/],
    [socketError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:6379'), 'Unreachable', /connection refused$/],
    [socketError('ETIMEDOUT', 'connect ETIMEDOUT'), 'Unreachable', /connection timed out$/],
    [
      socketError('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'),
      'TLSError',
      /TLS verification failed \(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
    ],
    [socketError('ERR_TLS_CERT_ALTNAME_INVALID', 'Hostname/IP does not match'), 'TLSError', /TLS verification failed/],
    [
      serverError('LOADING Redis is loading the dataset in memory'),
      'Unreachable',
      /LOADING Redis is loading the dataset in memory$/,
    ],
  ];
  for (const [err, reason, message] of cases) {
    const d = describeRedisError(err, WHERE);
    t.is(d.reason as string, reason, err.message);
    t.regex(d.message, message);
    t.true(d.message.startsWith(`${WHERE}: `));
  }
});

test('an unrecognised driver message that repeats the password, or a URL with it, reaches no message', (t) => {
  const d = describeRedisError(
    new Error(`cannot reach redis://admin:${PASSWORD}@cache.demo:6379 (AUTH admin ${PASSWORD})`),
    WHERE,
    PASSWORD,
  );
  t.is(d.reason, 'Unreachable');
  t.false(d.message.includes(PASSWORD));
  t.regex(d.message, /redis:\/\/admin:\[REDACTED\]@cache\.demo/);
});

/** A server that answers every command with `reply` (RESP), counting the connections it saw. */
async function fakeRedis(
  t: { teardown(fn: () => void): void },
  reply: (command: string) => string,
): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    connections += 1;
    sockets.push(s);
    s.on('data', (chunk) => s.write(reply(chunk.toString())));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

test('a server that refuses the login is AuthenticationFailed', async (t) => {
  const { port } = await fakeRedis(t, () => '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
  const outcome = await probeRedis({ host: '127.0.0.1', port, username: 'admin', password: PASSWORD }, WHERE);
  t.deepEqual(outcome, {
    ok: false,
    reason: 'AuthenticationFailed',
    message: `${WHERE}: the username or password in the AppBinding's Secret was refused`,
  });
});

test('a server error that repeats the password reaches the message masked', async (t) => {
  const { port } = await fakeRedis(t, () => `-ERR unexpected password ${PASSWORD}\r\n`);
  const outcome = await probeRedis({ host: '127.0.0.1', port, username: 'admin', password: PASSWORD }, WHERE);
  t.false(outcome.ok);
  if (outcome.ok) return;
  t.is(outcome.reason, 'Unreachable');
  t.false(outcome.message.includes(PASSWORD));
  t.regex(outcome.message, /\[REDACTED\]/);
});

test('a server that refuses connections is Unreachable, "connection refused", and the probe does not throw', async (t) => {
  // A port that was just free: nothing listens on it.
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const outcome = await probeRedis({ host: '127.0.0.1', port, username: 'admin', password: PASSWORD }, WHERE);
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${WHERE}: connection refused` });
});

test('an aborted probe ends at once, says it was cancelled, and closes its connection', async (t) => {
  // A server that accepts the connection and never answers: only the abort ends the probe.
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const abort = new AbortController();
  const closed = new Promise<void>((resolve) =>
    server.once('connection', (s) => {
      s.once('close', () => resolve());
      abort.abort(new Error('reconcile cancelled'));
    }),
  );
  const outcome = await probeRedis(
    {
      host: '127.0.0.1',
      port: (server.address() as net.AddressInfo).port,
      username: 'admin',
      password: PASSWORD,
      connectTimeoutMs: 20_000,
    },
    WHERE,
    { signal: abort.signal },
  );
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${WHERE}: cancelled` });
  await closed;
  t.pass('the server saw the connection closed');
});

test('a probe whose signal is already aborted does not connect', async (t) => {
  const fake = await fakeRedis(t, () => '+OK\r\n');
  const outcome = await probeRedis(
    { host: '127.0.0.1', port: fake.port, username: 'admin', password: PASSWORD },
    WHERE,
    { signal: AbortSignal.abort() },
  );
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${WHERE}: cancelled` });
  t.is(fake.connections(), 0);
});
