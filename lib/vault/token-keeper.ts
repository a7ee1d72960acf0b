// Keeps the operator's Vault login token usable. Lazy by design: a token is renewed or replaced only when a
// call needs it, so an idle operator makes no Vault calls. Leases are NOT tied to this token (see
// issuer-token.ts): losing it costs one login, never the issued credentials.
import type { LoginToken, VaultAuthMethod } from './auth.ts';
import { rawVaultClient, type VaultEndpoint } from './node-vault-client.ts';

/** Renew when this fraction of the token's TTL has passed. */
const RENEW_FRACTION = 2 / 3;
/** Re-login instead of renewing when the renewed TTL is shorter than this (max TTL reached). */
const MIN_USEFUL_TTL_SECONDS = 10;

export class TokenKeeper {
  private current: (LoginToken & { obtainedAtMs: number; renewAtMs: number; expiresAtMs: number }) | undefined;
  private inflight: Promise<string> | undefined;

  constructor(
    private readonly ep: VaultEndpoint,
    private readonly auth: VaultAuthMethod,
    private readonly now: () => number = Date.now,
  ) {}

  get description(): string {
    return this.auth.description;
  }

  /** A token that is valid now; logs in or renews first when needed. Concurrent callers share one login. */
  token(): Promise<string> {
    const cur = this.current;
    if (cur && (cur.ttlSeconds === 0 || this.now() < cur.renewAtMs)) return Promise.resolve(cur.token);
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Forgets the token, e.g. after Vault answered 403 with it (revoked behind our back). */
  invalidate(): void {
    this.current = undefined;
  }

  private async refresh(): Promise<string> {
    const cur = this.current;
    if (cur && cur.renewable && this.now() < cur.expiresAtMs) {
      try {
        const raw = rawVaultClient(this.ep);
        const res = (await raw.write('auth/token/renew-self', {}, { headers: { 'X-Vault-Token': cur.token } } as never)) as {
          auth: { lease_duration: number; renewable: boolean };
        };
        if (res.auth.lease_duration >= MIN_USEFUL_TTL_SECONDS) {
          this.remember({ ...cur, ttlSeconds: res.auth.lease_duration, renewable: res.auth.renewable });
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
