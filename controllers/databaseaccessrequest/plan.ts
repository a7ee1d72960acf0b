// plan: what a pass over a DatabaseAccessRequest does, decided from what observe read. Pure: no I/O, and `now`
// is a parameter. It returns the steps to run in order, the status the pass leaves (written once, at the end,
// and only if it changed), the Events and audit records, and when to run again. The one place each decision is
// made, read top to bottom:
//
//   being deleted           → revoke every lease it holds (current, annotated on its Secret, an unfinished
//                             attempt's, previous), then release the finalizer;
//   denied                  → phase Denied;
//   not decided yet         → expire after the role's pendingTTL, auto-approve, or wait;
//   revoked / expired       → nothing more;
//   revoke-now annotation   → revoke, empty the Secret, phase Revoked;
//   approved, lease live    → keep it: rotate when its Secret is gone or changed or the lease is gone, renew it
//                             on schedule (its answer may rotate), revoke previous leases after their grace
//                             period, keep the grants, re-render the Secret, restart workloads after a rotation;
//   approved, no lease      → issue one exactly once (issuance.ts), after every reason not to is ruled out.
//
// A step whose answer changes the plan (a renewal) ends the round; the pass plans again with the answer
// (Observed.renewal). Failures of steps are mapped to status by failureStatus below; execute.ts runs it all.
import { randomUUID } from 'node:crypto';
import {
  Annotations,
  ConditionType,
  Reason,
  RequestPhase,
  formatDuration,
  parseDurationSeconds,
  type DatabaseAccessRequest,
  type EventReason,
} from '../../api/index.ts';
import { rfc3339, type ConditionInput } from '../../lib/runtime/index.ts';
import { desiredStatus, type StatusUpdate } from '../shared/report.ts';
import { metadataProblems } from '../shared/names.ts';
import { credentialLabels } from './credential-secret.ts';
import {
  MAX_PREVIOUS_LEASES,
  RotationReason,
  addPrevious,
  duePrevious,
  earliest,
  leaseStep,
  newSecretName,
  renewFraction,
  renewalTruncated,
  retirePrevious,
  rotateRequestToken,
  rotateRequested,
  type PreviousLease,
} from './decide.ts';
import {
  approvalProgress,
  approvalsDecision,
  breakGlassApproval,
  grantOf,
  issueRefusal,
  pendingStep,
  requesterOf,
  requiredApprovals,
  sameRequester,
  tallyApprovals,
  unobservedDecision,
  validReview,
  type AuditAction,
} from './approval.ts';
import type { RevocationReason } from './metrics.ts';
import { refKeyOf, type Failure, type Observed } from './observe.ts';
import { graceSeconds, notRevokedCondition, type RevocationTarget } from './revocation.ts';

/** A failed renewal or rollout restart is retried after at most this long. */
export const RETRY_MS = 30_000;
/** A pending request is looked at again at least this often (a role's pendingTTL may change; timers are capped). */
const MAX_WAIT_MS = 60 * 60_000;
/** A request whose secretTemplate can't render is looked at again this often (a database AppBinding may appear). */
const TEMPLATE_POLL_MS = 60_000;

type Status = NonNullable<DatabaseAccessRequest['status']>;
/** Why and how a credential is replaced. */
type Rotation = {
  reason: RotationReason;
  message: string;
  opts?: { leaseGone?: boolean; broken?: boolean; extra?: Record<string, unknown> };
};
type Ref = { namespace?: string; name: string };

/** One lease to revoke, and what its revocation means. */
export interface Revocation {
  leaseId: string;
  /** The Vault AppBinding it was issued through. */
  vaultAppBinding?: Ref;
  reason: RevocationReason;
  /** Why it goes, for the condition and Events ("the request is being deleted"). */
  why: string;
  /** A previous (rotated-out) lease: a Normal Event names it when revoked. */
  previous?: boolean;
}

/** What issuing needs, decided here; issuance.ts runs the exactly-once protocol with it. */
export interface IssueOrder {
  /** The Secret the credential goes into (kept across rotations). */
  secretName: string;
  /** The checkpoint written before Vault is asked (status.issuance). */
  issuance: NonNullable<Status['issuance']>;
  /** A lease the Secret already holds for the current attempt: adopt it rather than issue (a pass stopped before recording it). */
  adopt?: string;
  /** An unfinished attempt's leases to look for and revoke first (a crash between Vault and the Secret). */
  sweep?: NonNullable<Status['issuance']>;
  /** TTL to ask for (a renewal of the new lease right away), seconds. */
  ttlSeconds?: number;
  /** Set when this issuance completes a rotation: the Secret's rotated-at and status.rotation.completedAt. */
  rotatedAt?: string;
  /** This is the first credential the Secret gets: create it. */
  first: boolean;
}

export type Step =
  | { kind: 'addFinalizer' }
  | { kind: 'revokeLease'; revocation: Revocation; stopOnFailure: boolean }
  | { kind: 'sweep'; attempt: NonNullable<Status['issuance']>; why: string }
  | { kind: 'clearSecret' }
  | { kind: 'releaseFinalizer' }
  | { kind: 'issue'; order: IssueOrder }
  | { kind: 'renewLease'; leaseId: string; askSeconds: number; termSeconds: number }
  | { kind: 'ensureGrants' }
  | { kind: 'rerenderSecret' }
  | { kind: 'restartWorkloads'; at: string };

export type EventType = 'Normal' | 'Warning';
export interface EventIntent {
  type: EventType;
  reason: EventReason;
  message: string;
  /** Part of the audit trail: its message names who asked and decided, and a structured log line records it. */
  audit?: boolean;
}

export interface Plan {
  steps: Step[];
  /** The status the pass leaves when every step succeeds (before what steps answer: see fold* below). */
  status: Status;
  /** Status that holds only if every step succeeded (the end of access: phase, conditions). */
  onSuccess?: StatusUpdate;
  events: EventIntent[];
  /** Events for after every step succeeded. */
  eventsOnSuccess?: EventIntent[];
  audits: AuditAction[];
  /** When to run again (ms since the epoch); undefined: when something changes. */
  requeueAtMs?: number;
  /** The pass can't go on: recorded in status (failureStatus) and thrown. */
  failure?: Failure;
  /** The request ended or went: what this process remembers about it goes. */
  forget?: boolean;
  /** The first credential waits to be issued (issuance latency is measured from the first such pass). */
  awaitingFirstIssue?: boolean;
  /** Plan again once the steps ran (a renewal's answer decides what comes next). */
  replan?: boolean;
}

