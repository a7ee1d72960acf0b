// The Manager runs the operator's moving parts in order:
//   1. probe and metrics endpoints;
//   2. watch caches (every replica: a standby keeps warm caches, so a takeover reconciles at once);
//   3. once caches have synced: leader election, if enabled;
//   4. controllers, on the leader only.
// Graceful stop: controllers stop taking work and finish in-flight passes within a deadline, then the Lease is
// released (only then, so a successor never overlaps our last writes), caches and endpoints stop.
// Lost leadership: controllers halt at once, and `onLeadershipLost` runs (the entry point exits non-zero so
// the pod restarts with a clean slate, as controller-runtime does).
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { Controller, type ControllerOptions } from './controller.ts';
import { KubeEventRecorder, type EventRecorder } from './events.ts';
import { HttpEndpoint, healthHandler, metricsHandler, parseBindAddress, type Check } from './health.ts';
import { KubeClient } from './kube.ts';
import { LeaderElector } from './leader.ts';
import { describeError, type Logger } from './logging.ts';
import { Metrics } from './metrics.ts';
import type { ResourceType } from './types.ts';
import { WatchCache, type WatchCacheOptions } from './watch.ts';

export interface LeaderElectionConfig {
  namespace: string;
  /** The Lease name (`--leader-election-id`). */
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  metrics?: Metrics;
  /** Namespace that namespaced caches watch by default; '' for all. */
  namespace?: string;
  /** Default resync period of caches; 0 disables. */
  resyncPeriodMs?: number;
  leaderElection?: LeaderElectionConfig;
  /** `host:port`, `:port`, or `0` to disable. */
  healthProbeBindAddress?: string;
  metricsBindAddress?: string;
  /** How long in-flight reconciles may run after SIGTERM. */
  shutdownTimeoutMs?: number;
  /** Called once if leadership is lost (after controllers halted). */
  onLeadershipLost?: () => void;
  /** Name reported as the Event source instance (the pod name). */
  instance?: string;
}

export type CacheOptions<T extends KubernetesObject> = Partial<
  Pick<
    WatchCacheOptions<T>,
    'namespace' | 'labelSelector' | 'fieldSelector' | 'transform' | 'resyncPeriodMs' | 'staleAfterMs' | 'pageSize'
  >
>;

export type ManagerOutcome = 'stopped' | 'lost';

export class Manager {
  readonly kubeConfig: KubeConfig;
  readonly client: KubeClient;
  readonly metrics: Metrics;
  readonly log: Logger;
  private readonly opts: ManagerOptions;
  private readonly caches = new Map<string, WatchCache<KubernetesObject>>();
  private readonly controllers: Controller[] = [];
  private readonly recorders: KubeEventRecorder[] = [];
  private readonly endpoints: HttpEndpoint[] = [];
  private elector: LeaderElector | undefined;
  private started = false;
  private stopping = false;
  private controllersRunning = false;
  private resolveDone!: (o: ManagerOutcome) => void;
  private requestStop!: () => void;
  private readonly stopRequested = new Promise<void>((r) => (this.requestStop = r));
  /** Resolves when the manager has stopped, or lost leadership. */
  readonly done: Promise<ManagerOutcome>;
  private healthEndpoint: HttpEndpoint | undefined;
  private metricsEndpoint: HttpEndpoint | undefined;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.kubeConfig = opts.kubeConfig;
    this.log = opts.log;
    this.metrics = opts.metrics ?? new Metrics();
    this.client = new KubeClient(opts.kubeConfig, { metrics: this.metrics });
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /**
   * The shared cache for `resource` (namespace defaults to the manager's; cluster-scoped kinds ignore it).
   * Caches are shared by (resource, namespace, selectors): the first caller's transform and resync win.
   */
  cache<T extends KubernetesObject>(resource: ResourceType, opts: CacheOptions<T> = {}): WatchCache<T> {
    const namespace = (resource.namespaced ?? true) ? (opts.namespace ?? this.opts.namespace ?? '') : '';
    const id = [
      resource.plural,
      resource.group,
      resource.version,
      namespace,
      opts.labelSelector ?? '',
      opts.fieldSelector ?? '',
    ].join('|');
    let cache = this.caches.get(id) as WatchCache<T> | undefined;
    if (!cache) {
      cache = new WatchCache<T>({
        kubeConfig: this.kubeConfig,
        client: this.client,
        resource,
        log: this.log,
        metrics: this.metrics,
        resyncPeriodMs: this.opts.resyncPeriodMs ?? 10 * 60_000,
        ...opts,
        namespace,
      });
      this.caches.set(id, cache as unknown as WatchCache<KubernetesObject>);
      if (this.started) cache.start();
    }
    return cache;
  }

  /** A recorder emitting Events as `component`. */
  eventRecorder(component: string): EventRecorder {
    const r = new KubeEventRecorder(this.client, { component, instance: this.opts.instance, log: this.log });
    this.recorders.push(r);
    return r;
  }

