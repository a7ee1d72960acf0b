// An in-memory Vault behind the VaultClient interface, for reconcile-level unit tests: database mounts with their
// connections and roles, and leases that expire, renew and revoke the way Vault's expiration manager treats them.
//
// What it keeps of Vault's behaviour, because the controllers decide on it:
//   - a lease is `<mount>/creds/<role>/<random>`, issued for the role's default TTL (else the mount's, else the
//     system's 768 h), capped by the role's max TTL (else the mount's);
//   - a renewal is granted the increment asked (the role's default TTL without one), truncated so the lease never
//     outlives issue time + max TTL; past that point Vault refuses ("past the max TTL, cannot renew");
//   - a lease past its expire time is gone: renew, lookup and list don't know it, and revoking it answers 'gone';
//   - disabling a mount revokes every lease under it first, and stays mounted if one of them can't be revoked;
//   - renewing reads the Vault role (a deleted role makes renewals fail); revoking needs the connection (a deleted
//     connection, or a database refusing to drop the login, makes revocations fail while the lease lives on).
// Failures come out exactly as NodeVaultClient produces them: each one is an HTTP answer (or a transport error)
// passed through classifyVaultError with the same operation words, and the same "absent" answers (a missing mount,
// role or lease) resolve as `undefined`/`[]` instead of throwing. Injected faults are HTTP answers as well.
import crypto from 'node:crypto';
import type {
  ConnectionConfig,
  DatabaseRoleSpec,
  VaultLease,
  LeaseInfo,
  LeasedCredential,
  MountInfo,
  RevokeOutcome,
  VaultClient,
} from '../../lib/vault/client.ts';
import { VaultRequestError, classifyVaultError, type VaultErrorKind } from '../../lib/vault/errors.ts';

const isNotFound = (e: VaultRequestError) => e.kind === 'NotFound';

/** Vault's defaults when neither a role nor its mount set a TTL (`default_lease_ttl`, `max_lease_ttl`: 768 h). */
export const SYSTEM_DEFAULT_TTL_SECONDS = 768 * 3600;
export const SYSTEM_MAX_TTL_SECONDS = 768 * 3600;

/** A VaultClient method, as faults and call counts name them; `login` is the connection's own login. */
export type FakeVaultOperation =
  | 'health'
  | 'readMount'
  | 'enableDatabaseMount'
  | 'tuneMount'
  | 'disableMount'
  | 'listConnections'
  | 'writeConnection'
  | 'deleteConnection'
  | 'writeRole'
  | 'readRole'
  | 'deleteRole'
  | 'issueCredential'
  | 'renewLease'
  | 'lookupLease'
  | 'listLeases'
  | 'revokeLease'
  | 'login';

/** What every Vault call may take last: the reconcile's signal. An aborted call rejects with the signal's reason. */
export interface CallOpts {
  signal?: AbortSignal;
}

/**
 * What Vault (or the network) answers instead of doing an operation: an HTTP error status with Vault's `errors`,
 * or a transport failure code (`ECONNREFUSED`, `ETIMEDOUT`, a TLS code…) as node reports it.
 */
export type VaultAnswer = { status: number; errors?: string[] } | { network: string };

/**
 * A fault to inject: an error kind (answered with the HTTP status NodeVaultClient maps to that kind), or an exact
 * answer. `RevocationFailed` is a 400 to `sys/leases/revoke` for a lease that is still there: the client's look-up
 * then finds it and reports the refusal (for any other operation it is a plain 400).
 */
export type FaultSpec = VaultErrorKind | VaultAnswer;

export interface FaultOptions {
  /** Only the next `times` matching calls fail; until cleared when absent. */
  times?: number;
  /** Vault's words (the `errors` array) for a kind given by name. */
  detail?: string;
  /** Only calls whose arguments match (e.g. one lease id, one mount path). */
  when?: (args: readonly unknown[]) => boolean;
  /**
   * The call takes effect in Vault and only then fails (an answer lost on the way back: a timeout, the operator
   * dying right after Vault issued). What exactly-once issuance must survive.
   */
  after?: boolean;
}

