// Approval, as far as the operator takes part in it. The API server does most of the work with the
// admission policies in manifests/admission/: it records who created a request (leasehold.dev/requester),
// lets only holders of the `approve` verb on the PostgresRole decide, refuses self-approval and approvals
// without a required reason, and makes the decider name themselves in the condition. What is left here:
//
// - pending expiry: a request not decided within the role's approval.pendingTTL (24h by default) ends in phase
//   Expired (reason ApprovalTimedOut) without anything issued;
// - auto-approval: a role's approval.autoApprove approves, as the operator, requests that match it;
// - a backstop before the first issuance: requireReason and four eyes again, for what the policies can't see
//   (a role in another namespace, a cluster without the policies installed);
// - status.requester: the admission-recorded annotation copied into status for display;
// - audit: each decision, issuance, rotation, revocation and expiry as one structured record (who, what, when,
//   why; never a credential), written where plan.ts decides it (its `audits` and audited Events).
//
// Everything here is pure (now is a parameter); plan.ts decides with it and execute.ts writes.
import {
  Annotations,
  ConditionType,
  Reason,
  RequestPhase,
  formatDuration,
  isDuration,
  parseDurationSeconds,
  namedDecider,
  decisionOf,
  deciderOf,
  type Approval,
  type DatabaseAccessRequest,
  type Requester,
  type Subject,
} from '../../api/index.ts';
import { rfc3339 } from '../../lib/runtime/index.ts';
import type { AccessRole } from './engine.ts';

/** How long a request waits for a decision when its role says nothing (approval.pendingTTL). */
export const DEFAULT_PENDING_TTL_SECONDS = 24 * 3600;
/** Cluster administrators: exempt from four eyes. */
export const CLUSTER_ADMIN_GROUP = 'system:masters';
/** Who the decider is, in the condition message of an auto-approval. */
export const OPERATOR_DECIDER = 'leasehold';

// ---- who asked -------------------------------------------------------------------------------------------

/** The requester as the admission policy recorded it: JSON {username, uid, groups}; undefined if absent or malformed. */
export function parseRequester(annotation: string | undefined): Requester | undefined {
  if (!annotation) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(annotation);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.username !== 'string' || o.username === '') return undefined;
  const groups = Array.isArray(o.groups) ? o.groups.filter((g): g is string => typeof g === 'string').slice(0, 64) : [];
  return {
    username: o.username.slice(0, 256),
    ...(typeof o.uid === 'string' && o.uid ? { uid: o.uid.slice(0, 256) } : {}),
    groups: groups.map((g) => g.slice(0, 256)),
  };
}

export function requesterOf(dar: DatabaseAccessRequest): Requester | undefined {
  return parseRequester(dar.metadata.annotations?.[Annotations.requester]);
}

/** Whether an rbac Subject names this requester. A ServiceAccount subject without a namespace means the role's. */
export function subjectMatches(s: Subject, requester: Requester, defaultNamespace: string): boolean {
  switch (s.kind) {
    case 'User':
      return s.name === requester.username;
    case 'Group':
      return (requester.groups ?? []).includes(s.name);
    case 'ServiceAccount':
      return requester.username === `system:serviceaccount:${s.namespace || defaultNamespace}:${s.name}`;
  }
}

export function describeSubject(s: Subject, defaultNamespace: string): string {
  return s.kind === 'ServiceAccount'
    ? `ServiceAccount ${s.namespace || defaultNamespace}/${s.name}`
    : `${s.kind} ${s.name}`;
}

// ---- decisions -------------------------------------------------------------------------------------------

export interface DecisionRecord {
  type: 'Approved' | 'Denied';
  reason: string;
  message: string;
  /** Who decided, as the condition names them (the API server checks the name; see approval.yaml). */
  decider?: string;
  at?: string;
}

/** The decision (api decisionOf: the Approved or Denied condition), with who made it and when, as a record. */
export function decisionRecord(dar: DatabaseAccessRequest): DecisionRecord | undefined {
  const d = decisionOf(dar);
  if (!d) return undefined;
  const c = d.condition;
  const decider = deciderOf(c.message);
  const at = c.lastTransitionTime ?? c.lastUpdateTime;
  return {
    type: d.type,
    reason: c.reason ?? '',
    message: c.message ?? '',
    ...(decider ? { decider } : {}),
    ...(at ? { at } : {}),
  };
}

