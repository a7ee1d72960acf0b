// A watch cache per kind: list, then watch from the list's resourceVersion (with bookmarks), keeping an
// in-memory store that controllers read instead of the apiserver. Written on client-node's low-level `Watch`
// rather than `makeInformer`, because the informer stops for good on most errors; this loop never stops until
// told to:
//   - 410 Gone (as the HTTP status or an in-stream ERROR) → relist, diff against the store, emit deletes for
//     objects that vanished while away;
//   - any other error, or a list failure → reconnect after a capped, jittered exponential backoff;
//   - a clean end of stream (the server's timeoutSeconds) → watch again at once from the last resourceVersion;
//   - nothing at all (events, bookmarks, the server's routine end after 2–3 min) for `staleAfterMs` → the
//     watch is presumed dead (a half-open TCP connection) and replaced.
// Handlers only learn that something changed; they are expected to enqueue keys and return.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { sleep, systemClock, type Clock, type TimerHandle } from './clock.ts';
import { KubeClient, isGone, resourcePath } from './kube.ts';
import { describeError, nullLogger, type Logger } from './logging.ts';
import type { Metrics } from './metrics.ts';
import { apiVersionOf, type ObjectKey, type ResourceType } from './types.ts';

export interface CacheEventHandler<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
  /** Called for every cached object once per resync period, whether or not it changed. */
  onResync?(obj: T): void;
}

export interface BackoffRange {
  initialMs: number;
  maxMs: number;
}

export interface WatchCacheOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  resource: ResourceType;
  /** One namespace, or all namespaces when empty/undefined. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Shrinks each object before it is stored (and before handlers see it). Defaults to `stripManagedFields`;
   * pass `stripSecretData` for Secrets so their payload never sits in the operator's memory.
   */
  transform?: (obj: KubernetesObject) => T;
  /** Every object is offered to `onResync` this often (±10 % jitter); 0 disables. */
  resyncPeriodMs?: number;
  /**
   * A watch that delivers nothing (no event, no bookmark, no server-side end) for this long is presumed dead
   * and replaced. Defaults to 210 s, beyond the 2–3 min after which the server ends every watch.
   */
  staleAfterMs?: number;
  backoff?: BackoffRange;
  /** LIST page size: bounds the memory one response needs. */
  pageSize?: number;
  log?: Logger;
  metrics?: Metrics;
  clock?: Clock;
  /** Randomness for jitter; injectable for tests. */
  random?: () => number;
  /** Shared client for LIST requests (counts nothing: lists are reads). */
  client?: KubeClient;
}

export interface CacheHealth {
  synced: boolean;
  watching: boolean;
  /** Milliseconds since the epoch of the last list, event or bookmark; undefined before the first. */
  lastActivityAt: number | undefined;
  restarts: number;
}

type WatchEnd =
  | { reason: 'closed'; sawEvents: boolean }
  | { reason: 'gone' }
  | { reason: 'stale' }
  | { reason: 'stopped' }
  | { reason: 'error'; error: unknown; sawEvents: boolean };

// client-go's reflector caps at 30 s because thousands of kubelets reconnect at once; an operator runs one or
// two replicas, and a short cap means a change made right after an apiserver restart is seen within seconds.
const DEFAULT_BACKOFF: BackoffRange = { initialMs: 250, maxMs: 5_000 };
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops what controllers never read and what costs the most memory: managedFields and kubectl's
 * last-applied-configuration annotation (a full copy of the object).
 */
export function stripManagedFields<T extends KubernetesObject>(obj: T): T {
  const md = obj.metadata;
  if (!md) return obj;
  if (md.managedFields) delete md.managedFields;
  if (md.annotations && LAST_APPLIED in md.annotations) {
    const { [LAST_APPLIED]: _dropped, ...rest } = md.annotations;
    md.annotations = rest;
  }
  return obj;
}

/** Keeps a Secret's identity and metadata only: controllers must read Secret data from the API, never the cache. */
export function stripSecretData(obj: KubernetesObject): KubernetesObject & { type?: string } {
  const s = stripManagedFields(obj) as KubernetesObject & { type?: string };
  return { apiVersion: s.apiVersion, kind: s.kind, metadata: s.metadata, type: s.type };
}