/** A lease as the fake keeps it, live or not. The password is kept so a test can check what reached a Secret. */
export interface FakeLease {
  readonly id: string;
  readonly mount: string;
  readonly role: string;
  /** The connection (db_name) it was issued through; revocation needs it. */
  readonly connection: string;
  readonly username: string;
  readonly password: string;
  /** Milliseconds since the epoch. */
  readonly issueTime: number;
  expireTime: number;
  renewable: boolean;
  /** How many renewals Vault granted. */
  renewals: number;
  /** Set once the lease ended: revoked on request, with its mount, or ran out. */
  ended?: { how: 'revoked' | 'mount-disabled' | 'expired'; at: number };
}

export interface FakeMount {
  type: string;
  description: string;
  defaultLeaseTtlSeconds?: number;
  maxLeaseTtlSeconds?: number;
  connections: Map<string, ConnectionConfig>;
  roles: Map<string, DatabaseRoleSpec>;
}

export interface FakeVaultOptions {
  /** Milliseconds since the epoch; pass a FakeClock's `now` to drive expiry. Default: Date.now. */
  now?: () => number;
  /** Seed of the random lease ids, usernames and passwords (they are the same from run to run). Default 1. */
  seed?: number;
  version?: string;
}

const SHORTHAND: Record<VaultErrorKind, (detail?: string) => VaultAnswer> = {
  Unreachable: () => ({ network: 'ECONNREFUSED' }),
  Sealed: () => ({ status: 503, errors: ['Vault is sealed'] }),
  PermissionDenied: (d) => ({ status: 403, errors: [d ?? 'permission denied'] }),
  NotFound: (d) => ({ status: 404, errors: d ? [d] : [] }),
  Invalid: (d) => ({ status: 400, errors: [d ?? 'invalid request'] }),
  RevocationFailed: (d) => ({
    status: 400,
    errors: [d ?? 'failed to revoke entry: pq: role cannot be dropped because some objects depend on it'],
  }),
  Server: (d) => ({ status: 500, errors: [d ?? 'internal error'] }),
};

/** An answer the fake's Vault gives; turned into a VaultRequestError the way NodeVaultClient classifies one. */
class Answer extends Error {
  constructor(readonly answer: VaultAnswer) {
    super('network' in answer ? answer.network : (answer.errors ?? []).join('; '));
  }
}

const http = (status: number, ...errors: string[]) => new Answer({ status, errors });

/** What node-vault throws for an answer: what classifyVaultError reads. */
function asNodeVaultError(a: VaultAnswer): unknown {
  if ('network' in a) return Object.assign(new Error(`connect ${a.network}`), { code: a.network });
  return Object.assign(new Error(`Status ${a.status}`), {
    response: { statusCode: a.status, body: { errors: a.errors ?? [] } },
  });
}

interface Fault {
  op: FakeVaultOperation | '*';
  answer: VaultAnswer;
  remaining: number;
  when?: (args: readonly unknown[]) => boolean;
  after: boolean;
}

