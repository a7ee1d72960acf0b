// Can the operator log into a PostgreSQL server with a given admin login? One connection and `SELECT 1`, closed
// at once, and when not, why, in words a person can act on (pg's SQLSTATE codes and Node's socket errors). No
// message ever carries the password: the driver's own text is masked before it is repeated.
import pg from 'pg';

export interface PostgresProbeTarget {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  /** libpq's sslmode (from the URL's query); absent or `disable`: no TLS. */
  sslmode?: string;
  /** With TLS: skip verifying the server certificate. */
  insecureSkipTLSVerify?: boolean;
  /** With TLS: the CA bundle (PEM) to verify the server against; absent: the system's roots. */
  caPem?: string;
  /** How long to wait for the connection; default 5000 ms. */
  connectTimeoutMs?: number;
}

/** Why a login failed. `Unreachable` covers refused and timed-out connections and anything unrecognised. */
export type PostgresProbeReason =
  'AuthenticationFailed' | 'DatabaseNotFound' | 'DNSLookupFailed' | 'Unreachable' | 'TLSError';

export type PostgresProbeOutcome = { ok: true } | { ok: false; reason: PostgresProbeReason; message: string };

/**
 * Logs in to `target` and runs `SELECT 1`. Never throws for the server's or the network's failures: they come back
 * as `{ ok: false, reason, message }`, the message starting with `where` (e.g. "PostgreSQL at db.demo:5432").
 * `signal` ends the connection attempt early (reported as Unreachable, "cancelled").
 */
export async function probePostgres(
  target: PostgresProbeTarget,
  where: string,
  opts: { signal?: AbortSignal } = {},
): Promise<PostgresProbeOutcome> {
  const tls =
    !target.sslmode || target.sslmode === 'disable'
      ? false
      : { rejectUnauthorized: !target.insecureSkipTLSVerify, ca: target.caPem };
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.username,
    password: target.password,
    connectionTimeoutMillis: target.connectTimeoutMs ?? 5000,
    ssl: tls,
  });
  // An error after connect (the server going away) is emitted, not thrown: without a listener it would crash us.
  client.on('error', () => undefined);
  const { signal } = opts;
  // pg takes no signal, and a client ended while connecting never settles its connect(): race the abort instead.
  // The client is ended without waiting: a server that doesn't answer keeps the socket until the connect timeout.
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  const login = (async () => {
    await client.connect();
    await client.query('SELECT 1');
    return 'ok' as const;
  })();
  login.catch(() => undefined);
  try {
    if ((await Promise.race([login, aborted])) === 'aborted')
      return { ok: false, reason: 'Unreachable', message: `${where}: cancelled` };
    return { ok: true };
  } catch (err) {
    return { ok: false, ...describePgError(err, where, target.password) };
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    const ended = client.end().catch(() => undefined);
    if (!signal?.aborted) await ended;
  }
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
]);

/**
 * Why a PostgreSQL connection failed (`err` from pg or the socket), as a reason and a message starting with
 * `where`. `password`, when given, is masked wherever it appears in the driver's text, and so are URL userinfo and
 * `password=` pairs.
 */
export function describePgError(
  err: unknown,
  where: string,
  password?: string,
): { reason: PostgresProbeReason; message: string } {
  const e = (err ?? {}) as { code?: string; message?: string };
  switch (e.code) {
    case '28P01':
    case '28000':
      return {
        reason: 'AuthenticationFailed',
        message: `${where}: the username or password in the AppBinding's Secret was refused`,
      };
    case '3D000':
      return {
        reason: 'DatabaseNotFound',
        message: `${where}: the database named in the AppBinding's path does not exist`,
      };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { reason: 'DNSLookupFailed', message: `${where}: the host name does not resolve` };
    case 'ECONNREFUSED':
      return { reason: 'Unreachable', message: `${where}: connection refused` };
    case 'ETIMEDOUT':
      return { reason: 'Unreachable', message: `${where}: connection timed out` };
  }
  if (e.code && TLS_CODES.has(e.code))
    return { reason: 'TLSError', message: `${where}: TLS verification failed (${e.code})` };
  return { reason: 'Unreachable', message: `${where}: ${mask(e.message ?? String(err), password).slice(0, 500)}` };
}

function mask(text: string, password: string | undefined): string {
  let out = password ? text.split(password).join('[REDACTED]') : text;
  out = out
    .replace(/:\/\/([^:/@\s]+):([^@\s]+)@/g, '://$1:[REDACTED]@')
    .replace(/(password|passwd|pwd)=([^&\s"']+)/gi, '$1=[REDACTED]');
  return out;
}
