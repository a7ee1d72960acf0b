// A notifier's deliveries: one ordered queue per notifier, one delivery in flight at a time. A failed delivery
// is retried with exponential backoff (1s, 2s, 4s … capped at 5 min) and blocks the ones behind it, so a receiver
// gets notifications in the order they happened, each once it answers 2xx (at least once: a receiver that answered
// too late may see one twice, with the same id). Nothing here waits on or for the request controller: issuance
// never waits for a notification.
//
// The queue lives in this process's memory: a restart of the operator loses what wasn't delivered yet (the audit
// stream on stdout still has every record). Past `maxBacklog` the oldest is dropped, and that is a failure too.
import type { Clock } from '../../lib/runtime/index.ts';

export interface DeliveryStats {
  backlog: number;
  lastSuccessAt?: Date;
  lastFailureAt?: Date;
  /** Why the last failed delivery failed (never a URL or key: senders say what failed, not where to). */
  lastFailureMessage?: string;
  /** Failed attempts since the last success. */
  consecutiveFailures: number;
}

export interface DeliveryOptions<T> {
  /** Delivers one item; throws when it wasn't (its message must be safe to show in status). */
  send(item: T): Promise<void>;
  clock: Clock;
  /** After each attempt and each push: the stats changed. */
  onChange?(stats: DeliveryStats): void;
  /** Each attempt's result: for the leasehold_notifications_total metric. */
  onAttempt?(result: 'success' | 'failure' | 'dropped'): void;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  maxBacklog?: number;
}

export const BASE_BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 5 * 60_000;
export const MAX_BACKLOG = 10_000;

/** The wait before retry number `failures` (1-based): base × 2^(failures−1), capped. */
export function backoffMs(failures: number, baseMs = BASE_BACKOFF_MS, maxMs = MAX_BACKOFF_MS): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(30, failures - 1)));
}

export class DeliveryQueue<T> {
  private readonly items: T[] = [];
  private running = false;
  private stopped = false;
  private timer: unknown;
  private wake?: () => void;
  readonly stats: DeliveryStats = { backlog: 0, consecutiveFailures: 0 };

  constructor(private readonly opts: DeliveryOptions<T>) {}

  push(item: T): void {
    if (this.stopped) return;
    this.items.push(item);
    const max = this.opts.maxBacklog ?? MAX_BACKLOG;
    if (this.items.length > max) {
      this.items.shift();
      this.stats.lastFailureAt = new Date(this.opts.clock.now());
      this.stats.lastFailureMessage = `more than ${max} notifications waited; the oldest was dropped`;
      this.opts.onAttempt?.('dropped');
    }
    this.changed();
    void this.drain();
  }

  /** Tries the head now instead of at the end of its backoff (the notifier's spec or Secret changed). */
  retryNow(): void {
    if (this.timer !== undefined) {
      this.opts.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.wake?.();
    }
  }

  /** Stops delivering; what is queued is dropped. */
  stop(): void {
    this.stopped = true;
    this.items.length = 0;
    this.retryNow();
  }

  /** Resolves when the queue is empty or stopped (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running) await new Promise((r) => setImmediate(r));
  }

  private changed(): void {
    this.stats.backlog = this.items.length;
    this.opts.onChange?.({ ...this.stats });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.stopped && this.items.length) {
        const head = this.items[0]!;
        try {
          await this.opts.send(head);
          if (this.items[0] === head) this.items.shift();
          this.stats.consecutiveFailures = 0;
          this.stats.lastSuccessAt = new Date(this.opts.clock.now());
          this.opts.onAttempt?.('success');
          this.changed();
        } catch (err) {
          this.stats.consecutiveFailures++;
          this.stats.lastFailureAt = new Date(this.opts.clock.now());
          this.stats.lastFailureMessage = err instanceof Error ? err.message : String(err);
          this.opts.onAttempt?.('failure');
          this.changed();
          const wait = backoffMs(this.stats.consecutiveFailures, this.opts.baseBackoffMs, this.opts.maxBackoffMs);
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            this.timer = this.opts.clock.setTimeout(() => {
              this.timer = undefined;
              resolve();
            }, wait);
          });
          this.wake = undefined;
        }
      }
    } finally {
      this.running = false;
    }
  }
}
