// A whole controller world in memory: a FakeKube, a FakeVault, caches fed from the FakeKube with the indexes the
// controllers query, Vault connections handing out the FakeVault, an Event recorder to assert on, a silent (but
// recording) logger and a FakeClock. `fakeWorld()` builds one; `world.context` is the ControllerContext every
// reconciler takes, and `world.reconcile(reconciler, key)` runs one pass with a ReconcileContext on the FakeClock.
//
//   const w = fakeWorld();
//   w.kube.put(SECRET_ENGINES, engine);                    // arrange, as a person would (not counted)
//   const r = new SecretEngineReconciler(w.context);
//   await w.reconcile(r, engine);                          // one pass
//   w.vault.fail('writeConnection', 'Invalid', { times: 1 }); w.vault.down(); w.kube.fail({ verb: 'patch' }, { code: 409 });
//   w.events.warnings(); w.kube.writes(); w.vault.calls.renewLease; w.vault.liveLeases();
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  DEFAULT_MOUNT_PATH,
  type AccessNotifier,
  type ClusterAccessNotifier,
  type AppBinding,
  type DatabaseAccessRequest,
  type MariaDBRole,
  type MySQLRole,
  type PostgresRole,
  type RedisRole,
  type SecretEngine,
} from '../../api/index.ts';
import { FakeClock } from '../../lib/runtime/clock.ts';
import { KubeEventRecorder, type EventRecorder, type EventType } from '../../lib/runtime/events.ts';
import { MemoryAuditSink } from '../../lib/runtime/audit.ts';
import { nullLogger, redact, type Logger } from '../../lib/runtime/logging.ts';
import {
  RetryableError,
  TerminalError,
  keyOf,
  type ObjectKey,
  type ReconcileContext,
  type Reconciler,
  type Result,
} from '../../lib/runtime/types.ts';
import type { VaultClient } from '../../lib/vault/client.ts';
import type { Caches, ControllerContext, Grant } from '../../controllers/shared/context.ts';
import { addDependencyIndexes, refKey } from '../../controllers/shared/dependents.ts';
import { engineMountPath } from '../../controllers/shared/names.ts';
import { roleCaches } from '../../controllers/shared/role-kinds.ts';
import {
  ACCESS_NOTIFIERS,
  APP_BINDINGS,
  CLUSTER_ACCESS_NOTIFIERS,
  DATABASE_ACCESS_REQUESTS,
  MARIADB_ROLES,
  MYSQL_ROLES,
  POSTGRES_ROLES,
  REDIS_ROLES,
  ROLE_BINDINGS,
  ROLES,
  NAMESPACES,
  SECRET_ENGINES,
  SECRETS,
} from '../../controllers/shared/resources.ts';
import { secretCacheTransform, type CachedSecret } from '../../controllers/shared/secret-integrity.ts';
import { FakeWatchCache } from './fake-cache.ts';
import { FakeKube } from './fake-kube.ts';
import { FakeVault, type CallOpts } from './fake-vault.ts';

export const FAKE_CLUSTER = 'test';

// ---- Events -------------------------------------------------------------------------------------------------------

export interface RecordedEvent {
  component: string;
  kind: string | undefined;
  namespace: string | undefined;
  name: string | undefined;
  type: EventType;
  reason: string;
  message: string;
}

/**
 * Every Event the controllers record, in order, to assert on; each is also written to the FakeKube through the real
 * KubeEventRecorder (same de-duplication, same apiserver requests) unless `toKube` is false.
 */
export class FakeEvents {
  readonly recorded: RecordedEvent[] = [];
  private readonly kubeRecorders = new Map<string, KubeEventRecorder>();

  constructor(
    private readonly kube: FakeKube | undefined,
    private readonly clock: FakeClock,
  ) {}

  /** The recorder a controller gets for `component` (ControllerContext.events). */
  recorder(component: string): EventRecorder {
    return {
      event: (obj, type, reason, message) => {
        this.recorded.push({
          component,
          kind: obj.kind,
          namespace: obj.metadata?.namespace,
          name: obj.metadata?.name,
          type,
          reason,
          message,
        });
        if (!this.kube) return;
        let r = this.kubeRecorders.get(component);
        if (!r)
          this.kubeRecorders.set(component, (r = new KubeEventRecorder(this.kube, { component, clock: this.clock })));
        r.event(obj, type, reason, message);
      },
    };
  }

