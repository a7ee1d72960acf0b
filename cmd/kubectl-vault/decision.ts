// What approve, deny, revoke and rotate may do to a request, and the change each makes: pure functions over the
// request as last read, so the same rules run again after a conflict re-read. A refusal is a sentence for the
// person at the terminal; a change is the merge patch to send (with the resourceVersion it was judged on).
//
// Decisions follow the approval idiom of CertificateSigningRequest: Approved and Denied are only ever True,
// exclusive and permanent, so a request can't be approved once denied, denied once approved, or decided twice.
import {
  Annotations,
  ConditionType,
  Reason,
  RequestPhase,
  decisionOf as requestDecision,
  type Condition,
  type DatabaseAccessRequest,
} from '../../api/index.ts';
import { setCondition, type Condition as RuntimeCondition } from '../../lib/runtime/conditions.ts';
import type { ActionName } from './args.ts';
import type { UserInfo } from './api.ts';

export type Decision = 'approve' | 'deny';

export type Outcome =
  { kind: 'refuse'; message: string } | { kind: 'patch'; subresource?: 'status'; patch: Record<string, unknown> };

export interface DecisionInput {
  /** Who is deciding, from the API server. */
  identity: UserInfo;
  /** CamelCase reason for the condition; KubectlApprove / KubectlDeny when absent. */
  reason?: string;
  /** Free text appended to the condition's message. */
  message?: string;
  now: Date;
}

export function findCondition(dar: DatabaseAccessRequest, type: string): Condition | undefined {
  return dar.status?.conditions?.find((c) => c.type === type);
}

function isTrue(dar: DatabaseAccessRequest, type: string): Condition | undefined {
  const c = findCondition(dar, type);
  return c && (c.status ?? 'True') === 'True' ? c : undefined;
}

/** The request's decision, from its conditions only: api/databaseaccessrequest.ts decisionOf, the operator's too. */
export const decisionOf = requestDecision;

/** Ended for good: the lease ran out (or the request waited too long), or it was revoked. */
export function endOf(dar: DatabaseAccessRequest): 'Expired' | 'Revoked' | undefined {
  if (dar.status?.phase === RequestPhase.Revoked || isTrue(dar, ConditionType.Revoked)) return 'Revoked';
  if (dar.status?.phase === RequestPhase.Expired || isTrue(dar, ConditionType.Expired)) return 'Expired';
  return undefined;
}

/** Waiting for a person: not decided, not ended. What `get --pending` lists. */
export function isPending(dar: DatabaseAccessRequest): boolean {
  return !decisionOf(dar) && !endOf(dar) && !dar.metadata.deletionTimestamp;
}

export function describeRequest(dar: DatabaseAccessRequest): string {
  return `databaseaccessrequest ${dar.metadata.namespace}/${dar.metadata.name}`;
}

function previously(c: Condition | undefined): string {
  if (!c) return '';
  const when = c.lastTransitionTime ?? c.lastUpdateTime;
  const parts = [when ? `at ${when}` : '', c.message ? `(${c.message})` : ''];
  const text = parts.filter(Boolean).join(' ');
  return text ? ` ${text}` : '';
}

const PAST: Record<Decision, string> = { approve: 'approved', deny: 'denied' };

/** The condition message: who decided, with what, and their note. */
export function decisionMessage(decision: Decision, identity: UserInfo, note?: string): string {
  return `This was ${PAST[decision]} by: ${identity.username} (with kubectl vault ${decision})${note ? `: ${note}` : ''}`;
}

