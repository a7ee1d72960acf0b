// One Vault connection per Vault AppBinding, reused across reconciles: an HTTPS agent, a login-token keeper
// and an issuer token. Rebuilt when what it is made of changes (the AppBinding's spec, its token Secret's token),
// never for metadata: the login it holds may be the only one the operator can still get (see forAppBinding).
import crypto from 'node:crypto';
import { Labels, MANAGED_BY, Reason, type AppBinding } from '../../api/index.ts';
import { HttpMethod } from '@kubernetes/client-node';
import { KubeApiError, RetryableError, isNotFound, keyToString, type KubeClient } from '../../lib/runtime/index.ts';
import { KubernetesAuth, TokenSecretAuth, type VaultAuthMethod } from '../../lib/vault/auth.ts';
import type { VaultClient } from '../../lib/vault/client.ts';
import { IssuerToken, type IssuerTokenState, type IssuerTokenStore, type StoredIssuerToken } from '../../lib/vault/issuer-token.ts';
import { NodeVaultClient, makeHttpsAgent, rawVaultClient, type CallObserver, type VaultEndpoint } from '../../lib/vault/node-vault-client.ts';
import { TokenKeeper } from '../../lib/vault/token-keeper.ts';
import { decodeSecretData, vaultAuthConfig, vaultEndpoint } from './appbinding.ts';
import { SECRETS } from './resources.ts';

export interface VaultConnectionSettings {
  /** Where issuer-token Secrets live (the operator's namespace). */
  operatorNamespace: string;
  /** The operator's own ServiceAccount, used for kubernetes auth when an AppBinding names none. */
  operatorServiceAccount?: { namespace: string; name: string };
  /** Vault token role issuer tokens are created from. */
  issuerTokenRole: string;
  /** Audience of service-account tokens requested for kubernetes auth (empty: the apiserver's default). */
  tokenAudiences: string[];
  /** A Vault AppBinding's issuer token was replaced, or none can be had any more. */
  onIssuerChanged?: (appBinding: { namespace: string; name: string }) => void;
}

export interface VaultConnection {
  readonly endpoint: VaultEndpoint;
  readonly authDescription: string;
  /** Calls made with the operator's login token (mounts, config, roles, renew, revoke). */
  readonly client: VaultClient;
  /** The issuer token's state; renews or creates it when due. */
  issuer(): Promise<IssuerTokenState>;
  /** The issuer token's state as Vault sees it now: renewed, or replaced when Vault no longer knows it. */
  verifyIssuer(): Promise<IssuerTokenState>;
  /** The client that issues credentials: the issuer token's, or the login token's when no issuer token can be had. */
  issuingClient(): Promise<{ client: VaultClient; ownedBy: 'issuer-token' | 'login-token' }>;
  /** Makes sure a login token is held (no Vault call while the held one is fresh); throws why not (e.g. VaultLoginUnavailable). */
  login(): Promise<void>;
}

/** The token Secret as read for a connection: its identity, version, and a hash of its `token` (never the token). */
interface SecretSeen {
  uid?: string;
  resourceVersion?: string;
  tokenHash?: string;
}

type SecretObject = { type?: string; data?: Record<string, string>; metadata?: { uid?: string; resourceVersion?: string } };

/** Reads a Secret's metadata without an API call (the watch cache), when the caller has one. */
export type SecretMetaLookup = (namespace: string, name: string) => { metadata?: { uid?: string; resourceVersion?: string } } | undefined;

function tokenHash(secret: SecretObject | undefined): string | undefined {
  const token = secret?.data?.token;
  return token === undefined ? undefined : crypto.createHash('sha256').update(token).digest('hex');
}

export class VaultConnections {
  private readonly byAppBinding = new Map<string, { fingerprint: string; secret: SecretSeen; connection: VaultConnection }>();
  /** Per Vault AppBinding (namespace/name): what its issuer token's last refresh found, and how often that changed. */
  private readonly issuerSeen = new Map<string, { found: string; changes: number }>();

