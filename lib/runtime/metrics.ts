// Prometheus metrics with controller-runtime's names, so existing dashboards and alerts work unchanged, plus
// the operator's own counters of writes to Kubernetes and calls to Vault (an idle operator must make none).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type ReconcileResult = 'success' | 'error' | 'requeue_after';

/** Hooks a work queue reports through; `Metrics.queueMetrics(name)` provides the Prometheus ones. */
export interface QueueMetrics {
  added(): void;
  depth(n: number): void;
  retried(): void;
  /** Seconds a key waited in the queue before a worker took it. */
  queued(seconds: number): void;
  /** Seconds a worker held a key. */
  worked(seconds: number): void;
}

export const noQueueMetrics: QueueMetrics = { added() {}, depth() {}, retried() {}, queued() {}, worked() {} };

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  /** One registry per Metrics, so tests can run several managers in one process; other modules add theirs. */
  readonly registry: Registry;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly terminalReconcileErrors: Counter<'controller'>;
  readonly reconcilePanics: Counter<'controller'>;
  readonly reconcileTime: Histogram<'controller'>;
  readonly maxConcurrentReconciles: Gauge<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  readonly workqueueDepth: Gauge<'name'>;
  readonly workqueueAdds: Counter<'name'>;
  readonly workqueueRetries: Counter<'name'>;
  readonly workqueueQueueDuration: Histogram<'name'>;
  readonly workqueueWorkDuration: Histogram<'name'>;
  readonly leaderStatus: Gauge<'name'>;
  /** Every create/update/patch/delete the operator sends to the apiserver, by verb and resource (plural). */
  readonly kubeWrites: Counter<'verb' | 'resource'>;
  /**
   * Every request the operator sends to the apiserver but watches, by verb (`get`, `list`, `create`, `update`,
   * `patch`, `delete`) and resource (plural): reads and writes, what a grant costs the apiserver.
   */
  readonly kubeRequests: Counter<'verb' | 'resource'>;
  /**
   * Every Vault request, by operation and outcome. Operations (`VaultOperation`, lib/vault/transport.ts): one per
   * VaultClient method, `health`, `readMount`, `enableMount`, `tuneMount`, `disableMount`, `writeConnection`,
   * `deleteConnection`, `writeRole`, `deleteRole`, `issueCredential`, `renewLease`, `lookupLease`, `listLeases`,
   * `revokeLease` (a refused revocation is followed by a `lookupLease`); and the operator's own token calls,
   * `login`, `lookupToken` (a token from a Secret), `renewToken`, `createToken` (an issuer token). Outcomes: `success`;
   * `not_found`, an expected answer that the thing doesn't exist (a lease already gone, a mount or role not
   * created yet), not a failure; `error`, everything else (unreachable, refused, a revocation that failed).
   */
  readonly vaultRequests: Counter<'operation' | 'outcome'>;
  /** Watch (re)connections per resource, with why the previous one ended. */
  readonly watchRestarts: Counter<'resource' | 'reason'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [(this.registry = new Registry())];
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.terminalReconcileErrors = new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.reconcilePanics = new Counter({
      name: 'controller_runtime_reconcile_panics_total',
      help: 'Total number of reconciliations that threw something other than an Error',
      labelNames: ['controller'],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.maxConcurrentReconciles = new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    });
    this.activeWorkers = new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    });
    this.workqueueDepth = new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name'],
      registers,
    });
    this.workqueueAdds = new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: ['name'],
      registers,
    });
    this.workqueueRetries = new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: ['name'],
      registers,
    });
    this.workqueueQueueDuration = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.workqueueWorkDuration = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes',
      labelNames: ['name'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.leaderStatus = new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'],
      registers,
    });
    this.kubeWrites = new Counter({
      name: 'kube_writes_total',
      help: 'Write requests sent to the Kubernetes API, by verb and resource',
      labelNames: ['verb', 'resource'],
      registers,
    });
    this.kubeRequests = new Counter({
      name: 'kube_requests_total',
      help: 'Requests sent to the Kubernetes API (watches aside), by verb and resource',
      labelNames: ['verb', 'resource'],
      registers,
    });
    this.vaultRequests = new Counter({
      name: 'vault_requests_total',
      help: 'Requests sent to Vault, by operation and outcome',
      labelNames: ['operation', 'outcome'],
      registers,
    });
    this.watchRestarts = new Counter({
      name: 'leasehold_watch_restarts_total',
      help: 'Watch reconnections per resource, by why the previous watch ended',
      labelNames: ['resource', 'reason'],
      registers,
    });
  }

  queueMetrics(name: string): QueueMetrics {
    const depth = this.workqueueDepth.labels(name);
    const adds = this.workqueueAdds.labels(name);
    const retries = this.workqueueRetries.labels(name);
    const queued = this.workqueueQueueDuration.labels(name);
    const worked = this.workqueueWorkDuration.labels(name);
    return {
      added: () => adds.inc(),
      depth: (n) => depth.set(n),
      retried: () => retries.inc(),
      queued: (s) => queued.observe(s),
      worked: (s) => worked.observe(s),
    };
  }

  /** Prometheus text exposition of every metric in the registry. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
