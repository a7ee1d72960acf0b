// VaultClient on top of node-vault. Two traps of node-vault are avoided here on purpose:
//  - the token is passed per call in a fresh headers object, never through `requestOptions.headers`, which
//    node-vault mutates and would keep sending a stale token after a re-login;
//  - kubernetes login always passes `mount_point` (see auth.ts), or node-vault posts to `/v1/auth//login`.
// And a third: `request()` ignores `requestOptions` (the HTTPS agent with the CA bundle); use the verb helpers.
// node-vault's `debug` output includes request bodies: never run the operator with DEBUG=node-vault.
import https from 'node:https';
import vault from 'node-vault';
import type { ConnectionConfig, DatabaseRoleSpec, Lease, LeaseInfo, LeasedCredential, MountInfo, VaultClient } from './client.ts';
import { VaultRequestError, classifyVaultError, isNotFound } from './errors.ts';

export interface VaultEndpoint {
  /** e.g. https://vault.demo.svc:8200 */
  address: string;
  caBundlePem?: string;
  insecureSkipTLSVerify?: boolean;
  serverName?: string;
  timeoutMs?: number;
}

/** Something that returns a valid token for each call (the token keeper). */
export type TokenSource = () => Promise<string>;

/** Counts calls for metrics; injected so this module stays free of the metrics registry. */
export type CallObserver = (operation: string, outcome: 'success' | 'error') => void;

type RawClient = ReturnType<typeof vault>;

export function makeHttpsAgent(ep: VaultEndpoint): https.Agent {
  return new https.Agent({
    keepAlive: true,
    maxSockets: 32,
    ca: ep.caBundlePem || undefined,
    rejectUnauthorized: !ep.insecureSkipTLSVerify,
    servername: ep.serverName || undefined,
  });
}

export function rawVaultClient(ep: VaultEndpoint, agent = makeHttpsAgent(ep)): RawClient {
  return vault({
    apiVersion: 'v1',
    endpoint: ep.address,
    // No token and no headers here on purpose: see the file comment.
    requestOptions: { httpsAgent: agent, timeout: ep.timeoutMs ?? 30_000 },
  } as Parameters<typeof vault>[0]);
}

export class NodeVaultClient implements VaultClient {
  private readonly raw: RawClient;

  /**
   * `onDenied`: Vault answered 403 to a call made with the token `token` gave: the token may be gone (revoked in
   * Vault). Called to drop it; the call is then made once more with whatever `token` gives next.
   */
  constructor(
    ep: VaultEndpoint,
    private readonly token: TokenSource,
    private readonly observe: CallObserver = () => undefined,
    raw?: RawClient,
    private readonly onDenied?: () => void,
  ) {
    this.raw = raw ?? rawVaultClient(ep);
  }

  private async call<T>(operation: string, fn: (opts: { headers: Record<string, string> }) => Promise<T>): Promise<T> {
    try {
      return await this.callOnce(operation, fn);
    } catch (err) {
      if (!this.onDenied || !(err instanceof VaultRequestError) || err.kind !== 'PermissionDenied') throw err;
      this.onDenied();
      return this.callOnce(operation, fn);
    }
  }

  private async callOnce<T>(operation: string, fn: (opts: { headers: Record<string, string> }) => Promise<T>): Promise<T> {
    try {
      const token = await this.token();
      const result = await fn({ headers: { 'X-Vault-Token': token } });
      this.observe(operation, 'success');
      return result;
    } catch (err) {
      this.observe(operation, 'error');
      throw classifyVaultError(operation, err);
    }
  }

  async health() {
    try {
      // sys/health answers non-200 for sealed/standby; node-vault resolves those with the body. `read`, not
      // `request`: only the verb helpers merge the client's requestOptions, so `request` would go out without
      // the agent that carries the AppBinding's CA bundle, and fail TLS verification.
      const body = (await this.raw.read('sys/health?standbyok=true&perfstandbyok=true')) as {
        initialized?: boolean; sealed?: boolean; standby?: boolean; version?: string;
      };
      this.observe('health', 'success');
      return { initialized: !!body?.initialized, sealed: !!body?.sealed, standby: !!body?.standby, version: body?.version };
    } catch (err) {
      this.observe('health', 'error');
      throw classifyVaultError('checking Vault health', err);
    }
  }

  async readMount(path: string): Promise<MountInfo | undefined> {
    try {
      const body = await this.call(`reading mount ${path}`, (o) => this.raw.read(`sys/mounts/${path}`, o));
      const b = body as { data?: { type?: string; description?: string }; type?: string; description?: string };
      return { type: b.data?.type ?? b.type ?? 'unknown', description: b.data?.description ?? b.description ?? '' };
    } catch (err) {
      // Vault answers 400 "No secret engine mount at <path>/" for an absent mount.
      if (isNotFound(err) || (err instanceof Error && /no secret engine mount/i.test(err.message))) return undefined;
      throw err;
    }
  }

  async enableDatabaseMount(path: string, description: string, tuning: { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number }) {
    await this.call(`enabling the database engine at ${path}`, (o) =>
      this.raw.write(`sys/mounts/${path}`, { type: 'database', description, config: tuneBody(tuning) }, o));
  }

  async tuneMount(path: string, tuning: { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number }) {
    const body = tuneBody(tuning);
    if (Object.keys(body).length === 0) return;
    await this.call(`tuning mount ${path}`, (o) => this.raw.write(`sys/mounts/${path}/tune`, body, o));
  }

  async disableMount(path: string) {
    await this.call(`disabling mount ${path}`, (o) => this.raw.delete(`sys/mounts/${path}`, o));
  }