  constructor(
    private readonly kube: KubeClient,
    private readonly settings: VaultConnectionSettings,
    private readonly observe: CallObserver,
    private readonly secretMeta?: SecretMetaLookup,
  ) {}

  get issuerTokenRole(): string {
    return this.settings.issuerTokenRole;
  }

  /**
   * The connection for a Vault AppBinding (read from the cache); builds it on first use or after a change that
   * matters: the AppBinding's uid or spec, or its token Secret's uid or token. Metadata changes — a finalizer, the
   * deletion itself, a status write — keep the connection and so the login it holds: in a namespace being deleted
   * that login can't be made again (no ServiceAccount token is issued there), and it is what revokes the leases.
   * A token Secret that is gone keeps the connection too, for as long as its login works.
   */
  async forAppBinding(ab: AppBinding, signal?: AbortSignal): Promise<VaultConnection> {
    const ns = ab.metadata.namespace ?? '';
    const key = keyToString({ namespace: ns, name: ab.metadata.name ?? '' });
    const fingerprint = crypto.createHash('sha256').update(JSON.stringify([ab.metadata.uid, ab.spec])).digest('hex');
    const cached = this.byAppBinding.get(key);
    let secret: SecretObject | undefined;
    if (cached && cached.fingerprint === fingerprint) {
      if (!ab.spec.secret) return cached.connection;
      const meta = this.secretMeta?.(ns, ab.spec.secret.name);
      if (this.secretMeta && !meta) return cached.connection;
      if (meta && meta.metadata?.uid === cached.secret.uid && meta.metadata?.resourceVersion === cached.secret.resourceVersion) return cached.connection;
      secret = await this.kube.tryGet<SecretObject>(SECRETS, ns, ab.spec.secret.name, { signal });
      if (!secret) return cached.connection;
      if (secret.metadata?.uid === cached.secret.uid && tokenHash(secret) === cached.secret.tokenHash) {
        cached.secret.resourceVersion = secret.metadata?.resourceVersion;
        return cached.connection;
      }
    } else if (ab.spec.secret) {
      secret = await this.kube.tryGet<SecretObject>(SECRETS, ns, ab.spec.secret.name, { signal });
    }
    const connection = await this.build(ab, secret);
    this.byAppBinding.set(key, {
      fingerprint, connection,
      secret: { uid: secret?.metadata?.uid, resourceVersion: secret?.metadata?.resourceVersion, tokenHash: tokenHash(secret) },
    });
    return connection;
  }

  /** How often the AppBinding's issuer token was replaced or lost in this process (0: never). */
  issuerGeneration(ab: AppBinding): number {
    return this.issuerSeen.get(keyToString({ namespace: ab.metadata.namespace ?? '', name: ab.metadata.name ?? '' }))?.changes ?? 0;
  }

  /** Drops a connection whose credentials stopped working (a rotated token Secret, say). */
  invalidate(ab: AppBinding): void {
    this.byAppBinding.delete(keyToString({ namespace: ab.metadata.namespace ?? '', name: ab.metadata.name ?? '' }));
  }

