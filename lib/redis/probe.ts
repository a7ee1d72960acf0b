// Can the operator log into a Redis server with a given admin login? One connection through node-redis (its core,
// @redis/client) that logs in (AUTH with the ACL user, SELECT when a database number is given) and PINGs, closed at
// once, and when not, why, in words a person can act on (the server's error prefixes and Node's socket errors).
// No message ever carries the password. @redis/client: the Redis project's own Node client, in TypeScript, with
// `reconnectStrategy: false` for a single attempt (ioredis retries by design and is in maintenance mode).
import { createClient } from '@redis/client';
import {
  describeNetworkError,
  maskSecret,
  unrecognised,
  untilAborted,
  type DatabaseProbeOutcome,
  type DatabaseProbeReason,
  type ProbeFailure,
} from '../probe/common.ts';

export interface RedisProbeTarget {
  host: string;
  port: number;
  /** The database number to SELECT (a redis:// URL's path); absent: 0. */
  database?: number;
  /** The ACL user; absent: the `default` user (a requirepass-only server). */
  username?: string;
  password: string;
  /** Connect with TLS (`rediss://`). */
  tls?: boolean;
  /** With TLS: skip verifying the server certificate. */
  insecureSkipTLSVerify?: boolean;
  /** With TLS: the CA bundle (PEM) to verify the server against; absent: the system's roots. */
  caPem?: string;
  /** With TLS: the name the certificate must carry, when not the host. */
  serverName?: string;
  /** How long to wait for the connection; default 5000 ms. */
  connectTimeoutMs?: number;
}

export type RedisProbeReason = DatabaseProbeReason;
export type RedisProbeOutcome = DatabaseProbeOutcome;

/**
 * Logs in to `target` and runs PING. Never throws for the server's or the network's failures: they come back as
 * `{ ok: false, reason, message }`, the message starting with `where` (e.g. "Redis at cache.demo:6379").
 * `signal` ends the attempt at once (reported as Unreachable, "cancelled"), the socket destroyed.
 */
export async function probeRedis(
  target: RedisProbeTarget,
  where: string,
  opts: { signal?: AbortSignal } = {},
): Promise<RedisProbeOutcome> {
  if (opts.signal?.aborted) return { ok: false, reason: 'Unreachable', message: `${where}: cancelled` };
  const common = {
    host: target.host,
    port: target.port,
    connectTimeout: target.connectTimeoutMs ?? 5000,
    reconnectStrategy: false as const,
  };
  const client = createClient({
    username: target.username || undefined,
    password: target.password,
    database: target.database || undefined,
    socket: target.tls
      ? {
          ...common,
          tls: true,
          rejectUnauthorized: !target.insecureSkipTLSVerify,
          ca: target.caPem,
          servername: target.serverName,
        }
      : common,
  });
  // Failures are also emitted as events: without a listener they would crash us.
  client.on('error', () => undefined);
  const close = () => {
    client.destroy();
    // node-redis 6.3 forgets a destroy() that comes while the TCP connection is still being made: the socket it
    // then gets is kept (and sends HELLO). Destroyed again as soon as it exists, so an abort never leaks one.
    client.once('connect', () => client.destroy());
  };
  const login = (async () => {
    await client.connect();
    await client.ping();
    return 'ok' as const;
  })();
  try {
    const outcome = await untilAborted(login, opts.signal, close);
    if (outcome === 'aborted') return { ok: false, reason: 'Unreachable', message: `${where}: cancelled` };
    return { ok: true };
  } catch (err) {
    return { ok: false, ...describeRedisError(err, where, target.password) };
  } finally {
    close();
  }
}

/**
 * Why a Redis login failed (`err` from node-redis or the socket), as a reason and a message starting with `where`.
 * `password`, when given, is masked wherever it appears in the driver's text, and so are URL userinfo and
 * `password=` pairs.
 */
export function describeRedisError(err: unknown, where: string, password?: string): ProbeFailure {
  const e = (err ?? {}) as { name?: string; message?: string };
  const text = typeof e.message === 'string' ? e.message : '';
  if (/^WRONGPASS\b/.test(text) || /^ERR invalid (username-)?password/i.test(text)) {
    return {
      reason: 'AuthenticationFailed',
      message: `${where}: the username or password in the AppBinding's Secret was refused`,
    };
  }
  if (/^ERR AUTH .*without any password configured/i.test(text)) {
    return {
      reason: 'AuthenticationFailed',
      message: `${where}: the server has no password set but the AppBinding's Secret gives one`,
    };
  }
  if (/^NOAUTH\b/.test(text)) {
    return {
      reason: 'AuthenticationFailed',
      message: `${where}: the server requires a login and the AppBinding's Secret gives none it accepts`,
    };
  }
  if (/^NOPERM\b/.test(text)) {
    return {
      reason: 'AuthenticationFailed',
      message: `${where}: the admin user logged in but its ACL refuses the probe's commands (${maskSecret(text, password).replace(/\s+/g, ' ').slice(0, 200)})`,
    };
  }
  if (/DB index is out of range/i.test(text)) {
    return {
      reason: 'DatabaseNotFound',
      message: `${where}: the database number in the AppBinding's path does not exist on this server`,
    };
  }
  if (e.name === 'ConnectionTimeoutError' || /^Connection timeout$/i.test(text)) {
    return { reason: 'Unreachable', message: `${where}: connection timed out` };
  }
  return describeNetworkError(err, where) ?? unrecognised(err, where, password);
}
