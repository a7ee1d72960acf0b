// The notifiers' shared state in this process: a delivery queue per notifier, the audit stream's subscriber that
// turns records into notifications for every notifier selecting the request, the time-based notifications
// (reminders while a request waits, ExpiringSoon before its access ends) a notifier's reconcile asks for, and the
// metrics leasehold_notifications_total{notifier,result} and leasehold_notification_backlog{notifier}.
import type { KubernetesObject } from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DatabaseAccessRequest, NotificationEvent } from '../../api/index.ts';
import type { AuditRecord, Clock, Logger } from '../../lib/runtime/index.ts';
import type { Caches } from '../shared/context.ts';
import { DeliveryQueue, type DeliveryStats } from './delivery.ts';
import {
  buildNotification,
  eventOfRecord,
  expiringSoon,
  expiringSoonWindowMs,
  identityOf,
  identityOfRecord,
  notifierKey,
  notifierOf,
  reminderIntervalMs,
  reminderSchedule,
  selects,
  summarize,
  wants,
  type AnyNotifier,
  type Notification,
} from './notifier.ts';

export interface NotifierMetrics {
  deliveries: Counter<'notifier' | 'result'>;
  backlog: Gauge<'notifier'>;
}

/** Registers the notifiers' metrics (once per registry). */
export function notifierMetrics(registry: Registry): NotifierMetrics {
  const existing = registry.getSingleMetric('leasehold_notifications_total');
  if (existing)
    return {
      deliveries: existing as Counter<'notifier' | 'result'>,
      backlog: registry.getSingleMetric('leasehold_notification_backlog') as Gauge<'notifier'>,
    };
  return {
    deliveries: new Counter({
      name: 'leasehold_notifications_total',
      help: 'Notification delivery attempts per notifier (namespace/name, or name for a ClusterAccessNotifier), by result: success, failure (retried), dropped (the backlog overflowed)',
      labelNames: ['notifier', 'result'],
      registers: [registry],
    }),
    backlog: new Gauge({
      name: 'leasehold_notification_backlog',
      help: 'Notifications queued and not yet delivered, per notifier',
      labelNames: ['notifier'],
      registers: [registry],
    }),
  };
}

export interface HubDeps {
  caches: Pick<Caches, 'requests' | 'accessNotifiers' | 'clusterAccessNotifiers' | 'namespaces'>;
  /** Delivers one notification for a notifier (NotificationSender.send); throws when it didn't. */
  send(n: AnyNotifier, notification: Notification): Promise<void>;
  clock: Clock;
  metrics: NotifierMetrics;
  /** A notifier's delivery stats changed: reconcile it (its status shows them). */
  wake(n: AnyNotifier): void;
  newId(): string;
  log: Logger;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Entry {
  notifier: AnyNotifier;
  queue: DeliveryQueue<Notification>;
}

export class NotificationHub {
  private readonly entries = new Map<string, Entry>();
  /** `notifier|uid` → the last reminder number sent. */
  private readonly reminded = new Map<string, number>();
  /** `notifier|uid|endsAt` of the ExpiringSoon sent. */
  private readonly expiring = new Set<string>();

  constructor(private readonly deps: HubDeps) {}

  /** Every notifier the caches hold (not being deleted). */
  notifiers(): AnyNotifier[] {
    const { accessNotifiers, clusterAccessNotifiers } = this.deps.caches;
    return [
      ...accessNotifiers.list().map(notifierOf.namespaced),
      ...clusterAccessNotifiers.list().map(notifierOf.cluster),
    ].filter((n) => !n.object.metadata.deletionTimestamp);
  }

  /** The audit stream's subscriber: one notification per notifier that selects the request and wants the event. */
  onRecord = (record: AuditRecord): void => {
    const event = eventOfRecord(record);
    if (!event) return;
    const [ns, name] = typeof record.request === 'string' ? record.request.split('/') : [];
    const dar = ns && name ? this.deps.caches.requests.get(ns, name) : undefined;
    const identity = dar ? identityOf(dar) : identityOfRecord(record);
    if (!identity) return;
    const at = Date.parse(record.at);
    for (const n of this.notifiers()) {
      if (!wants(n, event) || !selects(n, identity, this.namespaceLabels)) continue;
      this.enqueue(n, { event, at: Number.isFinite(at) ? new Date(at) : new Date(this.deps.clock.now()), dar, record });
    }
  };

  /**
   * The time-based notifications due for notifier `n` at nowMs (reminders, ExpiringSoon) are queued; returns when
   * the next one falls due (undefined: none scheduled), for the reconcile to come back then.
   */
  scan(n: AnyNotifier, nowMs: number): number | undefined {
    const remind = wants(n, 'Reminder');
    const soon = wants(n, 'ExpiringSoon');
    if (!remind && !soon) return undefined;
    const requests = n.clusterScoped
      ? this.deps.caches.requests.list()
      : this.deps.caches.requests.list(n.object.metadata.namespace ?? '');
    let next: number | undefined;
    const live = new Set<string>();
    for (const dar of requests) {
      if (!selects(n, identityOf(dar), this.namespaceLabels)) continue;
      for (const at of [remind && this.remind(n, dar, nowMs, live), soon && this.warnExpiring(n, dar, nowMs, live)])
        if (typeof at === 'number') next = next === undefined ? at : Math.min(next, at);
    }
    this.forget(notifierKey(n), live);
    return next;
  }

