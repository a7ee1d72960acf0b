// A Controller binds a Reconciler to a work queue fed by watch caches. Event handlers only compute keys and
// enqueue them; workers take keys from the queue and reconcile them, mapping outcomes as controller-runtime's
// reconcileHandler does:
//   done                     → forget the key's backoff
//   requeueAfter(ms)         → forget, then add again after ms (the earliest pending time wins): for time only
//                              (a lease to renew, a deadline), never for a failure
//   TerminalError            → forget, and park the key: only a change (not the periodic resync) wakes it
//   RetryableError / any other throw → rate-limited retry: the longer of the key's backoff (5 ms doubling,
//                              capped at 5 minutes) and the queue's global bucket (10 a second, bursts of 100)
//   RetryableError with retryAfterMs → the same, with that fixed delay in place of the key's backoff (a poll
//                              of something no watch covers)
// Nothing a reconciler does (throw a string, reject, return garbage) can stop a worker or the process.
import type { KubernetesObject } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from './clock.ts';
import { describeError, nullLogger, type Logger } from './logging.ts';
import type { Metrics } from './metrics.ts';
import { isControlledBy } from './owners.ts';
import {
  RetryableError,
  TerminalError,
  keyFromString,
  keyOf,
  keyToString,
  type ObjectKey,
  type Reconciler,
  type Result,
} from './types.ts';
import type { CacheEventHandler } from './watch.ts';
import { WorkQueue, type BackoffPolicy, type RateLimit } from './workqueue.ts';

export type ObjectEvent<T> =
  | { type: 'add'; object: T }
  | { type: 'update'; old: T; object: T }
  | { type: 'delete'; object: T }
  /** The periodic resync: nothing changed, every object is offered again. */
  | { type: 'resync'; object: T };

/** Maps a cache event to the keys of the objects that need a pass. */
export interface EnqueueHandler<T> {
  keys(event: ObjectEvent<T>): ObjectKey[];
}

/** Decides whether an update is worth a pass. */
export type UpdatePredicate<T> = (oldObj: T, newObj: T) => boolean;

/**
 * The default filter for a controller's own kind, like controller-runtime's GenerationChangedPredicate but
 * also counting labels, annotations (annotation-triggered rotation and revocation), finalizers and the
 * deletion timestamp. Status-only updates, our own status writes among them, are dropped. Kinds without a
 * generation (ConfigMaps, Secrets) have no status subresource, so any update of theirs counts.
 */
export function specOrMetadataChanged(oldObj: KubernetesObject, newObj: KubernetesObject): boolean {
  const a = oldObj.metadata ?? {};
  const b = newObj.metadata ?? {};
  if (a.generation === undefined && b.generation === undefined) return a.resourceVersion !== b.resourceVersion;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp?.toString() !== b.deletionTimestamp?.toString() ||
    !sameStrings(a.finalizers, b.finalizers) ||
    !sameRecord(a.labels, b.labels) ||
    !sameRecord(a.annotations, b.annotations)
  );
}

/** Every update counts (resourceVersion changed). */
export function anyChange(): boolean {
  return true;
}

