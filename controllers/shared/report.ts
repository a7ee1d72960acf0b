// Writing what a reconcile found: conditions (metav1 rules), phase, observedGeneration, in one status write
// made only when something changed, and one Event per transition (so every failure reaches both status and an
// Event, and nothing is repeated on each pass). The Event is written from the kind's summary condition (Ready;
// a request's Available: api/vocabulary.ts SummaryCondition) when it changed, else from the first condition that
// changed, and its type follows that condition's polarity: a Warning when it is bad news (isAbnormal), else Normal.
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  ConditionType,
  Reason,
  SummaryCondition,
  isAbnormal,
  type ConditionReason,
  type EventReason,
} from '../../api/index.ts';
import {
  RetryableError,
  TerminalError,
  describeError,
  patchStatus,
  setCondition,
  type Condition,
  type ConditionInput,
  type EventRecorder,
  type EventType,
  type KubeClient,
  type ResourceType,
  type StoredCondition,
} from '../../lib/runtime/index.ts';
import { VaultRequestError } from '../../lib/vault/errors.ts';

/** Any of our kinds: api/ types conditions loosely (KubeVault's old shapes), the runtime strictly. */
export interface Reportable extends KubernetesObject {
  status?: object;
}

type LooseStatus = { conditions?: Condition[]; phase?: string } & Record<string, unknown>;

/** Conditions and fields to write; conditions not named are kept as they are. `R`: the reasons allowed. */
export interface StatusUpdate<R extends string = string> {
  conditions: ConditionInput<R>[];
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

/**
 * Writes the status (if changed) and records the transition's one Event (transitionEvent). Returns the updated
 * object. Throws what patchStatus throws (RetryableError 'Conflict' on a stale object); no Event then.
 */
export async function report<T extends Reportable, R extends string = EventReason>(
  kube: KubeClient,
  resource: ResourceType,
  events: EventRecorder<R>,
  obj: T,
  update: StatusUpdate<R>,
  now: Date,
  signal?: AbortSignal,
): Promise<T> {
  const before = ((obj.status ?? {}) as LooseStatus).conditions ?? [];
  const desired = desiredStatus(obj, update, now);
  const { object } = await patchStatus(kube, resource, obj as never, desired, { signal });
  const e = transitionEvent(resource.kind, before, update.conditions);
  if (e) events.event(obj, e.type, e.reason, e.message);
  return object as T;
}

/**
 * The one Event a status update of an object of `kind` makes, or none: conditions `set` compared with those
 * `before`. A condition changed when it is new or its status or reason differs (a new message alone is no
 * transition). The Event tells of the summary condition if it changed, else of the first that did; a Warning
 * when that condition is bad news by its type's polarity (a normal end set alongside counts: api/vocabulary.ts).
 */
export function transitionEvent<R extends string>(
  kind: string,
  before: readonly StoredCondition[],
  set: readonly ConditionInput<R>[],
): { type: EventType; reason: R; message: string } | undefined {
  const changed = set.filter((c) => {
    const old = before.find((b) => b.type === c.type);
    return !old || (old.status ?? 'True') !== c.status || old.reason !== c.reason;
  });
  const summary = SummaryCondition[kind];
  const c = changed.find((x) => x.type === summary) ?? changed[0];
  if (!c) return undefined;
  return { type: isAbnormal(c, set) ? 'Warning' : 'Normal', reason: c.reason, message: c.message };
}

const KNOWN_REASONS: ReadonlySet<string> = new Set(Object.values(Reason));

/**
 * The reason and a person-readable message for a failure, safe for status and Events (no secrets). Vault's
 * answers are named by their kind (VaultUnreachable, VaultPermissionDenied, …); a TerminalError's or
 * RetryableError's reason is kept when the vocabulary has it, else the failure is an InternalError whose message
 * keeps that reason. Anything else thrown is an InternalError. `retryable`: whether trying again as is may help.
 */
export function explain(err: unknown): { reason: ConditionReason; message: string; retryable: boolean } {
  if (err instanceof VaultRequestError) {
    const reason =
      err.kind === 'Unreachable' || err.kind === 'Sealed'
        ? Reason.VaultUnreachable
        : err.kind === 'RevocationFailed'
          ? Reason.RevocationFailed
          : (`Vault${err.kind}` as const);
    return { reason, message: `Vault: ${err.message}`, retryable: err.retryable || err.kind === 'PermissionDenied' };
  }
  if (err instanceof TerminalError) return { ...known(err.reason, err.message), retryable: false };
  if (err instanceof RetryableError) return { ...known(err.reason, err.message), retryable: true };
  return { reason: Reason.InternalError, message: describeError(err), retryable: true };
}

function known(reason: string, message: string): { reason: ConditionReason; message: string } {
  return KNOWN_REASONS.has(reason)
    ? { reason: reason as ConditionReason, message }
    : { reason: Reason.InternalError, message: `${reason}: ${message}` };
}

/** SecretEngine and PostgresRole report alike: Ready and KubeVault's Available move together; Failed is their opposite. */
export function engineSucceeded(message: string): ConditionInput<ConditionReason>[] {
  return [
    { type: ConditionType.Ready, status: 'True', reason: Reason.Provisioned, message },
    { type: ConditionType.Available, status: 'True', reason: Reason.Provisioned, message },
    { type: ConditionType.Failed, status: 'False', reason: Reason.Provisioned, message: '' },
  ];
}

export function engineFailed(reason: ConditionReason, message: string): ConditionInput<ConditionReason>[] {
  return [
    { type: ConditionType.Ready, status: 'False', reason, message },
    { type: ConditionType.Available, status: 'False', reason, message },
    { type: ConditionType.Failed, status: 'True', reason, message },
  ];
}

/** The Terminating condition of an object being deleted: waiting for dependents (reason LeasesOutstanding, InUse), or its cleanup failed. */
export function terminating(reason: ConditionReason, message: string): ConditionInput<ConditionReason> {
  return { type: ConditionType.Terminating, status: 'True', reason, message };
}