/** A decision the controller hasn't acted on yet (phase still waiting): to be audited once and reflected in phase. */
export function unobservedDecision(dar: DatabaseAccessRequest): DecisionRecord | undefined {
  const phase = dar.status?.phase;
  if (phase && phase !== RequestPhase.WaitingForApproval) return undefined;
  return decisionRecord(dar);
}

// ---- pending requests: expiry and auto-approval -----------------------------------------------------------

export function pendingTtlSeconds(role: AccessRole | undefined): number {
  const v = role?.spec.approval?.pendingTTL;
  if (v && isDuration(v)) {
    const s = parseDurationSeconds(v);
    if (s > 0) return s;
  }
  return DEFAULT_PENDING_TTL_SECONDS;
}

/** When an undecided request expires: its creation plus the role's pendingTTL. */
export function pendingDeadlineMs(dar: DatabaseAccessRequest, role: AccessRole | undefined): number | undefined {
  const created = dar.metadata.creationTimestamp
    ? new Date(dar.metadata.creationTimestamp as unknown as string).getTime()
    : NaN;
  return Number.isFinite(created) ? created + pendingTtlSeconds(role) * 1000 : undefined;
}

/** "ns/name" of the request's role. */
function roleName(dar: DatabaseAccessRequest): string {
  return `${dar.spec.roleRef.namespace ?? dar.metadata.namespace}/${dar.spec.roleRef.name}`;
}

/** The request's role kind (spec.roleRef.kind). */
function roleKind(dar: DatabaseAccessRequest): string {
  return dar.spec.roleRef.kind ?? 'PostgresRole';
}

function effectiveTtlSeconds(dar: DatabaseAccessRequest, role: AccessRole): number | undefined {
  const v = dar.spec.ttl ?? role.spec.defaultTTL;
  return v && isDuration(v) ? parseDurationSeconds(v) : undefined;
}

export type AutoApproval = { approve: true; message: string } | { approve: false; why: string };

/**
 * Whether the role's autoApprove approves this request: every criterion given must hold. subjects: the
 * recorded requester is one of them (no recorded requester: no). namespaces: the request's namespace is listed
 * (or "*"). maxTTL: the access is bounded by it, i.e. a ttl (the request's, else the role's defaultTTL) at most
 * maxTTL and spec.renew false (a renewed access lasts as long as the request exists). A role requiring a reason
 * auto-approves only requests that give one.
 */
export function autoApproval(dar: DatabaseAccessRequest, role: AccessRole): AutoApproval {
  const rule = role.spec.approval?.autoApprove;
  if (!rule) return { approve: false, why: 'the role has no autoApprove rule' };
  if (!rule.subjects?.length && !rule.namespaces?.length)
    return { approve: false, why: 'the autoApprove rule names no subjects or namespaces' };
  const roleNs = role.metadata.namespace ?? '';
  const ns = dar.metadata.namespace ?? '';
  const because: string[] = [];
  if (rule.subjects?.length) {
    const requester = requesterOf(dar);
    if (!requester)
      return { approve: false, why: 'autoApprove names subjects, and the request has no recorded requester' };
    const match = rule.subjects.find((s) => subjectMatches(s, requester, roleNs));
    if (!match) return { approve: false, why: `requester ${requester.username} is none of autoApprove's subjects` };
    because.push(`requester ${requester.username} matches ${describeSubject(match, roleNs)}`);
  }
  if (rule.namespaces?.length) {
    if (!rule.namespaces.includes('*') && !rule.namespaces.includes(ns))
      return { approve: false, why: `namespace ${ns} is not among autoApprove's namespaces` };
    because.push(`namespace ${ns} is allowed`);
  }
  if (rule.maxTTL && isDuration(rule.maxTTL)) {
    const max = parseDurationSeconds(rule.maxTTL);
    const ttl = effectiveTtlSeconds(dar, role);
    if (dar.spec.renew !== false)
      return {
        approve: false,
        why: `autoApprove is bounded to ${rule.maxTTL}, and the request renews its access for as long as it exists (set spec.renew: false)`,
      };
    if (ttl === undefined)
      return {
        approve: false,
        why: `autoApprove is bounded to ${rule.maxTTL}, and neither the request nor the role sets a ttl`,
      };
    if (ttl > max)
      return { approve: false, why: `ttl ${formatDuration(ttl)} is longer than autoApprove's maxTTL ${rule.maxTTL}` };
    because.push(`ttl ${formatDuration(ttl)} is within ${rule.maxTTL}`);
  }
  if (role.spec.approval?.requireReason && !dar.spec.reason?.trim())
    return { approve: false, why: 'the role requires a reason and the request gives none' };
  return {
    approve: true,
    message: `This was approved by: ${OPERATOR_DECIDER} (autoApprove of ${roleKind(dar)} ${roleName(dar)}: ${because.join('; ')})`,
  };
}