/** The plan for a pass at `now`. */
export function plan(o: Observed, now: Date): Plan {
  const b = new PlanBuilder(o, now);
  switch (o.stage) {
    case 'finalize':
      return b.finalize();
    case 'denied':
      return b.live().set({ phase: RequestPhase.Denied, conditions: [] }).done();
    case 'waitForApproval':
      return b.live().pending();
    case 'finished':
      return b.live().finished();
    case 'revokeNow':
      return b.live().endAccess('revokeNow');
    case 'approved':
      b.live();
      return o.request.status?.lease?.id && o.request.status.issuance?.completed ? b.keepLease() : b.issuePath();
  }
}

class PlanBuilder {
  private readonly p: Plan;
  private readonly dar: DatabaseAccessRequest;
  private readonly nowMs: number;

  constructor(
    private readonly o: Observed,
    private readonly now: Date,
  ) {
    this.dar = o.request;
    this.nowMs = now.getTime();
    this.p = { steps: [], status: structuredClone(o.request.status ?? {}) as Status, events: [], audits: [] };
  }

  set(update: StatusUpdate): this {
    this.p.status = desiredStatus({ ...this.dar, status: this.p.status }, update, this.now) as Status;
    return this;
  }

  private step(s: Step): this {
    this.p.steps.push(s);
    return this;
  }

  done(): Plan {
    return this.p;
  }

  private fail(failure: Failure): Plan {
    this.p.failure = failure;
    return this.p;
  }

  private requeueAt(ms: number | undefined): void {
    this.p.requeueAtMs = earliest(this.p.requeueAtMs, ms);
  }

  // ---- every live request --------------------------------------------------------------------------------

  /** The finalizer first; the requester the API server recorded; a decision seen for the first time. */
  live(): this {
    if (!this.o.finalized.ours) this.step({ kind: 'addFinalizer' });
    const requester = requesterOf(this.dar);
    if (requester && !sameRequester(requester, this.dar.status?.requester))
      this.set({ conditions: [], fields: { requester } });
    this.approvalsSeen();
    this.reviewState();
    const decision = unobservedDecision(this.dar);
    if (decision) {
      const approved = decision.type === ConditionType.Approved;
      this.set({ conditions: [], phase: approved ? RequestPhase.Approved : RequestPhase.Denied });
      const action =
        decision.reason === Reason.AutoApproved ? Reason.AutoApproved : approved ? 'RequestApproved' : 'RequestDenied';
      const by = decision.decider ?? 'someone (the condition does not say who)';
      const message = `${approved ? 'approved' : 'denied'} by ${by} (${decision.reason || 'no reason given'})${decision.message ? `: ${decision.message}` : ''}`;
      this.p.audits.push({ action, message });
      // A denial ends the request: its one Event. An approval's Event is the credential's (issued, or why not).
      if (!approved) this.p.events.push({ type: 'Normal', reason: action, message, audit: true });
    }
    return this;
  }

  /** Approvals added to status.approvals since the last pass: one audit record each, break-glass ones an Event too. */
  private approvalsSeen(): void {
    const approvals = this.dar.status?.approvals ?? [];
    const seen = this.dar.status?.observedApprovals ?? 0;
    if (approvals.length <= seen) return;
    const requester = requesterOf(this.dar)?.username;
    for (const a of approvals.slice(seen)) {
      const note = `${a.ttl ? ` for at most ${a.ttl}` : ''}${a.message ? `: ${a.message}` : ''}`;
      if (a.breakGlass && a.username === requester) {
        // Said at once, as an Event and an audit record: someone must review it.
        this.p.events.push({
          type: 'Warning',
          reason: Reason.BreakGlassApproved,
          message: `${a.username} approved their own request in an emergency (break-glass)${note}`,
          audit: true,
        });
      } else {
        this.p.audits.push({ action: Reason.ApprovalRecorded, message: `approval by ${a.username}${note}` });
      }
    }
    this.set({ conditions: [], fields: { observedApprovals: approvals.length } });
  }

  /** After a break-glass approval: ReviewRequired True until someone other than the requester reviews it. */
  private reviewState(): void {
    const glass = breakGlassApproval(this.dar);
    if (!glass) return;
    const review = validReview(this.dar);
    const before = (this.dar.status?.conditions ?? []).find((c) => c.type === ConditionType.ReviewRequired);
    if (review) {
      const message = `the break-glass approval by ${glass.username} was reviewed by ${review.username} at ${review.reviewedAt}${review.message ? `: ${review.message}` : ''}`;
      this.set({
        conditions: [{ type: ConditionType.ReviewRequired, status: 'False', reason: Reason.Reviewed, message }],
      });
      if (!(before?.status === 'False' && before.reason === Reason.Reviewed))
        this.p.events.push({ type: 'Normal', reason: Reason.Reviewed, message, audit: true });
      return;
    }
    const ref = this.dar.spec.roleRef;
    this.set({
      conditions: [
        {
          type: ConditionType.ReviewRequired,
          status: 'True',
          reason: Reason.BreakGlassApproved,
          message:
            `${glass.username} approved their own request in an emergency (break-glass: ${glass.message ?? ''}); ` +
            `someone else with "approve" on ${ref.kind ?? 'PostgresRole'} ${ref.namespace ?? this.ns}/${ref.name} must review it: ` +
            `kubectl vault review databaseaccessrequest ${this.dar.metadata.name} -n ${this.ns}`,
        },
      ],
    });
  }

  finished(): Plan {
    this.p.forget = true;
    return this.p;
  }

  // ---- waiting for a decision ----------------------------------------------------------------------------

