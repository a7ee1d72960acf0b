// execute: runs a plan's steps in order through the effects (Kubernetes writes, Vault lease operations, Events,
// metrics, what this process remembers), folds what each step answers into the pass's status (plan.ts fold*),
// and ends the pass with one status write (only if it changed), its Events and audit records, and its Result.
//
// Status is written at most once per pass, plus the checkpoint exactly-once needs before Vault is asked to issue
// (issuance.ts), which carries everything the pass decided until then (a decision observed, a rotation started).
// A failure is recorded the same way (failureStatus) and then thrown: RetryableError for the queue to retry
// (after the error's retryAfterMs, or its per-key backoff), TerminalError when only a change to the object helps.
import {
  Annotations,
  ConditionType,
  FINALIZER,
  KUBEVAULT_FINALIZER,
  Reason,
  RequestPhase,
  isAbnormal,
  type AppBinding,
  type DatabaseAccessRequest,
  type EventReason,
} from '../../api/index.ts';
import {
  DONE,
  PatchType,
  RetryableError,
  TerminalError,
  addFinalizer,
  describeError,
  isNotFound,
  patchStatus,
  removeFinalizer,
  requeueAfter,
  type EventRecorder,
  type AuditRecord,
  type ReconcileContext,
  type ResourceType,
  type Result,
} from '../../lib/runtime/index.ts';
import type { ControllerContext } from '../shared/context.ts';
import { DATABASE_ACCESS_REQUESTS } from '../shared/resources.ts';
import { desiredStatus, explain, type StatusUpdate } from '../shared/report.ts';
import type { VaultConnection } from '../shared/vault-connections.ts';
import { ReferenceNotAllowed } from '../shared/references.ts';
import { auditRecord, auditSuffix, pendingDeadlineMs } from './approval.ts';
import { renewFraction, renewalDue } from './decide.ts';
import { clearSecret, rerenderSecret } from './credential-secret.ts';
import { ensureGrants } from './grants.ts';
import { issueCredential, sweep } from './issuance.ts';
import type { LeaseOps } from './lease-ops.ts';
import type { RequestMemory } from './memory.ts';
import type { LeaseMetrics } from './metrics.ts';
import type { Failure, Observed, RenewalAnswer } from './observe.ts';
import {
  RETRY_MS,
  failureStatus,
  foldIssued,
  type Issued,
  foldPreviousRevoked,
  foldRestarted,
  foldRevocationsDone,
  type EventIntent,
  type Plan,
  type Revocation,
  type Step,
} from './plan.ts';
import type { RevocationTarget } from './revocation.ts';

type Status = NonNullable<DatabaseAccessRequest['status']>;
type Ref = { namespace?: string; name: string };

/** What the steps act through. */
export interface RequestEffects {
  c: ControllerContext;
  leases: LeaseOps;
  memory: RequestMemory;
  metrics: LeaseMetrics;
  events: EventRecorder;
}

const WORKLOADS: Record<string, ResourceType> = {
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet' },
  DaemonSet: { group: 'apps', version: 'v1', plural: 'daemonsets', kind: 'DaemonSet' },
};

/** Reasons whose Event is part of the audit trail (who asked and decided, in its message and a log line). */
const AUDITED = new Set<string>([
  Reason.RevokedOnDemand,
  Reason.LeaseExpired,
  Reason.ApprovalTimedOut,
  Reason.ReasonRequired,
  Reason.SelfApprovalForbidden,
  Reason.NotEnoughApprovals,
  Reason.AccessDurationReached,
  Reason.RevocationFailed,
]);

/** Reasons recorded in the audit stream without changing their Event: a request starts waiting for a decision. */
const RECORDED = new Set<string>([Reason.WaitingForApproval]);

/** A step failed: what to record, and how to retry. */
class StepFailure extends Error {
  constructor(
    readonly failure: Failure & { revocation?: RevocationTarget; why?: string },
    override readonly cause: unknown,
  ) {
    super(failure.message);
  }
}

export class Pass {
  /** The request as last written (or observed). */
  current: DatabaseAccessRequest;
  private status: Status;
  private readonly initialConditions: NonNullable<Status['conditions']>;
  private readonly events: EventIntent[] = [];
  private requeueAtMs?: number;
  private revocationFailed = false;
  /** The credential this pass issued (or adopted), until its record is written. */
  private issued?: Issued;
  private plan?: Plan;

