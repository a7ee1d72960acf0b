// The Kubernetes side of a Vault session (lib/vault/pool.ts): what an AppBinding says about where Vault is and how
// to log in, turned into a VaultSessionSpec whose ports read a token Secret, mint a service-account token through
// the TokenRequest API, and keep the issuer token in a Secret of the operator's namespace.
import crypto from 'node:crypto';
import { HttpMethod, type KubernetesObject } from '@kubernetes/client-node';
import { Labels, MANAGED_BY, Reason, type AppBinding } from '../../api/index.ts';
import { KubeApiError, RetryableError, isNotFound, keyToString, type KubeClient } from '../../lib/runtime/index.ts';
import type { AuthSource } from '../../lib/vault/auth.ts';
import type { IssuerTokenStore, StoredIssuerToken } from '../../lib/vault/issuer-token.ts';
import type { VaultSessionSpec } from '../../lib/vault/pool.ts';
import { decodeSecretData, vaultAuthConfig, vaultEndpoint } from './appbinding.ts';
import { SECRETS } from './resources.ts';

export type ServiceAccountRef = { namespace: string; name: string };

/** Mints a short-lived token for a ServiceAccount (TokenRequest); throws a RetryableError with a reason. */
export type ServiceAccountTokens = (sa: ServiceAccountRef) => Promise<string>;

export interface VaultPortSettings {
  /** Where issuer-token Secrets live (the operator's namespace). */
  operatorNamespace: string;
  /** The operator's own ServiceAccount, used for kubernetes auth when an AppBinding names none. */
  operatorServiceAccount?: ServiceAccountRef;
}

/** What the ports need: the apiserver, the settings, and how service-account tokens are minted. */
export interface VaultPorts {
  kube: KubeClient;
  settings: VaultPortSettings;
  mint: ServiceAccountTokens;
}

/** A Secret as the session's ports read it. */
export type TokenSecret = {
  type?: string;
  data?: Record<string, string>;
  metadata?: { uid?: string; resourceVersion?: string };
};

/**
 * The session a Vault AppBinding describes, given its token Secret as read now (`secret`, when spec.secret names
 * one). `version` is what the session is built from: the AppBinding's uid and spec, the token Secret's uid and a
 * hash of its token (never the token). Throws a RetryableError (SecretNotFound, NoServiceAccount) or a
 * TerminalError (InvalidAppBinding) when no session can be described.
 */
export function vaultSessionSpec(ports: VaultPorts, ab: AppBinding, secret: TokenSecret | undefined): VaultSessionSpec {
  const { kube, settings, mint } = ports;
  const ns = ab.metadata.namespace ?? '';
  const where = `AppBinding ${ns}/${ab.metadata.name}`;
  if (ab.spec.secret && !secret)
    throw new RetryableError('SecretNotFound', `Secret ${ns}/${ab.spec.secret.name} named by ${where} does not exist`);
  const config = vaultAuthConfig(ab, secret);
  let auth: AuthSource;
  if (config.kind === 'token') {
    auth = {
      method: 'token',
      description: `token from Secret ${ns}/${config.secretName}`,
      token: () => tokenFromSecret(kube, ns, config.secretName, where),
    };
  } else {
    const sa = config.serviceAccountName
      ? { namespace: ns, name: config.serviceAccountName }
      : settings.operatorServiceAccount;
    if (!sa) {
      throw new RetryableError(
        'NoServiceAccount',
        `${where} uses kubernetes auth without ` +
          'parameters.kubernetes.serviceAccountName, and the operator runs without a service account of its own ' +
          '(--operator-service-account)',
      );
    }
    auth = {
      method: 'kubernetes',
      mountPath: config.mountPath,
      role: config.role,
      subject: `ServiceAccount ${sa.namespace}/${sa.name}`,
      jwt: () => mint(sa),
    };
  }
  return {
    key: keyToString({ namespace: ns, name: ab.metadata.name ?? '' }),
    version: sessionVersion(ab, secret),
    endpoint: vaultEndpoint(ab),
    auth,
    issuerStore: issuerTokenStore(kube, settings.operatorNamespace, ab),
  };
}

/** What a session is built from, hashed: the AppBinding's uid and spec, its token Secret's uid and token. */
export function sessionVersion(ab: AppBinding, secret: TokenSecret | undefined): string {
  return `${appBindingFingerprint(ab)}/${secret?.metadata?.uid ?? ''}/${tokenHash(secret) ?? ''}`;
}

