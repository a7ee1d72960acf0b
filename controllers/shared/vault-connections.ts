// The Vault session of each Vault AppBinding (lib/vault/pool.ts), reused across reconciles. This adapter decides
// when an AppBinding calls for a new one: when what it is made of changes (the AppBinding's uid or spec, its token
// Secret's uid or token), never for metadata, because the login a session holds may be the only one the operator
// can still get (see forAppBinding). The Kubernetes ports (token Secret, TokenRequest, issuer-token Secret) are in
// vault-ports.ts.
import type { AppBinding } from '../../api/index.ts';
import { keyFromString, keyToString, type KubeClient } from '../../lib/runtime/index.ts';
import type { CallObserver } from '../../lib/vault/transport.ts';
import { VaultPool, type VaultSession } from '../../lib/vault/pool.ts';
import {
  appBindingFingerprint,
  tokenHash,
  tokenRequestMinter,
  vaultSessionSpec,
  type ServiceAccountRef,
  type TokenSecret,
  type VaultPorts,
} from './vault-ports.ts';
import { SECRETS } from './resources.ts';

export { issuerTokenStore, loginUnavailableMessage } from './vault-ports.ts';

/** A Vault AppBinding's session (lib/vault/pool.ts): its login client, issuer token and issuing client. */
export type VaultConnection = VaultSession;

export interface VaultConnectionSettings {
  /** Where issuer-token Secrets live (the operator's namespace). */
  operatorNamespace: string;
  /** The operator's own ServiceAccount, used for kubernetes auth when an AppBinding names none. */
  operatorServiceAccount?: ServiceAccountRef;
  /** Vault token role issuer tokens are created from. */
  issuerTokenRole: string;
  /** Audience of service-account tokens requested for kubernetes auth (empty: the apiserver's default). */
  tokenAudiences: string[];
  /** A Vault AppBinding's issuer token was replaced, or none can be had any more. */
  onIssuerChanged?: (appBinding: { namespace: string; name: string }) => void;
}

/** The token Secret as read for a session: its identity, version, and a hash of its `token` (never the token). */
interface SecretSeen {
  uid?: string;
  resourceVersion?: string;
  tokenHash?: string;
}

/** Reads a Secret's metadata without an API call (the watch cache), when the caller has one. */
export type SecretMetaLookup = (
  namespace: string,
  name: string,
) => { metadata?: { uid?: string; resourceVersion?: string } } | undefined;

export class VaultConnections {
  private readonly pool: VaultPool;
  private readonly ports: VaultPorts;
  /** Per AppBinding key: what its held session was built from. */
  private readonly seen = new Map<string, { fingerprint: string; secret: SecretSeen }>();

  constructor(
    private readonly kube: KubeClient,
    settings: VaultConnectionSettings,
    observe: CallObserver,
    private readonly secretMeta?: SecretMetaLookup,
  ) {
    this.pool = new VaultPool({
      issuerTokenRole: settings.issuerTokenRole,
      observe,
      onIssuerChanged: (key) => settings.onIssuerChanged?.(keyFromString(key)),
    });
    this.ports = { kube, settings, mint: tokenRequestMinter(kube, settings.tokenAudiences) };
  }

  get issuerTokenRole(): string {
    return this.pool.issuerTokenRole;
  }

  /**
   * The session for a Vault AppBinding (read from the cache); builds it on first use or after a change that
   * matters: the AppBinding's uid or spec, or its token Secret's uid or token. Metadata changes — a finalizer, the
   * deletion itself, a status write — keep the session and so the login it holds: in a namespace being deleted
   * that login can't be made again (no ServiceAccount token is issued there), and it is what revokes the leases.
   * A token Secret that is gone keeps the session too, for as long as its login works.
   */
  async forAppBinding(ab: AppBinding, signal?: AbortSignal): Promise<VaultConnection> {
    const ns = ab.metadata.namespace ?? '';
    const key = keyOf(ab);
    const fingerprint = appBindingFingerprint(ab);
    const held = this.pool.held(key);
    const seen = this.seen.get(key);
    let secret: TokenSecret | undefined;
    if (held && seen && seen.fingerprint === fingerprint) {
      if (!ab.spec.secret) return held;
      const meta = this.secretMeta?.(ns, ab.spec.secret.name);
      if (this.secretMeta && !meta) return held;
      if (
        meta &&
        meta.metadata?.uid === seen.secret.uid &&
        meta.metadata?.resourceVersion === seen.secret.resourceVersion
      )
        return held;
      secret = await this.kube.tryGet<TokenSecret>(SECRETS, ns, ab.spec.secret.name, { signal });
      if (!secret) return held;
      if (secret.metadata?.uid === seen.secret.uid && tokenHash(secret) === seen.secret.tokenHash) {
        seen.secret.resourceVersion = secret.metadata?.resourceVersion;
        return held;
      }
    } else if (ab.spec.secret) {
      secret = await this.kube.tryGet<TokenSecret>(SECRETS, ns, ab.spec.secret.name, { signal });
    }
    const session = this.pool.open(vaultSessionSpec(this.ports, ab, secret));
    this.seen.set(key, {
      fingerprint,
      secret: {
        uid: secret?.metadata?.uid,
        resourceVersion: secret?.metadata?.resourceVersion,
        tokenHash: tokenHash(secret),
      },
    });
    return session;
  }

  /** How often the AppBinding's issuer token was replaced or lost in this process (0: never). */
  issuerGeneration(ab: AppBinding): number {
    return this.pool.issuerGeneration(keyOf(ab));
  }

  /** Drops a session whose credentials stopped working (a rotated token Secret, say), or whose AppBinding is gone. */
  invalidate(ab: AppBinding): void {
    this.pool.drop(keyOf(ab));
    this.seen.delete(keyOf(ab));
  }
}

const keyOf = (ab: AppBinding) => keyToString({ namespace: ab.metadata.namespace ?? '', name: ab.metadata.name ?? '' });
