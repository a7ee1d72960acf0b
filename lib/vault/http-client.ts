// VaultClient over Vault's HTTP API. Each method is one (or, for a revocation, two) calls through the endpoint's
// VaultTransport (transport.ts): counted under the method's operation name, failures classified, the caller's signal
// reaching the HTTP request. The token is asked of the token source for every call, so a re-login is picked up.
import type {
  ConnectionConfig,
  DatabaseRoleSpec,
  VaultLease,
  LeaseInfo,
  LeasedCredential,
  MountInfo,
  MountTuning,
  RevokeOutcome,
  VaultClient,
} from './client.ts';
import { VaultRequestError, isVaultNotFound } from './errors.ts';
import type { CallOptions, CallSpec, TokenSource, VaultTransport } from './transport.ts';

/** An unknown lease: 400 "invalid lease" (404 on some versions). */
const leaseUnknown = (e: VaultRequestError) =>
  e.kind === 'NotFound' || (e.kind === 'Invalid' && /invalid lease/i.test(e.detail));

export class HttpVaultClient implements VaultClient {
  /**
   * `onDenied`: Vault answered 403 to a call made with the token `token` gave: the token may be gone (revoked in
   * Vault). Called to drop it; the call is then made once more with whatever `token` gives next.
   */
  constructor(
    private readonly transport: VaultTransport,
    private readonly token: TokenSource,
    private readonly onDenied?: () => void,
  ) {}

  /** A request made with this client's token (and its 403 retry). */
  private spec(method: CallSpec['method'], path: string, what: string, body?: unknown): CallSpec {
    return { method, path, what, body, token: this.token, onDenied: this.onDenied };
  }

  async health(opts?: CallOptions) {
    // sys/health answers non-200 for sealed/standby/uninitialised, with the body that says which.
    const body = await this.transport.call<
      { initialized?: boolean; sealed?: boolean; standby?: boolean; version?: string } | undefined
    >(
      'health',
      {
        method: 'GET',
        path: 'sys/health?standbyok=true&perfstandbyok=true',
        what: 'checking Vault health',
        anyStatus: true,
      },
      opts,
    );
    return {
      initialized: !!body?.initialized,
      sealed: !!body?.sealed,
      standby: !!body?.standby,
      version: body?.version,
    };
  }

  async readMount(path: string, opts?: CallOptions): Promise<MountInfo | undefined> {
    // Vault answers 400 "No secret engine mount at <path>/" for an absent mount.
    const body = await this.transport.lookup<{
      data?: { type?: string; description?: string };
      type?: string;
      description?: string;
    }>(
      'readMount',
      this.spec('GET', `sys/mounts/${path}`, `reading mount ${path}`),
      (e) => isVaultNotFound(e) || /no secret engine mount/i.test(e.detail),
      opts,
    );
    if (!body) return undefined;
    return {
      type: body.data?.type ?? body.type ?? 'unknown',
      description: body.data?.description ?? body.description ?? '',
    };
  }

  async enableDatabaseMount(path: string, description: string, tuning: MountTuning, opts?: CallOptions) {
    await this.transport.call(
      'enableMount',
      this.spec('POST', `sys/mounts/${path}`, `enabling the database engine at ${path}`, {
        type: 'database',
        description,
        config: tuneBody(tuning),
      }),
      opts,
    );
  }

  async tuneMount(path: string, tuning: MountTuning, opts?: CallOptions) {
    const body = tuneBody(tuning);
    if (Object.keys(body).length === 0) return;
    await this.transport.call(
      'tuneMount',
      this.spec('POST', `sys/mounts/${path}/tune`, `tuning mount ${path}`, body),
      opts,
    );
  }

  async disableMount(path: string, opts?: CallOptions) {
    await this.transport.call(
      'disableMount',
      this.spec('DELETE', `sys/mounts/${path}`, `disabling mount ${path}`),
      opts,
    );
  }

  async writeConnection(mount: string, name: string, c: ConnectionConfig, opts?: CallOptions) {
    const body: Record<string, unknown> = {
      ...c.parameters,
      plugin_name: c.pluginName,
      ...(c.connectionUrl !== undefined ? { connection_url: c.connectionUrl } : {}),
      username: c.username,
      password: c.password,
      allowed_roles: c.allowedRoles,
      verify_connection: c.verifyConnection,
    };
    if (c.maxOpenConnections !== undefined) body.max_open_connections = c.maxOpenConnections;
    if (c.maxIdleConnections !== undefined) body.max_idle_connections = c.maxIdleConnections;
    if (c.maxConnectionLifetimeSeconds !== undefined)
      body.max_connection_lifetime = `${c.maxConnectionLifetimeSeconds}s`;
    await this.transport.call(
      'writeConnection',
      this.spec('POST', `${mount}/config/${name}`, `configuring connection ${name} in ${mount}`, body),
      opts,
    );
  }

  async deleteConnection(mount: string, name: string, opts?: CallOptions) {
    await this.transport.call(
      'deleteConnection',
      this.spec('DELETE', `${mount}/config/${name}`, `deleting connection ${name} in ${mount}`),
      opts,
    );
  }

