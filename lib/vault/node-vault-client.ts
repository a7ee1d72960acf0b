// VaultClient on top of node-vault. Two traps of node-vault are avoided here on purpose:
//  - the token is passed per call in a fresh headers object, never through `requestOptions.headers`, which
//    node-vault mutates and would keep sending a stale token after a re-login;
//  - kubernetes login always passes `mount_point` (see auth.ts), or node-vault posts to `/v1/auth//login`.
// And a third: `request()` ignores `requestOptions` (the HTTPS agent with the CA bundle); use the verb helpers.
// node-vault's `debug` output includes request bodies: never run the operator with DEBUG=node-vault.
import https from 'node:https';
import vault from 'node-vault';
import type { ConnectionConfig, DatabaseRoleSpec, Lease, LeaseInfo, LeasedCredential, MountInfo, RevokeOutcome, VaultClient } from './client.ts';
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

/** What each Vault call is counted as: a fixed name per VaultClient method (lib/runtime/metrics.ts lists them). */
export type VaultOperation =
  | 'health' | 'readMount' | 'enableMount' | 'tuneMount' | 'disableMount'
  | 'listConnections' | 'writeConnection' | 'deleteConnection' | 'writeRole' | 'readRole' | 'deleteRole'
  | 'issueCredential' | 'renewLease' | 'lookupLease' | 'listLeases' | 'revokeLease';

/** `not_found`: Vault answered that the thing asked about doesn't exist, and the caller expected that might be
 * so (a lease already gone, a mount not created yet): an answer, not an error. */
export type CallOutcome = 'success' | 'not_found' | 'error';

/** Counts calls for metrics; injected so this module stays free of the metrics registry. */
export type CallObserver = (operation: VaultOperation, outcome: CallOutcome) => void;

/** A call whose expected "not found" answer came back. */
const ABSENT = Symbol('absent');

