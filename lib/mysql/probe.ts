// Can the operator log into a MySQL or MariaDB server with a given admin login? One connection through mysql2 and
// `SELECT 1`, closed at once, and when not, why, in words a person can act on (the server's error numbers and
// Node's socket errors). No message ever carries the password: the driver's own text is masked before it is
// repeated. mysql2: the maintained MySQL client for Node (MySQL 8's caching_sha2 and MariaDB's native auth, TLS,
// the server's error numbers on each error), written in JavaScript with its own types.
import mysql from 'mysql2';
import {
  describeNetworkError,
  unrecognised,
  untilAborted,
  type DatabaseProbeOutcome,
  type DatabaseProbeReason,
  type ProbeFailure,
} from '../probe/common.ts';

export interface MySQLProbeTarget {
  host: string;
  port: number;
  /** The database to open, when the AppBinding names one; absent: none (a login alone). */
  database?: string;
  username: string;
  password: string;
  /** Connect with TLS (the URL's `tls=true|skip-verify|…`, or `ssl-mode`); absent or false: no TLS. */
  tls?: boolean;
  /** With TLS: skip verifying the server certificate. */
  insecureSkipTLSVerify?: boolean;
  /** With TLS: the CA bundle (PEM) to verify the server against; absent: the system's roots. */
  caPem?: string;
  /** How long to wait for the connection; default 5000 ms. */
  connectTimeoutMs?: number;
}

export type MySQLProbeReason = DatabaseProbeReason;
export type MySQLProbeOutcome = DatabaseProbeOutcome;

/**
 * Logs in to `target` and runs `SELECT 1`. Never throws for the server's or the network's failures: they come back
 * as `{ ok: false, reason, message }`, the message starting with `where` (e.g. "MySQL at db.demo:3306").
 * `signal` ends the attempt at once (reported as Unreachable, "cancelled"), the socket destroyed.
 */
export async function probeMySQL(
  target: MySQLProbeTarget,
  where: string,
  opts: { signal?: AbortSignal } = {},
): Promise<MySQLProbeOutcome> {
  if (opts.signal?.aborted) return { ok: false, reason: 'Unreachable', message: `${where}: cancelled` };
  const conn = mysql.createConnection({
    host: target.host,
    port: target.port,
    user: target.username,
    password: target.password,
    database: target.database || undefined,
    connectTimeout: target.connectTimeoutMs ?? 5000,
    ssl: target.tls ? { rejectUnauthorized: !target.insecureSkipTLSVerify, ca: target.caPem } : undefined,
  });
  // A failure after the login (the server going away) is emitted: without a listener it would crash us.
  conn.on('error', () => undefined);
  // A failed handshake fails the first queued command with the handshake's error.
  const login = new Promise<'ok'>((resolve, reject) =>
    conn.query('SELECT 1', (err) => (err ? reject(err) : resolve('ok'))),
  );
  let outcome: 'ok' | 'aborted';
  try {
    outcome = await untilAborted(login, opts.signal, () => conn.destroy());
  } catch (err) {
    // The driver has closed the connection already (a failed login is fatal to it); destroy() makes sure.
    conn.destroy();
    return { ok: false, ...describeMySQLError(err, where, target.password) };
  }
  if (outcome === 'aborted') return { ok: false, reason: 'Unreachable', message: `${where}: cancelled` };
  // Logged in: say goodbye (COM_QUIT), so the server logs no aborted connection.
  await new Promise<void>((resolve) => conn.end(() => resolve()));
  return { ok: true };
}

/**
 * Why a MySQL/MariaDB login failed (`err` from mysql2 or the socket), as a reason and a message starting with
 * `where`. `password`, when given, is masked wherever it appears in the driver's text, and so are URL userinfo and
 * `password=` pairs.
 */
export function describeMySQLError(err: unknown, where: string, password?: string): ProbeFailure {
  const e = (err ?? {}) as { code?: string; errno?: number };
  switch (e.code) {
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
      return {
        reason: 'AuthenticationFailed',
        message: `${where}: the username or password in the AppBinding's Secret was refused`,
      };
    case 'ER_HOST_NOT_PRIVILEGED':
      return {
        reason: 'AuthenticationFailed',
        message: `${where}: the server does not let that user log in from the operator's address (a user@host grant is missing)`,
      };
    case 'ER_DBACCESS_DENIED_ERROR':
      return {
        reason: 'AuthenticationFailed',
        message: `${where}: the admin user may not use the database named in the AppBinding's path`,
      };
    case 'ER_BAD_DB_ERROR':
      return {
        reason: 'DatabaseNotFound',
        message: `${where}: the database named in the AppBinding's path does not exist`,
      };
    case 'HANDSHAKE_NO_SSL_SUPPORT':
      return { reason: 'TLSError', message: `${where}: TLS was asked for but the server does not offer it` };
    case 'ER_CON_COUNT_ERROR':
      return { reason: 'Unreachable', message: `${where}: the server has too many connections` };
  }
  return describeNetworkError(err, where) ?? unrecognised(err, where, password);
}