  constructor(
    private readonly o: Observed,
    private readonly fx: RequestEffects,
    private readonly ctx: ReconcileContext,
  ) {
    this.current = o.request;
    this.status = structuredClone(o.request.status ?? {}) as Status;
    this.initialConditions = o.request.status?.conditions ?? [];
  }

  /** Runs a plan's steps; returns a renewal's answer when the plan asks to be made again with it. */
  async run(plan: Plan): Promise<RenewalAnswer | undefined> {
    this.plan = plan;
    this.status = plan.status;
    this.events.push(...plan.events);
    this.requeueAtMs = plan.requeueAtMs;
    // Issuance latency is measured from the first pass that saw the request approved and waiting for a credential.
    if (plan.awaitingFirstIssue)
      this.fx.memory.approvalSeenAt(this.current.metadata.uid ?? '', this.ctx.now().getTime());
    if (plan.failure) throw new StepFailure(plan.failure, undefined);
    let answer: RenewalAnswer | undefined;
    for (const step of plan.steps) answer = (await this.step(step)) || answer;
    if (!plan.replan) {
      if (plan.onSuccess) this.apply(plan.onSuccess);
      this.events.push(...(plan.eventsOnSuccess ?? []));
      if (!this.revocationFailed && plan.steps.some((s) => s.kind === 'revokeLease')) {
        const done = foldRevocationsDone(this.status);
        if (done) this.apply(done);
      }
    }
    return answer;
  }

  /** Ends a pass whose steps all ran: the status write, Events, audit records, memory; when to run again. */
  async finish(): Promise<Result> {
    const plan = this.plan!;
    const dar = this.current;
    const uid = dar.metadata.uid ?? '';
    const released = plan.steps.some((s) => s.kind === 'releaseFinalizer');
    if (!released) await (this.issued ? this.recordIssued(this.issued) : this.write());
    this.emitAll();
    if (released) this.fx.memory.forget(uid);
    else if (plan.forget) this.fx.memory.ended(uid);
    this.report(released);
    if (this.requeueAtMs === undefined) return DONE;
    return requeueAfter(Math.max(0, this.requeueAtMs - this.ctx.now().getTime()));
  }