  async listConnections(mount: string): Promise<string[]> {
    try {
      const body = await this.call(`listing connections in ${mount}`, (o) => this.raw.list(`${mount}/config`, o));
      return ((body as { data?: { keys?: string[] } }).data?.keys ?? []).slice();
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  async writeConnection(mount: string, name: string, c: ConnectionConfig) {
    const body: Record<string, unknown> = {
      plugin_name: c.pluginName,
      connection_url: c.connectionUrl,
      username: c.username,
      password: c.password,
      allowed_roles: c.allowedRoles,
      verify_connection: c.verifyConnection,
    };
    if (c.maxOpenConnections !== undefined) body.max_open_connections = c.maxOpenConnections;
    if (c.maxIdleConnections !== undefined) body.max_idle_connections = c.maxIdleConnections;
    if (c.maxConnectionLifetimeSeconds !== undefined) body.max_connection_lifetime = `${c.maxConnectionLifetimeSeconds}s`;
    await this.call(`configuring connection ${name} in ${mount}`, (o) => this.raw.write(`${mount}/config/${name}`, body, o));
  }

  async deleteConnection(mount: string, name: string) {
    await this.call(`deleting connection ${name} in ${mount}`, (o) => this.raw.delete(`${mount}/config/${name}`, o));
  }

  async writeRole(mount: string, name: string, r: DatabaseRoleSpec) {
    await this.call(`writing role ${name} in ${mount}`, (o) =>
      this.raw.write(`${mount}/roles/${name}`, {
        db_name: r.dbName,
        creation_statements: r.creationStatements,
        revocation_statements: r.revocationStatements,
        rollback_statements: r.rollbackStatements,
        renew_statements: r.renewStatements,
        default_ttl: r.defaultTtlSeconds,
        max_ttl: r.maxTtlSeconds,
      }, o));
  }

  async readRole(mount: string, name: string): Promise<DatabaseRoleSpec | undefined> {
    try {
      const body = (await this.call(`reading role ${name} in ${mount}`, (o) => this.raw.read(`${mount}/roles/${name}`, o))) as {
        data: { db_name: string; creation_statements: string[]; revocation_statements: string[]; rollback_statements: string[];
          renew_statements: string[]; default_ttl: number; max_ttl: number };
      };
      const d = body.data;
      return {
        dbName: d.db_name, creationStatements: d.creation_statements ?? [], revocationStatements: d.revocation_statements ?? [],
        rollbackStatements: d.rollback_statements ?? [], renewStatements: d.renew_statements ?? [],
        defaultTtlSeconds: d.default_ttl, maxTtlSeconds: d.max_ttl,
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async deleteRole(mount: string, name: string) {
    await this.call(`deleting role ${name} in ${mount}`, (o) => this.raw.delete(`${mount}/roles/${name}`, o));
  }

  async issueCredential(mount: string, role: string): Promise<LeasedCredential> {
    const body = (await this.call(`issuing credentials for role ${role} in ${mount}`, (o) => this.raw.read(`${mount}/creds/${role}`, o))) as {
      lease_id: string; lease_duration: number; renewable: boolean; data: { username: string; password: string };
    };
    return {
      leaseId: body.lease_id, leaseDurationSeconds: body.lease_duration, renewable: body.renewable,
      username: body.data.username, password: body.data.password,
    };
  }

  async renewLease(leaseId: string, incrementSeconds?: number): Promise<Lease> {
    const data: Record<string, unknown> = { lease_id: leaseId };
    if (incrementSeconds !== undefined) data.increment = incrementSeconds;
    const body = (await this.call('renewing a lease', (o) => this.raw.write('sys/leases/renew', data, o))) as {
      lease_id: string; lease_duration: number; renewable: boolean;
    };
    return { leaseId: body.lease_id, leaseDurationSeconds: body.lease_duration, renewable: body.renewable };
  }

  async lookupLease(leaseId: string): Promise<LeaseInfo | undefined> {
    try {
      const body = (await this.call('looking up a lease', (o) => this.raw.write('sys/leases/lookup', { lease_id: leaseId }, o))) as {
        data: { id: string; issue_time?: string; expire_time?: string; ttl: number; renewable: boolean };
      };
      return { leaseId: body.data.id, issueTime: body.data.issue_time, expireTime: body.data.expire_time, ttlSeconds: body.data.ttl, renewable: body.data.renewable };
    } catch (err) {
      // An unknown lease is a 400 "invalid lease".
      if (isNotFound(err) || (err instanceof Error && /invalid lease/i.test(err.message))) return undefined;
      throw err;
    }
  }

  async listLeases(prefix: string): Promise<string[]> {
    const clean = prefix.replace(/\/+$/, '');
    try {
      const body = (await this.call(`listing leases under ${clean}`, (o) => this.raw.list(`sys/leases/lookup/${clean}`, o))) as {
        data?: { keys?: string[] };
      };
      return (body.data?.keys ?? []).map((k) => `${clean}/${k}`);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  async revokeLease(leaseId: string) {
    await this.call('revoking a lease', (o) => this.raw.write('sys/leases/revoke', { lease_id: leaseId }, o));
  }
}

function tuneBody(t: { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number }): Record<string, string> {
  const body: Record<string, string> = {};
  if (t.defaultLeaseTtlSeconds !== undefined) body.default_lease_ttl = `${t.defaultLeaseTtlSeconds}s`;
  if (t.maxLeaseTtlSeconds !== undefined) body.max_lease_ttl = `${t.maxLeaseTtlSeconds}s`;
  return body;
}
