// Kubernetes Events (core/v1), de-duplicated the way client-go's EventCorrelator does it: the same
// object + type + reason + message within a window bumps the count of the existing Event (at most once per
// `bumpIntervalMs`) instead of creating another. Recording never throws into a reconcile and never blocks it:
// an Event is a courtesy to the person reading `kubectl describe`, not part of the state.
import type { KubernetesObject } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from './clock.ts';
import { rfc3339 } from './conditions.ts';
import { isNotFound, PatchType, type KubeClient } from './kube.ts';
import { describeError, maskString, nullLogger, type Logger } from './logging.ts';
import type { ResourceType } from './types.ts';

export type EventType = 'Normal' | 'Warning';

/**
 * Records Events. `R`: the reasons the caller's vocabulary allows, so that a misspelt reason doesn't compile
 * (the operator's controllers get an EventRecorder of api/'s EventReason); any string by default.
 */
export interface EventRecorder<R extends string = string> {
  /** Records an Event about `obj`. Fire and forget: failures are logged, never thrown. */
  event(obj: KubernetesObject, type: EventType, reason: R, message: string): void;
}

/** Builds a recorder that reports as `component` (e.g. `leasehold-databaseaccessrequest`). */
export type EventRecorderFactory = (component: string) => EventRecorder;

const EVENTS: ResourceType = { group: '', version: 'v1', plural: 'events', kind: 'Event' };
/** The apiserver stores at most 1 KiB of message comfortably; longer ones are truncated. */
const MAX_MESSAGE = 1024;

export interface EventRecorderOptions {
  component: string;
  /** The pod name, usually. */
  instance?: string;
  log?: Logger;
  clock?: Clock;
  /** How long an identical Event is folded into the previous one. */
  windowMs?: number;
  /** Within the window, the count is written at most this often. */
  bumpIntervalMs?: number;
  /** Bound on remembered Events (least recently used are forgotten). */
  maxEntries?: number;
}

interface Entry {
  namespace: string;
  eventName: string;
  count: number;
  writtenCount: number;
  firstSeen: number;
  lastSeen: number;
  lastWrite: number;
  writing: Promise<void> | undefined;
}

export class KubeEventRecorder implements EventRecorder {
  private readonly client: KubeClient;
  private readonly opts: Required<Omit<EventRecorderOptions, 'instance'>> & { instance: string | undefined };
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Set<Promise<void>>();

  constructor(client: KubeClient, opts: EventRecorderOptions) {
    this.client = client;
    this.opts = {
      component: opts.component,
      instance: opts.instance,
      log: opts.log ?? nullLogger(),
      clock: opts.clock ?? systemClock,
      windowMs: opts.windowMs ?? 10 * 60_000,
      bumpIntervalMs: opts.bumpIntervalMs ?? 60_000,
      maxEntries: opts.maxEntries ?? 4096,
    };
  }

  event(obj: KubernetesObject, type: EventType, reason: string, message: string): void {
    try {
      this.record(obj, type, reason, maskString(message).slice(0, MAX_MESSAGE));
    } catch (err) {
      this.opts.log.warn('could not record an event', { reason, error: describeError(err) });
    }
  }

  /** Waits for writes in progress; for shutdown and tests. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private record(obj: KubernetesObject, type: EventType, reason: string, message: string): void {
    const uid = obj.metadata?.uid ?? `${obj.metadata?.namespace}/${obj.metadata?.name}`;
    const key = `${uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const now = this.opts.clock.now();
    const entry = this.entries.get(key);
    if (entry && now - entry.lastSeen < this.opts.windowMs) {
      entry.count++;
      entry.lastSeen = now;
      this.touch(key, entry);
      if (!entry.writing && now - entry.lastWrite >= this.opts.bumpIntervalMs)
        this.track(entry, () => this.bump(obj, type, reason, message, entry));
      return;
    }
    const fresh: Entry = {
      namespace: obj.metadata?.namespace || 'default',
      eventName: eventName(obj.metadata?.name, now),
      count: 1,
      writtenCount: 0,
      firstSeen: now,
      lastSeen: now,
      lastWrite: now,
      writing: undefined,
    };
    this.touch(key, fresh);
    this.track(fresh, () => this.create(obj, type, reason, message, fresh));
  }

  /** Re-inserts `key` as most recently used and evicts the least recently used beyond the bound. */
  private touch(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.opts.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  private track(entry: Entry, write: () => Promise<void>): void {
    const p: Promise<void> = write()
      .catch((err: unknown) => {
        this.opts.log.warn('could not record an event', { event: entry.eventName, error: describeError(err) });
      })
      .finally(() => {
        entry.writing = undefined;
        this.pending.delete(p);
      });
    entry.writing = p;
    this.pending.add(p);
  }

  private async create(
    obj: KubernetesObject,
    type: EventType,
    reason: string,
    message: string,
    entry: Entry,
  ): Promise<void> {
    const ts = rfc3339(new Date(entry.lastSeen));
    await this.client.create(EVENTS, entry.namespace, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: entry.eventName, namespace: entry.namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata?.name,
        namespace: obj.metadata?.namespace,
        uid: obj.metadata?.uid,
        resourceVersion: obj.metadata?.resourceVersion,
      },
      type,
      reason,
      message,
      count: entry.count,
      firstTimestamp: rfc3339(new Date(entry.firstSeen)),
      lastTimestamp: ts,
      source: { component: this.opts.component },
      reportingComponent: this.opts.component,
      reportingInstance: this.opts.instance ?? '',
    } as KubernetesObject);
    entry.writtenCount = entry.count;
    entry.lastWrite = this.opts.clock.now();
  }

  private async bump(
    obj: KubernetesObject,
    type: EventType,
    reason: string,
    message: string,
    entry: Entry,
  ): Promise<void> {
    if (entry.count === entry.writtenCount) return;
    const count = entry.count;
    try {
      await this.client.patch(
        EVENTS,
        entry.namespace,
        entry.eventName,
        { count, lastTimestamp: rfc3339(new Date(entry.lastSeen)) },
        PatchType.merge,
      );
      entry.writtenCount = count;
      entry.lastWrite = this.opts.clock.now();
    } catch (err) {
      // Events expire (1 h by default); start a new one.
      if (!isNotFound(err)) throw err;
      entry.eventName = eventName(obj.metadata?.name, this.opts.clock.now());
      entry.firstSeen = entry.lastSeen;
      await this.create(obj, type, reason, message, entry);
    }
  }
}

/**
 * An Event's name: `<object name>.<time in hex><8 random hex>`, as client-go names them, with the object's name cut
 * so the whole stays a DNS-1123 subdomain of at most 253 characters (the API server refuses longer ones, and an
 * object named with 253 characters would lose every Event).
 */
export function eventName(objectName: string | undefined, nowMs: number): string {
  const suffix = `${nowMs.toString(16)}${randomBytes(4).toString('hex')}`;
  const base = (objectName || 'unknown').slice(0, 253 - 1 - suffix.length).replace(/[-.]+$/, '');
  return `${base || 'unknown'}.${suffix}`;
}

/** A recorder that keeps what it was given in memory, in order; for tests. */
export class MemoryEventRecorder<R extends string = string> implements EventRecorder<R> {
  readonly events: Array<{
    namespace: string | undefined;
    name: string | undefined;
    type: EventType;
    reason: R;
    message: string;
  }> = [];
  event(obj: KubernetesObject, type: EventType, reason: R, message: string): void {
    this.events.push({ namespace: obj.metadata?.namespace, name: obj.metadata?.name, type, reason, message });
  }
}