function sameStrings(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function sameRecord(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const x = a ?? {};
  const y = b ?? {};
  const kx = Object.keys(x);
  return kx.length === Object.keys(y).length && kx.every((k) => k in y && x[k] === y[k]);
}

/** Enqueues the object itself: for a controller's own kind. Updates pass `predicate` (specOrMetadataChanged). */
export function enqueueObject<T extends KubernetesObject>(
  opts: { predicate?: UpdatePredicate<T> } = {},
): EnqueueHandler<T> {
  const predicate = opts.predicate ?? specOrMetadataChanged;
  return {
    keys(ev) {
      if (ev.type === 'update' && !predicate(ev.old, ev.object)) return [];
      return [keyOf(ev.object)];
    },
  };
}

/**
 * Enqueues the controller owner of an owned object (a Secret → the DatabaseAccessRequest that controls it),
 * if that owner is of `owner.kind` in `owner.group`. Cluster-scoped owners are enqueued with namespace ''.
 * Every update counts by default: someone editing an owned object is drift to repair.
 */
export function enqueueOwner<T extends KubernetesObject>(
  owner: { group: string; kind: string; namespaced?: boolean },
  opts: { predicate?: UpdatePredicate<T> } = {},
): EnqueueHandler<T> {
  const predicate = opts.predicate ?? anyChange;
  const ownerOf = (obj: T): ObjectKey[] => {
    const ref = isControlledBy(obj, owner);
    return ref
      ? [{ namespace: (owner.namespaced ?? true) ? (obj.metadata?.namespace ?? '') : '', name: ref.name }]
      : [];
  };
  return {
    keys(ev) {
      if (ev.type === 'resync') return []; // the owner's own resync covers it
      if (ev.type === 'update')
        return predicate(ev.old, ev.object) ? uniqueKeys([...ownerOf(ev.old), ...ownerOf(ev.object)]) : [];
      return ownerOf(ev.object);
    },
  };
}

/**
 * Enqueues dependents computed by `map` (an AppBinding → the SecretEngines that reference it, typically via
 * another cache's index). For updates both the old and new object are mapped, so a dependent that stopped
 * matching is told too.
 */
export function enqueueMapped<T extends KubernetesObject>(
  map: (obj: T) => ObjectKey[],
  opts: { predicate?: UpdatePredicate<T> } = {},
): EnqueueHandler<T> {
  const predicate = opts.predicate ?? anyChange;
  const safeMap = (obj: T): ObjectKey[] => {
    try {
      return map(obj);
    } catch {
      return [];
    }
  };
  return {
    keys(ev) {
      if (ev.type === 'resync') return [];
      if (ev.type === 'update')
        return predicate(ev.old, ev.object) ? uniqueKeys([...safeMap(ev.old), ...safeMap(ev.object)]) : [];
      return safeMap(ev.object);
    },
  };
}

function uniqueKeys(keys: ObjectKey[]): ObjectKey[] {
  const seen = new Map<string, ObjectKey>();
  for (const k of keys) seen.set(keyToString(k), k);
  return [...seen.values()];
}

/** The part of a WatchCache a Controller needs; lets tests feed events without an apiserver. */
export interface EventSource<T> {
  addHandler(handler: CacheEventHandler<T>): () => void;
  readonly synced: Promise<void>;
  hasSynced(): boolean;
}

export interface ControllerOptions {
  /** Names the controller in logs and metrics, e.g. `databaseaccessrequest`. */
  name: string;
  reconciler: Reconciler;
  /** Workers: keys reconciled in parallel (never the same key twice). Default 1. */
  concurrency?: number;
  log?: Logger;
  metrics?: Metrics;
  clock?: Clock;
  backoff?: BackoffPolicy;
  /** The limit on retries across all keys (workqueue.ts DEFAULT_GLOBAL_RATE). */
  globalRate?: RateLimit;
  /** For tests; the default is a random UUID. */
  newReconcileId?: () => string;
  /**
   * Aborts a pass's signal after this long (none by default). The key stays held until the pass returns, so a
   * reconciler must honour the signal for this to free the worker.
   */
  reconcileTimeoutMs?: number;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly concurrency: number;
  private readonly log: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly clock: Clock;
  private readonly newReconcileId: () => string;
  private readonly reconcileTimeoutMs: number | undefined;
  private readonly sources: Array<EventSource<never>> = [];
  private readonly unsubscribe: Array<() => void> = [];
  /** Keys whose last pass failed terminally; the resync skips them until something about them changes. */
  private readonly parked = new Set<string>();
  private readonly abort = new AbortController();
  private workers: Promise<void>[] = [];
  private started = false;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.reconciler = opts.reconciler;
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.log = (opts.log ?? nullLogger()).child({ controller: opts.name });
    this.metrics = opts.metrics;
    this.clock = opts.clock ?? systemClock;
    this.newReconcileId = opts.newReconcileId ?? randomUUID;
    this.reconcileTimeoutMs = opts.reconcileTimeoutMs;
    this.queue = new WorkQueue({
      clock: this.clock,
      backoff: opts.backoff,
      globalRate: opts.globalRate,
      metrics: opts.metrics?.queueMetrics(opts.name),
    });
    this.metrics?.maxConcurrentReconciles.labels(opts.name).set(this.concurrency);
  }

  /** Feeds events of `source` through `handler` into this controller's queue. Call before start(). */
  watch<T>(source: EventSource<T>, handler: EnqueueHandler<T>): this {
    const enqueue = (ev: ObjectEvent<T>) => {
      for (const key of handler.keys(ev)) this.enqueueFrom(ev.type, key);
    };
    this.sources.push(source as EventSource<never>);
    this.unsubscribe.push(
      source.addHandler({
        onAdd: (object) => enqueue({ type: 'add', object }),
        onUpdate: (old, object) => enqueue({ type: 'update', old, object }),
        onDelete: (object) => enqueue({ type: 'delete', object }),
        onResync: (object) => enqueue({ type: 'resync', object }),
      }),
    );
    return this;
  }

  /** Requests a pass over `key` (also wakes a parked key). */
  enqueue(key: ObjectKey): void {
    this.enqueueFrom('add', key);
  }

  /** Resolves when every watched source has synced. */
  async waitForSync(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.synced));
  }

  hasSynced(): boolean {
    return this.sources.every((s) => s.hasSynced());
  }

  /** Starts the workers. Keys enqueued before (while a standby, say) are processed first. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.log.info('starting workers', { workers: this.concurrency });
    this.workers = Array.from({ length: this.concurrency }, () => this.runWorker());
  }

  /**
   * Stops taking keys, lets in-flight passes finish for up to `deadlineMs`, then aborts their signal.
   * Resolves true if everything finished in time.
   */
  async stop(deadlineMs: number): Promise<boolean> {
    this.unsubscribe.splice(0).forEach((u) => u());
    const drained = await this.queue.shutDownWithDrain(deadlineMs);
    if (!drained) {
      this.log.warn('reconciles still running at the shutdown deadline; aborting them', {
        inFlight: this.queue.inFlight(),
      });
      this.abort.abort(new Error('shutdown deadline passed'));
    }
    return drained;
  }

  /** Stops at once: no new keys, in-flight passes see their signal aborted. For lost leadership. */
  halt(reason: string): void {
    this.unsubscribe.splice(0).forEach((u) => u());
    this.queue.shutDown();
    this.abort.abort(new Error(reason));
  }

  /** Resolves once every worker has exited (after stop/halt and the in-flight passes end). */
  async finished(): Promise<void> {
    await Promise.all(this.workers);
  }

  private enqueueFrom(trigger: ObjectEvent<unknown>['type'], key: ObjectKey): void {
    const k = keyToString(key);
    if (trigger === 'resync') {
      if (this.parked.has(k)) return;
    } else {
      this.parked.delete(k);
    }
    this.queue.add(k);
  }

  private async runWorker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.processKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async processKey(key: string): Promise<void> {
    const objectKey = keyFromString(key);
    const reconcileId = this.newReconcileId();
    const log = this.log.child({ namespace: objectKey.namespace, name: objectKey.name, reconcileID: reconcileId });
    const started = this.clock.now();
    const active = this.metrics?.activeWorkers.labels(this.name);
    active?.inc();
    let label: 'success' | 'error' | 'requeue_after';
    try {
      const signal = this.reconcileTimeoutMs
        ? AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.reconcileTimeoutMs)])
        : this.abort.signal;
      const result = await this.reconciler.reconcile(objectKey, {
        reconcileId,
        signal,
        log,
        now: () => new Date(this.clock.now()),
      });
      label = this.onResult(key, result, log);
    } catch (err) {
      label = 'error';
      this.onError(key, err, log);
    } finally {
      active?.dec();
    }
    this.metrics?.reconcileTotal.labels(this.name, label).inc();
    this.metrics?.reconcileTime.labels(this.name).observe((this.clock.now() - started) / 1000);
  }

  private onResult(key: string, result: Result | undefined, log: Logger): 'success' | 'requeue_after' {
    this.queue.forget(key);
    if (result?.kind === 'requeueAfter' && Number.isFinite(result.delayMs)) {
      log.debug('reconciled; requeue scheduled', { requeueAfterMs: result.delayMs });
      this.queue.addAfter(key, result.delayMs);
      return 'requeue_after';
    }
    if (result?.kind !== 'done') log.warn('reconciler returned no valid Result; treating it as done');
    else log.debug('reconciled');
    return 'success';
  }

  private onError(key: string, err: unknown, log: Logger): void {
    this.metrics?.reconcileErrors.labels(this.name).inc();
    if (err instanceof TerminalError) {
      this.metrics?.terminalReconcileErrors.labels(this.name).inc();
      this.queue.forget(key);
      this.parked.add(key);
      log.error('reconcile failed terminally; waiting for a change', { reason: err.reason, error: describeError(err) });
      return;
    }
    if (!(err instanceof Error)) this.metrics?.reconcilePanics.labels(this.name).inc();
    const reason = (err as { reason?: unknown })?.reason;
    // A write refused because the object changed since the cache showed it is optimistic concurrency doing its
    // job (typically the cache not having caught up with this controller's own last write): retried, not news.
    const level = err instanceof RetryableError && reason === 'Conflict' ? 'debug' : 'error';
    const retries = this.queue.numRequeues(key);
    const fixed =
      err instanceof RetryableError && err.retryAfterMs !== undefined && Number.isFinite(err.retryAfterMs)
        ? Math.max(0, err.retryAfterMs)
        : undefined;
    const retryInMs = this.queue.addRateLimited(key, { afterMs: fixed });
    log[level]('reconcile failed; will retry', {
      ...(typeof reason === 'string' ? { reason } : {}),
      error: describeError(err),
      retries,
      retryInMs,
    });
  }
}