/** An unknown lease: 400 "invalid lease" (404 on some versions). */
const leaseUnknown = (e: VaultRequestError) => e.kind === 'NotFound' || (e.kind === 'Invalid' && /invalid lease/i.test(e.detail));

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

  /**
   * One request, its failure classified; `what` is the prose error messages start with. Not counted. A 403 with
   * `onDenied` set drops the token and tries once more.
   */
  private async send<T>(what: string, fn: (opts: { headers: Record<string, string> }) => Promise<T>): Promise<T> {
    try {
      return await this.sendOnce(what, fn);
    } catch (err) {
      if (!this.onDenied || !(err instanceof VaultRequestError) || err.kind !== 'PermissionDenied') throw err;
      this.onDenied();
      return this.sendOnce(what, fn);
    }
  }

  private async sendOnce<T>(what: string, fn: (opts: { headers: Record<string, string> }) => Promise<T>): Promise<T> {
    let token: string;
    try {
      token = await this.token();
    } catch (err) {
      // Not this request's failure but the login's: already classified (a refused login is a VaultRequestError), or
      // the token source's own reason (no ServiceAccount token, no token Secret), which must reach status as it is.
      throw err instanceof Error && typeof (err as { reason?: unknown }).reason === 'string' ? err : classifyVaultError(what, err);
    }
    try {
      return await fn({ headers: { 'X-Vault-Token': token } });
    } catch (err) {
      throw classifyVaultError(what, err);
    }
  }

  /** One request, counted as `operation`. */
  private async call<T>(operation: VaultOperation, what: string, fn: (opts: { headers: Record<string, string> }) => Promise<T>): Promise<T> {
    try {
      const result = await this.send(what, fn);
      this.observe(operation, 'success');
      return result;
    } catch (err) {
      this.observe(operation, 'error');
      throw err;
    }
  }

  /** One request whose "not found" answer (`absent` says which) is expected: resolves ABSENT, counted `not_found`. */
  private async lookup<T>(operation: VaultOperation, what: string, absent: (e: VaultRequestError) => boolean,
    fn: (opts: { headers: Record<string, string> }) => Promise<T>): Promise<T | typeof ABSENT> {
    try {
      const result = await this.send(what, fn);
      this.observe(operation, 'success');
      return result;
    } catch (err) {
      const e = err as VaultRequestError;
      const expected = absent(e);
      this.observe(operation, expected ? 'not_found' : 'error');
      if (expected) return ABSENT;
      throw e;
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
    // Vault answers 400 "No secret engine mount at <path>/" for an absent mount.
    const body = await this.lookup('readMount', `reading mount ${path}`, (e) => isNotFound(e) || /no secret engine mount/i.test(e.detail),
      (o) => this.raw.read(`sys/mounts/${path}`, o));
    if (body === ABSENT) return undefined;
    const b = body as { data?: { type?: string; description?: string }; type?: string; description?: string };
    return { type: b.data?.type ?? b.type ?? 'unknown', description: b.data?.description ?? b.description ?? '' };
  }

  async enableDatabaseMount(path: string, description: string, tuning: { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number }) {
    await this.call('enableMount', `enabling the database engine at ${path}`, (o) =>
      this.raw.write(`sys/mounts/${path}`, { type: 'database', description, config: tuneBody(tuning) }, o));
  }

  async tuneMount(path: string, tuning: { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number }) {
    const body = tuneBody(tuning);
    if (Object.keys(body).length === 0) return;
    await this.call('tuneMount', `tuning mount ${path}`, (o) => this.raw.write(`sys/mounts/${path}/tune`, body, o));
  }

  async disableMount(path: string) {
    await this.call('disableMount', `disabling mount ${path}`, (o) => this.raw.delete(`sys/mounts/${path}`, o));
  }

  async listConnections(mount: string): Promise<string[]> {
    const body = await this.lookup('listConnections', `listing connections in ${mount}`, isNotFound, (o) => this.raw.list(`${mount}/config`, o));
    if (body === ABSENT) return [];
    return ((body as { data?: { keys?: string[] } }).data?.keys ?? []).slice();
  }

  async writeConnection(mount: string, name: string, c: ConnectionConfig) {
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
    if (c.maxConnectionLifetimeSeconds !== undefined) body.max_connection_lifetime = `${c.maxConnectionLifetimeSeconds}s`;
    await this.call('writeConnection', `configuring connection ${name} in ${mount}`, (o) => this.raw.write(`${mount}/config/${name}`, body, o));
  }

  async deleteConnection(mount: string, name: string) {
    await this.call('deleteConnection', `deleting connection ${name} in ${mount}`, (o) => this.raw.delete(`${mount}/config/${name}`, o));
  }

  async writeRole(mount: string, name: string, r: DatabaseRoleSpec) {
    await this.call('writeRole', `writing role ${name} in ${mount}`, (o) =>
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
    const body = await this.lookup('readRole', `reading role ${name} in ${mount}`, isNotFound, (o) => this.raw.read(`${mount}/roles/${name}`, o));
    if (body === ABSENT) return undefined;
    const d = (body as { data: { db_name: string; creation_statements: string[]; revocation_statements: string[]; rollback_statements: string[];
      renew_statements: string[]; default_ttl: number; max_ttl: number }; }).data;
    return {
      dbName: d.db_name, creationStatements: d.creation_statements ?? [], revocationStatements: d.revocation_statements ?? [],
      rollbackStatements: d.rollback_statements ?? [], renewStatements: d.renew_statements ?? [],
      defaultTtlSeconds: d.default_ttl, maxTtlSeconds: d.max_ttl,
    };
  }

  async deleteRole(mount: string, name: string) {
    await this.call('deleteRole', `deleting role ${name} in ${mount}`, (o) => this.raw.delete(`${mount}/roles/${name}`, o));
  }

  async issueCredential(mount: string, role: string): Promise<LeasedCredential> {
    const body = (await this.call('issueCredential', `issuing credentials for role ${role} in ${mount}`, (o) => this.raw.read(`${mount}/creds/${role}`, o))) as {
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
    const body = (await this.call('renewLease', 'renewing a lease', (o) => this.raw.write('sys/leases/renew', data, o))) as {
      lease_id: string; lease_duration: number; renewable: boolean;
    };
    return { leaseId: body.lease_id, leaseDurationSeconds: body.lease_duration, renewable: body.renewable };
  }

  async lookupLease(leaseId: string): Promise<LeaseInfo | undefined> {
    const body = await this.lookup('lookupLease', 'looking up a lease', leaseUnknown, (o) => this.raw.write('sys/leases/lookup', { lease_id: leaseId }, o));
    if (body === ABSENT) return undefined;
    const d = (body as { data: { id: string; issue_time?: string; expire_time?: string; ttl: number; renewable: boolean } }).data;
    return { leaseId: d.id, issueTime: d.issue_time, expireTime: d.expire_time, ttlSeconds: d.ttl, renewable: d.renewable };
  }

  async listLeases(prefix: string): Promise<string[]> {
    const clean = prefix.replace(/\/+$/, '');
    const body = await this.lookup('listLeases', `listing leases under ${clean}`, isNotFound, (o) => this.raw.list(`sys/leases/lookup/${clean}`, o));
    if (body === ABSENT) return [];
    return ((body as { data?: { keys?: string[] } }).data?.keys ?? []).map((k) => `${clean}/${k}`);
  }

  async revokeLease(leaseId: string): Promise<RevokeOutcome> {
    const what = `revoking lease ${leaseId}`;
    let refusal: VaultRequestError;
    try {
      await this.send(what, (o) => this.raw.write('sys/leases/revoke', { lease_id: leaseId }, o));
      this.observe('revokeLease', 'success');
      return 'revoked';
    } catch (err) {
      refusal = err as VaultRequestError;
      // Unreachable, sealed, denied: Vault was not asked, or would not try.
      if (refusal.kind !== 'Invalid' && refusal.kind !== 'NotFound' && refusal.kind !== 'Server') {
        this.observe('revokeLease', 'error');
        throw refusal;
      }
    }
    // Vault answered, but a 400 means "unknown lease" as well as "the revocation failed": is it still there?
    let info: LeaseInfo | undefined;
    try {
      info = await this.lookupLease(leaseId);
    } catch (err) {
      this.observe('revokeLease', 'error');
      throw err;
    }
    if (!info) {
      this.observe('revokeLease', 'not_found');
      return 'gone';
    }
    this.observe('revokeLease', 'error');
    throw new VaultRequestError('RevocationFailed', what, refusal.detail, refusal.status);
  }
}

function tuneBody(t: { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number }): Record<string, string> {
  const body: Record<string, string> = {};
  if (t.defaultLeaseTtlSeconds !== undefined) body.default_lease_ttl = `${t.defaultLeaseTtlSeconds}s`;
  if (t.maxLeaseTtlSeconds !== undefined) body.max_lease_ttl = `${t.maxLeaseTtlSeconds}s`;
  return body;
}
