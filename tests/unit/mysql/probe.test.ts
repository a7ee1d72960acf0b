// A MySQL or MariaDB AppBinding's login check says why it failed in words a person can act on, and never repeats
// the admin password, whatever the driver's own message contains.
import test from 'ava';
import net from 'node:net';
import { describeMySQLError, probeMySQL } from '../../../lib/mysql/probe.ts';

const WHERE = 'MySQL at db.demo:3306';
const PASSWORD = 'S3cret-Pa55word';
const driverError = (code: string, message: string, errno?: number) =>
  Object.assign(new Error(message), { code, errno });

test('each known failure has its own reason and a message saying what to check', (t) => {
  const cases: Array<[Error, string, RegExp]> = [
    [
      driverError('ER_ACCESS_DENIED_ERROR', `Access denied for user 'admin'@'10.0.0.7' (using password: YES)`, 1045),
      'AuthenticationFailed',
      /username or password in the AppBinding's Secret was refused/,
    ],
    [
      driverError('ER_ACCESS_DENIED_NO_PASSWORD_ERROR', `Access denied for user 'admin'@'localhost'`, 1698),
      'AuthenticationFailed',
      /was refused/,
    ],
    [
      driverError('ER_HOST_NOT_PRIVILEGED', `Host '10.0.0.7' is not allowed to connect to this MariaDB server`, 1130),
      'AuthenticationFailed',
      /from the operator's address/,
    ],
    [
      driverError('ER_DBACCESS_DENIED_ERROR', `Access denied for user 'admin'@'%' to database 'app'`, 1044),
      'AuthenticationFailed',
      /may not use the database named in the AppBinding's path/,
    ],
    [
      driverError('ER_BAD_DB_ERROR', `Unknown database 'nope'`, 1049),
      'DatabaseNotFound',
      /database named in the AppBinding's path does not exist/,
    ],
    [driverError('ENOTFOUND', 'getaddrinfo ENOTFOUND db.demo'), 'DNSLookupFailed', /host name does not resolve/],
    [driverError('EAI_AGAIN', 'getaddrinfo EAI_AGAIN db.demo'), 'DNSLookupFailed', /host name does not resolve/],
    [driverError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:3306'), 'Unreachable', /connection refused$/],
    [driverError('ETIMEDOUT', 'connect ETIMEDOUT'), 'Unreachable', /connection timed out$/],
    [driverError('ER_CON_COUNT_ERROR', 'Too many connections', 1040), 'Unreachable', /too many connections$/],
    [
      driverError('HANDSHAKE_NO_SSL_SUPPORT', 'Server does not support secure connection'),
      'TLSError',
      /TLS was asked for but the server does not offer it/,
    ],
    [
      driverError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'),
      'TLSError',
      /TLS verification failed \(SELF_SIGNED_CERT_IN_CHAIN\)/,
    ],
    [driverError('ERR_TLS_CERT_ALTNAME_INVALID', 'Hostname/IP does not match'), 'TLSError', /TLS verification failed/],
    [
      driverError('PROTOCOL_CONNECTION_LOST', 'Connection lost: The server closed the connection.'),
      'Unreachable',
      /Connection lost: The server closed the connection\.$/,
    ],
  ];
  for (const [err, reason, message] of cases) {
    const d = describeMySQLError(err, WHERE);
    t.is(d.reason as string, reason, err.message);
    t.regex(d.message, message);
    t.true(d.message.startsWith(`${WHERE}: `));
  }
});

test('an unrecognised driver message that repeats the password, or a URL with it, reaches no message', (t) => {
  const d = describeMySQLError(
    new Error(`could not connect to mysql://admin:${PASSWORD}@db.demo:3306/ with password=${PASSWORD}`),
    WHERE,
    PASSWORD,
  );
  t.is(d.reason, 'Unreachable');
  t.false(d.message.includes(PASSWORD));
  t.regex(d.message, /mysql:\/\/admin:\[REDACTED\]@db\.demo/);
});

test('a server that refuses connections is Unreachable, "connection refused", and the probe does not throw', async (t) => {
  // A port that was just free: nothing listens on it.
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const outcome = await probeMySQL({ host: '127.0.0.1', port, username: 'admin', password: PASSWORD }, WHERE);
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${WHERE}: connection refused` });
});

test('an aborted probe ends at once, says it was cancelled, and closes its connection', async (t) => {
  // A server that accepts the connection and never speaks: only the abort ends the probe.
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
  const outcome = await probeMySQL(
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
  let connections = 0;
  const server = net.createServer((s) => {
    connections += 1;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const outcome = await probeMySQL(
    { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, username: 'admin', password: PASSWORD },
    WHERE,
    { signal: AbortSignal.abort() },
  );
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${WHERE}: cancelled` });
  t.is(connections, 0);
});
