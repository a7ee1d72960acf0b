// Writing what a reconcile found: conditions (metav1 rules), phase, observedGeneration, in one status write
// made only when something changed, plus an Event for every condition that changed reason or status (so every
// failure reaches both status and an Event, and nothing is repeated on each pass).
import { describeError, patchStatus, setCondition, type Condition, type ConditionInput, type EventRecorder, type KubeClient, type ResourceType, RetryableError, TerminalError } from '../../lib/runtime/index.ts';
import { VaultRequestError } from '../../lib/vault/errors.ts';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ConditionType, Reason, WAITING_REASONS } from '../../api/index.ts';

/** Any of our kinds: api/ types conditions loosely (KubeVault's old shapes), the runtime strictly. */
export interface Reportable extends KubernetesObject {
  status?: object;
}

type LooseStatus = { conditions?: Condition[]; phase?: string } & Record<string, unknown>;

/** Conditions and fields to write; conditions not named are kept as they are. */
export interface StatusUpdate {
  conditions: ConditionInput[];
  phase?: string;
  fields?: Record<string, unknown>;
  /** Fields to drop from status. */
  remove?: string[];
  /** Condition types to drop (what they were about is over); no Event. */
  dropConditions?: string[];
}

export function desiredStatus(obj: Reportable, update: StatusUpdate, now: Date): Record<string, unknown> {
  const generation = obj.metadata?.generation;
  const status = (obj.status ?? {}) as LooseStatus;
  let conditions = (status.conditions ?? []).filter((c) => !update.dropConditions?.includes(c.type));
  for (const c of update.conditions) conditions = setCondition(conditions, c, generation, now);
  const next: Record<string, unknown> = { ...status, ...(update.fields ?? {}), conditions };
  if (update.phase !== undefined) next.phase = update.phase;
  if (generation !== undefined) next.observedGeneration = generation;
  for (const f of update.remove ?? []) delete next[f];
  return next;
}

/** Writes the status (if changed) and records Events for condition transitions. Returns the updated object. */
export async function report<T extends Reportable>(
  kube: KubeClient, resource: ResourceType, events: EventRecorder, obj: T, update: StatusUpdate, now: Date, signal?: AbortSignal,
): Promise<T> {
  const before = ((obj.status ?? {}) as LooseStatus).conditions ?? [];
  const desired = desiredStatus(obj, update, now);
  const { object } = await patchStatus(kube, resource, obj as never, desired, { signal });
  for (const c of update.conditions) {
    const old = before.find((b) => b.type === c.type);
    if (old && old.status === c.status && old.reason === c.reason) continue;
    if (!old && c.status !== 'True' && c.reason === 'Pending') continue;
    // Bad news: a condition going False (but Expired), or a deletion whose cleanup failed (Terminating, not waiting).
    const warning = c.status === 'False' ? c.type !== 'Expired' : c.type === ConditionType.Terminating && !WAITING_REASONS.includes(c.reason);
    events.event(obj, warning ? 'Warning' : 'Normal', c.reason, c.message);
  }
  return object as T;
}

/** The reason and a person-readable message for a failure, safe for status and Events (no secrets). */
export function explain(err: unknown): { reason: string; message: string; retryable: boolean } {
  if (err instanceof VaultRequestError) {
    const reason = err.kind === 'Unreachable' || err.kind === 'Sealed' ? Reason.VaultUnreachable
      : err.kind === 'RevocationFailed' ? Reason.RevocationFailed : `Vault${err.kind}`;
    return { reason, message: `Vault: ${err.message}`, retryable: err.retryable || err.kind === 'PermissionDenied' };
  }
  if (err instanceof TerminalError) return { reason: err.reason, message: err.message, retryable: false };
  if (err instanceof RetryableError) return { reason: err.reason, message: err.message, retryable: true };
  return { reason: 'InternalError', message: describeError(err), retryable: true };
}

/** SecretEngine and PostgresRole report alike: Ready and KubeVault's Available move together; Failed is their opposite. */
export function engineSucceeded(message: string): StatusUpdate['conditions'] {
  return [
    { type: ConditionType.Ready, status: 'True', reason: Reason.Provisioned, message },
    { type: ConditionType.Available, status: 'True', reason: Reason.Provisioned, message },
    { type: ConditionType.Failed, status: 'False', reason: Reason.Provisioned, message: '' },
  ];
}

export function engineFailed(reason: string, message: string): StatusUpdate['conditions'] {
  return [
    { type: ConditionType.Ready, status: 'False', reason, message },
    { type: ConditionType.Available, status: 'False', reason, message },
    { type: ConditionType.Failed, status: 'True', reason, message },
  ];
}

/** The Terminating condition of an object being deleted: waiting for dependents (reason LeasesOutstanding, InUse), or its cleanup failed. */
export function terminating(reason: string, message: string): ConditionInput {
  return { type: ConditionType.Terminating, status: 'True', reason, message };
}