export type PendingStep =
  | { kind: 'expire'; message: string }
  | { kind: 'autoApprove'; message: string }
  | { kind: 'wait'; atMs?: number; message: string };

/** What to do with a request nobody has decided yet, at nowMs. */
export function pendingStep(dar: DatabaseAccessRequest, role: AccessRole | undefined, nowMs: number): PendingStep {
  const deadline = pendingDeadlineMs(dar, role);
  const ttl = formatDuration(pendingTtlSeconds(role));
  if (deadline !== undefined && nowMs >= deadline) {
    return {
      kind: 'expire',
      message: `no one approved or denied the request within ${ttl} (approval.pendingTTL of ${roleKind(dar)} ${roleName(dar)}); nothing was issued`,
    };
  }
  const auto = role ? autoApproval(dar, role) : undefined;
  if (auto?.approve) return { kind: 'autoApprove', message: auto.message };
  const who = `someone with the "approve" verb on ${roleKind(dar)} ${roleName(dar)} to approve or deny it (kubectl vault approve|deny databaseaccessrequest ${dar.metadata.name} -n ${dar.metadata.namespace})`;
  const until = deadline !== undefined ? `; it expires at ${rfc3339(new Date(deadline))} if nobody does` : '';
  const notAuto = auto && role?.spec.approval?.autoApprove ? `; not auto-approved: ${auto.why}` : '';
  return {
    kind: 'wait',
    ...(deadline !== undefined ? { atMs: deadline } : {}),
    message: `waiting for ${who}${until}${notAuto}`,
  };
}

// ---- N-of-M, shortened grants, break-glass ------------------------------------------------------------------

/** The role's approval.approvals: distinct approvals needed (1 when unset). */
export function requiredApprovals(role: AccessRole | undefined): number {
  const n = role?.spec.approval?.approvals;
  return typeof n === 'number' && n >= 1 ? Math.floor(n) : 1;
}

function durationSecondsOf(v: string | undefined): number | undefined {
  if (!v || !isDuration(v)) return undefined;
  const s = parseDurationSeconds(v);
  return s > 0 ? s : undefined;
}

/** What status.approvals (and a person's Approved condition) amount to under the role's policy. */
export interface ApprovalTally {
  /** approval.approvals of the role (1 when unset or the role is unknown). */
  required: number;
  /** The approvals that count, one per person, oldest first. */
  counted: Approval[];
  /** Entries that don't count, and why (a duplicate, the requester's own). */
  ignored: { username: string; why: string }[];
  /** The requester's own emergency approval, when the role allows it and it gives a reason. */
  breakGlass?: Approval;
  /** Enough approvals (or a break-glass one): the request may be approved. */
  satisfied: boolean;
  /** The shortest ttl an approval allowed (seconds), if any gave one. */
  ttlSeconds?: number;
}

/**
 * Tallies a request's approvals (status.approvals, in order; the Approved condition's decider counts too when a
 * person wrote it) against its role's policy. Counted: one approval per username; the recorded requester's only
 * when the role sets allowSelfApproval (a cluster administrator requester excepted), or as a break-glass approval
 * when the role has approval.breakGlass and the approval gives a reason and no ttl above breakGlass.maxTTL.
 * The admission policies refuse the rest first; this is the operator's own count (roles in another namespace).
 */