  pending(): Plan {
    if (this.dar.status?.phase === RequestPhase.Expired) return this.p;
    const step = pendingStep(this.dar, this.o.role, this.nowMs);
    const byApprovals = step.kind === 'expire' ? undefined : approvalsDecision(this.dar, this.o.role);
    if (byApprovals) {
      // Written like a person's decision: the next pass sees it (and audits it) like any other.
      this.set({
        conditions: [{ type: ConditionType.Approved, status: 'True', ...byApprovals }],
      });
      return this.p;
    }
    if (this.o.role) this.set({ conditions: [], fields: { requiredApprovals: requiredApprovals(this.o.role) } });
    switch (step.kind) {
      case 'expire':
        // resourceVersion-guarded like every status write: a decision that lands first wins, and the API server
        // refuses decisions on an Expired request.
        this.set({
          phase: RequestPhase.Expired,
          conditions: [
            { type: ConditionType.Available, status: 'False', reason: Reason.ApprovalTimedOut, message: step.message },
            { type: ConditionType.Expired, status: 'True', reason: Reason.ApprovalTimedOut, message: step.message },
          ],
        });
        this.p.audits.push({ action: Reason.ApprovalTimedOut, message: step.message });
        this.p.forget = true;
        return this.p;
      case 'autoApprove':
        // The operator's decision, written like a person's: the write wakes the controller, whose next pass sees
        // it (and audits it) like any decision.
        this.set({
          conditions: [
            { type: ConditionType.Approved, status: 'True', reason: Reason.AutoApproved, message: step.message },
          ],
        });
        return this.p;
      case 'wait':
        this.set({
          phase: RequestPhase.WaitingForApproval,
          conditions: [
            {
              type: ConditionType.Available,
              status: 'False',
              reason: Reason.WaitingForApproval,
              message: this.progress() + step.message,
            },
          ],
        });
        if (step.atMs !== undefined) this.requeueAt(Math.min(this.nowMs + MAX_WAIT_MS, step.atMs + 100));
        else this.requeueAt(this.nowMs + MAX_WAIT_MS);
        return this.p;
    }
  }

  /** "1 of 2 approvals (alice); " while more than one is needed or some were given (and what didn't count). */
  private progress(): string {
    if (!this.o.role) return '';
    const t = tallyApprovals(this.dar, this.o.role);
    if (t.required <= 1 && !(this.dar.status?.approvals ?? []).length) return '';
    const ignored = t.ignored.map((i) => `${i.username} not counted: ${i.why}`);
    return `${approvalProgress(t)}${ignored.length ? ` (${ignored.join('; ')})` : ''}; `;
  }

  // ---- the end of access: revoke-now, expiry, deletion ---------------------------------------------------

  /**
   * Revokes the request's leases, empties its Secret and records the final phase. A lease Vault didn't revoke
   * stops the pass: the phase and Secret stay, the Revoked condition says why (failureStatus), retried with backoff.
   */
  endAccess(kind: 'revokeNow' | 'expire' | 'accessEnd'): Plan {
    const st = this.dar.status ?? {};
    const leaseId = st.lease?.id;
    const revokeNow = kind === 'revokeNow';
    const reason: RevocationReason = revokeNow ? 'revoke-now' : 'expiry';
    const why = revokeNow
      ? 'revoked on request'
      : kind === 'accessEnd'
        ? "the request's access time is over"
        : 'the request expired';
    // The recorded lease, one the Secret holds that isn't recorded yet (only while an issuance is unfinished or
    // nothing is recorded: otherwise a Secret cache still showing a rotated-out lease would revoke that one again),
    // and any an unfinished attempt got.
    const unfinished = st.issuance?.attempt && !st.issuance.completed ? st.issuance : undefined;
    const unrecorded = unfinished || !leaseId ? this.o.secret.leaseId : undefined;
    const leaseIds = [...new Set([leaseId, unrecorded].filter((id): id is string => !!id))];
    if (leaseIds.length || unfinished) {
      const vab = st.issuance?.vaultAppBinding;
      if (vab && this.o.vaultAppBindings.has(refKeyOf(vab, this.ns))) {
        for (const id of leaseIds)
          this.step({
            kind: 'revokeLease',
            revocation: { leaseId: id, vaultAppBinding: vab, reason, why },
            stopOnFailure: true,
          });
        if (unfinished) this.step({ kind: 'sweep', attempt: unfinished, why });
      } else if (revokeNow) {
        // Revoked on request means revoked: without the Vault it was issued through, wait for it.
        return this.fail({
          reason: Reason.ReferenceNotFound,
          message: `cannot reach the Vault lease ${leaseIds.join(', ') || 'of the unfinished issuance'} was issued through`,
        });
      }
    }
    this.revokePrevious(
      (st.previousLeases ?? []).filter((p) => !leaseIds.includes(p.id)),
      reason,
      why,
      true,
    );
    this.step({ kind: 'clearSecret' });
    this.p.onSuccess = revokeNow
      ? {
          phase: RequestPhase.Revoked,
          remove: ['previousLeases'],
          conditions: [
            {
              type: ConditionType.Available,
              status: 'False',
              reason: Reason.RevokedOnDemand,
              message: 'the lease was revoked on request; the credential no longer works',
            },
            {
              type: ConditionType.Revoked,
              status: 'True',
              reason: Reason.RevokedOnDemand,
              message: leaseId ? `lease ${leaseId} revoked` : 'nothing had been issued',
            },
          ],
        }
      : kind === 'accessEnd'
        ? {
            phase: RequestPhase.Expired,
            remove: ['previousLeases'],
            dropConditions: [ConditionType.Revoked],
            conditions: [
              {
                type: ConditionType.Available,
                status: 'False',
                reason: Reason.AccessDurationReached,
                message: `access ended at ${st.grant?.accessEndsAt ?? ''} (${this.accessLimitText()}, from the first issuance at ${st.grant?.accessStartedAt ?? ''}); ${leaseIds.length ? `lease ${leaseIds.join(', ')} was revoked and ` : ''}the credential was removed from the Secret`,
              },
              {
                type: ConditionType.Expired,
                status: 'True',
                reason: Reason.AccessDurationReached,
                message: `access time over${leaseId ? `; lease ${leaseId} revoked` : ''}`,
              },
            ],
          }
        : {
            phase: RequestPhase.Expired,
            remove: ['previousLeases'],
            dropConditions: [ConditionType.Revoked],
            conditions: [
              {
                type: ConditionType.Available,
                status: 'False',
                reason: Reason.LeaseExpired,
                message: 'the lease ran out (spec.renew is false); the credential was removed from the Secret',
              },
              {
                type: ConditionType.Expired,
                status: 'True',
                reason: Reason.LeaseExpired,
                message: `lease ${leaseId ?? ''} expired`,
              },
            ],
          };
    this.p.forget = true;
    return this.p;
  }