export function decide(dar: DatabaseAccessRequest, decision: Decision, input: DecisionInput): Outcome {
  const what = describeRequest(dar);
  if (dar.metadata.deletionTimestamp) return { kind: 'refuse', message: `${what} is being deleted` };
  const current = decisionOf(dar);
  if (current) {
    const wanted = decision === 'approve' ? ConditionType.Approved : ConditionType.Denied;
    const already = current.type === wanted;
    const state = current.type === ConditionType.Approved ? 'approved' : 'denied';
    let message = already
      ? `${what} is already ${state}${previously(current.condition)}; a decision is made once`
      : `${what} was ${state}${previously(current.condition)}; a decision is permanent and can't be reversed`;
    if (decision === 'deny' && current.type === ConditionType.Approved) {
      message += `; to end its access, revoke it: kubectl vault revoke databaseaccessrequest ${dar.metadata.name} -n ${dar.metadata.namespace}`;
    } else if (!already) {
      message += '; create a new request instead';
    }
    return { kind: 'refuse', message };
  }
  const ended = endOf(dar);
  if (ended) {
    return {
      kind: 'refuse',
      message: `${what} has ${ended === 'Expired' ? 'expired' : 'been revoked'} without a decision; create a new request instead`,
    };
  }

  const type = decision === 'approve' ? ConditionType.Approved : ConditionType.Denied;
  const reason = input.reason ?? (decision === 'approve' ? Reason.KubectlApprove : Reason.KubectlDeny);
  const conditions = setCondition(
    (dar.status?.conditions ?? []) as RuntimeCondition[],
    { type, status: 'True', reason, message: decisionMessage(decision, input.identity, input.message) },
    dar.metadata.generation,
    input.now,
  );
  return {
    kind: 'patch',
    subresource: 'status',
    // The resourceVersion makes the write conditional: if the request changed since it was read (someone else
    // decided, say), the API server answers 409 and the rules run again on what is there now.
    patch: { metadata: { resourceVersion: dar.metadata.resourceVersion }, status: { conditions } },
  };
}

/** revoke: ask the operator to revoke the lease now. Only an approved, not yet ended request has one. */
export function revoke(dar: DatabaseAccessRequest, now: Date): Outcome {
  const what = describeRequest(dar);
  const ended = endOf(dar);
  if (ended === 'Revoked') return { kind: 'refuse', message: `${what} is already revoked` };
  if (ended === 'Expired')
    return { kind: 'refuse', message: `${what} has already expired: its credentials no longer work` };
  const requested = dar.metadata.annotations?.[Annotations.revokeNow];
  if (requested) {
    return {
      kind: 'refuse',
      message: `revocation of ${what} was already requested (${Annotations.revokeNow}=${requested}); the operator is on it`,
    };
  }
  const current = decisionOf(dar);
  if (!current) {
    return {
      kind: 'refuse',
      message: `${what} was never approved, so nothing was issued to revoke: deny it (kubectl vault deny) or delete it`,
    };
  }
  if (current.type === ConditionType.Denied)
    return { kind: 'refuse', message: `${what} was denied, so nothing was issued to revoke` };
  return annotate(dar, Annotations.revokeNow, now);
}

/** rotate: ask the operator for fresh credentials now. */
export function rotate(dar: DatabaseAccessRequest, now: Date): Outcome {
  const what = describeRequest(dar);
  const ended = endOf(dar);
  if (ended)
    return {
      kind: 'refuse',
      message: `${what} has ${ended === 'Expired' ? 'expired' : 'been revoked'}: there is nothing to rotate; create a new request instead`,
    };
  if (dar.metadata.annotations?.[Annotations.revokeNow])
    return { kind: 'refuse', message: `${what} is being revoked: there is nothing to rotate` };
  const current = decisionOf(dar);
  if (!current) return { kind: 'refuse', message: `${what} is not approved yet: there are no credentials to rotate` };
  if (current.type === ConditionType.Denied)
    return { kind: 'refuse', message: `${what} was denied: there are no credentials to rotate` };
  if (dar.metadata.deletionTimestamp) return { kind: 'refuse', message: `${what} is being deleted` };
  return annotate(dar, Annotations.rotateNow, now);
}

function annotate(dar: DatabaseAccessRequest, key: string, now: Date): Outcome {
  // Milliseconds, so two rotations within a second are still two changes.
  return {
    kind: 'patch',
    patch: { metadata: { resourceVersion: dar.metadata.resourceVersion, annotations: { [key]: now.toISOString() } } },
  };
}

export function outcomeFor(action: ActionName, dar: DatabaseAccessRequest, input: DecisionInput): Outcome {
  switch (action) {
    case 'approve':
    case 'deny':
      return decide(dar, action, input);
    case 'revoke':
      return revoke(dar, input.now);
    case 'rotate':
      return rotate(dar, input.now);
  }
}

/** What the command prints for a request it changed, kubectl style. */
export const PAST_TENSE: Record<ActionName, string> = {
  approve: 'approved',
  deny: 'denied',
  revoke: 'revocation requested',
  rotate: 'rotation requested',
};
