// How the operator logs into Vault: with a token kept elsewhere (a Kubernetes Secret, read through a port), or
// through the kubernetes auth method with a service-account token (minted through a port: TokenRequest). Both log
// in through the endpoint's transport, counted as `lookupToken` and `login`.
import type { CallOptions, VaultTransport } from './transport.ts';

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
  login(opts?: CallOptions): Promise<LoginToken>;
}

/**
 * How to log in, as the caller describes it; the pool turns it into a VaultAuthMethod on the endpoint's transport.
 * The functions are the ports to wherever the secret material lives; what they throw (with a `reason`) reaches
 * status as it is.
 */
export type AuthSource =
  | {
      method: 'token';
      /** e.g. "token from Secret demo/vault-token". */
      description: string;
      /** The token, read afresh at each login. */
      token: () => Promise<string>;
    }
  | {
      method: 'kubernetes';
      /** The auth method's mount path, without slashes (e.g. "kubernetes"). */
      mountPath: string;
      role: string;
      /** Who the JWT is for, in words ("ServiceAccount demo/vault"). */
      subject: string;
      /** A short-lived service-account JWT, minted at each login. */
      jwt: () => Promise<string>;
    };

/** The VaultAuthMethod for a source, logging in through `transport`. */
export function authMethod(transport: VaultTransport, source: AuthSource): VaultAuthMethod {
  return source.method === 'token'
    ? new TokenAuth(transport, source.description, source.token)
    : new KubernetesAuth(transport, source);
}

/** A token given as is (kept in a Secret): "logging in" checks it with auth/token/lookup-self, learning its TTL. */
export class TokenAuth implements VaultAuthMethod {
  constructor(
    private readonly transport: VaultTransport,
    readonly description: string,
    private readonly readToken: () => Promise<string>,
  ) {}

  async login(opts?: CallOptions): Promise<LoginToken> {
    const token = await this.readToken();
    const self = await this.transport.call<{ data: { ttl: number; renewable?: boolean } }>(
      'lookupToken',
      { method: 'GET', path: 'auth/token/lookup-self', token, what: `logging in with the ${this.description}` },
      opts,
    );
    return { token, ttlSeconds: self.data.ttl, renewable: !!self.data.renewable, source: this.description };
  }
}

/** The kubernetes auth method: POST auth/<mountPath>/login {role, jwt}. */
export class KubernetesAuth implements VaultAuthMethod {
  readonly description: string;
  constructor(
    private readonly transport: VaultTransport,
    private readonly source: Extract<AuthSource, { method: 'kubernetes' }>,
  ) {
    this.description = `kubernetes auth at auth/${source.mountPath}, role ${source.role}, as ${source.subject}`;
  }

  async login(opts?: CallOptions): Promise<LoginToken> {
    const jwt = await this.source.jwt();
    const res = await this.transport.call<{
      auth: { client_token: string; lease_duration: number; renewable: boolean };
    }>(
      'login',
      {
        method: 'POST',
        path: `auth/${this.source.mountPath}/login`,
        body: { role: this.source.role, jwt },
        what: `logging in with ${this.description}`,
      },
      opts,
    );
    return {
      token: res.auth.client_token,
      ttlSeconds: res.auth.lease_duration,
      renewable: res.auth.renewable,
      source: this.description,
    };
  }
}

/** auth/token/renew-self with `token`: the token's new TTL (seconds) and whether it can be renewed again. */
export async function renewSelf(
  transport: VaultTransport,
  token: string,
  what: string,
  opts?: CallOptions,
): Promise<{ ttlSeconds: number; renewable: boolean }> {
  const res = await transport.call<{ auth: { lease_duration: number; renewable: boolean } }>(
    'renewToken',
    { method: 'POST', path: 'auth/token/renew-self', body: {}, token, what },
    opts,
  );
  return { ttlSeconds: res.auth.lease_duration, renewable: res.auth.renewable };
}
