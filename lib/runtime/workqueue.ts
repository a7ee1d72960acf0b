// A work queue after client-go's (util/workqueue): a `dirty` set and a `processing` set make a key appear at
// most once in the queue and never be handed to two workers at once; a burst of adds collapses into one pass,
// and an add while the key is being processed schedules exactly one more pass after `done`. Delays keep the
// earliest due time per key. Failures wait the longer of two delays, as client-go's DefaultControllerRateLimiter
// does: the key's own backoff (exponential until `forget`) and a token bucket shared by every key of the queue,
// so that an outage failing every object is retried at a bounded rate, not in proportion to their number.
import { systemClock, type Clock, type TimerHandle } from './clock.ts';
import { noQueueMetrics, type QueueMetrics } from './metrics.ts';

export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

/** client-go's per-item limiter starts at 5 ms; we cap at 5 minutes rather than 1000 s so a fixed fault heals soon. */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseDelayMs: 5, maxDelayMs: 5 * 60_000 };

/** A token bucket: `qps` tokens a second, at most `burst` saved up. */
export interface RateLimit {
  qps: number;
  burst: number;
}

/** client-go's global limit on retries (DefaultControllerRateLimiter): 10 a second, in bursts of up to 100. */
export const DEFAULT_GLOBAL_RATE: RateLimit = { qps: 10, burst: 100 };

export interface WorkQueueOptions {
  clock?: Clock;
  backoff?: BackoffPolicy;
  /** The limit on retries across all keys (DEFAULT_GLOBAL_RATE). */
  globalRate?: RateLimit;
  metrics?: QueueMetrics;
}

/**
 * golang.org/x/time/rate's Limiter as client-go's BucketRateLimiter uses it: every retry reserves a token, whether
 * one is there or not, and waits until its token would have accrued. Time in ms.
 */
class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly rate: RateLimit,
    nowMs: number,
  ) {
    this.tokens = rate.burst;
    this.last = nowMs;
  }

  /** Takes a token; returns how long (ms) until it is there: 0 while the bucket has one. */
  reserve(nowMs: number): number {
    if (nowMs > this.last) {
      this.tokens = Math.min(this.rate.burst, this.tokens + ((nowMs - this.last) / 1000) * this.rate.qps);
      this.last = nowMs;
    }
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate.qps) * 1000);
  }
}

/** A FIFO of strings with O(1) push and shift (an array with a moving head, compacted now and then). */
class Fifo {
  private items: string[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(s: string): void {
    this.items.push(s);
  }
  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const s = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return s;
  }
}

export class WorkQueue {
  private readonly clock: Clock;
  private readonly backoff: BackoffPolicy;
  private readonly metrics: QueueMetrics;
  private readonly fifo = new Fifo();
  /** Keys that need a pass: queued, or re-added while processing. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  /** When each queued key was added, for the queue-duration metric. */
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { readyAt: number; timer: TimerHandle }>();
  private readonly failures = new Map<string, number>();
  private readonly bucket: TokenBucket;
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.bucket = new TokenBucket(opts.globalRate ?? DEFAULT_GLOBAL_RATE, this.clock.now());
    this.metrics = opts.metrics ?? noQueueMetrics;
  }

  /** Marks `key` as needing a pass. A no-op if it is already queued, or after shutdown. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics.added();
    this.dirty.add(key);
    if (this.processing.has(key)) return; // `done` puts it back in the queue
    this.enqueue(key);
  }

  /** Adds `key` after `delayMs`; if the key is already waiting, the earlier of the two times wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const readyAt = this.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing) {
      if (existing.readyAt <= readyAt) return;
      this.clock.clearTimeout(existing.timer);
    }
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { readyAt, timer });
  }

  /**
   * Adds `key` again after a failure, and counts it: after the longer of the key's delay and the global bucket's.
   * The key's delay is its backoff (which grows for next time), or `opts.afterMs` when the failure asked for a
   * fixed poll. Returns the delay chosen (ms).
   */
  addRateLimited(key: string, opts: { afterMs?: number } = {}): number {
    this.metrics.retried();
    const own = this.nextDelay(key);
    const delay = Math.max(opts.afterMs ?? own, this.bucket.reserve(this.clock.now()));
    this.addAfter(key, delay);
    return delay;
  }

  /** The key's own backoff: base × 2^failures, capped. Counts a failure. */
  private nextDelay(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity for large n, which the cap then absorbs.
    return Math.min(this.backoff.baseDelayMs * 2 ** n, this.backoff.maxDelayMs);
  }

  /** Clears the failure count of `key`: its next retry starts from the base delay again. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Drops a pending delayed add (e.g. the object was deleted and its requeueAfter no longer matters). */
  cancelDelayed(key: string): void {
    const w = this.waiting.get(key);
    if (!w) return;
    this.clock.clearTimeout(w.timer);
    this.waiting.delete(key);
  }

  /**
   * The next key to process, waiting until one is available. Resolves `undefined` once the queue shuts down:
   * keys still queued then are not handed out (shutdown stops taking work).
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Ends the pass over `key`; if it was re-added meanwhile, it goes back in the queue. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    const started = this.startedAt.get(key);
    this.startedAt.delete(key);
    if (started !== undefined) this.metrics.worked((this.clock.now() - started) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) this.enqueue(key);
    if (this.processing.size === 0) this.idleWaiters.splice(0).forEach((w) => w());
  }

  /** Keys queued and ready (not counting ones in progress or waiting on a delay). */
  len(): number {
    return this.fifo.length;
  }

  /** Keys being processed right now. */
  inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting on a delay (requeueAfter or backoff). */
  delayed(): number {
    return this.waiting.size;
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  /** Stops handing out work at once: waiting `get`s resolve `undefined`, adds are ignored, delays dropped. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const w of this.waiting.values()) this.clock.clearTimeout(w.timer);
    this.waiting.clear();
    this.getters.splice(0).forEach((g) => g(undefined));
  }

  /**
   * shutDown, then waits for in-flight keys to be `done`, at most `deadlineMs`. Resolves true if everything
   * drained in time, false if work was still running at the deadline.
   */
  shutDownWithDrain(deadlineMs: number): Promise<boolean> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => resolve(this.processing.size === 0), deadlineMs);
      this.idleWaiters.push(() => {
        this.clock.clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private enqueue(key: string): void {
    this.addedAt.set(key, this.clock.now());
    const getter = this.getters.shift();
    if (getter) {
      this.fifo.push(key);
      getter(this.take());
    } else {
      this.fifo.push(key);
    }
    this.metrics.depth(this.fifo.length);
  }

  private take(): string | undefined {
    const key = this.fifo.shift();
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    const now = this.clock.now();
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.metrics.queued((now - added) / 1000);
    this.startedAt.set(key, now);
    this.metrics.depth(this.fifo.length);
    return key;
  }
}