export class WatchCache<T extends KubernetesObject = KubernetesObject> {
  readonly resource: ResourceType;
  readonly namespace: string;
  private readonly opts: WatchCacheOptions<T>;
  private readonly client: KubeClient;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly transform: (obj: KubernetesObject) => T;
  /** namespace → name → object. */
  private readonly store = new Map<string, Map<string, T>>();
  private count = 0;
  private readonly indexers = new Map<string, { fn: (obj: T) => string[]; values: Map<string, Set<string>> }>();
  private readonly handlers = new Set<CacheEventHandler<T>>();
  private resourceVersion: string | undefined;
  private stopped = true;
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;
  private abortWatch: ((end: WatchEnd) => void) | undefined;
  private watchdog: TimerHandle | undefined;
  private resyncTimer: TimerHandle | undefined;
  private lastActivityAt: number | undefined;
  private restarts = 0;
  private syncedFlag = false;
  private resolveSynced!: () => void;
  /** Resolves after the first complete list; never rejects (the loop keeps retrying). */
  readonly synced: Promise<void>;

  constructor(opts: WatchCacheOptions<T>) {
    this.opts = opts;
    this.resource = opts.resource;
    this.namespace = opts.namespace ?? '';
    this.client = opts.client ?? new KubeClient(opts.kubeConfig);
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.log = (opts.log ?? nullLogger()).child({ resource: this.describe() });
    this.transform = opts.transform ?? ((o) => stripManagedFields(o) as T);
    this.synced = new Promise((r) => (this.resolveSynced = r));
  }

  /** e.g. `configmaps.v1` or `databaseaccessrequests.v1alpha1.example.com`, for logs and metrics. */
  describe(): string {
    const r = this.resource;
    return `${r.plural}.${r.version}${r.group ? `.${r.group}` : ''}`;
  }

  /** Registers a handler; returns a function that removes it. Objects already cached are not replayed. */
  addHandler(handler: CacheEventHandler<T>): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /**
   * Adds an index: `fn` maps an object to the values it is found under (e.g. a SecretEngine to the
   * `namespace/name` of its AppBinding). Query with `byIndex`.
   */
  addIndex(name: string, fn: (obj: T) => string[]): void {
    const index = { fn, values: new Map<string, Set<string>>() };
    this.indexers.set(name, index);
    for (const obj of this.list()) this.indexAdd(index, storeKey(obj), obj);
  }

  byIndex(name: string, value: string): T[] {
    const index = this.indexers.get(name);
    if (!index) throw new Error(`no index named ${name} on ${this.describe()}`);
    const out: T[] = [];
    for (const key of index.values.get(value) ?? []) {
      const [ns, n] = splitKey(key);
      const obj = this.store.get(ns)?.get(n);
      if (obj) out.push(obj);
    }
    return out;
  }

  get(namespace: string, name: string): T | undefined {
    return this.store.get(namespace)?.get(name);
  }

  getByKey(key: ObjectKey): T | undefined {
    return this.get(key.namespace, key.name);
  }

  /** Objects in one namespace, or all of them. The objects are shared: callers must not mutate them. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.store.get(namespace)?.values() ?? [])];
    const out: T[] = [];
    for (const byName of this.store.values()) out.push(...byName.values());
    return out;
  }

  size(): number {
    return this.count;
  }

  hasSynced(): boolean {
    return this.syncedFlag;
  }

  health(): CacheHealth {
    return {
      synced: this.syncedFlag,
      watching: this.abortWatch !== undefined,
      lastActivityAt: this.lastActivityAt,
      restarts: this.restarts,
    };
  }

  /** Starts the list/watch loop. Idempotent. */
  start(): void {
    if (this.running || this.stopController.signal.aborted) return;
    this.stopped = false;
    this.running = this.run();
  }