  /** Creates and registers a controller sharing the manager's logger and metrics. */
  newController(opts: Omit<ControllerOptions, 'log' | 'metrics'>): Controller {
    const c = new Controller({ ...opts, log: this.log, metrics: this.metrics });
    this.add(c);
    return c;
  }

  /** Registers a controller (idempotent). */
  add(controller: Controller): void {
    if (this.controllers.includes(controller)) return;
    this.controllers.push(controller);
    if (this.controllersRunning) controller.start();
  }

  isLeader(): boolean {
    return this.opts.leaderElection ? (this.elector?.isLeader() ?? false) : true;
  }

  cachesSynced(): boolean {
    return [...this.caches.values()].every((c) => c.hasSynced());
  }

  /** Readiness: not stopping, caches synced, and (with leader election) campaigning or leading. */
  readinessChecks(): Record<string, Check> {
    return {
      shutdown: () => (this.stopping ? 'shutting down' : undefined),
      caches: () => {
        const waiting = [...this.caches.values()].filter((c) => !c.hasSynced()).map((c) => c.describe());
        return waiting.length ? `not synced: ${waiting.join(', ')}` : undefined;
      },
      'leader-election': () => (this.opts.leaderElection && !this.elector ? 'not yet campaigning' : undefined),
    };
  }

  /** Starts everything; resolves once caches have synced and election (or the controllers) has started. */
  async start(): Promise<void> {
    if (this.started) throw new Error('manager already started');
    this.started = true;
    await this.startEndpoints();
    for (const c of this.caches.values()) c.start();
    await this.waitForCaches();
    if (this.stopping) return;
    const le = this.opts.leaderElection;
    if (!le) {
      this.startControllers();
      return;
    }
    this.elector = new LeaderElector({
      client: this.client,
      namespace: le.namespace,
      name: le.name,
      identity: le.identity ?? `${os.hostname()}_${randomUUID()}`,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      log: this.log,
      metrics: this.metrics,
      onStartedLeading: () => this.startControllers(),
      onStoppedLeading: () => this.onLost(),
    });
    void this.elector.run();
  }

  /** Graceful stop; safe to call more than once. */
  async stop(): Promise<void> {
    if (this.stopping) return this.done.then(() => undefined);
    this.stopping = true;
    this.requestStop();
    const deadline = this.opts.shutdownTimeoutMs ?? 30_000;
    this.log.info('shutting down: finishing in-flight reconciles', { deadlineMs: deadline });
    const drained = await Promise.all(this.controllers.map((c) => c.stop(deadline)));
    if (drained.includes(false)) this.log.warn('some reconciles did not finish before the shutdown deadline');
    await this.elector?.stop(); // releases the Lease, now that our writes are done
    await Promise.all([...this.caches.values()].map((c) => c.stop()));
    await Promise.race([
      Promise.all(this.recorders.map((r) => r.flush())),
      new Promise((r) => setTimeout(r, 2_000).unref()),
    ]);
    await Promise.all(this.endpoints.map((e) => e.stop()));
    this.log.info('stopped');
    this.resolveDone('stopped');
  }

  /** The bound health-probe port (tests bind port 0). */
  healthPort(): number | undefined {
    return this.healthEndpoint?.port();
  }

  metricsPort(): number | undefined {
    return this.metricsEndpoint?.port();
  }

  private async startEndpoints(): Promise<void> {
    const health = parseBindAddress(this.opts.healthProbeBindAddress ?? '0');
    if (health) {
      this.healthEndpoint = new HttpEndpoint(health, healthHandler(this.readinessChecks()), this.log);
      this.endpoints.push(this.healthEndpoint);
    }
    const metrics = parseBindAddress(this.opts.metricsBindAddress ?? '0');
    if (metrics) {
      this.metricsEndpoint = new HttpEndpoint(metrics, metricsHandler(this.metrics), this.log);
      this.endpoints.push(this.metricsEndpoint);
    }
    await Promise.all(this.endpoints.map((e) => e.start()));
  }

  private async waitForCaches(): Promise<void> {
    const all = Promise.all([...this.caches.values()].map((c) => c.synced));
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const slow = new Promise<'slow'>((r) => (timer = setTimeout(() => r('slow'), 30_000)));
      const outcome = await Promise.race([
        all.then(() => 'synced' as const),
        this.stopRequested.then(() => 'stopping' as const),
        slow,
      ]);
      clearTimeout(timer);
      if (outcome !== 'slow') return;
      const waiting = [...this.caches.values()].filter((c) => !c.hasSynced()).map((c) => c.describe());
      this.log.warn('still waiting for caches to sync', { waiting });
    }
  }

  private startControllers(): void {
    if (this.stopping || this.controllersRunning) return;
    this.controllersRunning = true;
    for (const c of this.controllers) c.start();
  }

  private onLost(): void {
    for (const c of this.controllers) c.halt('leadership lost');
    this.controllersRunning = false;
    this.resolveDone('lost');
    try {
      this.opts.onLeadershipLost?.();
    } catch (err) {
      this.log.error('onLeadershipLost failed', { error: describeError(err) });
    }
  }
}
