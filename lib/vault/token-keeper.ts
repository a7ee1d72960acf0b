// Keeps the operator's Vault login token usable. Lazy by design: a token is renewed or replaced only when a
// call needs it, so an idle operator makes no Vault calls. Leases are NOT tied to this token (see
// issuer-token.ts): losing it costs one login, never the issued credentials.
import { renewSelf, type LoginToken, type VaultAuthMethod } from './auth.ts';
import type { CallOptions, VaultTransport } from './transport.ts';

/** Renew when this fraction of the token's TTL has passed. */
const RENEW_FRACTION = 2 / 3;
/** Re-login instead of renewing when the renewed TTL is shorter than this (max TTL reached). */
const MIN_USEFUL_TTL_SECONDS = 10;

export class TokenKeeper {
  private current: (LoginToken & { obtainedAtMs: number; renewAtMs: number; expiresAtMs: number }) | undefined;
  private inflight: Promise<string> | undefined;

  constructor(
    private readonly transport: VaultTransport,
    private readonly auth: VaultAuthMethod,
    private readonly now: () => number = Date.now,
  ) {}

  get description(): string {
    return this.auth.description;
  }

  /**
   * A token that is valid now; logs in or renews first when needed. Concurrent callers share one login, which is
   * not cancelled by one caller's signal: an aborted caller stops waiting for it (rejects with the signal's reason).
   */
  token(opts: CallOptions = {}): Promise<string> {
    const cur = this.current;
    if (cur && (cur.ttlSeconds === 0 || this.now() < cur.renewAtMs)) return Promise.resolve(cur.token);
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = undefined;
    });
    return untilAborted(this.inflight, opts.signal);
  }

  /** Forgets the token: Vault answered 403 to it (revoked behind our back, say). The next call logs in afresh. */
  invalidate(): void {
    this.current = undefined;
  }

  private async refresh(): Promise<string> {
    const cur = this.current;
    if (cur && cur.renewable && this.now() < cur.expiresAtMs) {
      try {
        const renewed = await renewSelf(
          this.transport,
          cur.token,
          `renewing the login token (${this.auth.description})`,
        );
        if (renewed.ttlSeconds >= MIN_USEFUL_TTL_SECONDS) {
          this.remember({ ...cur, ...renewed });
          return cur.token;
        }
      } catch {
        // fall through to a fresh login: the token may have been revoked or reached its max TTL
      }
    }
    const fresh = await this.auth.login();
    this.remember(fresh);
    return fresh.token;
  }

  private remember(t: LoginToken): void {
    const now = this.now();
    this.current = {
      ...t,
      obtainedAtMs: now,
      renewAtMs: now + t.ttlSeconds * 1000 * RENEW_FRACTION,
      expiresAtMs: now + t.ttlSeconds * 1000,
    };
  }
}

/** `work`, or the signal's reason as soon as it aborts (the work itself goes on for whoever else awaits it). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
