// The reconcile contract shared by every controller. Level-based, as in controller-runtime: a reconcile gets
// only a key, never the event that caused it, and reads the current state from the caches.
import type { Logger } from './logging.ts';

/** Identifies one object. Cluster-scoped objects have namespace ''. */
export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

/** What a successful pass asks for: nothing more, or another pass after `delayMs` (a lease to renew, say). */
export type Result = { kind: 'done' } | { kind: 'requeueAfter'; delayMs: number };

export const DONE: Result = Object.freeze({ kind: 'done' });

export function requeueAfter(delayMs: number): Result {
  return { kind: 'requeueAfter', delayMs: Math.max(0, delayMs) };
}

export interface ReconcileContext {
  /** A fresh id per pass; every log line of the pass carries it as `reconcileID`. */
  reconcileId: string;
  /** Aborted when the operator shuts down past its drain deadline or loses leadership. */
  signal: AbortSignal;
  /** Already carries controller, namespace, name and reconcileID. */
  log: Logger;
  now(): Date;
}

export interface Reconciler {
  reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result>;
}

/**
 * A failure that retrying cannot fix (an invalid spec, say): the key is forgotten until the object, or
 * something it depends on, changes. `reason` is CamelCase, fit for a condition or an Event.
 */
export class TerminalError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = 'TerminalError';
    this.reason = reason;
  }
}

export interface RetryableErrorOptions {
  cause?: unknown;
  /**
   * Retry after exactly this long (ms) instead of the key's growing backoff: for a fixed poll of something no
   * watch covers (a database outside the cluster coming back, say). The queue's global rate limit still applies.
   */
  retryAfterMs?: number;
}

/** A failure worth retrying: with the key's backoff (a conflict, an unreachable Vault), or after `retryAfterMs`. */
export class RetryableError extends Error {
  readonly reason: string;
  readonly retryAfterMs: number | undefined;
  constructor(reason: string, message: string, options?: RetryableErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RetryableError';
    this.reason = reason;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** `namespace/name`, or `name` for cluster-scoped objects: the work-queue key. */
export function keyToString(key: ObjectKey): string {
  return key.namespace ? `${key.namespace}/${key.name}` : key.name;
}

export function keyFromString(s: string): ObjectKey {
  const slash = s.indexOf('/');
  return slash < 0 ? { namespace: '', name: s } : { namespace: s.slice(0, slash), name: s.slice(slash + 1) };
}

/** The key of a Kubernetes object as it appears in a cache. */
export function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): ObjectKey {
  return { namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' };
}

/** Addresses a kind of resource without discovery: `group` is '' for the core group. */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  /** Defaults to true. */
  readonly namespaced?: boolean;
}

export function apiVersionOf(resource: ResourceType): string {
  return resource.group ? `${resource.group}/${resource.version}` : resource.version;
}