  /** Events about one object (by name, and namespace when given), or all. */
  about(obj?: { metadata?: { namespace?: string; name?: string } }): RecordedEvent[] {
    if (!obj) return [...this.recorded];
    return this.recorded.filter(
      (e) =>
        e.name === obj.metadata?.name &&
        (obj.metadata?.namespace === undefined || e.namespace === obj.metadata.namespace),
    );
  }

  warnings(obj?: { metadata?: { namespace?: string; name?: string } }): RecordedEvent[] {
    return this.about(obj).filter((e) => e.type === 'Warning');
  }

  normals(obj?: { metadata?: { namespace?: string; name?: string } }): RecordedEvent[] {
    return this.about(obj).filter((e) => e.type === 'Normal');
  }

  /** `Type Reason` of each Event, for compact assertions (`['Normal Provisioned']`). */
  summary(obj?: { metadata?: { namespace?: string; name?: string } }): string[] {
    return this.about(obj).map((e) => `${e.type} ${e.reason}`);
  }

  clear(): void {
    this.recorded.length = 0;
  }

  /** Drops the recorders' de-duplication memory (an operator restart); what was recorded stays. */
  forgetRecorders(): void {
    this.kubeRecorders.clear();
  }

  /** Waits until the Events given to the FakeKube are written (they are fire-and-forget, as in the operator). */
  async flush(): Promise<void> {
    await Promise.all([...this.kubeRecorders.values()].map((r) => r.flush()));
  }
}

// ---- logs ---------------------------------------------------------------------------------------------------------

export interface LogEntry {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
  /** Redacted as the operator's log sink redacts. */
  meta: Record<string, unknown>;
}

/** A logger that prints nothing and keeps every entry (redacted like the real sink), e.g. to assert no secret is logged. */
export function memoryLogger(
  entries: LogEntry[] = [],
  bound: Record<string, unknown> = {},
): Logger & { entries: LogEntry[] } {
  const at =
    (level: LogEntry['level']) =>
    (message: string, meta: Record<string, unknown> = {}) => {
      entries.push({ level, message, meta: redact({ ...bound, ...meta }) as Record<string, unknown> });
      return undefined;
    };
  return {
    entries,
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (meta) => memoryLogger(entries, { ...bound, ...meta }),
  };
}

// ---- Vault connections --------------------------------------------------------------------------------------------

export type IssuerState =
  | { kind: 'ready'; token: string; accessor: string; renewAtMs: number }
  | { kind: 'unavailable'; reason: string; message: string };

/** What the controllers use of a Vault connection (controllers/shared/vault-connections.ts VaultConnection). */
export interface FakeVaultConnection {
  readonly endpoint: { address: string };
  readonly authDescription: string;
  readonly client: VaultClient;
  issuer(opts?: CallOpts): Promise<IssuerState>;
  verifyIssuer(opts?: CallOpts): Promise<IssuerState>;
  issuingClient(opts?: CallOpts): Promise<{ client: VaultClient; ownedBy: 'issuer-token' | 'login-token' }>;
  login(opts?: CallOpts): Promise<void>;
}

/**
 * ControllerContext.connections in memory: every Vault AppBinding leads to a FakeVault (the world's, or the one
 * `vaultFor` picks). The issuer token is ready unless `issuer` is set to an unavailable state; `failNext` makes
 * forAppBinding itself throw (a token Secret missing, a login refused before any call).
 */
export class FakeVaultConnections {
  readonly issuerTokenRole = 'leasehold-issuer';
  /** The issuer token's state as every connection reports it. */
  issuer: IssuerState = {
    kind: 'ready',
    token: 'hvs.fake-issuer-token',
    accessor: 'fake-accessor',
    renewAtMs: Number.MAX_SAFE_INTEGER,
  };
  /** forAppBinding calls, and the AppBindings invalidate() was called for (`namespace/name`). */
  readonly calls = { forAppBinding: 0, invalidated: [] as string[] };
  private readonly generations = new Map<string, number>();
  private readonly failures: Error[] = [];

  constructor(private readonly vaultFor: (ab: AppBinding) => FakeVault) {}

