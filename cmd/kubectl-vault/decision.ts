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
  isDuration,
  parseDurationSeconds,
  type Approval,
  type Condition,
  type DatabaseAccessRequest,
  type DatabaseRole,
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
  /** The request's role, when the caller may read it (its approval policy). */
  role?: DatabaseRole;
  /** approve --ttl: the approver shortens the grant to this (a duration). */
  ttl?: string;
  /** approve --break-glass: the requester's own emergency approval; `breakGlassReason` says why. */
  breakGlass?: boolean;
  breakGlassReason?: string;
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

  if (decision === 'approve') return approve(dar, input);
  return { kind: 'patch', subresource: 'status', patch: decisionPatch(dar, decision, input) };
}

/** The requester the API server recorded (leasehold.dev/requester), if any. */
function requesterName(dar: DatabaseAccessRequest): string | undefined {
  try {
    const v = JSON.parse(dar.metadata.annotations?.[Annotations.requester] ?? '') as { username?: unknown };
    return typeof v.username === 'string' ? v.username : undefined;
  } catch {
    return undefined;
  }
}

/** The role's approval.approvals (1 when unset, or when the role can't be read). */
export function requiredApprovalsOf(role: DatabaseRole | undefined, dar?: DatabaseAccessRequest): number {
  return role?.spec.approval?.approvals ?? dar?.status?.requiredApprovals ?? 1;
}

/** "1 of 2 approvals": the approvals recorded (distinct people) against those required, when known. */
export function approvalsShown(dar: DatabaseAccessRequest, required?: number): string {
  const n = new Set((dar.status?.approvals ?? []).map((a) => a.username)).size;
  const of = required ?? dar.status?.requiredApprovals;
  return of ? `${n} of ${of} approval${of === 1 ? '' : 's'}` : `${n} approval${n === 1 ? '' : 's'}`;
}

/**
 * approve: records the caller's approval in status.approvals (who, when, their note, the ttl they allow) and,
 * when the role needs one approval and this isn't a break-glass one, writes the Approved condition too (as
 * KubeVault's plugin did). With more required, or break-glass, the operator writes it once the approvals suffice.
 * Refused here (the API server refuses them too where it can see the role): a second approval by the same
 * person, a --ttl longer than the request asks, break-glass by anyone but the requester or on a role without
 * approval.breakGlass, or beyond its maxTTL.
 */