  async writeRole(mount: string, name: string, r: DatabaseRoleSpec, opts?: CallOptions) {
    await this.transport.call(
      'writeRole',
      this.spec('POST', `${mount}/roles/${name}`, `writing role ${name} in ${mount}`, {
        db_name: r.dbName,
        creation_statements: r.creationStatements,
        revocation_statements: r.revocationStatements,
        rollback_statements: r.rollbackStatements,
        renew_statements: r.renewStatements,
        default_ttl: r.defaultTtlSeconds,
        max_ttl: r.maxTtlSeconds,
      }),
      opts,
    );
  }

  async deleteRole(mount: string, name: string, opts?: CallOptions) {
    await this.transport.call(
      'deleteRole',
      this.spec('DELETE', `${mount}/roles/${name}`, `deleting role ${name} in ${mount}`),
      opts,
    );
  }

  async issueCredential(mount: string, role: string, opts?: CallOptions): Promise<LeasedCredential> {
    const body = await this.transport.call<{
      lease_id: string;
      lease_duration: number;
      renewable: boolean;
      data: { username: string; password: string };
    }>(
      'issueCredential',
      this.spec('GET', `${mount}/creds/${role}`, `issuing credentials for role ${role} in ${mount}`),
      opts,
    );
    return {
      leaseId: body.lease_id,
      leaseDurationSeconds: body.lease_duration,
      renewable: body.renewable,
      username: body.data.username,
      password: body.data.password,
    };
  }

  async renewLease(leaseId: string, incrementSeconds?: number, opts?: CallOptions): Promise<VaultLease> {
    const data: Record<string, unknown> = { lease_id: leaseId };
    if (incrementSeconds !== undefined) data.increment = incrementSeconds;
    const body = await this.transport.call<{ lease_id: string; lease_duration: number; renewable: boolean }>(
      'renewLease',
      this.spec('POST', 'sys/leases/renew', 'renewing a lease', data),
      opts,
    );
    return { leaseId: body.lease_id, leaseDurationSeconds: body.lease_duration, renewable: body.renewable };
  }

  async lookupLease(leaseId: string, opts?: CallOptions): Promise<LeaseInfo | undefined> {
    const body = await this.transport.lookup<{
      data: { id: string; issue_time?: string; expire_time?: string; ttl: number; renewable: boolean };
    }>(
      'lookupLease',
      this.spec('POST', 'sys/leases/lookup', 'looking up a lease', { lease_id: leaseId }),
      leaseUnknown,
      opts,
    );
    if (!body) return undefined;
    const d = body.data;
    return {
      leaseId: d.id,
      issueTime: d.issue_time,
      expireTime: d.expire_time,
      ttlSeconds: d.ttl,
      renewable: d.renewable,
    };
  }

  async listLeases(prefix: string, opts?: CallOptions): Promise<string[]> {
    const clean = prefix.replace(/\/+$/, '');
    const body = await this.transport.lookup<{ data?: { keys?: string[] } }>(
      'listLeases',
      this.spec('LIST', `sys/leases/lookup/${clean}`, `listing leases under ${clean}`),
      isVaultNotFound,
      opts,
    );
    return (body?.data?.keys ?? []).map((k) => `${clean}/${k}`);
  }

  async revokeLease(leaseId: string, opts?: CallOptions): Promise<RevokeOutcome> {
    const what = `revoking lease ${leaseId}`;
    let refusal: VaultRequestError;
    try {
      await this.transport.send(this.spec('POST', 'sys/leases/revoke', what, { lease_id: leaseId }), opts);
      this.transport.count('revokeLease', 'success');
      return 'revoked';
    } catch (err) {
      // Unreachable, sealed, denied, cancelled: Vault was not asked, or would not try.
      if (
        !(err instanceof VaultRequestError) ||
        (err.kind !== 'Invalid' && err.kind !== 'NotFound' && err.kind !== 'Server')
      ) {
        this.transport.count('revokeLease', 'error');
        throw err;
      }
      refusal = err;
    }
    // Vault answered, but a 400 means "unknown lease" as well as "the revocation failed": is it still there?
    let info: LeaseInfo | undefined;
    try {
      info = await this.lookupLease(leaseId, opts);
    } catch (err) {
      this.transport.count('revokeLease', 'error');
      throw err;
    }
    if (!info) {
      this.transport.count('revokeLease', 'not_found');
      return 'gone';
    }
    this.transport.count('revokeLease', 'error');
    throw new VaultRequestError('RevocationFailed', what, refusal.detail, refusal.status);
  }
}

function tuneBody(t: MountTuning): Record<string, string> {
  const body: Record<string, string> = {};
  if (t.defaultLeaseTtlSeconds !== undefined) body.default_lease_ttl = `${t.defaultLeaseTtlSeconds}s`;
  if (t.maxLeaseTtlSeconds !== undefined) body.max_lease_ttl = `${t.maxLeaseTtlSeconds}s`;
  return body;
}