/** The AppBinding's uid and spec, hashed: what changes how to reach and log into its Vault. */
export function appBindingFingerprint(ab: AppBinding): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify([ab.metadata.uid, ab.spec]))
    .digest('hex');
}

/** A hash of a token Secret's `token` (never the token); undefined without one. */
export function tokenHash(secret: TokenSecret | undefined): string | undefined {
  const token = secret?.data?.token;
  return token === undefined ? undefined : crypto.createHash('sha256').update(token).digest('hex');
}

/** The `token` of a token Secret, read at login. A Secret being deleted is still readable: its in-use finalizer
 * keeps it while the AppBinding needs it. */
async function tokenFromSecret(kube: KubeClient, ns: string, name: string, where: string): Promise<string> {
  const s = await kube.tryGet<TokenSecret>(SECRETS, ns, name);
  if (!s)
    throw new RetryableError(
      'SecretNotFound',
      `Secret ${ns}/${name} named by ${where} does not exist: no token to log into Vault with`,
    );
  const token = decodeSecretData(s.data).token;
  if (!token) throw new RetryableError('InvalidTokenSecret', `Secret ${ns}/${name} has no "token" key`);
  return token;
}

/**
 * Service-account tokens from the TokenRequest API (`serviceaccounts/<name>/token`), valid 10 minutes, for Vault's
 * kubernetes auth (`audiences`: empty for the apiserver's default). Kubernetes issues none for a ServiceAccount
 * that is gone or whose namespace is being deleted (NamespaceLifecycle refuses every create there, TokenRequest
 * included): that is a RetryableError VaultLoginUnavailable, with what to do.
 */
export function tokenRequestMinter(kube: KubeClient, audiences: string[]): ServiceAccountTokens {
  return async (sa) => {
    try {
      const res = await kube.request<{ status: { token: string } }>(
        HttpMethod.POST,
        `/api/v1/namespaces/${encodeURIComponent(sa.namespace)}/serviceaccounts/${encodeURIComponent(sa.name)}/token`,
        {
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: { audiences, expirationSeconds: 600 },
          },
        },
      );
      return res.status.token;
    } catch (err) {
      if (!(err instanceof KubeApiError)) throw err;
      throw new RetryableError(Reason.VaultLoginUnavailable, loginUnavailableMessage(sa, err));
    }
  };
}

/**
 * Why no Vault login can be made as `sa`, and what to do: Kubernetes refused the ServiceAccount token. The
 * operator holds no login for the AppBinding (it restarted, or the one it held ran out), so whatever needs Vault
 * through it — revoking leases, deleting Vault roles and mounts — waits.
 */
export function loginUnavailableMessage(sa: ServiceAccountRef, err: KubeApiError): string {
  const who = `ServiceAccount ${sa.namespace}/${sa.name}`;
  const terminating = /being terminated/i.test(err.message);
  const why = terminating
    ? `namespace ${sa.namespace} is being deleted, and Kubernetes issues no new token there`
    : err.statusCode === 404
      ? `${who} (or its namespace) does not exist`
      : `Kubernetes refused a token for it (${err.message})`;
  const todo =
    terminating || err.statusCode === 404
      ? 'Revocations and Vault cleanup through this AppBinding wait. To let them finish, have the operator log in as a ServiceAccount ' +
        'that still exists: run it with --operator-service-account, allow that ServiceAccount in the Vault role, and remove ' +
        'parameters.serviceAccountName from the AppBinding (it can be edited while being deleted); or revoke the leases in Vault ' +
        'by hand and remove the finalizers (README: "Deletion order and finalizers")'
      : err.statusCode === 403
        ? 'grant the operator "create" on serviceaccounts/token'
        : 'retried';
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
  const read = async (secretName: string) =>
    decodeSecretData((await kube.tryGet<TokenSecret>(SECRETS, namespace, secretName))?.data);
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
      const body: KubernetesObject & { type: string; stringData: Record<string, string> } = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: {
          name,
          namespace,
          labels: { [Labels.managedBy]: MANAGED_BY },
          annotations: {
            'leasehold.dev/vault-appbinding': id,
            'leasehold.dev/vault-address': address,
            'leasehold.dev/purpose':
              'Vault issuer token: every lease Leasehold issues for this Vault is owned by it. Deleting it revokes nothing at once, but the leases die when the token expires unrenewed.',
          },
        },
        stringData: { token: t.token, accessor: t.accessor, address },
      };
      try {
        await kube.replace(SECRETS, namespace, name, body);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await kube.create(SECRETS, namespace, body);
      }
    },
  };
}