  /** Stops the loop and its timers; the store keeps its contents. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopController.abort();
    this.abortWatch?.({ reason: 'stopped' });
    if (this.watchdog !== undefined) this.clock.clearTimeout(this.watchdog);
    if (this.resyncTimer !== undefined) this.clock.clearTimeout(this.resyncTimer);
    await this.running;
  }

  private staleAfterMs(): number {
    return this.opts.staleAfterMs ?? 210_000; // past the longest server-side watch timeout
  }

  private async run(): Promise<void> {
    const backoff = this.opts.backoff ?? DEFAULT_BACKOFF;
    let failures = 0;
    const pause = async () => {
      // Full jitter over the upper half: spreads reconnects of many replicas after an apiserver restart.
      const cap = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(failures, 30));
      failures++;
      await sleep(this.clock, cap / 2 + (cap / 2) * this.random(), this.stopController.signal);
    };
    while (!this.stopped) {
      if (this.resourceVersion === undefined) {
        try {
          this.resourceVersion = await this.relist();
          failures = 0;
        } catch (err) {
          if (this.stopped) break;
          this.log.warn('list failed; retrying', { error: describeError(err) });
          this.countRestart(isGone(err) ? 'gone' : 'list_error');
          await pause();
          continue;
        }
      }
      const started = this.clock.now();
      const end = await this.watchOnce(this.resourceVersion);
      if (this.stopped || end.reason === 'stopped') break;
      this.countRestart(end.reason);
      switch (end.reason) {
        case 'gone':
          this.log.info('watch expired (410 Gone); relisting');
          this.resourceVersion = undefined;
          break;
        case 'stale':
          this.log.warn('watch went quiet past the staleness limit; reconnecting', {
            staleAfterMs: this.staleAfterMs(),
          });
          await pause();
          break;
        case 'closed':
          // A server-side timeout is routine: rewatch at once. A stream that closes straight away is not.
          if (end.sawEvents || this.clock.now() - started > 5_000) failures = 0;
          else await pause();
          break;
        case 'error':
          if (end.sawEvents) failures = 0;
          this.log.warn('watch failed; reconnecting', { error: describeError(end.error) });
          await pause();
          break;
      }
    }
    this.running = undefined;
  }

  private countRestart(reason: string): void {
    this.restarts++;
    this.opts.metrics?.watchRestarts.labels(this.describe(), reason).inc();
  }

  /**
   * Lists everything (in pages), updates the store in place emitting add/update for what changed, then
   * emits delete for what the list no longer contains. Returns the list's resourceVersion.
   */
  private async relist(): Promise<string> {
    const seen = new Set<string>();
    let cont: string | undefined;
    let rv: string;
    do {
      const page = await this.client.list<KubernetesObject>(this.resource, {
        namespace: this.namespace || undefined,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
        limit: this.opts.pageSize ?? 500,
        continue: cont,
        signal: this.stopController.signal,
      });
      if (this.stopped) throw new Error('stopped');
      for (const item of page.items) {
        // List items carry no apiVersion/kind; watch events do. Fill them in so every cached object has both.
        item.apiVersion ??= apiVersionOf(this.resource);
        item.kind ??= this.resource.kind;
        const obj = this.transform(item);
        seen.add(storeKey(obj));
        this.upsert(obj);
      }
      cont = page.continue;
      rv = page.resourceVersion;
    } while (cont);
    for (const obj of this.list()) {
      if (!seen.has(storeKey(obj))) this.remove(obj);
    }
    this.lastActivityAt = this.clock.now();
    if (!this.syncedFlag) {
      this.syncedFlag = true;
      this.resolveSynced();
      this.scheduleResync();
      this.log.debug('cache synced', { objects: this.count });
    }
    return rv;
  }

