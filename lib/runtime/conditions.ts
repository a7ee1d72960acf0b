// Status conditions with metav1.Condition's rules (apimachinery meta.SetStatusCondition): lastTransitionTime
// moves only when `status` flips, so "Ready since" stays truthful across passes that re-assert the same state.
// Pure functions: the caller passes `now` and the generation it observed.
import { maskString } from './logging.ts';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  /** RFC 3339, seconds precision (what metav1.Time serialises to). */
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/**
 * A condition as found on an object, perhaps in a shape an older writer left (KubeVault wrote conditions without
 * a status, meaning True, and with lastUpdateTime): only `type` is sure. What setCondition keeps untouched.
 */
export interface StoredCondition {
  type: string;
  status?: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

/** A condition to set. `R`: the reasons the caller's vocabulary allows (any string by default). */
export interface ConditionInput<R extends string = string> {
  type: string;
  status: ConditionStatus;
  reason: R;
  message: string;
}

/** metav1.Condition caps messages at 32768 characters; the apiserver rejects longer ones. The one source of it. */
export const MAX_CONDITION_MESSAGE = 32_768;

export function rfc3339(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Masks token-like text (a condition is readable by anyone who can read the object), then truncates. */
function safeMessage(raw: string): string {
  const message = maskString(raw);
  if (message.length <= MAX_CONDITION_MESSAGE) return message;
  const marker = '…';
  return message.slice(0, MAX_CONDITION_MESSAGE - marker.length) + marker;
}

/**
 * Returns a new list with `next` set: an existing condition of the same type keeps its lastTransitionTime
 * unless its status changes; reason, message and observedGeneration are always updated. Order is kept; a new
 * type is appended; the others are kept as they were. The input is not mutated.
 */
export function setCondition<C extends StoredCondition = Condition>(
  current: readonly C[] | undefined,
  next: ConditionInput,
  observedGeneration: number | undefined,
  now: Date,
): Array<C | Condition> {
  const list: Array<C | Condition> = [...(current ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const existing = i >= 0 ? list[i] : undefined;
  const kept = existing && (existing.status ?? 'True') === next.status ? existing.lastTransitionTime : undefined;
  const updated: Condition = {
    type: next.type,
    status: next.status,
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
    lastTransitionTime: kept ?? rfc3339(now),
    reason: next.reason,
    message: safeMessage(next.message),
  };
  if (i >= 0) list[i] = updated;
  else list.push(updated);
  return list;
}

/** Same set of conditions, field for field, whatever their order. */
export function conditionsEqual(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return false;
  return x.every((c) => {
    const d = y.find((o) => o.type === c.type);
    return (
      d !== undefined &&
      d.status === c.status &&
      d.reason === c.reason &&
      d.message === c.message &&
      d.lastTransitionTime === c.lastTransitionTime &&
      d.observedGeneration === c.observedGeneration
    );
  });
}
