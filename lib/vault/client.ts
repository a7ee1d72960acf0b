// The narrow Vault/OpenBao surface the controllers use. Everything behind it speaks Vault's HTTP API
// (http-client.ts over transport.ts); controllers and tests see only this interface and the classified errors in
// errors.ts. Every method takes an optional last `opts: { signal }`: aborting it cancels the HTTP request, and the
// call rejects with the signal's reason (not a VaultRequestError).
import type { CallOptions } from './transport.ts';

export type { CallOptions, VaultEndpoint } from './transport.ts';

export interface MountInfo {
  type: string;
  description: string;
}

/** The database engine's connection config (`<mount>/config/<name>`). The password goes to Vault and is
 * never read back: Vault doesn't return it, and we never log this object. */
export interface ConnectionConfig {
  pluginName: string;
  /** With `{{username}}`/`{{password}}` placeholders that Vault fills in itself. Absent for plugins without one (Redis). */
  connectionUrl?: string;
  /** The plugin's own fields, written as given (Redis: host, port, tls, insecure_tls, ca_cert; MySQL: tls_ca). Nothing secret. */
  parameters?: Record<string, string | number | boolean>;
  username: string;
  password: string;
  allowedRoles: string[];
  maxOpenConnections?: number;
  maxIdleConnections?: number;
  maxConnectionLifetimeSeconds?: number;
  verifyConnection: boolean;
}

export interface DatabaseRoleSpec {
  dbName: string;
  creationStatements: string[];
  revocationStatements: string[];
  rollbackStatements: string[];
  renewStatements: string[];
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
}

export interface VaultLease {
  leaseId: string;
  leaseDurationSeconds: number;
  renewable: boolean;
}

/** A freshly issued credential. `password` is a plain field: callers must never log the object. */
export interface LeasedCredential extends VaultLease {
  username: string;
  password: string;
}

export interface LeaseInfo {
  leaseId: string;
  issueTime?: string;
  expireTime?: string;
  ttlSeconds: number;
  renewable: boolean;
}

export interface MountTuning {
  defaultLeaseTtlSeconds?: number;
  maxLeaseTtlSeconds?: number;
}

export interface VaultClient {
  /** sys/health without a token: resolves with what the server says (sealed, standby…); throws a VaultRequestError (Unreachable) when no answer comes. */
  health(opts?: CallOptions): Promise<{ initialized: boolean; sealed: boolean; standby: boolean; version?: string }>;
  readMount(path: string, opts?: CallOptions): Promise<MountInfo | undefined>;
  enableDatabaseMount(path: string, description: string, tuning: MountTuning, opts?: CallOptions): Promise<void>;
  tuneMount(path: string, tuning: MountTuning, opts?: CallOptions): Promise<void>;
  disableMount(path: string, opts?: CallOptions): Promise<void>;
  writeConnection(mount: string, name: string, config: ConnectionConfig, opts?: CallOptions): Promise<void>;
  deleteConnection(mount: string, name: string, opts?: CallOptions): Promise<void>;
  writeRole(mount: string, name: string, role: DatabaseRoleSpec, opts?: CallOptions): Promise<void>;
  deleteRole(mount: string, name: string, opts?: CallOptions): Promise<void>;
  /** Reads `<mount>/creds/<role>`. The creds endpoint takes no TTL: a request's own TTL is applied by renewing
   * the new lease with that increment right away (Vault caps it at the role's max_ttl). */
  issueCredential(mount: string, role: string, opts?: CallOptions): Promise<LeasedCredential>;
  renewLease(leaseId: string, incrementSeconds?: number, opts?: CallOptions): Promise<VaultLease>;
  lookupLease(leaseId: string, opts?: CallOptions): Promise<LeaseInfo | undefined>;
  /** Lease ids currently live under a prefix (e.g. `<mount>/creds/<role>/`): used to find leases that were
   * issued but never recorded (a crash between issuing and recording). */
  listLeases(prefix: string, opts?: CallOptions): Promise<string[]>;
  /**
   * `sys/leases/revoke` (synchronous): resolves `revoked` when Vault revoked the lease (for a database lease: ran
   * the role's revocation statements), `gone` when Vault doesn't know the lease (revoked or expired before). Vault
   * answers HTTP 400 both for an unknown lease and for a revocation that failed (PostgreSQL refusing to drop a
   * role that owns objects, say), so after a refusal the lease is looked up (`sys/leases/lookup`): still there,
   * the call throws a VaultRequestError of kind `RevocationFailed` whose detail is Vault's own words. Throws the
   * other kinds (Unreachable, Sealed, PermissionDenied…) when Vault can't be asked; never resolves on a failure.
   */
  revokeLease(leaseId: string, opts?: CallOptions): Promise<RevokeOutcome>;
}

export type RevokeOutcome = 'revoked' | 'gone';