  async forAppBinding(ab: AppBinding, signal?: AbortSignal): Promise<FakeVaultConnection> {
    this.calls.forAppBinding++;
    await Promise.resolve();
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    const failure = this.failures.shift();
    if (failure) throw failure;
    const vault = this.vaultFor(ab);
    const issuer = async (opts?: CallOpts) => {
      await Promise.resolve();
      if (opts?.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      return this.issuer;
    };
    return {
      endpoint: {
        address:
          ab.spec.clientConfig.url ??
          `https://${ab.spec.clientConfig.service?.name ?? 'vault'}.${ab.metadata.namespace}.svc:8200`,
      },
      authDescription: 'a fake login',
      client: vault,
      issuer,
      // Renews the issuer token: a call to Vault, which an outage or a fault on `login` fails.
      verifyIssuer: async (opts) => {
        await vault.login(opts);
        return issuer(opts);
      },
      issuingClient: async (opts) => {
        const s = await issuer(opts);
        return { client: vault, ownedBy: s.kind === 'ready' ? 'issuer-token' : 'login-token' };
      },
      login: (opts) => vault.login(opts),
    };
  }

  /** The next forAppBinding call(s) throw these. */
  failNext(...errors: Error[]): void {
    this.failures.push(...errors);
  }

  issuerGeneration(ab: AppBinding): number {
    return this.generations.get(refKey({ namespace: ab.metadata.namespace ?? '', name: ab.metadata.name ?? '' })) ?? 0;
  }

  /** The issuer token of an AppBinding was replaced (what VaultConnections counts for LeaseOwnership). */
  replaceIssuer(ab: { namespace: string; name: string }): void {
    this.generations.set(refKey(ab), (this.generations.get(refKey(ab)) ?? 0) + 1);
  }

  invalidate(ab: AppBinding): void {
    this.calls.invalidated.push(refKey({ namespace: ab.metadata.namespace ?? '', name: ab.metadata.name ?? '' }));
  }
}

// ---- caches ---------------------------------------------------------------------------------------------------------

/**
 * The caches the operator builds (controllers/index.ts buildControllers), fed from `kube`, with the same transforms,
 * selectors and indexes: the shared ones from addDependencyIndexes, and a copy of the `mount` indexes the
 * SecretEngine and role setups add.
 */
export function fakeCaches(kube: FakeKube, clusterName: string): Caches {
  const ours = 'app.kubernetes.io/managed-by=leasehold';
  const caches: Caches = {
    appBindings: new FakeWatchCache<AppBinding>(kube, APP_BINDINGS),
    secretEngines: new FakeWatchCache<SecretEngine>(kube, SECRET_ENGINES),
    postgresRoles: new FakeWatchCache<PostgresRole>(kube, POSTGRES_ROLES),
    mysqlRoles: new FakeWatchCache<MySQLRole>(kube, MYSQL_ROLES),
    mariadbRoles: new FakeWatchCache<MariaDBRole>(kube, MARIADB_ROLES),
    redisRoles: new FakeWatchCache<RedisRole>(kube, REDIS_ROLES),
    requests: new FakeWatchCache<DatabaseAccessRequest>(kube, DATABASE_ACCESS_REQUESTS),
    secrets: new FakeWatchCache<CachedSecret>(kube, SECRETS, { transform: secretCacheTransform }),
    grantRoles: new FakeWatchCache<Grant>(kube, ROLES, { labelSelector: ours }),
    grantBindings: new FakeWatchCache<Grant>(kube, ROLE_BINDINGS, { labelSelector: ours }),
    accessNotifiers: new FakeWatchCache<AccessNotifier>(kube, ACCESS_NOTIFIERS),
    clusterAccessNotifiers: new FakeWatchCache<ClusterAccessNotifier>(kube, CLUSTER_ACCESS_NOTIFIERS),
    namespaces: new FakeWatchCache<KubernetesObject>(kube, NAMESPACES),
  };
  const ns = (o: KubernetesObject) => o.metadata?.namespace ?? '';
  addDependencyIndexes(caches, clusterName);
  const mountOf = (e: SecretEngine) => engineMountPath(clusterName, e);
  caches.secretEngines.addIndex('mount', (e) => [mountOf(e)]);
  for (const roles of roleCaches(caches)) {
    roles.addIndex('mount', (r) =>
      r.spec.vaultRef && !r.spec.secretEngineRef
        ? [`${ns(r)}/${r.spec.vaultRef.name}/${r.spec.path ?? DEFAULT_MOUNT_PATH}`]
        : [],
    );
  }
  return caches;
}

// ---- the world ----------------------------------------------------------------------------------------------------

/**
 * What the controller does after a pass, whichever way the reconciler said it: nothing (`done`), another pass after
 * a delay (`requeueAfter`), a retry (a RetryableError: after its `retryAfterMs`, else with the key's backoff), or
 * nothing until the object changes (`terminal`). Anything else thrown is `error` (the controller retries it too).
 */
export type Outcome =
  | { kind: 'done' }
  | { kind: 'requeueAfter'; delayMs: number }
  | { kind: 'retry'; reason: string; message: string; retryAfterMs?: number }
  | { kind: 'terminal'; reason: string; message: string }
  | { kind: 'error'; error: unknown };

/** The Outcome of a settled pass (a PassRecord of FakeWorld.run, say). */
export function outcomeOf(settled: { result?: Result; error?: unknown }): Outcome {
  if (settled.result) return settled.result;
  const err = settled.error;
  if (err instanceof TerminalError) return { kind: 'terminal', reason: err.reason, message: err.message };
  if (err instanceof RetryableError) {
    const retryAfterMs = (err as { retryAfterMs?: number }).retryAfterMs;
    return {
      kind: 'retry',
      reason: err.reason,
      message: err.message,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  return { kind: 'error', error: err };
}

/** Whether the controller will look again by itself (a requeue, or a retry of any failure but a terminal one). */
export function comesBack(o: Outcome): boolean {
  return o.kind === 'requeueAfter' || o.kind === 'retry' || o.kind === 'error';
}

/** When the controller looks again, if the outcome fixes it: a requeue's delay, or a retry's retryAfterMs. */
export function nextPassInMs(o: Outcome): number | undefined {
  return o.kind === 'requeueAfter' ? o.delayMs : o.kind === 'retry' ? o.retryAfterMs : undefined;
}

/** One pass of FakeWorld.run: when it ran (ms since the epoch) and what it returned or threw. */
export type PassRecord =
  { at: number; result: Result; error?: undefined } | { at: number; result?: undefined; error: unknown };

export interface FakeWorldOptions {
  clusterName?: string;
  resyncPeriodMs?: number;
  /** Start time of the FakeClock (ms since the epoch). */
  startMs?: number;
  /** A Vault per Vault AppBinding; the world's `vault` for all of them by default. */
  vaultFor?: (ab: AppBinding) => FakeVault;
  /** Write Events to the FakeKube too (counted as requests), as the operator's recorder does. Default true. */
  eventsToKube?: boolean;
}

/**
 * The cluster, Vault and clock (which outlive the operator) and one operator process (caches, Vault connections,
 * Event de-duplication: what `restartOperator()` replaces). Reconcilers are built by the test from `context`; after
 * a restart, build them again (their own memory is the process's too). Its functions are own properties, so a test's
 * `{ ...world, more }` keeps them (`context`, `caches` and `connections` of such a copy are those of before a restart).
 */
export interface FakeWorld {
  readonly clock: FakeClock;
  readonly kube: FakeKube;
  readonly vault: FakeVault;
  /** Every Event recorded, across restarts. */
  readonly events: FakeEvents;
  /** Every log entry, across restarts (redacted as the operator's sink redacts). */
  readonly logs: LogEntry[];
  /** Every audit record (`ctx.audit.record`), across restarts, as the stdout sink writes them. */
  readonly audit: MemoryAuditSink;
  caches: Caches;
  connections: FakeVaultConnections;
  /** What every reconciler is built with. */
  context: ControllerContext;
  /**
   * The operator restarts: caches rebuilt from the FakeKube (a fresh list), new Vault connections (the issuer token
   * state carried over: it lives in a Secret), no Event de-duplication memory. Kube, Vault, clock, Events and logs
   * stay. Returns the new context.
   */
  restartOperator(): ControllerContext;
  /** A fresh ReconcileContext: its own id, the world's signal, `now()` from the FakeClock. */
  reconcileContext(): ReconcileContext;
  /** One reconcile pass of `reconciler` for `key` (or an object's key), then waits for the Events' writes. */
  reconcile(reconciler: Reconciler, key: ObjectKey | KubernetesObject): Promise<Result>;
  /** One pass, as what the controller does next (never throws): see Outcome. */
  attempt(reconciler: Reconciler, key: ObjectKey | KubernetesObject): Promise<Outcome>;
  /**
   * A controller's loop for one key on the FakeClock: a pass; then, for `requeueAfter`, the clock moves on by that
   * delay and another pass runs; for an error, after its retryAfterMs or else `retryMs` (a TerminalError ends it, as it parks the key); for
   * `done`, it ends (nothing would wake it but a watch event). Stops once `forMs` of fake time have passed or after
   * `maxPasses`. Returns what each pass gave, with the time it ran at. Timers set on the clock fire as it moves.
   */
  run(
    reconciler: Reconciler,
    key: ObjectKey | KubernetesObject,
    opts: { forMs: number; retryMs?: number; maxPasses?: number },
  ): Promise<PassRecord[]>;
  /** Aborts the world's signal (the operator shutting down). */
  abort(): void;
}

class World implements FakeWorld {
  readonly clock: FakeClock;
  readonly kube: FakeKube;
  readonly vault: FakeVault;
  readonly events: FakeEvents;
  readonly logs: LogEntry[] = [];
  readonly audit = new MemoryAuditSink();
  caches!: Caches;
  connections!: FakeVaultConnections;
  context!: ControllerContext;
  private readonly opts: FakeWorldOptions;
  private readonly abortController = new AbortController();
  private passes = 0;

  constructor(opts: FakeWorldOptions = {}) {
    this.opts = opts;
    this.clock = new FakeClock(opts.startMs);
    const now = () => this.clock.now();
    this.kube = new FakeKube({ now });
    this.vault = new FakeVault({ now });
    this.events = new FakeEvents(opts.eventsToKube === false ? undefined : this.kube, this.clock);
    this.boot();
  }

  readonly restartOperator = (): ControllerContext => {
    for (const cache of Object.values(this.caches)) void (cache as FakeWatchCache).stop();
    const issuer = this.connections.issuer;
    this.boot();
    this.connections.issuer = issuer;
    return this.context;
  };

  readonly reconcileContext = (): ReconcileContext => {
    const reconcileId = `pass-${++this.passes}`;
    return {
      reconcileId,
      signal: this.abortController.signal,
      log: this.context.log.child({ reconcileID: reconcileId }),
      now: () => new Date(this.clock.now()),
    };
  };

  readonly reconcile = async (reconciler: Reconciler, key: ObjectKey | KubernetesObject): Promise<Result> => {
    const k = 'metadata' in key || 'apiVersion' in key ? keyOf(key as KubernetesObject) : (key as ObjectKey);
    try {
      return await reconciler.reconcile(k, this.reconcileContext());
    } finally {
      await this.events.flush();
    }
  };

  readonly attempt = async (reconciler: Reconciler, key: ObjectKey | KubernetesObject): Promise<Outcome> =>
    outcomeOf(
      await this.reconcile(reconciler, key).then(
        (result) => ({ result }),
        (error: unknown) => ({ error }),
      ),
    );

  readonly run = async (
    reconciler: Reconciler,
    key: ObjectKey | KubernetesObject,
    opts: { forMs: number; retryMs?: number; maxPasses?: number },
  ): Promise<PassRecord[]> => {
    const end = this.clock.now() + opts.forMs;
    const trace: PassRecord[] = [];
    while (this.clock.now() <= end && trace.length < (opts.maxPasses ?? 1_000)) {
      const at = this.clock.now();
      let wait: number;
      try {
        const result = await this.reconcile(reconciler, key);
        trace.push({ at, result });
        if (result.kind === 'done') break;
        wait = result.delayMs;
      } catch (error) {
        trace.push({ at, error });
        if (error instanceof TerminalError) break;
        wait = (error as { retryAfterMs?: number }).retryAfterMs ?? opts.retryMs ?? 1_000;
      }
      if (at + wait > end) break;
      this.clock.advance(wait);
    }
    return trace;
  };

  readonly abort = (): void => {
    this.abortController.abort();
  };

  private boot(): void {
    const clusterName = this.opts.clusterName ?? FAKE_CLUSTER;
    this.caches = fakeCaches(this.kube, clusterName);
    this.connections = new FakeVaultConnections(this.opts.vaultFor ?? (() => this.vault));
    this.events.forgetRecorders();
    this.context = {
      kube: this.kube,
      clusterName,
      resyncPeriodMs: this.opts.resyncPeriodMs ?? 0,
      caches: this.caches,
      // The one cast: the controllers' VaultConnections type is a class (with private members), served structurally.
      connections: this.connections as unknown as ControllerContext['connections'],
      events: (component) => this.events.recorder(component),
      log: memoryLogger(this.logs),
      audit: this.audit,
    };
  }
}

export function fakeWorld(opts: FakeWorldOptions = {}): FakeWorld {
  return new World(opts);
}

/** A logger for tests that want nothing at all. */
export const silentLogger = nullLogger;