export function tallyApprovals(dar: DatabaseAccessRequest, role: AccessRole | undefined): ApprovalTally {
  const policy = role?.spec.approval;
  const requester = requesterOf(dar);
  const adminRequester = (requester?.groups ?? []).includes(CLUSTER_ADMIN_GROUP);
  const entries: Approval[] = [...(dar.status?.approvals ?? [])];
  const decision = decisionRecord(dar);
  if (
    decision?.type === ConditionType.Approved &&
    decision.decider &&
    decision.decider !== OPERATOR_DECIDER &&
    !OPERATOR_REASONS.has(decision.reason)
  ) {
    // A person's own Approved condition counts as their approval: the person it names whole (a user name may hold
    // spaces, which deciderOf's first word would split into someone else), one of the recorded approvers if it is one.
    const known = [...entries.map((a) => a.username), ...(requester ? [requester.username] : [])];
    const username = namedDecider(decision.message, known) ?? decision.decider;
    entries.push({ username, approvedAt: decision.at ?? '' });
  }
  const seen = new Set<string>();
  const tally: ApprovalTally = { required: requiredApprovals(role), counted: [], ignored: [], satisfied: false };
  for (const a of entries) {
    if (seen.has(a.username)) continue;
    seen.add(a.username);
    const own = !!requester && a.username === requester.username;
    if (own && a.breakGlass) {
      const max = durationSecondsOf(policy?.breakGlass?.maxTTL);
      const ttl = durationSecondsOf(a.ttl);
      if (max === undefined) {
        tally.ignored.push({ username: a.username, why: 'break-glass approval: the role has no approval.breakGlass' });
      } else if (!a.message?.trim()) {
        tally.ignored.push({ username: a.username, why: 'break-glass approval without a reason' });
      } else if (ttl !== undefined && ttl > max) {
        tally.ignored.push({
          username: a.username,
          why: `break-glass approval for ${a.ttl}, longer than breakGlass.maxTTL ${policy!.breakGlass!.maxTTL}`,
        });
      } else {
        tally.breakGlass ??= a;
      }
      continue;
    }
    if (own && !policy?.allowSelfApproval && !adminRequester) {
      tally.ignored.push({ username: a.username, why: "the requester can't approve their own request (four eyes)" });
      continue;
    }
    tally.counted.push(a);
  }
  const ttls = [...tally.counted, ...(tally.breakGlass ? [tally.breakGlass] : [])]
    .map((a) => durationSecondsOf(a.ttl))
    .filter((t): t is number => t !== undefined);
  if (ttls.length) tally.ttlSeconds = Math.min(...ttls);
  tally.satisfied = !!tally.breakGlass || tally.counted.length >= tally.required;
  return tally;
}

/** Reasons of the Approved conditions the operator writes (never a person's decision). */
export const OPERATOR_REASONS: ReadonlySet<string> = new Set([
  Reason.AutoApproved,
  Reason.RequiredApprovalsReached,
  Reason.BreakGlassApproved,
]);

/** "1 of 2 approvals (alice)": how far a request is, in words. */
export function approvalProgress(t: ApprovalTally): string {
  const names = t.counted.map((a) => a.username);
  return `${names.length} of ${t.required} approval${t.required === 1 ? '' : 's'}${names.length ? ` (${names.join(', ')})` : ''}`;
}

/**
 * The Approved condition the operator writes once the approvals suffice (status.approvals: enough distinct
 * people, or a break-glass approval): undefined while they don't, or when no approval was recorded at all (a
 * person's Approved condition is theirs to write, as with one approval and KubeVault).
 */
export function approvalsDecision(
  dar: DatabaseAccessRequest,
  role: AccessRole | undefined,
): { reason: string; message: string } | undefined {
  if (!role || !(dar.status?.approvals ?? []).length) return undefined;
  const t = tallyApprovals(dar, role);
  if (!t.satisfied) return undefined;
  if (t.breakGlass && t.counted.length < t.required) {
    return {
      reason: Reason.BreakGlassApproved,
      message:
        `This was approved by: ${OPERATOR_DECIDER} (break-glass approval by ${t.breakGlass.username}: ${t.breakGlass.message ?? ''})`.slice(
          0,
          1000,
        ),
    };
  }
  return {
    reason: Reason.RequiredApprovalsReached,
    message: `This was approved by: ${OPERATOR_DECIDER} (${approvalProgress(t)} of ${roleKind(dar)} ${roleName(dar)})`,
  };
}

