// The narrow Vault/OpenBao surface the controllers use. Everything behind it speaks Vault's HTTP API
// (node-vault today); controllers and tests see only this interface and the classified errors in errors.ts.

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

export interface Lease {
  leaseId: string;
  leaseDurationSeconds: number;
  renewable: boolean;
}

/** A freshly issued credential. `password` is a plain field: callers must never log the object. */
export interface LeasedCredential extends Lease {
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

export interface VaultClient {
  /** sys/health without a token: resolves with what the server says, throws VaultUnreachableError otherwise. */
  health(): Promise<{ initialized: boolean; sealed: boolean; standby: boolean; version?: string }>;
  readMount(path: string): Promise<MountInfo | undefined>;
  enableDatabaseMount(path: string, description: string, tuning: { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number }): Promise<void>;
  tuneMount(path: string, tuning: { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number }): Promise<void>;
  disableMount(path: string): Promise<void>;
  listConnections(mount: string): Promise<string[]>;
  writeConnection(mount: string, name: string, config: ConnectionConfig): Promise<void>;
  deleteConnection(mount: string, name: string): Promise<void>;
  writeRole(mount: string, name: string, role: DatabaseRoleSpec): Promise<void>;
  readRole(mount: string, name: string): Promise<DatabaseRoleSpec | undefined>;
  deleteRole(mount: string, name: string): Promise<void>;
  /** Reads `<mount>/creds/<role>`. The creds endpoint takes no TTL: a request's own TTL is applied by renewing
   * the new lease with that increment right away (Vault caps it at the role's max_ttl). */
  issueCredential(mount: string, role: string): Promise<LeasedCredential>;
  renewLease(leaseId: string, incrementSeconds?: number): Promise<Lease>;
  lookupLease(leaseId: string): Promise<LeaseInfo | undefined>;
  /** Lease ids currently live under a prefix (e.g. `<mount>/creds/<role>/`): used to find leases that were
   * issued but never recorded (a crash between issuing and recording). */
  listLeases(prefix: string): Promise<string[]>;
  /**
   * `sys/leases/revoke` (synchronous): resolves `revoked` when Vault revoked the lease (for a database lease: ran
   * the role's revocation statements), `gone` when Vault doesn't know the lease (revoked or expired before). Vault
   * answers HTTP 400 both for an unknown lease and for a revocation that failed (PostgreSQL refusing to drop a
   * role that owns objects, say), so after a refusal the lease is looked up (`sys/leases/lookup`): still there,
   * the call throws a VaultRequestError of kind `RevocationFailed` whose detail is Vault's own words. Throws the
   * other kinds (Unreachable, Sealed, PermissionDenied…) when Vault can't be asked; never resolves on a failure.
   */
  revokeLease(leaseId: string): Promise<RevokeOutcome>;
}

export type RevokeOutcome = 'revoked' | 'gone';