  private async build(ab: AppBinding, secret: SecretObject | undefined): Promise<VaultConnection> {
    const ns = ab.metadata.namespace ?? '';
    const endpoint = vaultEndpoint(ab);
    if (ab.spec.secret && !secret) {
      throw new RetryableError('SecretNotFound', `Secret ${ns}/${ab.spec.secret.name} named by AppBinding ${ns}/${ab.metadata.name} does not exist`);
    }
    const authConfig = vaultAuthConfig(ab, secret);
    let auth: VaultAuthMethod;
    if (authConfig.kind === 'token') {
      auth = new TokenSecretAuth(endpoint, { namespace: ns, name: authConfig.secretName }, async () => {
        // A Secret being deleted is still readable: its in-use finalizer keeps it while the AppBinding needs it.
        const s = await this.kube.tryGet<{ data?: Record<string, string> } & { metadata?: object }>(SECRETS, ns, authConfig.secretName);
        if (!s) throw new RetryableError('SecretNotFound', `Secret ${ns}/${authConfig.secretName} named by AppBinding ${ns}/${ab.metadata.name} does not exist: no token to log into Vault with`);
        const token = decodeSecretData(s.data).token;
        if (!token) throw new RetryableError('InvalidTokenSecret', `Secret ${ns}/${authConfig.secretName} has no "token" key`);
        return token;
      });
    } else {
      const sa = authConfig.serviceAccountName
        ? { namespace: ns, name: authConfig.serviceAccountName }
        : this.settings.operatorServiceAccount;
      if (!sa) {
        throw new RetryableError('NoServiceAccount', `AppBinding ${ns}/${ab.metadata.name} uses kubernetes auth without ` +
          'parameters.kubernetes.serviceAccountName, and the operator runs without a service account of its own ' +
          '(--operator-service-account)');
      }
      auth = new KubernetesAuth(endpoint, authConfig.mountPath, authConfig.role, () => this.serviceAccountToken(sa), `ServiceAccount ${sa.namespace}/${sa.name}`);
    }
    const agent = makeHttpsAgent(endpoint);
    const keeper = new TokenKeeper(endpoint, auth);
    const loginToken = () => keeper.token();
    const client = new NodeVaultClient(endpoint, loginToken, this.observe, rawVaultClient(endpoint, agent));
    const abKey = { namespace: ns, name: ab.metadata.name ?? '' };
    const issuer = new IssuerToken(endpoint, loginToken, this.issuerStore(ab), this.settings.issuerTokenRole, Date.now, (found) => {
      // Kept here, not in the token object: a connection rebuilt for a changed AppBinding must still see a change.
      const k = keyToString(abKey);
      const seen = this.issuerSeen.get(k);
      if (seen?.found === found) return;
      this.issuerSeen.set(k, { found, changes: (seen?.changes ?? 0) + (seen ? 1 : 0) });
      if (seen) this.settings.onIssuerChanged?.(abKey);
    });
    // A 403 to the issuer token (revoked in Vault: its leases are gone too) drops it; the retry renews or replaces it.
    const issuerClient = new NodeVaultClient(endpoint, async () => {
      const s = await issuer.state();
      if (s.kind !== 'ready') throw new RetryableError(s.reason, s.message);
      return s.token;
    }, this.observe, rawVaultClient(endpoint, agent), () => issuer.forget());
    return {
      endpoint,
      authDescription: auth.description,
      client,
      issuer: () => issuer.state(),
      verifyIssuer: () => issuer.verify(),
      login: async () => {
        await keeper.token();
      },
      async issuingClient() {
        const s = await issuer.state();
        return s.kind === 'ready' ? { client: issuerClient, ownedBy: 'issuer-token' } : { client, ownedBy: 'login-token' };
      },
    };
  }

  /**
   * A short-lived service-account token from the TokenRequest API, for Vault's kubernetes auth. Kubernetes issues
   * none for a ServiceAccount that is gone or whose namespace is being deleted (NamespaceLifecycle refuses every
   * create there, TokenRequest included): that is VaultLoginUnavailable, with what to do.
   */
  private async serviceAccountToken(sa: { namespace: string; name: string }): Promise<string> {
    try {
      const res = await this.kube.request<{ status: { token: string } }>(HttpMethod.POST,
        `/api/v1/namespaces/${encodeURIComponent(sa.namespace)}/serviceaccounts/${encodeURIComponent(sa.name)}/token`,
        { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: this.settings.tokenAudiences, expirationSeconds: 600 } } });
      return res.status.token;
    } catch (err) {
      if (!(err instanceof KubeApiError)) throw err;
      throw new RetryableError(Reason.VaultLoginUnavailable, loginUnavailableMessage(sa, err));
    }
  }

  /** The issuer token of a Vault AppBinding lives in a Secret in the operator's namespace. */
  private issuerStore(ab: AppBinding): IssuerTokenStore {
    return issuerTokenStore(this.kube, this.settings.operatorNamespace, ab);
  }
}