  /** Revocations of previous leases: each named by a Normal Event when done; one without its Vault AppBinding is left to expire. */
  private revokePrevious(
    previous: readonly PreviousLease[],
    reason: RevocationReason,
    why: string,
    stopOnFailure: boolean,
  ): void {
    const leftToExpire: string[] = [];
    for (const p of previous) {
      if (p.vaultAppBinding && !this.o.vaultAppBindings.has(refKeyOf(p.vaultAppBinding, this.ns))) {
        // Said once: the lease leaves previousLeases, nothing can revoke it any more.
        this.p.events.push({
          type: 'Warning',
          reason: 'LeaseNotRevoked',
          message: `the Vault AppBinding is gone: previous lease ${p.id} is left to expire`,
          audit: true,
        });
        leftToExpire.push(p.id);
        continue;
      }
      const vaultAppBinding = p.vaultAppBinding ?? this.dar.status?.issuance?.vaultAppBinding;
      this.step({
        kind: 'revokeLease',
        revocation: { leaseId: p.id, vaultAppBinding, reason, why, previous: true },
        stopOnFailure,
      });
    }
    if (leftToExpire.length) {
      const kept = (this.p.status.previousLeases ?? []).filter((p) => !leftToExpire.includes(p.id));
      this.set({ conditions: [], fields: { previousLeases: kept.length ? kept : undefined } });
    }
  }

  finalize(): Plan {
    this.p.forget = true;
    if (!this.o.finalized.any) return this.p;
    const st = this.dar.status ?? {};
    const why = 'the request is being deleted';
    const leaseIds = [...new Set([st.lease?.id, this.o.secret.leaseId].filter((id): id is string => !!id))];
    const vab = st.issuance?.vaultAppBinding;
    if (vab && this.o.vaultAppBindings.has(refKeyOf(vab, this.ns))) {
      for (const leaseId of leaseIds)
        this.step({
          kind: 'revokeLease',
          revocation: { leaseId, vaultAppBinding: vab, reason: 'deletion', why },
          stopOnFailure: true,
        });
      if (st.issuance?.attempt && !st.issuance.completed) this.step({ kind: 'sweep', attempt: st.issuance, why });
      if (leaseIds.length)
        (this.p.eventsOnSuccess ??= []).push({
          type: 'Normal',
          reason: 'LeaseRevoked',
          message: `revoked lease ${leaseIds.join(', ')}`,
          audit: true,
        });
    } else if (leaseIds.length || (st.issuance?.attempt && !st.issuance.completed)) {
      const what = leaseIds.length ? `lease ${leaseIds.join(', ')} is` : 'any lease the unfinished issuance got is';
      this.p.events.push({
        type: 'Warning',
        reason: 'LeaseNotRevoked',
        message: `the Vault AppBinding is gone: ${what} left to expire`,
        audit: true,
      });
    }
    this.revokePrevious(
      (st.previousLeases ?? []).filter((p) => !leaseIds.includes(p.id)),
      'deletion',
      why,
      true,
    );
    this.step({ kind: 'releaseFinalizer' });
    return this.p;
  }

  // ---- a recorded lease: keep it alive, or replace it --------------------------------------------------------

  keepLease(): Plan {
    const lease = this.dar.status!.lease!;
    const endsAtMs = this.accessEndsAtMs();
    if (endsAtMs !== undefined && this.nowMs >= endsAtMs) return this.endAccess('accessEnd');
    if (endsAtMs !== undefined) this.requeueAt(endsAtMs + 100);
    this.recordGrant(Date.parse(this.dar.status?.issuance?.startedAt ?? lease.issuedAt ?? '') || this.nowMs);
    const broken = this.brokenCredential();
    if (broken) return this.rotate(broken.reason, broken.message, broken.opts);
    // Without its role (or with a template that can't render) nothing new can be issued: the lease is kept
    // alive as long as Vault allows, and rotated once it can be.
    const canIssue = !!this.o.layout && this.o.layout.problems.length === 0 && !this.issueBlocked();
    const schedule = leaseStep(lease, {
      renew: this.dar.spec.renew !== false,
      fraction: renewFraction(this.dar, this.o.role),
      uid: this.uid,
      nowMs: this.nowMs,
    });
    // A lease that lasts until access ends anyway isn't renewed: the end revokes it.
    const outlasts = endsAtMs !== undefined && Date.parse(lease.expiresAt ?? '') >= endsAtMs;
    if (schedule.kind === 'renew' && !this.o.refusal && !this.o.renewal && !outlasts) {
      // A renewal due is asked first, alone: its answer decides the rest of the pass (renewed, or rotate).
      this.step({
        kind: 'renewLease',
        leaseId: lease.id!,
        askSeconds: this.capToAccessEnd(this.requestedTtlSeconds() ?? schedule.askSeconds)!,
        termSeconds: this.capToAccessEnd(schedule.askSeconds)!,
      });
      this.p.replan = true;
      return this.p;
    }
    const replaced = this.o.renewal ? this.renewalRotation(this.o.renewal, canIssue) : undefined;
    if (replaced) return this.rotate(replaced.reason, replaced.message, replaced.opts);
    this.upkeep();
    const token = rotateRequestToken(this.dar.metadata.annotations?.[Annotations.rotateNow]);
    if (canIssue && rotateRequested(token, this.dar.status!.lastRotateRequest)) {
      return this.rotate(RotationReason.RotateRequested, `the ${Annotations.rotateNow} annotation asked for it`, {
        extra: { lastRotateRequest: token },
      });
    }
    if (this.o.renewal) return this.renewed(this.o.renewal);
    if (outlasts && schedule.kind === 'renew') return this.p;
    return this.onSchedule(schedule, canIssue);
  }

  /** A credential that no longer works, or is gone: replaced whatever the schedule says. */
  private brokenCredential(): Rotation | undefined {
    const st = this.dar.status!;
    if (!this.o.secret.present) {
      // Its credential left the cluster with it; running pods may still hold it, hence the usual grace period.
      return { reason: RotationReason.SecretDeleted, message: `Secret ${st.secret?.name} was deleted` };
    }
    if (this.o.secret.drift === 'credential') {
      // The operator never keeps the password: a credential changed by hand can only be replaced.
      return {
        reason: RotationReason.SecretModified,
        message: `the username or password in Secret ${st.secret?.name} was changed or removed by hand`,
        opts: { broken: true },
      };
    }
    if (this.o.liveness === 'gone') return this.leaseGone();
    return undefined;
  }

  private leaseGone(): Rotation {
    return {
      reason: RotationReason.LeaseRevoked,
      message: `lease ${this.dar.status!.lease!.id} no longer exists in Vault (revoked outside Leasehold?)`,
      opts: { leaseGone: true, broken: true },
    };
  }