function approve(dar: DatabaseAccessRequest, input: DecisionInput): Outcome {
  const what = describeRequest(dar);
  const me = input.identity.username;
  const approvals = dar.status?.approvals ?? [];
  const mine = approvals.find((a) => a.username === me);
  if (mine)
    return {
      kind: 'refuse',
      message: `you (${me}) approved ${what} already at ${mine.approvedAt}; it has ${approvalsShown(dar, input.role?.spec.approval?.approvals)}: someone else must approve it`,
    };
  const role = input.role;
  const roleName = `${dar.spec.roleRef.kind ?? 'PostgresRole'} ${dar.spec.roleRef.namespace ?? dar.metadata.namespace}/${dar.spec.roleRef.name}`;
  const asked = dar.spec.ttl ?? role?.spec.defaultTTL;
  let ttl = input.ttl;
  if (ttl !== undefined && asked && isDuration(asked) && parseDurationSeconds(ttl) > parseDurationSeconds(asked))
    return {
      kind: 'refuse',
      message: `--ttl ${ttl} is longer than the ${asked} ${dar.spec.ttl ? 'the request asks for' : `${roleName} gives by default`}: an approver may shorten a grant, never lengthen it`,
    };
  if (input.breakGlass) {
    const requester = requesterName(dar);
    if (requester !== me)
      return {
        kind: 'refuse',
        message: `--break-glass is for the requester's own request in an emergency, and ${what} was requested by ${requester ?? 'someone unrecorded'}: approve it without --break-glass`,
      };
    if (role && !role.spec.approval?.breakGlass)
      return {
        kind: 'refuse',
        message: `${roleName} doesn't allow break-glass approvals (no approval.breakGlass): someone else with "approve" on it must approve the request`,
      };
    const max = role?.spec.approval?.breakGlass?.maxTTL;
    if (max && isDuration(max)) {
      const maxSeconds = parseDurationSeconds(max);
      if (ttl !== undefined && parseDurationSeconds(ttl) > maxSeconds)
        return {
          kind: 'refuse',
          message: `--ttl ${ttl} is longer than the ${max} ${roleName} allows a break-glass approval (approval.breakGlass.maxTTL)`,
        };
      if (ttl === undefined) {
        const askedSeconds = asked && isDuration(asked) ? parseDurationSeconds(asked) : undefined;
        ttl = askedSeconds !== undefined && askedSeconds < maxSeconds ? asked : max;
      }
    }
  }
  const approval: Approval = {
    username: me,
    approvedAt: rfc3339Seconds(input.now),
    ...(input.breakGlass ? { message: input.breakGlassReason } : input.message ? { message: input.message } : {}),
    ...(ttl !== undefined ? { ttl } : {}),
    ...(input.breakGlass ? { breakGlass: true } : {}),
  };
  const status: Record<string, unknown> = { approvals: [...approvals, approval] };
  // With the role unreadable (an approver may hold "approve" but not "get" on it) the operator's record of what the
  // role requires (status.requiredApprovals) decides; with neither, one (KubeVault's way), and the operator still
  // refuses to issue on fewer approvals than the role requires.
  const alone = !input.breakGlass && requiredApprovalsOf(role, dar) <= 1;
  if (alone) {
    const withCondition = decisionPatch(dar, 'approve', input) as { status: Record<string, unknown> };
    Object.assign(status, withCondition.status);
  }
  return {
    kind: 'patch',
    subresource: 'status',
    patch: { metadata: { resourceVersion: dar.metadata.resourceVersion }, status },
  };
}

function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** review: acknowledges a break-glass approval (someone other than the requester; the API server checks "approve"). */
export function review(dar: DatabaseAccessRequest, input: DecisionInput): Outcome {
  const what = describeRequest(dar);
  const glass = (dar.status?.approvals ?? []).find((a) => a.breakGlass);
  if (!glass) return { kind: 'refuse', message: `${what} has no break-glass approval: there is nothing to review` };
  const done = dar.status?.review;
  if (done)
    return {
      kind: 'refuse',
      message: `${what} was reviewed already, by ${done.username} at ${done.reviewedAt}`,
    };
  if (input.identity.username === requesterName(dar))
    return {
      kind: 'refuse',
      message: `you (${input.identity.username}) made the break-glass approval of ${what}: someone else with "approve" on its role must review it`,
    };
  return {
    kind: 'patch',
    subresource: 'status',
    patch: {
      metadata: { resourceVersion: dar.metadata.resourceVersion },
      status: {
        review: {
          username: input.identity.username,
          reviewedAt: rfc3339Seconds(input.now),
          ...(input.message ? { message: input.message } : {}),
        },
      },
    },
  };
}

function decisionPatch(dar: DatabaseAccessRequest, decision: Decision, input: DecisionInput): Record<string, unknown> {
  const type = decision === 'approve' ? ConditionType.Approved : ConditionType.Denied;
  const reason = input.reason ?? (decision === 'approve' ? Reason.KubectlApprove : Reason.KubectlDeny);
  const conditions = setCondition(
    (dar.status?.conditions ?? []) as RuntimeCondition[],
    { type, status: 'True', reason, message: decisionMessage(decision, input.identity, input.message) },
    dar.metadata.generation,
    input.now,
  );
  // The resourceVersion makes the write conditional: if the request changed since it was read (someone else
  // decided, say), the API server answers 409 and the rules run again on what is there now.
  return { metadata: { resourceVersion: dar.metadata.resourceVersion }, status: { conditions } };
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
    case 'review':
      return review(dar, input);
  }
}

/** What the command prints for a request it changed, kubectl style. */
export const PAST_TENSE: Record<ActionName, string> = {
  approve: 'approved',
  deny: 'denied',
  revoke: 'revocation requested',
  rotate: 'rotation requested',
  review: 'reviewed',
};