/**
 * Why no Vault login can be made as `sa`, and what to do: Kubernetes refused the ServiceAccount token. The
 * operator holds no login for the AppBinding (it restarted, or the one it held ran out), so whatever needs Vault
 * through it — revoking leases, deleting Vault roles and mounts — waits.
 */
export function loginUnavailableMessage(sa: { namespace: string; name: string }, err: KubeApiError): string {
  const who = `ServiceAccount ${sa.namespace}/${sa.name}`;
  const terminating = /being terminated/i.test(err.message);
  const why = terminating ? `namespace ${sa.namespace} is being deleted, and Kubernetes issues no new token there`
    : err.statusCode === 404 ? `${who} (or its namespace) does not exist`
      : `Kubernetes refused a token for it (${err.message})`;
  const todo = terminating || err.statusCode === 404
    ? 'Revocations and Vault cleanup through this AppBinding wait. To let them finish, have the operator log in as a ServiceAccount ' +
      'that still exists: run it with --operator-service-account, allow that ServiceAccount in the Vault role, and remove ' +
      'parameters.serviceAccountName from the AppBinding (it can be edited while being deleted); or revoke the leases in Vault ' +
      'by hand and remove the finalizers (README: "Deletion order and finalizers")'
    : err.statusCode === 403 ? 'grant the operator "create" on serviceaccounts/token' : 'retried';
  return `no Vault login as ${who}: ${why}. ${todo}`;
}

/**
 * Where the issuer token of a Vault AppBinding is kept: a Secret in the operator's namespace (`namespace`) named by
 * the AppBinding and the Vault address (a token is only ever shown to the Vault that created it), with keys
 * `token`, `accessor` and `address`.
 */
export function issuerTokenStore(kube: KubeClient, namespace: string, ab: AppBinding): IssuerTokenStore {
  const id = `${ab.metadata.namespace}/${ab.metadata.name}`;
  // The token is only ever shown to the Vault it was created at: whoever may edit the AppBinding could point its
  // address at a server of their own, which must then get a token of its own making, never this one. So the
  // Secret is named by the AppBinding and the address, and records the address.
  const address = vaultEndpoint(ab).address;
  const hash = (text: string) => crypto.createHash('sha256').update(text).digest('hex').slice(0, 12);
  const name = `leasehold-issuer-${hash(`${id}\n${address}`)}`;
  /** Before tokens were bound to an address: adopted when it records none (an upgrade), never otherwise. */
  const legacyName = `leasehold-issuer-${hash(id)}`;
  const read = async (secretName: string) => decodeSecretData((await kube.tryGet<{ data?: Record<string, string> } & { metadata?: object }>(SECRETS, namespace, secretName))?.data);
  return {
    async load(): Promise<StoredIssuerToken | undefined> {
      let d = await read(name);
      if (!d.token) {
        const legacy = await read(legacyName);
        if (legacy.token && !legacy.address) d = legacy;
      }
      if (d.address !== undefined && d.address !== address) return undefined;
      return d.token && d.accessor ? { token: d.token, accessor: d.accessor } : undefined;
    },
    async save(t: StoredIssuerToken): Promise<void> {
      const body = {
        apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
        metadata: {
          name, namespace,
          labels: { [Labels.managedBy]: MANAGED_BY },
          annotations: { 'leasehold.dev/vault-appbinding': id, 'leasehold.dev/vault-address': address, 'leasehold.dev/purpose': 'Vault issuer token: every lease Leasehold issues for this Vault is owned by it. Deleting it revokes nothing at once, but the leases die when the token expires unrenewed.' },
        },
        stringData: { token: t.token, accessor: t.accessor, address },
      };
      try {
        await kube.replace(SECRETS, namespace, name, body as never);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await kube.create(SECRETS, namespace, body as never);
      }
    },
  };
}