  /** A renewal's answer that means the lease can't be kept: gone, refused, or truncated at its max TTL. */
  private renewalRotation(r: NonNullable<Observed['renewal']>, canIssue: boolean): Rotation | undefined {
    const id = this.dar.status!.lease!.id;
    if (r.kind === 'gone') return this.leaseGone();
    if (r.kind === 'refused')
      return { reason: RotationReason.RenewalRefused, message: `Vault refused to renew lease ${id} (${r.detail})` };
    if (r.kind === 'renewed' && canIssue && renewalTruncated(r.askedSeconds, r.grantedSeconds, r.termSeconds)) {
      return {
        reason: RotationReason.RenewalTruncated,
        message: `Vault renewed lease ${id} for ${r.grantedSeconds}s of the ${r.askedSeconds}s asked (max TTL reached)`,
      };
    }
    return undefined;
  }

  /** What a live lease's request needs on every pass: its grants, due revocations and restarts, its Secret's layout. */
  private upkeep(): void {
    const o = this.o;
    const st = this.dar.status!;
    const lease = st.lease!;
    this.step({ kind: 'ensureGrants' });
    this.duePrevious();
    this.restartAfterRotation(st.rotation);
    if (o.refusal) {
      // Tenancy: once a namespace the role's references point into stops admitting it, nothing more comes of the
      // request (no renewal, no rotation): its lease runs out at its current expiry. Revoking still works.
      this.set({
        conditions: [
          {
            type: ConditionType.Available,
            status: 'False',
            reason: Reason.ReferenceNotAllowed,
            message: `lease ${lease.id} is not renewed and ends at ${lease.expiresAt ?? 'its expiry'}; nothing new is issued: ${o.refusal}`,
          },
        ],
      });
    } else if (o.layout && o.layout.problems.length > 0) {
      this.templateProblems();
    } else if (o.layout) {
      if (o.secret.drift === 'layout' || (o.secret.layout ?? '') !== o.layout.hash)
        this.step({ kind: 'rerenderSecret' });
      this.available(`credential in Secret ${st.secret?.name}; lease ${lease.id}`);
    }
  }

  /** The lease's schedule: expire, replace, or wait for the renewal point (a renewal due is planned above). */
  private onSchedule(schedule: ReturnType<typeof leaseStep>, canIssue: boolean): Plan {
    switch (schedule.kind) {
      case 'expire':
        return this.endAccess('expire');
      case 'rotate':
        // A lease that ran out is dead anyway; one that still works is kept until a new one can be issued.
        if (canIssue || schedule.reason === RotationReason.LeaseExpired)
          return this.rotate(schedule.reason, schedule.message);
        this.requeueAt(this.nowMs + RETRY_MS);
        break;
      case 'renew': {
        // Refused by tenancy: not renewed; looked at again before it runs out.
        const left = Date.parse(this.dar.status!.lease!.expiresAt ?? '') - this.nowMs;
        this.requeueAt(
          this.nowMs + Math.max(1000, Math.min(RETRY_MS * 2, Number.isFinite(left) ? left : RETRY_MS * 2)),
        );
        break;
      }
      case 'wait':
        this.requeueAt(schedule.atMs);
        break;
    }
    return this.p;
  }

  /** Folds a renewal's answer (not a rotation) into the plan: new lease times, or a retry before it runs out. */
  private renewed(r: NonNullable<Observed['renewal']>): Plan {
    const lease = this.dar.status!.lease!;
    if (r.kind === 'failed') {
      // Vault unreachable, sealed, or denying us: the credential works until it expires; keep trying.
      if (r.failures === 1) {
        this.p.events.push({
          type: 'Warning',
          reason: 'LeaseRenewalFailed',
          message: `could not renew lease ${lease.id}, retrying until it expires at ${lease.expiresAt}: ${r.message}`,
        });
      }
      const left = Date.parse(lease.expiresAt ?? '') - this.nowMs;
      this.requeueAt(this.nowMs + Math.max(1000, Math.min(RETRY_MS, Number.isFinite(left) ? left / 4 : RETRY_MS)));
      return this.p;
    }
    if (r.kind !== 'renewed') return this.p;
    if (r.failuresBefore > 0) {
      this.p.events.push({
        type: 'Normal',
        reason: Reason.LeaseRenewed,
        message: `renewed lease ${lease.id} again after ${r.failuresBefore} failed attempt${r.failuresBefore === 1 ? '' : 's'}`,
      });
    }
    const expiresAt = rfc3339(new Date(this.nowMs + r.grantedSeconds * 1000));
    const renewedLease = {
      ...lease,
      duration: formatDuration(r.grantedSeconds),
      lastRenewalTime: rfc3339(this.now),
      expiresAt,
    };
    this.set({ conditions: [], fields: { lease: renewedLease } });
    const next = leaseStep(renewedLease, {
      renew: true,
      fraction: renewFraction(this.dar, this.o.role),
      uid: this.uid,
      nowMs: this.nowMs,
    });
    this.requeueAt(next.kind === 'wait' ? next.atMs : this.nowMs + 1000);
    return this.p;
  }

  /** Previous leases past their grace period are revoked (each at most when its retry is due, after a failure). */
  private duePrevious(): void {
    const { due, nextAtMs } = duePrevious(this.dar.status?.previousLeases ?? [], this.nowMs);
    this.requeueAt(nextAtMs);
    const ready: PreviousLease[] = [];
    for (const p of due) {
      const retryAt = this.o.revocationRetryAt[p.id];
      if (retryAt !== undefined && retryAt > this.nowMs) this.requeueAt(retryAt);
      else ready.push(p);
    }
    this.revokePrevious(ready, 'rotation', "the rotation's grace period is over", false);
  }

  private restartAfterRotation(rotation: Status['rotation'], completedAt = rotation?.completedAt): void {
    if (!completedAt || rotation?.restartedAt || (this.dar.spec.rolloutRestartTargets ?? []).length === 0) return;
    this.step({ kind: 'restartWorkloads', at: completedAt });
  }