  /**
   * Drops what the notifier remembered about requests no longer waiting or ending (decided, deleted, renewed past
   * the window): the memory stays as large as the requests it is still about, not every request ever seen.
   */
  private forget(key: string, live: ReadonlySet<string>): void {
    for (const k of this.reminded.keys()) if (k.startsWith(`${key}|`) && !live.has(k)) this.reminded.delete(k);
    for (const k of this.expiring) if (k.startsWith(`${key}|`) && !live.has(k)) this.expiring.delete(k);
  }

  /** Queues the reminder due for a waiting request, once; returns when the next one is due. */
  private remind(n: AnyNotifier, dar: DatabaseAccessRequest, nowMs: number, live: Set<string>): number | undefined {
    const s = reminderSchedule(dar, reminderIntervalMs(n), nowMs);
    if (!s) return undefined;
    const id = `${notifierKey(n)}|${dar.metadata.uid ?? `${dar.metadata.namespace}/${dar.metadata.name}`}`;
    live.add(id);
    if (s.due > (this.reminded.get(id) ?? 0)) {
      this.reminded.set(id, s.due);
      this.enqueue(n, { event: 'Reminder', at: new Date(nowMs), dar, detail: `(reminder ${s.due})` });
    }
    return s.nextAtMs;
  }

  /** Queues ExpiringSoon once its window opened; returns when it opens, while it hasn't. */
  private warnExpiring(
    n: AnyNotifier,
    dar: DatabaseAccessRequest,
    nowMs: number,
    live: Set<string>,
  ): number | undefined {
    const e = expiringSoon(dar, expiringSoonWindowMs(n), nowMs);
    if (!e) return undefined;
    if (!e.due) return e.atMs;
    const id = `${notifierKey(n)}|${dar.metadata.uid ?? ''}|${e.endsAtMs}`;
    live.add(id);
    if (!this.expiring.has(id)) {
      this.expiring.add(id);
      const detail = `at ${new Date(e.endsAtMs).toISOString()}`;
      this.enqueue(n, { event: 'ExpiringSoon', at: new Date(nowMs), dar, detail });
    }
    return undefined;
  }

  /** The delivery stats of a notifier (zero when it has sent nothing in this process). */
  stats(n: AnyNotifier): DeliveryStats {
    return this.entries.get(notifierKey(n))?.queue.stats ?? { backlog: 0, consecutiveFailures: 0 };
  }

  /** Keeps the notifier's latest spec for its deliveries; a changed one retries a waiting delivery at once. */
  update(n: AnyNotifier): void {
    const e = this.entries.get(notifierKey(n));
    if (!e) return;
    const changed = e.notifier.object.metadata.generation !== n.object.metadata.generation;
    e.notifier = n;
    if (changed) e.queue.retryNow();
  }

  /** Retries a waiting delivery at once (one of the notifier's Secrets changed). */
  retryNow(n: AnyNotifier): void {
    this.entries.get(notifierKey(n))?.queue.retryNow();
  }

  /** The notifier is gone: its queue is dropped, with its memory and metrics. */
  remove(key: string): void {
    const e = this.entries.get(key);
    if (e) e.queue.stop();
    this.entries.delete(key);
    for (const k of this.reminded.keys()) if (k.startsWith(`${key}|`)) this.reminded.delete(k);
    for (const k of this.expiring) if (k.startsWith(`${key}|`)) this.expiring.delete(k);
    this.deps.metrics.backlog.remove(key);
  }

  /** Waits until every queue is empty or waiting out a backoff (tests). */
  async idle(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.queue.idle()));
  }

  private readonly namespaceLabels = (ns: string): Record<string, string> | undefined => {
    const o: KubernetesObject | undefined = this.deps.caches.namespaces.get('', ns);
    return o ? (o.metadata?.labels ?? {}) : undefined;
  };

  private enqueue(
    n: AnyNotifier,
    what: {
      event: NotificationEvent;
      at: Date;
      dar: DatabaseAccessRequest | undefined;
      record?: AuditRecord;
      detail?: string;
    },
  ): void {
    this.entry(n).queue.push(
      buildNotification({
        id: this.deps.newId(),
        event: what.event,
        at: what.at,
        notifier: n,
        request: summarize(what.dar, what.record),
        ...(what.record ? { record: what.record } : {}),
        ...(what.detail ? { detail: what.detail } : {}),
      }),
    );
  }

  private entry(n: AnyNotifier): Entry {
    const key = notifierKey(n);
    let e = this.entries.get(key);
    if (e) return e;
    const { metrics } = this.deps;
    const created: Entry = {
      notifier: n,
      queue: new DeliveryQueue<Notification>({
        send: (item) => this.deps.send(created.notifier, item),
        clock: this.deps.clock,
        ...(this.deps.baseBackoffMs !== undefined ? { baseBackoffMs: this.deps.baseBackoffMs } : {}),
        ...(this.deps.maxBackoffMs !== undefined ? { maxBackoffMs: this.deps.maxBackoffMs } : {}),
        onAttempt: (result) => {
          metrics.deliveries.labels(key, result).inc();
          if (result !== 'success')
            this.deps.log.warn('notification not delivered; retrying with backoff', {
              notifier: key,
              failures: created.queue.stats.consecutiveFailures,
              error: created.queue.stats.lastFailureMessage,
            });
        },
        onChange: (s) => {
          metrics.backlog.labels(key).set(s.backlog);
          this.deps.wake(created.notifier);
        },
      }),
    };
    e = created;
    this.entries.set(key, e);
    return e;
  }
}