/** The requester's break-glass approval recorded on the request, whatever the role says now. */
export function breakGlassApproval(dar: DatabaseAccessRequest): Approval | undefined {
  const requester = requesterOf(dar);
  return (dar.status?.approvals ?? []).find((a) => a.breakGlass && requester && a.username === requester.username);
}

/** A review that counts: by someone other than the requester (the admission policy also checks "approve"). */
export function validReview(
  dar: DatabaseAccessRequest,
): NonNullable<NonNullable<DatabaseAccessRequest['status']>['review']> | undefined {
  const review = dar.status?.review;
  const requester = requesterOf(dar);
  if (!review?.username || (requester && review.username === requester.username)) return undefined;
  return review;
}

/** What status.grant records, decided at the first issuance (pure: `now` is that issuance). */
export interface Grant {
  /** The longest lease to ask for, seconds; undefined: Vault's role default. */
  ttlSeconds?: number;
  accessEndsAtMs?: number;
}

/**
 * The grant approvals allow: the lease TTL (the request's ttl, else the role's defaultTTL, capped by the role's
 * maxTTL, an approver's --ttl and a break-glass approval's maxTTL; undefined when nothing caps Vault's default),
 * and when access ends in total (approval.maxAccessDuration, and breakGlass.maxTTL for a break-glass grant,
 * counted from `startMs`).
 */
export function grantOf(dar: DatabaseAccessRequest, role: AccessRole, startMs: number): Grant {
  const t = tallyApprovals(dar, role);
  const roleMax = durationSecondsOf(role.spec.maxTTL);
  const asked = durationSecondsOf(dar.spec.ttl);
  const base = asked !== undefined && roleMax !== undefined ? Math.min(asked, roleMax) : asked;
  const breakGlass = t.breakGlass && t.counted.length < t.required;
  const glassMax = breakGlass ? durationSecondsOf(role.spec.approval?.breakGlass?.maxTTL) : undefined;
  const caps = [t.ttlSeconds, glassMax].filter((x): x is number => x !== undefined);
  let ttlSeconds = base;
  if (caps.length) {
    const start = base ?? durationSecondsOf(role.spec.defaultTTL) ?? roleMax;
    ttlSeconds = Math.min(...caps, ...(start !== undefined ? [start] : []));
  }
  const ends = [durationSecondsOf(role.spec.approval?.maxAccessDuration), glassMax]
    .filter((x): x is number => x !== undefined)
    .map((s) => startMs + s * 1000);
  return {
    // At least a second: a shortened grant floored to 0 would ask Vault for its default TTL, the opposite.
    ...(ttlSeconds !== undefined ? { ttlSeconds: Math.max(1, Math.floor(ttlSeconds)) } : {}),
    ...(ends.length ? { accessEndsAtMs: Math.min(...ends) } : {}),
  };
}

// ---- the backstop before issuing ----------------------------------------------------------------------------

/**
 * Why a first issuance must not happen, if it mustn't (nothing is issued, phase Failed): the role requires a
 * reason and the request has none, or the recorded requester approved their own request and the role doesn't
 * allow it (a requester in system:masters excepted). The admission policies refuse both first; this covers a role
 * in another namespace, a role created after the decision, and clusters without the policies.
 */
export function issueRefusal(
  dar: DatabaseAccessRequest,
  role: AccessRole,
  what: string,
): { reason: string; message: string } | undefined {
  const approval = role.spec.approval;
  if (approval?.requireReason && !dar.spec.reason?.trim()) {
    return {
      reason: Reason.ReasonRequired,
      message: `${what} requires a reason (spec.reason) and the request has none; nothing is issued: create a new request with a reason`,
    };
  }
  const decision = decisionRecord(dar);
  const requester = requesterOf(dar);
  const tally = tallyApprovals(dar, role);
  const fewApprovals =
    tally.required > 1 &&
    decision?.type === ConditionType.Approved &&
    decision.reason !== Reason.AutoApproved &&
    !tally.satisfied;
  if (
    !approval?.allowSelfApproval &&
    decision?.type === ConditionType.Approved &&
    decision.reason !== Reason.AutoApproved &&
    decision.decider &&
    requester &&
    namedDecider(decision.message, [requester.username]) === requester.username &&
    !(requester.groups ?? []).includes(CLUSTER_ADMIN_GROUP)
  ) {
    return {
      reason: Reason.SelfApprovalForbidden,
      message: `${requester.username} approved their own request, which ${what} doesn't allow (four eyes); nothing is issued: create a new request for someone else to approve`,
    };
  }
  if (fewApprovals) {
    const ignored = tally.ignored.map((i) => `${i.username}: ${i.why}`).join('; ');
    return {
      reason: Reason.NotEnoughApprovals,
      message: `${what} requires ${tally.required} distinct approvals (approval.approvals) and the request has ${approvalProgress(tally)}${ignored ? `; not counted: ${ignored}` : ''}; nothing is issued: create a new request and collect the approvals with kubectl vault approve`,
    };
  }
  return undefined;
}