  /**
   * Starts a rotation: the lease moves to previousLeases (revoked a grace period after its successor is in the
   * Secret) and the rotation is marked under way; issuing its credential follows in the same pass when it can.
   * `leaseGone`: Vault no longer has the lease, so nothing to keep or revoke. `broken`: the Secret's credential
   * doesn't work, so Available turns False until the new one is in.
   */
  private rotate(
    reason: RotationReason,
    message: string,
    opts: { leaseGone?: boolean; broken?: boolean; extra?: Record<string, unknown> } = {},
  ): Plan {
    const st = this.dar.status!;
    const lease = st.lease;
    let previous: PreviousLease[] = st.previousLeases ?? [];
    if (lease?.id && !opts.leaseGone) {
      const added = addPrevious(previous, {
        id: lease.id,
        ...(st.issuance?.vaultAppBinding ? { vaultAppBinding: st.issuance.vaultAppBinding } : {}),
      });
      previous = added.previous;
      // Over the cap, the oldest go now (one that can't be revoked now stays recorded, over the cap, for later).
      for (const p of added.overflow) {
        this.step({
          kind: 'revokeLease',
          revocation: {
            leaseId: p.id,
            vaultAppBinding: p.vaultAppBinding,
            reason: 'rotation',
            why: `more than ${MAX_PREVIOUS_LEASES} rotations within a grace period`,
            previous: true,
          },
          stopOnFailure: false,
        });
      }
      previous = [...added.overflow, ...previous];
    }
    const notAfter = this.dar.spec.renew === false && lease?.expiresAt ? lease.expiresAt : undefined;
    this.set({
      conditions: opts.broken
        ? [{ type: ConditionType.Available, status: 'False', reason, message: `${message}; issuing a new credential` }]
        : [],
      remove: ['lease'],
      fields: {
        previousLeases: previous.length ? previous : undefined,
        rotation: {
          reason,
          message: message.slice(0, 1000),
          requestedAt: rfc3339(this.now),
          ...(notAfter ? { notAfter } : {}),
        },
        issuance: { ...st.issuance!, completed: false, attempt: undefined, startedAt: undefined },
        ...(opts.extra ?? {}),
      },
    });
    this.p.audits.push({
      action: 'RotationStarted',
      message: `rotating the credential (${reason}): ${message}`,
      log: true,
    });
    return this.issuePath();
  }

  // ---- issuing -----------------------------------------------------------------------------------------------

  /** Issue the request's credential (first, or a rotation's), once every reason not to is ruled out. */
  issuePath(): Plan {
    const st = this.p.status;
    const rotation = st.rotation?.requestedAt && !st.rotation.completedAt ? st.rotation : undefined;
    if (!rotation) this.p.awaitingFirstIssue = true;
    if (rotation?.notAfter && this.nowMs >= Date.parse(rotation.notAfter)) return this.endAccess('expire');
    const endsAtMs = this.accessEndsAtMs();
    if (endsAtMs !== undefined && this.nowMs >= endsAtMs) return this.endAccess('accessEnd');
    const blocked = this.issueBlocked();
    if (blocked)
      return this.fail({
        ...blocked,
        message: `${rotation ? `rotating the credential (${rotation.reason}): ` : ''}${blocked.message}`,
      });
    if (!this.o.layout || this.o.layout.problems.length > 0) {
      // Refused before anything is issued: a Secret with an empty or wrong value would be worse than none. A
      // change to the request or its role wakes us; a database AppBinding appearing doesn't, hence the poll.
      return this.fail({
        reason: Reason.InvalidSecretTemplate,
        message: this.templateMessage(),
        retryAfterMs: TEMPLATE_POLL_MS,
      });
    }
    const secretName = st.secret?.name ?? newSecretName(this.dar.metadata.name ?? '');
    // Whatever the API server would refuse is refused here, before Vault issues a lease that would be revoked again.
    const problems = metadataProblems('Secret', { name: secretName, labels: credentialLabels(this.dar) });
    if (problems.length)
      return this.fail({
        reason: Reason.FailedToCreateSecret,
        message: `the credential's Secret can't be written: ${problems.join('; ')}`,
        terminal: true,
      });
    this.recordGrant(this.nowMs);
    const endsAt = this.accessEndsAtMs();
    if (endsAt !== undefined) this.requeueAt(endsAt + 100);
    const order = this.issueOrder(secretName, rotation);
    this.step({ kind: 'issue', order });
    this.step({ kind: 'ensureGrants' });
    this.restartAfterRotation(rotation, order.rotatedAt);
    return this.p;
  }

  /** The first reason nothing may be issued now, if there is one: the role, the backstop, a reference, readiness, deletion. */
  private issueBlocked(): Failure | undefined {
    const o = this.o;
    return (
      o.roleProblem ??
      this.issueRefusal() ??
      o.targetProblem ??
      this.roleNotReady() ??
      (o.terminating
        ? {
            reason: Reason.ReferenceTerminating,
            message:
              `${o.terminating} is being deleted: no new credential is issued through it ` +
              '(a lease already issued is still renewed, and revoked when the request goes)',
          }
        : undefined)
    );
  }

  /** The exactly-once order: the checkpoint to write, a lease to adopt or an attempt to sweep, the TTL to ask. */
  private issueOrder(secretName: string, rotation: Status['rotation']): IssueOrder {
    const o = this.o;
    const st = this.p.status;
    const prior = st.issuance;
    const unfinished = prior?.attempt && !prior.completed ? prior : undefined;
    // Only this attempt's lease: during a rotation the Secret still holds the lease being replaced. (Secrets
    // written before attempts were annotated: anything but a previous lease.)
    const ours = o.secret.attempt
      ? o.secret.attempt === unfinished?.attempt
      : !(st.previousLeases ?? []).some((p) => p.id === o.secret.leaseId);
    const adopt = unfinished && o.secret.leaseId && ours ? o.secret.leaseId : undefined;
    const target = o.target!;
    let ttlSeconds = this.capToAccessEnd(this.requestedTtlSeconds());
    if (rotation?.notAfter) {
      // renew: false: a rotated credential ends when the one it replaces would have.
      const left = Math.max(1, Math.floor((Date.parse(rotation.notAfter) - this.nowMs) / 1000));
      ttlSeconds = ttlSeconds === undefined ? left : Math.min(ttlSeconds, left);
    }
    return {
      secretName,
      issuance: {
        vaultAppBinding: {
          namespace: target.vaultAppBinding.metadata.namespace ?? '',
          name: target.vaultAppBinding.metadata.name ?? '',
        },
        mount: target.mount,
        connection: target.connection,
        role: o.role!.status!.vaultRole!,
        attempt: randomUUID(),
        startedAt: rfc3339(this.now),
        completed: false,
      },
      ...(adopt ? { adopt } : {}),
      ...(unfinished ? { sweep: unfinished } : {}),
      ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
      // Adopted, the rotation happened when its Secret was written (the grace period and restarts count from then).
      ...(rotation ? { rotatedAt: (adopt && o.secret.rotatedAt) || rfc3339(this.now) } : {}),
      first: !prior,
    };
  }

