// The token that issues credentials. Vault revokes every lease together with the token that created it, so
// credentials issued with the operator's login token would die when that token expires (KubeVault's defect:
// its credentials live no longer than its login). Instead, leases are issued with an *issuer token*: an
// orphan, periodic token created from a Vault token role. It has no parent (revoking or expiring the login
// token doesn't touch it) and no max TTL (a periodic token lives as long as it is renewed). It is stored in a
// Kubernetes Secret so that it survives operator restarts, and renewed at half its period.
//
// If the token role is missing or the policy forbids it, issuance falls back to the login token and the
// AppBinding reports it (condition LeaseOwnership=False), so an admin can fix the Vault side.
import { renewSelf } from './auth.ts';
import { VaultRequestError } from './errors.ts';
import { untilAborted } from './token-keeper.ts';
import type { CallOptions, TokenSource, VaultTransport } from './transport.ts';

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

  private readonly transport: VaultTransport;
  private readonly loginToken: TokenSource;
  private readonly store: IssuerTokenStore;
  /** The Vault token role issuer tokens are created from. */
  readonly tokenRole: string;
  private readonly now: () => number;
  private readonly onRefresh: (found: string) => void;

  /**
   * `loginToken`: the operator's login, which creates the issuer token. `onRefresh`: told what each refresh found
   * (`token:<accessor>`, or `none:<reason>`), e.g. to notice a replaced token and have the AppBinding's
   * LeaseOwnership condition written again. Never told the token.
   */
  constructor(o: {
    transport: VaultTransport;
    loginToken: TokenSource;
    store: IssuerTokenStore;
    tokenRole: string;
    now?: () => number;
    onRefresh?: (found: string) => void;
  }) {
    this.transport = o.transport;
    this.loginToken = o.loginToken;
    this.store = o.store;
    this.tokenRole = o.tokenRole;
    this.now = o.now ?? Date.now;
    this.onRefresh = o.onRefresh ?? (() => undefined);
  }

  /**
   * The issuer token, renewed or created first when due. No Vault call when the cached token isn't due. A refresh is
   * shared by concurrent callers: an aborted caller stops waiting for it, the refresh goes on.
   */
  state(opts: CallOptions = {}): Promise<IssuerTokenState> {
    const c = this.cached;
    if (c && this.now() < c.renewAtMs) return Promise.resolve({ kind: 'ready', ...c });
    return untilAborted(this.refreshOnce(), opts.signal);
  }

  /**
   * The issuer token as Vault sees it now: renewed (`auth/token/renew-self`, which also proves Vault still knows
   * it), or created afresh when Vault no longer does (revoked by hand, say). One Vault call, two when replaced.
   */
  verify(opts: CallOptions = {}): Promise<IssuerTokenState> {
    return untilAborted(this.refreshOnce(), opts.signal);
  }

  /** Drops the cached token (Vault refused it): the next use renews or replaces it. */
  forget(): void {
    this.cached = undefined;
  }

  private refreshOnce(): Promise<IssuerTokenState> {
    this.inflight ??= this.refresh()
      .then((s) => {
        this.onRefresh(s.kind === 'ready' ? `token:${s.accessor}` : `none:${s.reason}`);
        return s;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private async refresh(): Promise<IssuerTokenState> {
    const existing = this.cached ?? (await this.store.load());
    if (existing) {
      try {
        return this.remember(
          existing,
          (await renewSelf(this.transport, existing.token, 'renewing the issuer token')).ttlSeconds,
        );
      } catch (err) {
        // Only a token Vault no longer knows is replaced; an outage must not mint a second issuer token.
        if (
          !(err instanceof VaultRequestError) ||
          (err.kind !== 'PermissionDenied' && err.kind !== 'NotFound' && err.kind !== 'Invalid')
        )
          throw err;
      }
    }
    // Outside the try: a login that fails is the login's failure (its reason reaches status), not the token role's.
    const login = await this.loginToken();
    let created: { client_token: string; accessor: string; lease_duration: number };
    try {
      const res = await this.transport.call<{ auth: typeof created }>('createToken', {
        method: 'POST',
        path: `auth/token/create/${this.tokenRole}`,
        body: { renewable: true, display_name: 'leasehold-issuer' },
        token: login,
        what: `creating an issuer token from token role ${this.tokenRole}`,
      });
      created = res.auth;
    } catch (e) {
      if (
        e instanceof VaultRequestError &&
        (e.kind === 'PermissionDenied' || e.kind === 'Invalid' || e.kind === 'NotFound')
      ) {
        return {
          kind: 'unavailable',
          reason: 'IssuerTokenRoleUnavailable',
          message:
            `${e.message}. Credentials are tied to the operator's login token and are revoked when it expires. ` +
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
    if (ttlSeconds <= 0)
      throw new VaultRequestError('Invalid', 'using the issuer token', 'the issuer token has no TTL left');
    this.cached = { ...t, renewAtMs: this.now() + ttlSeconds * 1000 * RENEW_FRACTION };
    return { kind: 'ready', ...this.cached };
  }
}