/** Deterministic randomness (mulberry32): the same seed gives the same ids and passwords. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Tuning = { defaultLeaseTtlSeconds?: number; maxLeaseTtlSeconds?: number };

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const clean = (path: string) => path.replace(/^\/+|\/+$/g, '');

export class FakeVault implements VaultClient {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly version: string;
  private readonly mountTable = new Map<string, FakeMount>();
  private readonly leaseTable = new Map<string, FakeLease>();
  private readonly faults: Fault[] = [];
  private readonly refusals: Array<{ match: (lease: FakeLease) => boolean; detail: string }> = [];
  private outage: VaultAnswer | undefined;
  private sealedFlag = false;
  /** Calls per operation, failed ones included (a revocation's own look-up counts as a lookupLease, as in metrics). */
  readonly calls: Record<FakeVaultOperation, number> = {
    health: 0,
    readMount: 0,
    enableDatabaseMount: 0,
    tuneMount: 0,
    disableMount: 0,
    listConnections: 0,
    writeConnection: 0,
    deleteConnection: 0,
    writeRole: 0,
    readRole: 0,
    deleteRole: 0,
    issueCredential: 0,
    renewLease: 0,
    lookupLease: 0,
    listLeases: 0,
    revokeLease: 0,
    login: 0,
  };
  /** Every call in order: the operation and what it was about (a path or lease id; never a password). */
  readonly history: Array<{ op: FakeVaultOperation; target: string; outcome: 'ok' | VaultErrorKind | 'absent' }> = [];

  constructor(opts: FakeVaultOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.random = seeded(opts.seed ?? 1);
    this.version = opts.version ?? '1.17.0-fake';
  }

  // ---- faults ------------------------------------------------------------------------------------------------

  /**
   * Makes `op` (or every operation, `'*'`) fail with `spec` for the next `opts.times` calls, or until the returned
   * function (or clearFaults) is called. The latest fault matching a call wins.
   */
  fail(op: FakeVaultOperation | '*', spec: FaultSpec, opts: FaultOptions = {}): () => void {
    const answer = typeof spec === 'string' ? SHORTHAND[spec](opts.detail) : spec;
    const fault: Fault = { op, answer, remaining: opts.times ?? Infinity, when: opts.when, after: opts.after ?? false };
    this.faults.push(fault);
    return () => {
      const i = this.faults.indexOf(fault);
      if (i >= 0) this.faults.splice(i, 1);
    };
  }

  /** Vault can't be reached at all (connection refused, or `answer`) until `up()`. */
  down(answer: VaultAnswer = { network: 'ECONNREFUSED' }): void {
    this.outage = answer;
  }

  up(): void {
    this.outage = undefined;
  }

  /** Sealed: health says so and every other call is answered 503, until `unseal()`. */
  seal(): void {
    this.sealedFlag = true;
  }

  unseal(): void {
    this.sealedFlag = false;
  }

  clearFaults(): void {
    this.faults.length = 0;
    this.refusals.length = 0;
    this.outage = undefined;
    this.sealedFlag = false;
  }

  /**
   * The database refuses to drop the login of the leases matching `match` (a lease id, or a predicate): revoking
   * them fails (RevocationFailed) and they stay live, until the returned function is called.
   */
  refuseRevocation(
    match: string | ((lease: FakeLease) => boolean),
    detail = 'pq: role cannot be dropped because some objects depend on it',
  ): () => void {
    const entry = { match: typeof match === 'string' ? (l: FakeLease) => l.id === match : match, detail };
    this.refusals.push(entry);
    return () => {
      const i = this.refusals.indexOf(entry);
      if (i >= 0) this.refusals.splice(i, 1);
    };
  }

  resetCalls(): void {
    for (const k of Object.keys(this.calls) as FakeVaultOperation[]) this.calls[k] = 0;
    this.history.length = 0;
  }

  /** Calls made to Vault in all (every operation). */
  totalCalls(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  // ---- what tests read -----------------------------------------------------------------------------------------

  /** Leases live now (not revoked, not past their expire time), optionally under a prefix; copies. */
  liveLeases(prefix = ''): FakeLease[] {
    return [...this.leaseTable.values()]
      .filter((l) => l.id.startsWith(prefix) && this.isLive(l))
      .map((l) => ({ ...l }));
  }

  /** Every lease ever issued, live or ended; copies. */
  allLeases(): FakeLease[] {
    return [...this.leaseTable.values()].map((l) => ({ ...l, ended: l.ended ?? this.expiry(l) }));
  }

  /** One lease as Vault knows it (live or ended), or undefined if it was never issued. */
  leaseRecord(id: string): FakeLease | undefined {
    const l = this.leaseTable.get(id);
    return l && { ...l, ended: l.ended ?? this.expiry(l) };
  }

  mounts(): Map<string, FakeMount> {
    return this.mountTable;
  }

  mountAt(path: string): FakeMount | undefined {
    return this.mountTable.get(clean(path));
  }

  roleAt(mount: string, name: string): DatabaseRoleSpec | undefined {
    return this.mountAt(mount)?.roles.get(name);
  }

  connectionAt(mount: string, name: string): ConnectionConfig | undefined {
    return this.mountAt(mount)?.connections.get(name);
  }

  /** Mounts a secrets engine without a call (a `kv` mount in the way, say). */
  addMount(path: string, mount: Partial<Omit<FakeMount, 'connections' | 'roles'>> = {}): FakeMount {
    const m: FakeMount = { type: 'database', description: '', ...mount, connections: new Map(), roles: new Map() };
    this.mountTable.set(clean(path), m);
    return m;
  }

  // ---- VaultClient ---------------------------------------------------------------------------------------------

  async health(
    opts?: CallOpts,
  ): Promise<{ initialized: boolean; sealed: boolean; standby: boolean; version?: string }> {
    return this.op('health', 'checking Vault health', [], opts, undefined, () => ({
      initialized: true,
      sealed: this.sealedFlag,
      standby: false,
      version: this.version,
    }));
  }

  async readMount(path: string, opts?: CallOpts): Promise<MountInfo | undefined> {
    return this.op(
      'readMount',
      `reading mount ${path}`,
      [path],
      opts,
      { when: (e) => isNotFound(e) || /no secret engine mount/i.test(e.detail), value: undefined },
      () => {
        const m = this.mountTable.get(clean(path));
        if (!m) throw http(400, `No secret engine mount at ${clean(path)}/`);
        return { type: m.type, description: m.description };
      },
    );
  }

  async enableDatabaseMount(path: string, description: string, tuning: Tuning, opts?: CallOpts): Promise<void> {
    return this.op('enableDatabaseMount', `enabling the database engine at ${path}`, [path], opts, undefined, () => {
      if (this.mountTable.has(clean(path))) throw http(400, `path is already in use at ${clean(path)}/`);
      this.addMount(path, { type: 'database', description, ...definedTuning(tuning) });
    });
  }

  async tuneMount(path: string, tuning: Tuning, opts?: CallOpts): Promise<void> {
    // NodeVaultClient sends nothing for an empty tuning.
    if (tuning.defaultLeaseTtlSeconds === undefined && tuning.maxLeaseTtlSeconds === undefined) return;
    return this.op('tuneMount', `tuning mount ${path}`, [path], opts, undefined, () => {
      const m = this.mountTable.get(clean(path));
      if (!m) throw http(400, `no mount entry found for ${clean(path)}/`);
      Object.assign(m, definedTuning(tuning));
    });
  }

  async disableMount(path: string, opts?: CallOpts): Promise<void> {
    return this.op('disableMount', `disabling mount ${path}`, [path], opts, undefined, () => {
      const p = clean(path);
      if (!this.mountTable.has(p)) return;
      // Vault revokes the mount's leases first (revoke-prefix) and keeps the mount if one of them can't be.
      const leases = this.liveLeases(`${p}/`);
      for (const [i, l] of leases.entries()) {
        const refusal = this.revocationRefusal(this.leaseTable.get(l.id)!);
        if (refusal) throw http(400, `failed to revoke "${l.id}" (${i + 1} / ${leases.length}): ${refusal}`);
      }
      for (const l of leases) this.leaseTable.get(l.id)!.ended = { how: 'mount-disabled', at: this.now() };
      this.mountTable.delete(p);
    });
  }

  // listConnections and readRole: in VaultClient until the Vault boundary drops them (nothing calls them).
  async listConnections(mount: string, opts?: CallOpts): Promise<string[]> {
    return this.op(
      'listConnections',
      `listing connections in ${mount}`,
      [mount],
      opts,
      { when: isNotFound, value: [] as string[] },
      () => {
        const keys = [...this.mountOf(mount).connections.keys()];
        if (keys.length === 0) throw http(404);
        return keys;
      },
    );
  }

  async writeConnection(mount: string, name: string, config: ConnectionConfig, opts?: CallOpts): Promise<void> {
    return this.op(
      'writeConnection',
      `configuring connection ${name} in ${mount}`,
      [mount, name],
      opts,
      undefined,
      () => {
        this.mountOf(mount).connections.set(name, { ...config, allowedRoles: [...config.allowedRoles] });
      },
    );
  }

  async deleteConnection(mount: string, name: string, opts?: CallOpts): Promise<void> {
    return this.op(
      'deleteConnection',
      `deleting connection ${name} in ${mount}`,
      [mount, name],
      opts,
      undefined,
      () => {
        this.mountOf(mount).connections.delete(name);
      },
    );
  }

  async writeRole(mount: string, name: string, role: DatabaseRoleSpec, opts?: CallOpts): Promise<void> {
    return this.op('writeRole', `writing role ${name} in ${mount}`, [mount, name], opts, undefined, () => {
      const m = this.mountOf(mount);
      if (!role.dbName) throw http(400, 'empty database name attribute');
      if (role.maxTtlSeconds > 0 && role.defaultTtlSeconds > role.maxTtlSeconds)
        throw http(400, 'ttl cannot be greater than max_ttl');
      m.roles.set(name, structuredClone(role));
    });
  }

  async readRole(mount: string, name: string, opts?: CallOpts): Promise<DatabaseRoleSpec | undefined> {
    return this.op(
      'readRole',
      `reading role ${name} in ${mount}`,
      [mount, name],
      opts,
      { when: isNotFound, value: undefined },
      () => {
        const r = this.mountOf(mount).roles.get(name);
        if (!r) throw http(404);
        return structuredClone(r);
      },
    );
  }

  async deleteRole(mount: string, name: string, opts?: CallOpts): Promise<void> {
    return this.op('deleteRole', `deleting role ${name} in ${mount}`, [mount, name], opts, undefined, () => {
      this.mountOf(mount).roles.delete(name);
    });
  }

  async issueCredential(mount: string, role: string, opts?: CallOpts): Promise<LeasedCredential> {
    return this.op(
      'issueCredential',
      `issuing credentials for role ${role} in ${mount}`,
      [mount, role],
      opts,
      undefined,
      () => {
        const m = this.mountOf(mount);
        const r = m.roles.get(role);
        if (!r) throw http(400, `unknown role: ${role}`);
        const conn = m.connections.get(r.dbName);
        if (!conn) throw http(500, `failed to find entry for connection with name: "${r.dbName}"`);
        if (!conn.allowedRoles.includes('*') && !conn.allowedRoles.includes(role))
          throw http(400, `"${role}" is not an allowed role`);
        const now = this.now();
        const ttl = Math.min(defaultTtl(m, r), maxTtl(m, r));
        const lease: FakeLease = {
          id: `${clean(mount)}/creds/${role}/${this.randomString(24)}`,
          mount: clean(mount),
          role,
          connection: r.dbName,
          username: `v-token-${role.slice(0, 8)}-${this.randomString(20)}-${Math.floor(now / 1000)}`.slice(0, 63),
          password: this.randomString(20),
          issueTime: now,
          expireTime: now + ttl * 1000,
          renewable: true,
          renewals: 0,
        };
        this.leaseTable.set(lease.id, lease);
        return {
          leaseId: lease.id,
          leaseDurationSeconds: ttl,
          renewable: true,
          username: lease.username,
          password: lease.password,
        };
      },
    );
  }

  async renewLease(leaseId: string, incrementSeconds?: number, opts?: CallOpts): Promise<VaultLease> {
    return this.op('renewLease', 'renewing a lease', [leaseId, incrementSeconds], opts, undefined, () => {
      const l = this.leaseTable.get(leaseId);
      if (!l || !this.isLive(l)) throw http(400, 'lease not found');
      if (!l.renewable) throw http(400, 'lease is not renewable');
      const m = this.mountTable.get(l.mount);
      const r = m?.roles.get(l.role);
      if (!m || !r) throw http(400, `error during renew: could not find role with name: "${l.role}"`);
      const now = this.now();
      const max = maxTtl(m, r);
      const asked = incrementSeconds && incrementSeconds > 0 ? incrementSeconds : defaultTtl(m, r);
      // Vault's CalculateTTL: capped at max TTL, then at what is left of issue time + max TTL.
      const left = Math.floor((l.issueTime + max * 1000 - now) / 1000);
      if (left <= 0) throw http(400, 'past the max TTL, cannot renew');
      const granted = Math.min(asked, max, left);
      l.expireTime = now + granted * 1000;
      l.renewals++;
      return { leaseId, leaseDurationSeconds: granted, renewable: true };
    });
  }

  async lookupLease(leaseId: string, opts?: CallOpts): Promise<LeaseInfo | undefined> {
    const unknown = (e: VaultRequestError) =>
      e.kind === 'NotFound' || (e.kind === 'Invalid' && /invalid lease/i.test(e.detail));
    return this.op('lookupLease', 'looking up a lease', [leaseId], opts, { when: unknown, value: undefined }, () => {
      const l = this.leaseTable.get(leaseId);
      if (!l || !this.isLive(l)) throw http(400, 'invalid lease');
      return {
        leaseId,
        issueTime: new Date(l.issueTime).toISOString(),
        expireTime: new Date(l.expireTime).toISOString(),
        ttlSeconds: Math.max(0, Math.floor((l.expireTime - this.now()) / 1000)),
        renewable: l.renewable,
      };
    });
  }

  async listLeases(prefix: string, opts?: CallOpts): Promise<string[]> {
    const dir = prefix.replace(/\/+$/, '');
    return this.op(
      'listLeases',
      `listing leases under ${dir}`,
      [prefix],
      opts,
      { when: isNotFound, value: [] as string[] },
      () => {
        // sys/leases/lookup/<prefix> lists one level, like a directory: ids, and `name/` for deeper ones.
        const keys = new Set<string>();
        for (const l of this.leaseTable.values()) {
          if (!l.id.startsWith(`${dir}/`) || !this.isLive(l)) continue;
          const rest = l.id.slice(dir.length + 1);
          const slash = rest.indexOf('/');
          keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
        }
        if (keys.size === 0) throw http(404);
        return [...keys].map((k) => `${dir}/${k}`);
      },
    );
  }

  async revokeLease(leaseId: string, opts?: CallOpts): Promise<RevokeOutcome> {
    const what = `revoking lease ${leaseId}`;
    let refusal: VaultRequestError;
    try {
      await this.op('revokeLease', what, [leaseId], opts, undefined, () => {
        const l = this.leaseTable.get(leaseId);
        if (!l || !this.isLive(l)) throw http(400, 'invalid lease');
        const refused = this.revocationRefusal(l);
        if (refused) throw http(400, `failed to revoke entry: ${refused}`);
        l.ended = { how: 'revoked', at: this.now() };
      });
      return 'revoked';
    } catch (err) {
      refusal = err as VaultRequestError;
      if (refusal.kind !== 'Invalid' && refusal.kind !== 'NotFound' && refusal.kind !== 'Server') throw refusal;
    }
    // As NodeVaultClient: Vault answers 400 for an unknown lease and for a failed revocation alike; look it up.
    const info = await this.lookupLease(leaseId, opts);
    if (!info) return 'gone';
    throw new VaultRequestError('RevocationFailed', what, refusal.detail, refusal.status);
  }

  /** The operator's login (VaultConnection.login): fails only through faults, an outage or a seal. */
  async login(opts?: CallOpts): Promise<void> {
    return this.op('login', 'logging in to Vault', [], opts, undefined, () => undefined);
  }

  // ---- internals -------------------------------------------------------------------------------------------------

  /**
   * One call: counted, then answered by an outage, the seal or an injected fault, else by `body`. Failures are
   * classified like NodeVaultClient's; those `absent` expects resolve to its value.
   */
  private async op<T>(
    op: FakeVaultOperation,
    what: string,
    args: readonly unknown[],
    opts: CallOpts | undefined,
    absent: { when: (e: VaultRequestError) => boolean; value: T } | undefined,
    body: () => T,
  ): Promise<T> {
    this.calls[op]++;
    const target = args.filter((a) => typeof a === 'string').join(' ');
    // Like a network round trip: the caller's code after `await` runs later, never synchronously.
    await Promise.resolve();
    // A cancelled call never reaches Vault, and rejects with the signal's reason, as the real client's does.
    if (opts?.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    try {
      const injected = this.injected(op, args);
      if (injected && !injected.after) throw new Answer(injected.answer);
      const value = body();
      if (injected) throw new Answer(injected.answer);
      this.history.push({ op, target, outcome: 'ok' });
      return value;
    } catch (err) {
      if (!(err instanceof Answer)) throw err;
      const e = classifyVaultError(what, asNodeVaultError(err.answer));
      if (absent?.when(e)) {
        this.history.push({ op, target, outcome: 'absent' });
        return absent.value;
      }
      this.history.push({ op, target, outcome: e.kind });
      throw e;
    }
  }

  private injected(
    op: FakeVaultOperation,
    args: readonly unknown[],
  ): { answer: VaultAnswer; after: boolean } | undefined {
    if (this.outage) return { answer: this.outage, after: false };
    if (this.sealedFlag && op !== 'health') return { answer: SHORTHAND.Sealed(), after: false };
    for (let i = this.faults.length - 1; i >= 0; i--) {
      const f = this.faults[i]!;
      if ((f.op !== '*' && f.op !== op) || (f.when && !f.when(args))) continue;
      if (--f.remaining <= 0) this.faults.splice(i, 1);
      return f;
    }
    return undefined;
  }

  /** The mount a path names, or Vault's 404 for a route under no mount. */
  private mountOf(path: string): FakeMount {
    const m = this.mountTable.get(clean(path));
    if (!m) throw http(404, `no handler for route "${clean(path)}". route entry not found.`);
    return m;
  }

  private revocationRefusal(l: FakeLease): string | undefined {
    const refused = this.refusals.find((r) => r.match(l));
    if (refused) return refused.detail;
    if (!this.mountTable.get(l.mount)?.connections.has(l.connection))
      return `failed to find entry for connection with name: "${l.connection}"`;
    return undefined;
  }

  private expiry(l: FakeLease): FakeLease['ended'] {
    return this.now() >= l.expireTime ? { how: 'expired', at: l.expireTime } : undefined;
  }

  private isLive(l: FakeLease): boolean {
    return !l.ended && this.now() < l.expireTime;
  }

  private randomString(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += ALPHANUMERIC[Math.floor(this.random() * ALPHANUMERIC.length)];
    return s;
  }
}

function definedTuning(t: Tuning): Partial<FakeMount> {
  const out: Partial<FakeMount> = {};
  if (t.defaultLeaseTtlSeconds !== undefined) out.defaultLeaseTtlSeconds = t.defaultLeaseTtlSeconds;
  if (t.maxLeaseTtlSeconds !== undefined) out.maxLeaseTtlSeconds = t.maxLeaseTtlSeconds;
  return out;
}

/** The longest a lease of `r` may live from its issue time: the role's max TTL within the mount's (or the system's). */
function maxTtl(m: FakeMount, r: DatabaseRoleSpec): number {
  const mountMax = m.maxLeaseTtlSeconds || SYSTEM_MAX_TTL_SECONDS;
  return r.maxTtlSeconds > 0 && r.maxTtlSeconds < mountMax ? r.maxTtlSeconds : mountMax;
}

/** What a lease of `r` is issued for, and renewed by without an increment. */
function defaultTtl(m: FakeMount, r: DatabaseRoleSpec): number {
  return r.defaultTtlSeconds || m.defaultLeaseTtlSeconds || SYSTEM_DEFAULT_TTL_SECONDS;
}

/** A random hex id (for tests that need an id Vault never issued). */
export function unknownLeaseId(mount = 'database', role = 'none'): string {
  return `${mount}/creds/${role}/${crypto.randomBytes(12).toString('hex')}`;
}