  /** The backstop before a first issuance (approval.ts issueRefusal): requireReason and four eyes. */
  private issueRefusal(): Failure | undefined {
    if (!this.o.role || this.dar.status?.issuance || this.dar.status?.lease?.id) return undefined;
    const refusal = issueRefusal(this.dar, this.o.role, this.o.roleName);
    return refusal ? { ...refusal, terminal: true } : undefined;
  }

  private roleNotReady(): Failure | undefined {
    const role = this.o.role!;
    if (role.status?.phase === 'Success' && role.status.vaultRole) return undefined;
    return {
      reason: 'RoleNotReady',
      message: `${this.o.roleName} is not ready yet (phase ${role.status?.phase ?? 'unknown'})`,
    };
  }

  private templateProblems(): void {
    this.set({
      phase: RequestPhase.Approved,
      conditions: [
        {
          type: ConditionType.Available,
          status: 'False',
          reason: Reason.InvalidSecretTemplate,
          message: this.templateMessage(),
        },
      ],
    });
  }

  private templateMessage(): string {
    return `secretTemplate can't be rendered, so nothing is issued or rotated until it is fixed: ${this.o.layout?.problems.join('; ') ?? ''}`.slice(
      0,
      4000,
    );
  }

  /** Available back to True once whatever made it False (a template, a failed rotation) is over. */
  private available(message: string): void {
    const current = (this.p.status.conditions ?? []).find((c) => c.type === ConditionType.Available);
    if (current?.status === 'True') return;
    this.set({
      conditions: [
        { type: ConditionType.Available, status: 'True', reason: Reason.SuccessfullyIssuedCredential, message },
      ],
    });
  }

  /** The lease TTL to ask for: status.grant.ttl once recorded, else what the approvals allow (approval.ts grantOf). */
  private requestedTtlSeconds(): number | undefined {
    const recorded = this.p.status.grant;
    if (recorded) return recorded.ttl ? parseDurationSeconds(recorded.ttl) : undefined;
    if (!this.o.role) return requestedTtlSeconds(this.dar, undefined);
    return grantOf(this.dar, this.o.role, this.nowMs).ttlSeconds;
  }

  /** When access ends in total (status.grant.accessEndsAt), if it does. */
  private accessEndsAtMs(): number | undefined {
    const at = Date.parse(this.p.status.grant?.accessEndsAt ?? '');
    return Number.isFinite(at) ? at : undefined;
  }

  /** A TTL (seconds) no longer than what is left of the access; at least a second. */
  private capToAccessEnd(ttlSeconds: number | undefined): number | undefined {
    const endsAtMs = this.accessEndsAtMs();
    if (endsAtMs === undefined) return ttlSeconds;
    const left = Math.max(1, Math.floor((endsAtMs - this.nowMs) / 1000));
    return ttlSeconds === undefined ? left : Math.min(ttlSeconds, left);
  }

  /** status.grant, decided once (at the first issuance, `startMs`) from the approvals and the role. */
  private recordGrant(startMs: number): void {
    if (!this.o.role) return;
    const recorded = this.p.status.grant;
    if (recorded) return this.tightenAccessEnd(recorded);
    const g = grantOf(this.dar, this.o.role, startMs);
    this.set({
      conditions: [],
      fields: {
        grant: {
          ...(g.ttlSeconds !== undefined ? { ttl: formatDuration(g.ttlSeconds) } : {}),
          accessStartedAt: rfc3339(new Date(startMs)),
          ...(g.accessEndsAtMs !== undefined ? { accessEndsAt: rfc3339(new Date(g.accessEndsAtMs)) } : {}),
        },
      },
    });
  }

  /**
   * A role that adds or shortens approval.maxAccessDuration after a grant was recorded bounds it too, counted from
   * the grant's accessStartedAt: the recorded end only ever moves earlier, never later.
   */
  private tightenAccessEnd(recorded: NonNullable<Status['grant']>): void {
    const startMs = Date.parse(recorded.accessStartedAt ?? '');
    if (!Number.isFinite(startMs) || !this.o.role) return;
    const endMs = grantOf(this.dar, this.o.role, startMs).accessEndsAtMs;
    const recordedEndMs = recorded.accessEndsAt ? Date.parse(recorded.accessEndsAt) : undefined;
    if (endMs === undefined || (recordedEndMs !== undefined && recordedEndMs <= endMs)) return;
    this.set({ conditions: [], fields: { grant: { ...recorded, accessEndsAt: rfc3339(new Date(endMs)) } } });
  }

  private accessLimitText(): string {
    const a = this.o.role?.spec.approval;
    const parts = [
      a?.maxAccessDuration ? `approval.maxAccessDuration ${a.maxAccessDuration}` : '',
      breakGlassApproval(this.dar) && a?.breakGlass ? `break-glass maxTTL ${a.breakGlass.maxTTL}` : '',
    ].filter(Boolean);
    return parts.length ? parts.join(', ') : 'the access time the approvals allowed';
  }

  private get ns(): string {
    return this.dar.metadata.namespace ?? '';
  }

  private get uid(): string {
    return this.dar.metadata.uid ?? '';
  }
}

/** spec.ttl, capped by the role's maxTTL; undefined without a ttl (Vault's role default applies). */
export function requestedTtlSeconds(dar: DatabaseAccessRequest, roleMaxTTL: string | undefined): number | undefined {
  if (!dar.spec.ttl) return undefined;
  const ttl = parseDurationSeconds(dar.spec.ttl);
  const max = roleMaxTTL ? parseDurationSeconds(roleMaxTTL) : undefined;
  return max !== undefined && max > 0 ? Math.min(ttl, max) : ttl;
}

// ---- what steps answer: folded into the pass's status, pure -------------------------------------------------

/** A credential issued (or adopted) and in its Secret. */
export interface Issued {
  leaseId: string;
  durationSeconds: number;
  renewable: boolean;
  issuedAt: string;
  expiresAt: string;
  secretName: string;
  rotatedAt?: string;
  adopted?: boolean;
  /** Appended to the condition message (who owns the lease in Vault). */
  note?: string;
}