// ---- audit ---------------------------------------------------------------------------------------------------

/** One audit record a pass decided on: what happened (the action, an Event reason where there is one), in words. */
export interface AuditAction {
  action: string;
  message: string;
  /** Recorded as a log line only (no Event of its own is behind it). */
  log?: boolean;
}

/** Who, what and why of a request, for an audit line (no credential: lease ids and Secret names are not secrets). */
export function auditFields(dar: DatabaseAccessRequest): Record<string, unknown> {
  const ns = dar.metadata.namespace ?? '';
  const decision = decisionRecord(dar);
  const requester = requesterOf(dar) ?? dar.status?.requester;
  return {
    request: `${ns}/${dar.metadata.name}`,
    uid: dar.metadata.uid,
    role: roleName(dar),
    subjects: dar.spec.subjects.map((s) => describeSubject(s, ns)),
    requester: requester?.username ?? 'unknown',
    ...(dar.status?.approvals?.length ? { approvals: dar.status.approvals.map((a) => a.username) } : {}),
    ...(dar.spec.reason ? { requestReason: dar.spec.reason } : {}),
    ...(dar.spec.ttl ? { ttl: dar.spec.ttl } : {}),
    ...(decision
      ? {
          decision: decision.type,
          decidedBy: decidedBy(dar, decision),
          decisionReason: decision.reason,
          ...(decision.at ? { decidedAt: decision.at } : {}),
        }
      : {}),
    ...(dar.status?.lease?.id ? { leaseId: dar.status.lease.id } : {}),
    // Not `secret`: the logger masks fields by such names.
    ...(dar.status?.secret?.name ? { storedIn: `Secret ${ns}/${dar.status.secret.name}` } : {}),
  };
}

/**
 * Who decided, in people's names: the condition's decider, except for the operator's decisions on approvals
 * (N-of-M: the approvers, in order; break-glass: the requester who broke the glass).
 */
function decidedBy(dar: DatabaseAccessRequest, decision: DecisionRecord): string {
  const approvals = dar.status?.approvals ?? [];
  if (decision.reason === Reason.RequiredApprovalsReached && approvals.length)
    return approvals
      .filter((a) => !a.breakGlass)
      .map((a) => a.username)
      .join(', ');
  if (decision.reason === Reason.BreakGlassApproved) {
    const glass = breakGlassApproval(dar);
    if (glass) return `${glass.username} (break-glass)`;
  }
  return decision.decider ?? 'unknown';
}

/** The who of an audit Event, appended to its message. */
export function auditSuffix(dar: DatabaseAccessRequest): string {
  const f = auditFields(dar);
  const decided = f.decision ? `; ${String(f.decision).toLowerCase()} by ${String(f.decidedBy)}` : '';
  return ` [for ${(f.subjects as string[]).join(', ')} on ${roleKind(dar)} ${String(f.role)}; requested by ${String(f.requester)}${decided}]`;
}

/** The structured audit record of an action on a request: one log line (audit: true, action, at, who/what/why). */
export function auditRecord(
  dar: DatabaseAccessRequest,
  action: string,
  message: string,
  at: Date,
): Record<string, unknown> {
  return { audit: true, action, at: at.toISOString(), ...auditFields(dar), message };
}

/** status.requester needs no update. */
export function sameRequester(a: Requester | undefined, b: Requester | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