  private watchOnce(rv: string): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let ended = false;
      let sawEvents = false;
      let controller: AbortController | undefined;
      const finish = (end: WatchEnd) => {
        if (ended) return;
        ended = true;
        this.abortWatch = undefined;
        if (this.watchdog !== undefined) this.clock.clearTimeout(this.watchdog);
        controller?.abort();
        resolve(end);
      };
      this.abortWatch = finish;
      this.lastActivityAt = this.clock.now();
      this.armWatchdog(finish);
      // The server ends each watch after 2–3 min (spread out). A quiet resource gets no bookmarks (the
      // apiserver only sends ones newer than what the watch has seen, and etcd reports progress rarely), so
      // this clean, routine end is what keeps a quiet watch fresh; the watchdog is left for dead connections.
      const timeoutSeconds = Math.floor(120 + 60 * this.random());
      const query = {
        resourceVersion: rv,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      };
      const onEvent = (type: string, obj: unknown) => {
        if (ended) return;
        this.lastActivityAt = this.clock.now();
        if (type === 'ERROR' || type === 'BOOKMARK') this.log.debug('watch event', { type });
        const end = this.handleWatchEvent(type, obj);
        if (end) return finish(end);
        if (type !== 'BOOKMARK') sawEvents = true;
      };
      const onDone = (err: unknown) => {
        if (err === null || err === undefined) return finish({ reason: 'closed', sawEvents });
        if ((err as { statusCode?: unknown }).statusCode === 410) return finish({ reason: 'gone' });
        if ((err as { name?: unknown }).name === 'TimeoutError') return finish({ reason: 'stale' });
        finish({ reason: 'error', error: err, sawEvents });
      };
      this.log.debug('watch starting', { resourceVersion: rv });
      // The stream's own inactivity limit is a backstop: the watchdog above replaces a quiet watch first.
      this.client
        .watch(
          resourcePath(this.resource, this.namespace || undefined),
          query,
          { onEvent, onDone },
          { inactivityTimeoutMs: this.staleAfterMs() + 60_000 },
        )
        .then(
          (c) => {
            controller = c;
            if (ended)
              c.abort(); // failed, or abandoned by the watchdog or stop() while connecting
            else this.log.debug('watch connected', { resourceVersion: rv });
          },
          (err: unknown) => finish({ reason: 'error', error: err, sawEvents }),
        );
    });
  }

  /** Applies one watch event to the store. Returns how the watch ends, if this event ends it. */
  private handleWatchEvent(type: string, raw: unknown): WatchEnd | undefined {
    const obj = raw as KubernetesObject & { code?: number; reason?: string; message?: string };
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
        this.upsert(this.transform(obj));
        break;
      case 'DELETED': {
        const gone = this.transform(obj);
        const cached = this.get(gone.metadata?.namespace ?? '', gone.metadata?.name ?? '');
        if (cached) this.remove(gone);
        break;
      }
      case 'BOOKMARK':
        break;
      case 'ERROR':
        if (obj.code === 410) return { reason: 'gone' };
        return {
          reason: 'error',
          error: Object.assign(new Error(obj.message ?? 'watch error'), { statusCode: obj.code }),
          sawEvents: false,
        };
      default:
        return undefined;
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    return undefined;
  }

  private armWatchdog(finish: (end: WatchEnd) => void): void {
    const limit = this.staleAfterMs();
    const check = () => {
      const idle = this.clock.now() - (this.lastActivityAt ?? 0);
      if (idle >= limit) return finish({ reason: 'stale' });
      this.watchdog = this.clock.setTimeout(check, Math.max(1_000, limit - idle));
    };
    this.watchdog = this.clock.setTimeout(check, limit);
  }

  private scheduleResync(): void {
    const period = this.opts.resyncPeriodMs ?? 0;
    if (period <= 0 || this.stopped) return;
    const delay = period * (0.9 + 0.2 * this.random());
    this.resyncTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      for (const obj of this.list()) this.emit((h) => h.onResync?.(obj));
      this.scheduleResync();
    }, delay);
  }

  private upsert(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let byName = this.store.get(ns);
    if (!byName) this.store.set(ns, (byName = new Map()));
    const old = byName.get(name);
    byName.set(name, obj);
    const key = storeKey(obj);
    if (old) this.unindex(key, old);
    for (const index of this.indexers.values()) this.indexAdd(index, key, obj);
    if (!old) {
      this.count++;
      this.emit((h) => h.onAdd?.(obj));
    } else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
      this.emit((h) => h.onUpdate?.(old, obj));
    }
  }

  private remove(obj: T): void {
    const ns = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    const byName = this.store.get(ns);
    const old = byName?.get(name);
    if (!byName || !old) return;
    byName.delete(name);
    if (byName.size === 0) this.store.delete(ns);
    this.count--;
    this.unindex(storeKey(old), old);
    this.emit((h) => h.onDelete?.(obj));
  }

  private indexAdd(index: { fn: (obj: T) => string[]; values: Map<string, Set<string>> }, key: string, obj: T): void {
    for (const v of safeIndexValues(index.fn, obj)) {
      let keys = index.values.get(v);
      if (!keys) index.values.set(v, (keys = new Set()));
      keys.add(key);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const index of this.indexers.values()) {
      for (const v of safeIndexValues(index.fn, obj)) {
        const keys = index.values.get(v);
        keys?.delete(key);
        if (keys?.size === 0) index.values.delete(v);
      }
    }
  }

  private emit(call: (h: CacheEventHandler<T>) => void): void {
    for (const h of this.handlers) {
      try {
        call(h);
      } catch (err) {
        // A handler bug must not break the cache for every other consumer.
        this.log.error('cache event handler threw', { error: describeError(err) });
      }
    }
  }
}

function safeIndexValues<T>(fn: (obj: T) => string[], obj: T): string[] {
  try {
    return fn(obj);
  } catch {
    return [];
  }
}

function storeKey(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