/**
 * Records an issued credential: the lease, the completed attempt, a rotation completed (its previous leases get
 * their revocation time), Available True; the Event (audited), and when to look at the lease next.
 */
export function foldIssued({
  dar,
  status,
  issued: x,
  role,
  now,
}: {
  dar: DatabaseAccessRequest;
  status: Status;
  issued: Issued;
  role: Observed['role'];
  now: Date;
}): { update: StatusUpdate; events: EventIntent[]; requeueAtMs?: number; retired: PreviousLease[] } {
  const rotation = status.rotation?.requestedAt && !status.rotation.completedAt ? status.rotation : undefined;
  const completedAt = x.rotatedAt ?? rfc3339(now);
  const previous = rotation
    ? retirePrevious(status.previousLeases ?? [], Date.parse(completedAt), graceSeconds(dar))
    : undefined;
  const retired = (previous ?? []).filter((p) => !(status.previousLeases ?? []).find((q) => q.id === p.id)?.revokeAt);
  const what = x.adopted
    ? `credential in Secret ${x.secretName} recorded from the Secret (an earlier pass stopped before recording it)`
    : `credential issued into Secret ${x.secretName}`;
  const lease = {
    id: x.leaseId,
    duration: formatDuration(x.durationSeconds),
    renewable: x.renewable,
    issuedAt: x.issuedAt,
    expiresAt: x.expiresAt,
  };
  const update: StatusUpdate = {
    phase: RequestPhase.Approved,
    conditions: [
      {
        type: ConditionType.Available,
        status: 'True',
        reason: Reason.SuccessfullyIssuedCredential,
        message: `${what}; lease ${x.leaseId} for ${formatDuration(x.durationSeconds)}${x.note ?? ''}`,
      },
    ],
    dropConditions: [ConditionType.Failed],
    fields: {
      issuance: { ...status.issuance!, completed: true },
      secret: { name: x.secretName },
      lease,
      ...(rotation
        ? { rotation: { ...rotation, completedAt }, previousLeases: previous!.length ? previous : undefined }
        : {}),
    },
  };
  // A rotate-now value present before this issuance is satisfied by it.
  const token = rotateRequestToken(dar.metadata.annotations?.[Annotations.rotateNow]);
  if (token) update.fields!.lastRotateRequest = token;
  const revokeAt = previous?.map((p) => p.revokeAt).filter(Boolean)[0];
  const events: EventIntent[] = [
    rotation
      ? {
          type: 'Normal',
          reason: Reason.CredentialRotated,
          audit: true,
          message: `rotated the credential in Secret ${x.secretName} (${rotation.reason}: ${rotation.message ?? ''})${revokeAt ? `; the previous login works until ${revokeAt}` : ''}`,
        }
      : {
          type: 'Normal',
          reason: Reason.SuccessfullyIssuedCredential,
          audit: true,
          message: `${what} (lease expires in ${formatDuration(x.durationSeconds)})`,
        },
  ];
  const next = leaseStep(lease, {
    renew: dar.spec.renew !== false,
    fraction: renewFraction(dar, role),
    uid: dar.metadata.uid ?? '',
    nowMs: now.getTime(),
  });
  const dueRevoke = previous ? duePrevious(previous, now.getTime()).nextAtMs : undefined;
  return {
    update,
    events,
    requeueAtMs: earliest(next.kind === 'wait' ? next.atMs : now.getTime(), dueRevoke),
    retired,
  };
}

/** A previous lease revoked (or already gone): it leaves previousLeases, with a Normal Event. */
export function foldPreviousRevoked(
  status: Status,
  r: Revocation,
  outcome: 'success' | 'gone',
): { update: StatusUpdate; event: EventIntent } {
  const left = (status.previousLeases ?? []).filter((p) => p.id !== r.leaseId);
  return {
    update: { conditions: [], fields: { previousLeases: left.length ? left : undefined } },
    event: {
      type: 'Normal',
      reason: 'LeaseRevoked',
      audit: true,
      message: `revoked the previous lease ${r.leaseId}${outcome === 'gone' ? ' (it had already ended)' : ''}: ${r.why}`,
    },
  };
}

/** Every due revocation went through: a Revoked condition recording an earlier failure goes. */
export function foldRevocationsDone(status: Status): StatusUpdate | undefined {
  const failing = (status.conditions ?? []).some((c) => c.type === ConditionType.Revoked && c.status === 'False');
  return failing ? { conditions: [], dropConditions: [ConditionType.Revoked] } : undefined;
}

/** Workloads restarted after the rotation completed at `at`. */
export function foldRestarted(status: Status, now: Date): StatusUpdate {
  return { conditions: [], fields: { rotation: { ...status.rotation, restartedAt: rfc3339(now) } } };
}

/**
 * A step failed: what status records. A revocation Vault didn't do: the Revoked condition (False, Vault's words,
 * what to do); deletion says it waits for Vault. Anything else on the way to a credential: Available False
 * (FailedToGetCredential for Vault's own refusals) and, when terminal, Failed True and phase Failed.
 */
export function failureStatus(
  dar: DatabaseAccessRequest,
  status: Status,
  f: Failure & { revocation?: RevocationTarget; why?: string; cause?: unknown },
): StatusUpdate {
  if (f.revocation !== undefined) {
    const deleting = !!dar.metadata.deletionTimestamp;
    const condition = notRevokedCondition(f.revocation, f.cause ?? new Error(f.message), f.why ?? '');
    return {
      conditions: [
        deleting && condition.reason !== Reason.RevocationFailed
          ? { ...condition, message: `deletion waits for Vault: ${condition.message}` }
          : condition,
      ],
    };
  }
  const rotation = status.rotation?.requestedAt && !status.rotation.completedAt ? status.rotation : undefined;
  const conditions: ConditionInput[] = [
    {
      type: ConditionType.Available,
      status: 'False',
      reason: f.reason,
      message:
        rotation && !f.message.startsWith('rotating')
          ? `rotating the credential (${rotation.reason}): ${f.message}`
          : f.message,
    },
  ];
  if (f.terminal) conditions.push({ type: ConditionType.Failed, status: 'True', reason: f.reason, message: f.message });
  const phase = f.terminal
    ? RequestPhase.Failed
    : !status.phase || status.phase === RequestPhase.WaitingForApproval
      ? RequestPhase.Approved
      : undefined;
  return { conditions, ...(phase ? { phase } : {}) };
}
