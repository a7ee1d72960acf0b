// Vault errors, classified at the boundary so controllers decide on kinds, not on HTTP codes or strings.
// Messages carry what Vault said (its `errors` array) and what we were doing, never tokens or passwords:
// request bodies and headers are never part of a message.

export type VaultErrorKind =
  | 'Unreachable' // DNS, connection refused, timeout, TLS
  | 'Sealed' // 503 sealed / standby without a leader
  | 'PermissionDenied' // 403: the policy lacks a capability, or the token is gone
  | 'NotFound' // 404
  | 'Invalid' // 400: Vault refused the request (bad SQL, bad config, unknown role…)
  | 'RevocationFailed' // sys/leases/revoke failed and the lease is still there (e.g. the database refused to drop the login)
  | 'Server'; // anything else

export class VaultRequestError extends Error {
  override name = 'VaultRequestError';
  constructor(
    readonly kind: VaultErrorKind,
    readonly operation: string,
    readonly detail: string,
    readonly status?: number,
  ) {
    super(`${operation}: ${detail}`);
  }

  /** Worth trying again as is: Vault (or the database behind it) may answer differently next time. A failed
   * revocation is retried too: what it needs (a fixed role, an object dropped by hand) happens outside. */
  get retryable(): boolean {
    return (
      this.kind === 'Unreachable' ||
      this.kind === 'Sealed' ||
      this.kind === 'Server' ||
      this.kind === 'RevocationFailed'
    );
  }
}

/** Masks anything token-like that might appear in an error text (defence in depth). */
export function scrub(text: string): string {
  return text
    .replace(/\b(hvs|hvb|hvr|s|b|r)\.[A-Za-z0-9_-]{8,}/g, '[REDACTED]')
    .replace(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, '[REDACTED-JWT]')
    .replace(/(password|passwd|pwd)=([^&\s"']+)/gi, '$1=[REDACTED]')
    .replace(/:\/\/([^:/@\s]+):([^@\s]+)@/g, '://$1:[REDACTED]@');
}

interface HttpLikeError {
  message?: string;
  code?: string;
  response?: { statusCode?: number; body?: { errors?: unknown[] } };
}

const unreachableCodes: Record<string, string> = {
  ENOTFOUND: 'the Vault host name does not resolve (DNS)',
  EAI_AGAIN: 'DNS lookup for the Vault host failed temporarily',
  ECONNREFUSED: 'connection refused (is Vault running and listening on that address?)',
  ECONNRESET: 'connection reset by Vault',
  ETIMEDOUT: 'connection timed out',
  ECONNABORTED: 'request timed out',
  EHOSTUNREACH: 'host unreachable',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: Vault presented a self-signed certificate (set caBundle)',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS: certificate chain ends in an untrusted root (set caBundle)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: cannot verify the server certificate (set caBundle)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: the certificate does not match the host name (set serverName)',
  CERT_HAS_EXPIRED: 'TLS: the server certificate has expired',
  EPROTO: 'TLS/protocol error (http vs https mismatch?)',
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS: Vault did not answer in TLS (is its address http://?)',
  // undici's own codes (transport.ts sends through undici)
  UND_ERR_SOCKET: 'connection closed by Vault before it answered',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'request timed out',
  UND_ERR_BODY_TIMEOUT: 'request timed out',
};

export function classifyVaultError(operation: string, err: unknown): VaultRequestError {
  if (err instanceof VaultRequestError) return err;
  const e = (err ?? {}) as HttpLikeError & { cause?: HttpLikeError };
  const code = e.code ?? e.cause?.code;
  if (code && unreachableCodes[code]) return new VaultRequestError('Unreachable', operation, unreachableCodes[code]!);
  const status = e.response?.statusCode;
  const vaultErrors = (e.response?.body?.errors ?? []).filter((x): x is string => typeof x === 'string');
  const detail = scrub(vaultErrors.join('; ') || e.message || String(err)).slice(0, 2000);
  if (status === undefined) return new VaultRequestError('Unreachable', operation, detail);
  if (status === 503)
    return new VaultRequestError('Sealed', operation, `Vault is sealed or has no active node (${detail})`, status);
  if (status === 403) return new VaultRequestError('PermissionDenied', operation, detail, status);
  if (status === 404) return new VaultRequestError('NotFound', operation, detail, status);
  if (status === 400) return new VaultRequestError('Invalid', operation, detail, status);
  return new VaultRequestError('Server', operation, detail, status);
}

/** Vault answered 404 (its own "not found", apart from the Kubernetes one in lib/runtime). */
export function isVaultNotFound(err: unknown): boolean {
  return err instanceof VaultRequestError && err.kind === 'NotFound';
}

/** Vault tried to revoke a lease and could not: the lease (and its database login) is still there. */
export function isRevocationFailed(err: unknown): boolean {
  return err instanceof VaultRequestError && err.kind === 'RevocationFailed';
}
