// A PostgreSQL AppBinding's login check says why it failed in words a person can act on, and never repeats the
// admin password, whatever the driver's own message contains.
import test from 'ava';
import net from 'node:net';
import { describePgError, probePostgres } from '../../../lib/postgres/probe.ts';

const WHERE = 'PostgreSQL at db.demo:5432';
const PASSWORD = 'S3cret-Pa55word';
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

test('each known failure has its own reason and a message saying what to check', (t) => {
  const cases: Array<[Error, string, RegExp]> = [
    [
      pgError('28P01', `password authentication failed for user "admin"`),
      'AuthenticationFailed',
      /username or password in the AppBinding's Secret was refused/,
    ],
    [pgError('28000', 'no pg_hba.conf entry for host'), 'AuthenticationFailed', /was refused/],
    [
      pgError('3D000', 'database "nope" does not exist'),
      'DatabaseNotFound',
      /database named in the AppBinding's path does not exist/,
    ],
    [pgError('ENOTFOUND', 'getaddrinfo ENOTFOUND db.demo'), 'DNSLookupFailed', /host name does not resolve/],
    [pgError('EAI_AGAIN', 'getaddrinfo EAI_AGAIN db.demo'), 'DNSLookupFailed', /host name does not resolve/],
    [pgError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:5432'), 'Unreachable', /connection refused$/],
    [pgError('ETIMEDOUT', 'connect ETIMEDOUT'), 'Unreachable', /connection timed out$/],
    [
      pgError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'),
      'TLSError',
      /TLS verification failed \(SELF_SIGNED_CERT_IN_CHAIN\)/,
    ],
    [pgError('ERR_TLS_CERT_ALTNAME_INVALID', 'Hostname/IP does not match'), 'TLSError', /TLS verification failed/],
    [
      new Error('Connection terminated due to connection timeout'),
      'Unreachable',
      /Connection terminated due to connection timeout/,
    ],
  ];
  for (const [err, reason, message] of cases) {
    const d = describePgError(err, WHERE);
    t.is(d.reason as string, reason, err.message);
    t.regex(d.message, message);
    t.true(d.message.startsWith(`${WHERE}: `));
  }
});

test('an unrecognised driver message that repeats the password, or a URL with it, reaches no message', (t) => {
  const d = describePgError(
    new Error(`could not connect to postgres://admin:${PASSWORD}@db.demo:5432/app with password ${PASSWORD}`),
    WHERE,
    PASSWORD,
  );
  t.is(d.reason, 'Unreachable');
  t.false(d.message.includes(PASSWORD));
  t.regex(d.message, /postgres:\/\/admin:\[REDACTED\]@db\.demo/);
});

test('a server that refuses connections is Unreachable, "connection refused", and the probe does not throw', async (t) => {
  // A port that was just free: nothing listens on it.
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const outcome = await probePostgres(
    { host: '127.0.0.1', port, database: 'app', username: 'admin', password: PASSWORD },
    WHERE,
  );
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${WHERE}: connection refused` });
});

test('an aborted probe ends at once and says it was cancelled', async (t) => {
  // A server that accepts the connection and never speaks: only the abort ends the probe.
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const abort = new AbortController();
  server.once('connection', () => abort.abort(new Error('reconcile cancelled')));
  const outcome = await probePostgres(
    {
      host: '127.0.0.1',
      port: (server.address() as net.AddressInfo).port,
      database: 'app',
      username: 'admin',
      password: PASSWORD,
      connectTimeoutMs: 20_000,
    },
    WHERE,
    { signal: abort.signal },
  );
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${WHERE}: cancelled` });
});