  /**
   * The write that records an issued credential. Its lease is live and in the Secret: a conflict (someone edited
   * the request meanwhile) must not leave it unrecorded, so the record is folded again into a fresh read and
   * written, as long as the request still shows this pass's attempt.
   */
  private async recordIssued(issued: Issued): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.write();
        return;
      } catch (err) {
        if (!(err instanceof RetryableError && err.reason === 'Conflict') || attempt >= 3) throw err;
        const fresh = await this.fx.c.kube.get<DatabaseAccessRequest>(
          DATABASE_ACCESS_REQUESTS,
          this.current.metadata.namespace ?? '',
          this.current.metadata.name ?? '',
          this.ctx,
        );
        if (fresh.status?.issuance?.attempt !== this.status.issuance?.attempt) throw err;
        this.current = fresh;
        this.status = structuredClone(fresh.status ?? {}) as Status;
        this.apply(
          foldIssued({ dar: fresh, status: this.status, issued, role: this.o.role, now: this.ctx.now() }).update,
        );
      }
    }
  }

  /**
   * Ends a pass that failed: a conflict is thrown as it is (the queue retries on fresh data); anything else is
   * recorded in status (failureStatus) with its Event, then thrown for the queue to retry, or as terminal.
   */
  async fail(err: unknown): Promise<never> {
    if (err instanceof RetryableError && err.reason === 'Conflict') throw err;
    const f: Failure & { revocation?: RevocationTarget; why?: string } =
      err instanceof StepFailure ? err.failure : this.issuanceFailure(err);
    const cause = err instanceof StepFailure ? err.cause : err;
    if (f.reason === 'InternalError') {
      // A bug, or an answer nobody expected: the log must show it.
      this.ctx.log.error('a pass over the request failed unexpectedly', {
        namespace: this.current.metadata.namespace,
        name: this.current.metadata.name,
        error: f.message,
      });
    }
    const rotation =
      this.status.rotation?.requestedAt && !this.status.rotation.completedAt ? this.status.rotation : undefined;
    if (rotation && f.revocation === undefined)
      this.fx.metrics.rotations.labels(rotation.reason ?? 'unknown', 'error').inc();
    this.apply(failureStatus(this.current, this.status, { ...f, cause }));
    await this.write().catch((e) =>
      this.ctx.log.warn('could not record a failure in status', {
        error: describeError(e),
        namespace: this.current.metadata.namespace,
      }),
    );
    this.emitAll();
    this.report();
    if (f.terminal) throw new TerminalError(f.reason, f.message);
    throw new RetryableError(f.reason, f.message, {
      cause,
      retryAfterMs: f.retryAfterMs ?? (explain(cause).retryable ? 10_000 : 60_000),
    });
  }

  /**
   * Tells the request gauges (metrics.ts) what this pass left it as: its phase; waiting for a decision (since its
   * creation, until its role's pendingTTL runs out); its live lease's expiry and, when the operator keeps it alive,
   * when it is due for renewal. A request whose finalizer this pass released is gone from them.
   */
  private report(released = false): void {
    const dar = this.current;
    const namespace = dar.metadata.namespace ?? '';
    const name = dar.metadata.name ?? '';
    if (released) return this.fx.metrics.forget(namespace, name);
    const ended = !!this.plan?.forget || !!dar.metadata.deletionTimestamp;
    const lease = this.status.lease;
    this.fx.metrics.record({
      namespace,
      name,
      phase: this.status.phase,
      pending: ended ? undefined : this.pendingTimes(),
      lease: !ended && lease?.expiresAt ? { expiresAt: lease.expiresAt, renewalDueMs: this.renewalDueMs() } : undefined,
    });
  }

  /** A request waiting for a decision: since its creation, until its role's pendingTTL runs out (ms). */
  private pendingTimes(): { sinceMs: number; deadlineMs: number } | undefined {
    const dar = this.current;
    if (this.o.stage !== 'waitForApproval' || this.status.phase !== RequestPhase.WaitingForApproval) return undefined;
    const deadlineMs = pendingDeadlineMs(dar, this.o.role);
    const sinceMs = new Date(dar.metadata.creationTimestamp as unknown as string).getTime();
    return deadlineMs === undefined ? undefined : { sinceMs, deadlineMs };
  }

  /** When the recorded lease is due for renewal (ms), if the operator keeps it alive (not renew: false, not refused). */
  private renewalDueMs(): number | undefined {
    const dar = this.current;
    const lease = this.status.lease;
    const expiresAtMs = Date.parse(lease?.expiresAt ?? '');
    if (!lease || this.o.stage !== 'approved' || dar.spec.renew === false || this.o.refusal) return undefined;
    if (!Number.isFinite(expiresAtMs)) return undefined;
    return renewalDue(lease, expiresAtMs, {
      fraction: renewFraction(dar, this.o.role),
      uid: dar.metadata.uid ?? '',
      nowMs: this.ctx.now().getTime(),
    }).dueMs;
  }

  // ---- steps ---------------------------------------------------------------------------------------------

  private async step(s: Step): Promise<RenewalAnswer | void> {
    const { c } = this.fx;
    const ctx = this.ctx;
    switch (s.kind) {
      case 'addFinalizer': {
        const before = this.current.metadata.resourceVersion;
        const { object, changed } = await addFinalizer(c.kube, DATABASE_ACCESS_REQUESTS, this.current, FINALIZER, ctx);
        this.current = object;
        if (changed) this.fx.memory.wrote(before, object);
        return;
      }
      case 'releaseFinalizer': {
        const obj = (await removeFinalizer(c.kube, DATABASE_ACCESS_REQUESTS, this.current, FINALIZER, ctx)).object;
        this.current = (await removeFinalizer(c.kube, DATABASE_ACCESS_REQUESTS, obj, KUBEVAULT_FINALIZER, ctx)).object;
        return;
      }
      case 'revokeLease':
        return this.revoke(s.revocation, s.stopOnFailure);
      case 'sweep': {
        const target = {
          key: `sweep/${this.current.metadata.uid}`,
          subject: 'a lease issued for this request before a restart and never recorded',
        };
        await this.guardRevocation(target, s.why, true, async () => {
          const session = await this.session(s.attempt.vaultAppBinding);
          if (!session)
            throw new RetryableError(
              Reason.ReferenceNotFound,
              'the Vault AppBinding the unfinished issuance used is gone',
            );
          await sweep(s.attempt, {
            vault: { client: session.client, signal: ctx.signal },
            leases: this.fx.leases,
            recordedLeases: () => this.recordedLeases(),
            dar: this.current,
            ctx,
          });
        });
        return;
      }
      case 'clearSecret':
        await clearSecret(c.kube, c.caches, this.current, ctx);
        return;
      case 'issue':
        return this.issue(s.order);
      case 'renewLease': {
        const ref = this.current.status?.issuance?.vaultAppBinding;
        const session = await this.session(ref);
        if (!session)
          throw new StepFailure(
            {
              reason: Reason.ReferenceNotFound,
              message: `the Vault AppBinding this request's lease was issued through is gone; cannot renew lease ${s.leaseId}`,
            },
            undefined,
          );
        const answer = await this.fx.leases.renew(
          { client: session.client, signal: ctx.signal },
          {
            uid: this.current.metadata.uid ?? '',
            leaseId: s.leaseId,
            askSeconds: s.askSeconds,
            termSeconds: s.termSeconds,
          },
        );
        if (answer.kind === 'failed') {
          ctx.log.warn('lease renewal failed', {
            namespace: this.current.metadata.namespace,
            name: this.current.metadata.name,
            leaseId: s.leaseId,
            failures: answer.failures,
            error: answer.message,
          });
        }
        return answer;
      }
      case 'ensureGrants': {
        const waitMs = await ensureGrants(
          { kube: c.kube, caches: c.caches, created: this.fx.memory.createdGrants },
          { ...this.current, status: this.status },
          ctx,
        );
        if (waitMs !== undefined)
          this.requeueAtMs = Math.min(this.requeueAtMs ?? Infinity, ctx.now().getTime() + waitMs);
        return;
      }
      case 'rerenderSecret': {
        const e = await rerenderSecret(c.kube, { ...this.current, status: this.status }, this.o.layout!, ctx);
        if (e) this.events.push(e);
        return;
      }
      case 'restartWorkloads':
        return this.restart(s.at);
    }
  }

  /** A lease revoked, or the failure recorded (Revoked False) with its retry scheduled; stops the pass when asked. */
  private async revoke(r: Revocation, stopOnFailure: boolean): Promise<void> {
    const ok = await this.guardRevocation(r.leaseId, r.why, stopOnFailure, async () => {
      const session = await this.session(r.vaultAppBinding);
      // Planned with its Vault AppBinding there; gone since: not revoked, so not done.
      if (!session)
        throw new RetryableError(
          Reason.ReferenceNotFound,
          `the Vault AppBinding lease ${r.leaseId} was issued through is gone`,
        );
      const outcome = await this.fx.leases.revoke(
        { client: session.client, signal: this.ctx.signal },
        r.leaseId,
        r.reason,
      );
      if (r.previous) {
        const { update, event } = foldPreviousRevoked(this.status, r, outcome);
        this.apply(update);
        this.events.push(event);
      }
    });
    if (ok && r.reason === 'revoke-now')
      this.ctx.log.info('revoked on demand', {
        namespace: this.current.metadata.namespace,
        name: this.current.metadata.name,
        leaseId: r.leaseId,
      });
  }

  private async guardRevocation(
    target: RevocationTarget,
    why: string,
    stopOnFailure: boolean,
    revoke: () => Promise<void>,
  ): Promise<boolean> {
    try {
      await revoke();
      if (typeof target !== 'string') this.fx.memory.revocationRetries.done(target.key);
      return true;
    } catch (err) {
      const key = typeof target === 'string' ? target : target.key;
      const nowMs = this.ctx.now().getTime();
      const delay = this.fx.memory.revocationRetries.failed(key, nowMs);
      const { reason, message } = explain(err);
      this.ctx.log.warn('lease not revoked, will retry', {
        namespace: this.current.metadata.namespace,
        name: this.current.metadata.name,
        leaseId: key,
        context: why,
        failures: this.fx.memory.revocationRetries.failures(key),
        retryInSeconds: Math.round(delay / 1000),
        error: message,
      });
      this.revocationFailed = true;
      const failure = { reason, message, retryAfterMs: delay, revocation: target, why };
      if (stopOnFailure) throw new StepFailure(failure, err);
      // Not in the way of the rest of the pass (a previous lease): recorded, and tried again when due.
      this.apply(failureStatus(this.current, this.status, { ...failure, cause: err }));
      this.requeueAtMs = Math.min(this.requeueAtMs ?? Infinity, nowMs + delay);
      return false;
    }
  }

  private async issue(order: Extract<Step, { kind: 'issue' }>['order']): Promise<void> {
    const { leases } = this.fx;
    const ctx = this.ctx;
    const session = await this.session(order.issuance.vaultAppBinding);
    if (!session)
      throw new StepFailure(
        {
          reason: Reason.ReferenceNotFound,
          message: `the Vault AppBinding ${order.issuance.vaultAppBinding?.name} is gone`,
        },
        undefined,
      );
    let rotation: Status['rotation'];
    const issued = await issueCredential(this.current, order, {
      session,
      leases,
      layout: this.o.layout!,
      ctx,
      recordedLeases: () => this.recordedLeases(),
      checkpoint: async (issuance, secretName) => {
        // The checkpoint: durable before Vault is asked, so a crash after it is found by the sweep. It carries
        // what the pass decided so far (a decision observed, a rotation started) in the same write.
        this.apply({ conditions: [], fields: { issuance, secret: { name: secretName } } });
        rotation = this.status.rotation;
        await this.write();
        return this.current;
      },
    });
    this.issued = issued;
    const { update, events, requeueAtMs, retired } = foldIssued({
      dar: this.current,
      status: this.status,
      issued,
      role: this.o.role,
      now: ctx.now(),
    });
    this.apply(update);
    this.events.push(...events);
    if (requeueAtMs !== undefined) this.requeueAtMs = Math.min(this.requeueAtMs ?? Infinity, requeueAtMs);
    const uid = this.current.metadata.uid ?? '';
    this.fx.memory.liveness.alive(uid, issued.leaseId, ctx.now().getTime()); // just issued (or looked up): no look-up needed
    const ns = this.current.metadata.namespace;
    if (rotation?.requestedAt && !rotation.completedAt) {
      this.fx.metrics.rotations.labels(rotation.reason ?? 'unknown', 'success').inc();
      ctx.log.info('rotated credential', {
        namespace: ns,
        name: this.current.metadata.name,
        leaseId: issued.leaseId,
        reason: rotation.reason,
        secret: issued.secretName,
      });
    } else {
      const seen = this.fx.memory.issuedFirst(uid);
      if (seen !== undefined && !issued.adopted)
        this.fx.metrics.issuanceLatency.observe(Math.max(0, ctx.now().getTime() - seen) / 1000);
      ctx.log.info('issued credential', {
        namespace: ns,
        name: this.current.metadata.name,
        leaseId: issued.leaseId,
        secret: issued.secretName,
        adopted: !!issued.adopted,
      });
    }
    // A retired lease is renewed to last until its revokeAt: the grace period is a promise to the clients still
    // using it, whatever was left of its term. Best effort: one at its max TTL can't be extended.
    for (const p of retired) {
      const left = p.revokeAt ? Math.ceil((Date.parse(p.revokeAt) - ctx.now().getTime()) / 1000) : NaN;
      if (!Number.isFinite(left) || left <= 0) continue;
      const s = await this.session(p.vaultAppBinding).catch(() => undefined);
      await s?.client.renewLease(p.id, left + 5, { signal: ctx.signal }).catch((err: unknown) =>
        ctx.log.debug('could not extend a retired lease for its grace period', {
          leaseId: p.id,
          error: explain(err).message,
        }),
      );
    }
  }

  /** After a rotation: each rolloutRestartTarget's pod template gets the rotation's time, once. */
  private async restart(at: string): Promise<void> {
    const dar = this.current;
    const ns = dar.metadata.namespace ?? '';
    const done: string[] = [];
    for (const t of dar.spec.rolloutRestartTargets ?? []) {
      const resource = WORKLOADS[t.kind];
      if (!resource) continue;
      const patch = { spec: { template: { metadata: { annotations: { [Annotations.restartedAt]: at } } } } };
      try {
        await this.fx.c.kube.patch(resource, ns, t.name, patch, PatchType.merge, this.ctx);
        done.push(`${t.kind}/${t.name}`);
      } catch (err) {
        if (isNotFound(err)) {
          this.events.push({
            type: 'Warning',
            reason: 'RolloutRestartFailed',
            message: `rolloutRestartTargets: ${t.kind} ${ns}/${t.name} does not exist; not restarted`,
          });
          continue;
        }
        this.events.push({
          type: 'Warning',
          reason: 'RolloutRestartFailed',
          message: `could not restart ${t.kind} ${ns}/${t.name}, will retry: ${explain(err).message}`,
        });
        // status.rotation.restartedAt stays unset: a later pass tries again (same value: one restart).
        this.requeueAtMs = Math.min(this.requeueAtMs ?? Infinity, this.ctx.now().getTime() + RETRY_MS);
        return;
      }
    }
    if (done.length)
      this.events.push({
        type: 'Normal',
        reason: 'RolloutRestartTriggered',
        message: `restarted ${done.join(', ')} for the credential rotated at ${at}`,
      });
    this.apply(foldRestarted(this.status, this.ctx.now()));
  }

  // ---- status, Events, audit -------------------------------------------------------------------------------

  private apply(update: StatusUpdate): void {
    this.status = desiredStatus({ ...this.current, status: this.status }, update, this.ctx.now()) as Status;
  }

  /** Writes the pass's status if it differs from the request's (resourceVersion-guarded). */
  private async write(): Promise<void> {
    const before = this.current.metadata.resourceVersion;
    const { object, changed } = await patchStatus(
      this.fx.c.kube,
      DATABASE_ACCESS_REQUESTS,
      this.current,
      this.status,
      this.ctx,
    );
    this.current = object;
    if (changed) this.fx.memory.wrote(before, object);
  }

  /**
   * The pass's Events: the ones decided (plan, step answers), and one for each transition of the request's
   * summary conditions (Available; Revoked while a revocation fails) that no decided Event already tells,
   * typed by whether it is bad news. Audited ones also name who asked and decided, and make an audit record.
   */
  private emitAll(): void {
    const after = this.status.conditions ?? [];
    const transitions: EventIntent[] = [];
    for (const type of [ConditionType.Available, ConditionType.Revoked]) {
      const now = after.find((c) => c.type === type);
      const before = this.initialConditions.find((c) => c.type === type);
      if (!now || (before && before.status === now.status && before.reason === now.reason)) continue;
      const told = [...this.events, ...transitions];
      if (told.some((e) => e.reason === now.reason || (now.status === 'True' && e.type === 'Normal'))) continue;
      transitions.push({
        type: isAbnormal(now, after) ? 'Warning' : 'Normal',
        reason: (now.reason ?? type) as EventReason,
        message: now.message ?? '',
        audit: AUDITED.has(now.reason ?? ''),
      });
    }
    const dar = { ...this.current, status: this.status };
    const at = this.ctx.now();
    // One record per fact: an action both planned and told by its condition's transition, in the same words, is one.
    const recorded = new Set<string>();
    const record = (action: string, message: string) => {
      const fact = `${action}\n${message}`;
      if (recorded.has(fact)) return;
      recorded.add(fact);
      this.fx.c.audit.record(auditRecord(dar, action, message, at) as AuditRecord);
    };
    // The plan's records first: a decision comes before what it led to (the credential's Event).
    for (const a of this.plan?.audits ?? []) record(a.action, a.message);
    for (const e of [...this.events, ...transitions]) {
      this.fx.events.event(dar, e.type, e.reason, e.audit ? `${e.message}${auditSuffix(dar)}` : e.message);
      if (e.audit || RECORDED.has(e.reason)) record(e.reason, e.message);
    }
    this.events.length = 0;
  }

  // ---- helpers ----------------------------------------------------------------------------------------------

  /** A failure on the way to a credential: its reason (Vault refusing to issue is KubeVault's FailedToGetCredential). */
  private issuanceFailure(err: unknown): Failure {
    const explained = explain(err);
    const reason =
      explained.reason === 'VaultServer' || explained.reason === 'VaultInvalid'
        ? Reason.FailedToGetCredential
        : explained.reason;
    return {
      reason,
      message: explained.message,
      terminal: err instanceof TerminalError && !(err instanceof ReferenceNotAllowed),
      ...(err instanceof ReferenceNotAllowed ? { retryAfterMs: 60_000 } : {}),
    };
  }

  /** The Vault session of an AppBinding a lease was (or is to be) issued through; undefined when it is gone. */
  private async session(ref: Ref | undefined): Promise<VaultConnection | undefined> {
    if (!ref) return undefined;
    const ab: AppBinding | undefined = this.fx.c.caches.appBindings.get(
      ref.namespace || this.current.metadata.namespace || '',
      ref.name,
    );
    return ab ? this.fx.c.connections.forAppBinding(ab, this.ctx.signal) : undefined;
  }

  /** Every lease id a request, a credential Secret or this process records: a sweep spares them. */
  private recordedLeases(): Set<string> {
    const { caches } = this.fx.c;
    const recorded = new Set<string>(this.fx.memory.issuedForOthers(this.current.metadata.uid ?? ''));
    for (const r of caches.requests.list()) {
      if (r.status?.lease?.id) recorded.add(r.status.lease.id);
      for (const p of r.status?.previousLeases ?? []) recorded.add(p.id);
    }
    for (const s of caches.secrets.list()) {
      const id = s.metadata?.annotations?.[Annotations.leaseId];
      if (id) recorded.add(id);
    }
    return recorded;
  }
}
