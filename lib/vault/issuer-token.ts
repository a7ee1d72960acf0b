// The token that issues credentials. Vault revokes every lease together with the token that created it, so
// credentials issued with the operator's login token would die when that token expires (KubeVault's defect:
// its credentials live no longer than its login). Instead, leases are issued with an *issuer token*: an
// orphan, periodic token created from a Vault token role. It has no parent (revoking or expiring the login
// token doesn't touch it) and no max TTL (a periodic token lives as long as it is renewed). It is stored in a
// Kubernetes Secret so that it survives operator restarts, and renewed at half its period.
//
// If the token role is missing or the policy forbids it, issuance falls back to the login token and the
// AppBinding reports it (condition LeaseOwnership=False), so an admin can fix the Vault side.
import { classifyVaultError, VaultRequestError } from './errors.ts';
import { rawVaultClient, type TokenSource, type VaultEndpoint } from './node-vault-client.ts';

export interface StoredIssuerToken {
  token: string;
  accessor: string;
}

/** Persists the issuer token (a Secret in the operator's namespace). */
export interface IssuerTokenStore {
  load(): Promise<StoredIssuerToken | undefined>;
  save(token: StoredIssuerToken): Promise<void>;
}

export type IssuerTokenState =
  | { kind: 'ready'; token: string; accessor: string; renewAtMs: number }
  | { kind: 'unavailable'; reason: string; message: string };

const RENEW_FRACTION = 0.5;

export class IssuerToken {
  private cached: { token: string; accessor: string; renewAtMs: number } | undefined;
  private inflight: Promise<IssuerTokenState> | undefined;

  /**
   * `onRefresh`: told what each refresh found (`token:<accessor>`, or `none:<reason>`), e.g. to notice a replaced
   * token and have the AppBinding's LeaseOwnership condition written again. Never told the token.
   */
  constructor(
    private readonly ep: VaultEndpoint,
    private readonly loginToken: TokenSource,
    private readonly store: IssuerTokenStore,
    readonly tokenRole: string,
    private readonly now: () => number = Date.now,
    private readonly onRefresh: (found: string) => void = () => undefined,
  ) {}

  /** The issuer token, renewed or created first when due. No Vault call when the cached token isn't due. */
  state(): Promise<IssuerTokenState> {
    const c = this.cached;
    if (c && this.now() < c.renewAtMs) return Promise.resolve({ kind: 'ready', ...c });
    return this.refreshOnce();
  }

  /**
   * The issuer token as Vault sees it now: renewed (`auth/token/renew-self`, which also proves Vault still knows
   * it), or created afresh when Vault no longer does (revoked by hand, say). One Vault call, two when replaced.
   */
  verify(): Promise<IssuerTokenState> {
    return this.refreshOnce();
  }

  /** Drops the cached token (Vault refused it): the next use renews or replaces it. */
  forget(): void {
    this.cached = undefined;
  }

  private refreshOnce(): Promise<IssuerTokenState> {
    this.inflight ??= this.refresh().then((s) => {
      this.onRefresh(s.kind === 'ready' ? `token:${s.accessor}` : `none:${s.reason}`);
      return s;
    }).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async refresh(): Promise<IssuerTokenState> {
    const raw = rawVaultClient(this.ep);
    const existing = this.cached ?? (await this.store.load());
    if (existing) {
      try {
        const res = (await raw.write('auth/token/renew-self', {}, { headers: { 'X-Vault-Token': existing.token } } as never)) as {
          auth: { lease_duration: number };
        };
        return this.remember(existing, res.auth.lease_duration);
      } catch (err) {
        const e = classifyVaultError('renewing the issuer token', err);
        // Only a token Vault no longer knows is replaced; an outage must not mint a second issuer token.
        if (e.kind !== 'PermissionDenied' && e.kind !== 'NotFound' && e.kind !== 'Invalid') throw e;
      }
    }
    let created: { client_token: string; accessor: string; lease_duration: number };
    try {
      const login = await this.loginToken();
      const res = (await raw.write(`auth/token/create/${this.tokenRole}`, { renewable: true, display_name: 'leasehold-issuer' },
        { headers: { 'X-Vault-Token': login } } as never)) as { auth: typeof created };
      created = res.auth;
    } catch (err) {
      const e = classifyVaultError(`creating an issuer token from token role ${this.tokenRole}`, err);
      if (e.kind === 'PermissionDenied' || e.kind === 'Invalid' || e.kind === 'NotFound') {
        return {
          kind: 'unavailable',
          reason: 'IssuerTokenRoleUnavailable',
          message: `${e.message}. Credentials are tied to the operator's login token and are revoked when it expires. ` +
            `Create the token role (orphan=true, token_period set) and allow "update" on auth/token/create/${this.tokenRole}.`,
        };
      }
      throw e;
    }
    const stored = { token: created.client_token, accessor: created.accessor };
    await this.store.save(stored);
    return this.remember(stored, created.lease_duration);
  }

  private remember(t: StoredIssuerToken, ttlSeconds: number): IssuerTokenState {
    if (ttlSeconds <= 0) throw new VaultRequestError('Invalid', 'using the issuer token', 'the issuer token has no TTL left');
    this.cached = { ...t, renewAtMs: this.now() + ttlSeconds * 1000 * RENEW_FRACTION };
    return { kind: 'ready', ...this.cached };
  }
}
