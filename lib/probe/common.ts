// What the database login probes (lib/mysql/probe.ts, lib/redis/probe.ts) share: the reasons a login fails for,
// the socket and TLS errors every driver passes up from Node unchanged, masking a password out of a driver's own
// text, and ending a probe early on an AbortSignal when the driver takes none.

/** Why a login failed. `Unreachable` covers refused and timed-out connections and anything unrecognised. */
export type DatabaseProbeReason =
  'AuthenticationFailed' | 'DatabaseNotFound' | 'DNSLookupFailed' | 'Unreachable' | 'TLSError';

export type DatabaseProbeOutcome = { ok: true } | { ok: false; reason: DatabaseProbeReason; message: string };

export interface ProbeFailure {
  reason: DatabaseProbeReason;
  message: string;
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** A failure of the network or of TLS (Node's own error codes), or undefined when `err` is something else. */
export function describeNetworkError(err: unknown, where: string): ProbeFailure | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { reason: 'DNSLookupFailed', message: `${where}: the host name does not resolve` };
    case 'ECONNREFUSED':
      return { reason: 'Unreachable', message: `${where}: connection refused` };
    case 'ETIMEDOUT':
      return { reason: 'Unreachable', message: `${where}: connection timed out` };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { reason: 'Unreachable', message: `${where}: no route to the host` };
    case 'ECONNRESET':
      return { reason: 'Unreachable', message: `${where}: the server closed the connection` };
  }
  if (typeof code === 'string' && TLS_CODES.has(code))
    return { reason: 'TLSError', message: `${where}: TLS verification failed (${code})` };
  return undefined;
}

/** `text` with `password` (when given), URL userinfo passwords and `password=` pairs replaced by [REDACTED]. */
export function maskSecret(text: string, password?: string): string {
  let out = password ? text.split(password).join('[REDACTED]') : text;
  if (password && encodeURIComponent(password) !== password)
    out = out.split(encodeURIComponent(password)).join('[REDACTED]');
  return out
    .replace(/:\/\/([^:/@\s]+):([^@\s]+)@/g, '://$1:[REDACTED]@')
    .replace(/(password|passwd|pwd)=([^&\s"']+)/gi, '$1=[REDACTED]');
}

/** An unrecognised failure: Unreachable, with the driver's own words (masked, at most 500 characters). */
export function unrecognised(err: unknown, where: string, password?: string): ProbeFailure {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return { reason: 'Unreachable', message: `${where}: ${maskSecret(text, password).slice(0, 500)}` };
}

/**
 * Runs `work` until it settles or `signal` aborts; on abort calls `cancel` (which should tear the connection down)
 * and resolves 'aborted' at once, without waiting for the driver. `work`'s later rejection is swallowed.
 */
export async function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  cancel: () => void,
): Promise<T | 'aborted'> {
  work.catch(() => undefined);
  if (!signal) return work;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => {
      cancel();
      resolve('aborted');
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
