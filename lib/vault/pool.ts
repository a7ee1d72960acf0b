// Vault sessions, one per key (a Vault AppBinding, for the operator), reused across reconciles: a login-token
// keeper, a client on that login, an issuer token and a client on it. One transport (one keep-alive agent) per
// endpoint, shared by every session that talks to it, and closed when the last of them is dropped. Where the secret
// material comes from — a token Secret, a TokenRequest, the Secret the issuer token is kept in — is the caller's: it
// passes ports in (AuthSource, IssuerTokenStore), so nothing here knows Kubernetes.
import { RetryableError } from '../runtime/types.ts';
import { authMethod, type AuthSource } from './auth.ts';
import type { VaultClient } from './client.ts';
import { HttpVaultClient } from './http-client.ts';
import { IssuerToken, type IssuerTokenState, type IssuerTokenStore } from './issuer-token.ts';
import { TokenKeeper } from './token-keeper.ts';
import { VaultTransport, type CallObserver, type CallOptions, type VaultEndpoint } from './transport.ts';

/** What a session is made of. */
export interface VaultSessionSpec {
  /** Which session ("demo/vault"): one is held per key. */
  key: string;
  /** What the session was built from, opaque: the held session is kept while it is the same, rebuilt when not. */
  version: string;
  endpoint: VaultEndpoint;
  auth: AuthSource;
  /** Where the issuer token is kept between restarts. */
  issuerStore: IssuerTokenStore;
}

export interface VaultSession {
  readonly endpoint: VaultEndpoint;
  /** How it logs in, secret-free, for messages. */
  readonly authDescription: string;
  /** Calls made with the operator's login token (mounts, config, roles, renew, revoke). A 403 drops the login
   * token and the call is made once more after a fresh login (the token may have been revoked in Vault). */
  readonly client: VaultClient;
  /** The issuer token's state; renews or creates it when due. */
  issuer(opts?: CallOptions): Promise<IssuerTokenState>;
  /** The issuer token's state as Vault sees it now: renewed, or replaced when Vault no longer knows it. */
  verifyIssuer(opts?: CallOptions): Promise<IssuerTokenState>;
  /** The client that issues credentials: the issuer token's, or the login token's when no issuer token can be had. */
  issuingClient(opts?: CallOptions): Promise<{ client: VaultClient; ownedBy: 'issuer-token' | 'login-token' }>;
  /** Makes sure a login token is held (no Vault call while the held one is fresh); throws why not. */
  login(opts?: CallOptions): Promise<void>;
}

export interface VaultPoolOptions {
  /** The Vault token role issuer tokens are created from. */
  issuerTokenRole: string;
  /** Counts every call (metrics). */
  observe?: CallObserver;
  /** A session's issuer token was replaced, or none can be had any more (not called for the first one found). */
  onIssuerChanged?: (key: string) => void;
  now?: () => number;
}

export class VaultPool {
  private readonly sessions = new Map<string, { version: string; session: VaultSession; endpointId: string }>();
  /** By endpoint id (address and TLS settings). */
  private readonly transports = new Map<string, VaultTransport>();
  /** Per key: what its issuer token's last refresh found, and how often that changed. Outlives rebuilt sessions. */
  private readonly issuerSeen = new Map<string, { found: string; changes: number }>();

  constructor(private readonly opts: VaultPoolOptions) {}

  get issuerTokenRole(): string {
    return this.opts.issuerTokenRole;
  }

  /** The session held for `key`, whatever it was built from; undefined when none is. */
  held(key: string): VaultSession | undefined {
    return this.sessions.get(key)?.session;
  }

  /** The session for `spec.key`: the held one when built from the same `version`, else a new one (replacing it). */
  open(spec: VaultSessionSpec): VaultSession {
    const held = this.sessions.get(spec.key);
    if (held && held.version === spec.version) return held.session;
    const endpointId = endpointIdOf(spec.endpoint);
    const session = this.build(spec, this.transport(endpointId, spec.endpoint));
    this.sessions.set(spec.key, { version: spec.version, session, endpointId });
    if (held) this.release(held.endpointId);
    return session;
  }

  /**
   * Drops the session held for `key` (its credentials stopped working, or its owner is gone). When no other session
   * talks to its endpoint, the endpoint's connections are closed once their requests in flight have answered.
   */
  drop(key: string): void {
    const held = this.sessions.get(key);
    if (!held) return;
    this.sessions.delete(key);
    this.release(held.endpointId);
  }

  /** How often the issuer token of `key` was replaced or lost in this process (0: never). */
  issuerGeneration(key: string): number {
    return this.issuerSeen.get(key)?.changes ?? 0;
  }

  /** One transport per endpoint, so one agent and its sockets per Vault. */
  private transport(id: string, ep: VaultEndpoint): VaultTransport {
    let t = this.transports.get(id);
    if (!t) this.transports.set(id, (t = new VaultTransport(ep, this.opts.observe)));
    return t;
  }

  /** Closes the endpoint's transport when no held session uses it any more. */
  private release(endpointId: string): void {
    for (const held of this.sessions.values()) if (held.endpointId === endpointId) return;
    const t = this.transports.get(endpointId);
    this.transports.delete(endpointId);
    // Closing waits for the requests in flight; a caller still holding a dropped session opens new connections.
    t?.close().catch(() => undefined);
  }

  private build(spec: VaultSessionSpec, transport: VaultTransport): VaultSession {
    const auth = authMethod(transport, spec.auth);
    const keeper = new TokenKeeper(transport, auth, this.opts.now);
    const loginToken = (o?: CallOptions) => keeper.token(o);
    // A 403 to the login token (revoked in Vault, say) drops it: the retry logs in afresh.
    const client = new HttpVaultClient(transport, loginToken, () => keeper.invalidate());
    const issuer = new IssuerToken({
      transport,
      loginToken,
      store: spec.issuerStore,
      tokenRole: this.opts.issuerTokenRole,
      now: this.opts.now,
      onRefresh: (found) => this.issuerFound(spec.key, found),
    });
    // A 403 to the issuer token (revoked in Vault: its leases are gone too) drops it; the retry renews or replaces it.
    const issuerClient = new HttpVaultClient(
      transport,
      async (o) => {
        const s = await issuer.state(o);
        if (s.kind !== 'ready') throw new RetryableError(s.reason, s.message);
        return s.token;
      },
      () => issuer.forget(),
    );
    return {
      endpoint: spec.endpoint,
      authDescription: auth.description,
      client,
      issuer: (o) => issuer.state(o),
      verifyIssuer: (o) => issuer.verify(o),
      login: async (o) => {
        await keeper.token(o);
      },
      async issuingClient(o) {
        const s = await issuer.state(o);
        return s.kind === 'ready'
          ? { client: issuerClient, ownedBy: 'issuer-token' }
          : { client, ownedBy: 'login-token' };
      },
    };
  }

  private issuerFound(key: string, found: string): void {
    const seen = this.issuerSeen.get(key);
    if (seen?.found === found) return;
    this.issuerSeen.set(key, { found, changes: (seen?.changes ?? 0) + (seen ? 1 : 0) });
    if (seen) this.opts.onIssuerChanged?.(key);
  }
}

/** What tells endpoints apart: address and TLS settings (and the timeout, a transport setting too). */
const endpointIdOf = (ep: VaultEndpoint) =>
  JSON.stringify([
    ep.address,
    ep.caBundlePem ?? '',
    !!ep.insecureSkipTLSVerify,
    ep.serverName ?? '',
    ep.timeoutMs ?? 0,
  ]);
