// How the operator logs into Vault for one AppBinding: with a token kept in a Kubernetes Secret, or through
// the kubernetes auth method with a service-account token obtained by TokenRequest.
import type { VaultEndpoint } from './node-vault-client.ts';
import { rawVaultClient } from './node-vault-client.ts';
import { classifyVaultError } from './errors.ts';

export interface LoginToken {
  token: string;
  /** 0 means the token never expires (e.g. a root token). */
  ttlSeconds: number;
  renewable: boolean;
  /** Where the token came from, for messages: never the token itself. */
  source: string;
}

export interface VaultAuthMethod {
  /** A short, secret-free description for status messages ("kubernetes auth at auth/kubernetes, role r"). */
  readonly description: string;
  login(): Promise<LoginToken>;
}

/** A token stored in a Secret (type kubevault.com/token, or any Secret with a `token` key). */
export class TokenSecretAuth implements VaultAuthMethod {
  readonly description: string;
  constructor(
    private readonly ep: VaultEndpoint,
    private readonly secretRef: { namespace: string; name: string },
    private readonly readToken: () => Promise<string>,
  ) {
    this.description = `token from Secret ${secretRef.namespace}/${secretRef.name}`;
  }

  async login(): Promise<LoginToken> {
    const token = await this.readToken();
    const raw = rawVaultClient(this.ep);
    try {
      const self = (await raw.read('auth/token/lookup-self', { headers: { 'X-Vault-Token': token } } as never)) as {
        data: { ttl: number; renewable?: boolean };
      };
      return { token, ttlSeconds: self.data.ttl, renewable: !!self.data.renewable, source: this.description };
    } catch (err) {
      throw classifyVaultError(`logging in with the ${this.description}`, err);
    }
  }
}

/** The kubernetes auth method: POST auth/<path>/login {role, jwt}. */
export class KubernetesAuth implements VaultAuthMethod {
  readonly description: string;
  constructor(
    private readonly ep: VaultEndpoint,
    private readonly mountPath: string,
    private readonly role: string,
    private readonly serviceAccountJwt: () => Promise<string>,
    serviceAccountDescription: string,
  ) {
    this.description = `kubernetes auth at auth/${mountPath}, role ${role}, as ${serviceAccountDescription}`;
  }

  async login(): Promise<LoginToken> {
    const jwt = await this.serviceAccountJwt();
    const raw = rawVaultClient(this.ep);
    try {
      // mount_point is mandatory: without it node-vault posts to /v1/auth//login.
      const res = (await raw.kubernetesLogin({ role: this.role, jwt, mount_point: this.mountPath } as never)) as {
        auth: { client_token: string; lease_duration: number; renewable: boolean };
      };
      return { token: res.auth.client_token, ttlSeconds: res.auth.lease_duration, renewable: res.auth.renewable, source: this.description };
    } catch (err) {
      throw classifyVaultError(`logging in with ${this.description}`, err);
    }
  }
}
