// A recorded lease, kept alive for as long as the request exists: renewed before it runs out, rotated (a fresh
// credential in the same Secret) when Vault won't renew it any further, or, with spec.renew false, left to run
// out at its TTL (phase Expired, credential removed from the Secret).
//
// Rotation is issuance again, with the old lease kept: one status write (resourceVersion precondition) moves
// status.lease to status.previousLeases (no revokeAt yet) and marks status.rotation under way; issuance
// (issuance.ts) then writes the new credential into the same Secret (annotated leasehold.dev/rotated-at).
// Recording it sets each previous lease's revokeAt to now + spec.rotationGracePeriod; a later pass revokes it
// then, and deletion revokes it too. So a rotation makes exactly one new lease, the old one is never revoked before the
// new one is in the Secret, and none is left unrecorded. Rotations happen when a renewal comes back truncated
// (max TTL), is refused, or finds the lease gone (revoked out of band); when the lease ran out or is not
// renewable; when the Secret was deleted; and once per new value of the rotate-now annotation (the value handled
// is written in the same status write that starts the rotation). rolloutRestartTargets get the rotation's time
// in a pod-template annotation afterwards; status.rotation.restartedAt records that it was done, and the value
// is the same on a retry, so a workload is restarted once per rotation.
//
// Status tells the truth: a lease revoked in Vault behind the operator's back is found by looking it up (once
// after a start, then at most once per resync period: lease-liveness.ts) and rotated (LeaseRevoked); a Secret
// whose credential was changed or removed by hand is rotated (SecretModified), one whose other keys were is
// rendered again from its credential (both seen from the cache: shared/secret-integrity.ts).
import {
  Annotations, ConditionType, Reason, formatDuration, type DatabaseAccessRequest, type PostgresRole,
} from '../../api/index.ts';
import {
  DONE, PatchType, RetryableError, isNotFound, patchStatus, requeueAfter, rfc3339, type ConditionInput, type ReconcileContext, type ResourceType, type Result,
} from '../../lib/runtime/index.ts';
import { VaultRequestError } from '../../lib/vault/errors.ts';
import { desiredStatus, explain } from '../shared/report.ts';
import { roleReferenceRefusal } from '../shared/role-target.ts';
import { DATABASE_ACCESS_REQUESTS } from '../shared/resources.ts';
import type { RequestControllerState } from './controller-state.ts';
import { reportTemplateProblems, rerender, secretDrift, secretLayout, secretPresent } from './credential-secret.ts';
import {
  DEFAULT_RENEW_FRACTION, MAX_PREVIOUS_LEASES, RotationReason, addPrevious, duePrevious, earliest, leaseStep, renewalTruncated, rotateRequestToken,
  rotateRequested, type PreviousLease,
} from './decide.ts';
import { expire } from './ending.ts';
import { ensureGrants } from './grants.ts';
import { requestedTtlSeconds } from './issuance.ts';
import type { Liveness } from './lease-liveness.ts';
import { notRevokedCondition, revocationFailing, revokePrevious, scheduleRevocationRetry } from './revocation.ts';

/** A failed renewal or rollout restart is retried after at most this long. */
const RETRY_MS = 30_000;
/** A lease this close to its recorded end (or 10 % of its term, if more) is not looked up: see leaseLiveness. */
const LIVENESS_END_MARGIN_MS = 5_000;

const WORKLOADS: Record<string, ResourceType> = {
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet' },
  DaemonSet: { group: 'apps', version: 'v1', plural: 'daemonsets', kind: 'DaemonSet' },
};

/** A maintenance pass either ends with a result, or started a rotation and hands the request on to issuance. */
export type Next = { done: Result } | { issue: DatabaseAccessRequest };

export async function maintain(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Next> {
  const lease = dar.status!.lease!;
  if (!(await secretPresent(state, dar, ctx))) {
    // Its credential left the cluster with it; running pods may still hold it, hence the usual grace period.
    return rotate(state, dar, ctx, RotationReason.SecretDeleted, `Secret ${dar.status?.secret?.name} was deleted`);
  }
  // The operator never keeps the password: a credential changed by hand can only be replaced.
  const drift = await secretDrift(state, dar, ctx);
  if (drift === 'credential') {
    return rotate(state, dar, ctx, RotationReason.SecretModified, `the username or password in Secret ${dar.status?.secret?.name} was changed or removed by hand`, {}, { broken: true });
  }
  if ((await leaseLiveness(state, dar, ctx)) === 'gone') {
    return rotate(state, dar, ctx, RotationReason.LeaseRevoked, `lease ${lease.id} no longer exists in Vault (revoked outside Leasehold?)`, {}, { leaseGone: true, broken: true });
  }
  await ensureGrants(state, dar, ctx);
  dar = await revokeDuePrevious(state, dar, ctx);
  dar = await restartTargets(state, dar, ctx);
  const role = state.cachedRole(dar);
  // Tenancy: once a namespace the role's references point into stops admitting the role's namespace, nothing
  // more comes of the request (no renewal, no rotation): its lease runs out at its current expiry. Revoking
  // still works (deletion, revoke-now, previous leases).
  const refused = role ? roleReferenceRefusal(role, state.c.caches, state.c.clusterName) : undefined;
  // Without its role (or with a template that can't render) nothing new can be issued: keep the lease alive
  // as long as Vault allows and rotate once it can.
  const layout = role && !refused ? secretLayout(state, dar, role) : undefined;
  const canIssue = !!layout && layout.problems.length === 0;
  if (refused) {
    dar = await state.write(dar, ctx, {
      conditions: [{ type: ConditionType.Available, status: 'False', reason: Reason.ReferenceNotAllowed,
        message: `lease ${lease.id} is not renewed and ends at ${lease.expiresAt ?? 'its expiry'}; nothing new is issued: ${refused.message}` }],
    });
  } else if (layout && !canIssue) {
    dar = await reportTemplateProblems(state, dar, layout, ctx);
  } else if (layout) {
    dar = await rerender(state, dar, layout, ctx, drift === 'layout');
    dar = await markAvailable(state, dar, ctx);
  }

  const token = rotateRequestToken(dar.metadata.annotations?.[Annotations.rotateNow]);
  if (canIssue && rotateRequested(token, dar.status?.lastRotateRequest)) {
    return rotate(state, dar, ctx, RotationReason.RotateRequested, `the ${Annotations.rotateNow} annotation asked for it`, { lastRotateRequest: token });
  }
  const now = ctx.now().getTime();
  const step = leaseStep(lease, { renew: dar.spec.renew !== false, fraction: fraction(dar, role), uid: dar.metadata.uid ?? '', nowMs: now });
  switch (step.kind) {
    case 'expire':
      return { done: await expire(state, dar, ctx) };
    case 'rotate':
      // A lease that ran out is dead anyway; one that still works is kept until a new one can be issued.
      if (canIssue || step.reason === RotationReason.LeaseExpired) return rotate(state, dar, ctx, step.reason, step.message);
      return { done: wake(state, dar, role, ctx, now + RETRY_MS) };
    case 'renew': {
      if (!refused) return renew(state, dar, role, step.askSeconds, canIssue, ctx);
      const left = Date.parse(lease.expiresAt ?? '') - now;
      return { done: requeueAfter(Math.max(1000, Math.min(RETRY_MS * 2, Number.isFinite(left) ? left : RETRY_MS * 2))) };
    }
    case 'wait':
      return { done: wake(state, dar, role, ctx) };
  }
}

/**
 * Whether the recorded lease still exists in Vault, when it is due for a look (lease-liveness.ts); 'alive' when
 * not due, and when the lease's own schedule is about to ask Vault anyway (renewal, expiry). 'unknown' when Vault
 * couldn't be asked: the lease is kept, and looked at again later.
 */
async function leaseLiveness(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Liveness> {
  const lease = dar.status!.lease!;
  const uid = dar.metadata.uid ?? '';
  const now = ctx.now().getTime();
  if (!state.liveness.due(uid, lease.id!, now)) return 'alive';
  const step = leaseStep(lease, { renew: dar.spec.renew !== false, fraction: fraction(dar, state.cachedRole(dar)), uid, nowMs: now });
  if (step.kind !== 'wait') return 'alive';
  // Near its end a lease may already be gone by Vault's clock: Vault's expiry runs ahead of status.lease.expiresAt
  // by the time issuance or renewal took to be recorded. That is the lease running out (expiry, or a rotation at
  // max TTL), the schedule's business: not a revocation behind our back.
  const expiresAtMs = Date.parse(lease.expiresAt ?? '');
  const durationMs = Number.isFinite(Date.parse(lease.issuedAt ?? '')) ? expiresAtMs - Date.parse(lease.issuedAt ?? '') : NaN;
  if (Number.isFinite(expiresAtMs) && expiresAtMs - now <= Math.max(LIVENESS_END_MARGIN_MS, Number.isFinite(durationMs) ? durationMs * 0.1 : 0)) return 'alive';
  const ref = dar.status?.issuance?.vaultAppBinding;
  const conn = await state.connectionOf(dar, ctx).catch(() => undefined);
  if (!conn || !ref) {
    state.liveness.retryLater(uid, lease.id!, now);
    return 'unknown';
  }
  const found = await state.liveness.check(uid, lease.id!, conn.client, `${ref.namespace || dar.metadata.namespace}/${ref.name}`, () => ctx.now().getTime());
  if (found === 'unknown') ctx.log.debug('could not look the lease up in Vault; will try again', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId: lease.id });
  return found;
}

function fraction(dar: DatabaseAccessRequest, role: PostgresRole | undefined): number {
  return dar.spec.renewFraction ?? role?.spec.renewFraction ?? DEFAULT_RENEW_FRACTION;
}

/** Requeue at the next thing due: a renewal or expiry, a previous lease's revocation (or its retry, after a
 * failure), a pending restart. */
export function wake(state: RequestControllerState, dar: DatabaseAccessRequest, role: PostgresRole | undefined, ctx: ReconcileContext, atMs?: number): Result {
  const now = ctx.now().getTime();
  const lease = dar.status?.lease;
  let stepAt: number | undefined;
  if (lease?.id) {
    const step = leaseStep(lease, { renew: dar.spec.renew !== false, fraction: fraction(dar, role), uid: dar.metadata.uid ?? '', nowMs: now });
    stepAt = step.kind === 'wait' ? step.atMs : now;
  }
  const rotation = dar.status?.rotation;
  const restartDue = rotation?.completedAt && !rotation.restartedAt && (dar.spec.rolloutRestartTargets ?? []).length > 0 ? now + RETRY_MS : undefined;
  const previous = duePrevious(dar.status?.previousLeases ?? [], now);
  // A due lease is tried now, or when its retry is due if Vault didn't revoke it last time.
  const retry = earliest(...previous.due.map((p) => Math.max(now, state.revocationRetries.retryAtMs(p.id) ?? now)));
  const at = earliest(atMs, stepAt, retry, previous.nextAtMs, restartDue);
  return at === undefined ? DONE : requeueAfter(Math.max(0, at - now));
}

async function renew(state: RequestControllerState, dar: DatabaseAccessRequest, role: PostgresRole | undefined, askSeconds: number, canIssue: boolean, ctx: ReconcileContext): Promise<Next> {
  const lease = dar.status!.lease!;
  const uid = dar.metadata.uid ?? '';
  const conn = await state.connectionOf(dar, ctx);
  if (!conn) throw new RetryableError(Reason.ReferenceNotFound, `the Vault AppBinding this request's lease was issued through is gone; cannot renew lease ${lease.id}`);
  const asked = (role ? requestedTtlSeconds(dar, role) : undefined) ?? askSeconds;
  let granted: number;
  try {
    granted = (await conn.client.renewLease(lease.id!, asked)).leaseDurationSeconds;
  } catch (err) {
    if (err instanceof VaultRequestError && (err.kind === 'Invalid' || err.kind === 'NotFound')) {
      state.metrics.renewals.labels('refused').inc();
      state.renewalFailures.delete(uid);
      const info = await conn.client.lookupLease(lease.id!).catch(() => null);
      if (info === undefined) {
        return rotate(state, dar, ctx, RotationReason.LeaseRevoked, `lease ${lease.id} no longer exists in Vault (revoked outside Leasehold?)`, {}, { leaseGone: true, broken: true });
      }
      return rotate(state, dar, ctx, RotationReason.RenewalRefused, `Vault refused to renew lease ${lease.id} (${err.detail})`);
    }
    // Vault unreachable, sealed, or denying us: the credential still works until it expires; keep trying.
    state.metrics.renewals.labels('error').inc();
    const failures = (state.renewalFailures.get(uid) ?? 0) + 1;
    state.renewalFailures.set(uid, failures);
    if (failures === 1) state.events.event(dar, 'Warning', 'LeaseRenewalFailed', `could not renew lease ${lease.id}, retrying until it expires at ${lease.expiresAt}: ${explain(err).message}`);
    ctx.log.warn('lease renewal failed', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId: lease.id, failures, error: explain(err).message });
    const left = Date.parse(lease.expiresAt ?? '') - ctx.now().getTime();
    return { done: requeueAfter(Math.max(1000, Math.min(RETRY_MS, Number.isFinite(left) ? left / 4 : RETRY_MS))) };
  }
  state.liveness.alive(uid, lease.id!, ctx.now().getTime());
  const truncated = renewalTruncated(asked, granted, askSeconds);
  state.metrics.renewals.labels(truncated ? 'truncated' : 'success').inc();
  const failures = state.renewalFailures.get(uid);
  if (failures) {
    state.renewalFailures.delete(uid);
    state.events.event(dar, 'Normal', Reason.LeaseRenewed, `renewed lease ${lease.id} again after ${failures} failed attempt${failures === 1 ? '' : 's'}`);
  }
  if (truncated && canIssue) {
    return rotate(state, dar, ctx, RotationReason.RenewalTruncated, `Vault renewed lease ${lease.id} for ${granted}s of the ${asked}s asked (max TTL reached)`);
  }
  const now = ctx.now();
  const expiresAt = rfc3339(new Date(now.getTime() + granted * 1000));
  const status = desiredStatus(dar, { conditions: [], fields: { lease: { ...lease, duration: formatDuration(granted), lastRenewalTime: rfc3339(now), expiresAt } } }, now);
  dar = (await patchStatus(state.c.kube, DATABASE_ACCESS_REQUESTS, dar as never, status, ctx)).object as DatabaseAccessRequest;
  state.metrics.setExpiry(dar.metadata.namespace ?? '', dar.metadata.name ?? '', expiresAt);
  return { done: wake(state, dar, role, ctx) };
}

/**
 * Starts a rotation: one status write moves the lease to previousLeases (revoked a grace period after its
 * successor is in the Secret) and marks the rotation under way; the caller then issues the new credential.
 * `leaseGone`: Vault no longer has the lease, so there is nothing to keep for a grace period or to revoke.
 * `broken`: the Secret's credential doesn't work (a dead lease, a password changed by hand): Available turns False.
 */
async function rotate(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext, reason: RotationReason, message: string,
  extra: Record<string, unknown> = {}, opts: { leaseGone?: boolean; broken?: boolean } = {}): Promise<Next> {
  const st = dar.status!;
  const lease = st.lease;
  let previous: PreviousLease[] = st.previousLeases ?? [];
  let overflow: PreviousLease[] = [];
  if (lease?.id && !opts.leaseGone) ({ previous, overflow } = addPrevious(previous, { id: lease.id, ...(st.issuance?.vaultAppBinding ? { vaultAppBinding: st.issuance.vaultAppBinding } : {}) }));
  // One that can't be revoked now stays recorded (over the cap): it is revoked when its grace period ends.
  const unrevoked: PreviousLease[] = [];
  for (const p of overflow) {
    await revokePrevious(state, dar, p, ctx, 'rotation', `more than ${MAX_PREVIOUS_LEASES} rotations within a grace period`).catch(() => unrevoked.push(p));
  }
  previous = [...unrevoked, ...previous];
  const notAfter = dar.spec.renew === false && lease?.expiresAt ? lease.expiresAt : undefined;
  const now = ctx.now();
  dar = await state.write(dar, ctx, {
    // A dead lease, or a credential broken by hand: Available says so until the new credential is in the Secret.
    conditions: opts.broken ? [{ type: ConditionType.Available, status: 'False', reason, message: `${message}; issuing a new credential` }] : [],
    remove: ['lease'],
    fields: {
      previousLeases: previous.length ? previous : undefined,
      rotation: { reason, message: message.slice(0, 1000), requestedAt: rfc3339(now), ...(notAfter ? { notAfter } : {}) },
      issuance: { ...st.issuance!, completed: false, attempt: undefined, startedAt: undefined },
      ...extra,
    },
  });
  ctx.log.info('rotating credential', { namespace: dar.metadata.namespace, name: dar.metadata.name, reason, leaseId: lease?.id });
  return { issue: dar };
}

/**
 * Revokes the previous leases whose grace period is over. One Vault didn't revoke stays in previousLeases, the
 * Revoked condition (False) says so, and wake() brings the request back when its retry is due; once every due
 * lease is revoked, that condition goes.
 */
export async function revokeDuePrevious(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
  const { due, keep } = duePrevious(dar.status?.previousLeases ?? [], ctx.now().getTime());
  if (due.length === 0) return dar;
  const why = 'the rotation\'s grace period is over';
  const failed: PreviousLease[] = [];
  let failure: ConditionInput | undefined;
  for (const p of due) {
    try {
      await revokePrevious(state, dar, p, ctx, 'rotation', why);
    } catch (err) {
      failed.push(p);
      scheduleRevocationRetry(state, dar, ctx, p.id, err, why);
      failure ??= notRevokedCondition(p.id, err, why);
    }
  }
  const left = [...keep, ...failed];
  return state.write(dar, ctx, {
    conditions: failure ? [failure] : [],
    dropConditions: !failure && revocationFailing(dar) ? [ConditionType.Revoked] : undefined,
    fields: { previousLeases: left.length ? left : undefined },
  });
}

/** After a rotation: patch each rolloutRestartTarget's pod template with the rotation's time, once. */
export async function restartTargets(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
  const rotation = dar.status?.rotation;
  const targets = dar.spec.rolloutRestartTargets ?? [];
  if (!rotation?.completedAt || rotation.restartedAt || targets.length === 0) return dar;
  const ns = dar.metadata.namespace ?? '';
  const done: string[] = [];
  for (const t of targets) {
    const resource = WORKLOADS[t.kind];
    if (!resource) continue;
    const patch = { spec: { template: { metadata: { annotations: { [Annotations.restartedAt]: rotation.completedAt } } } } };
    try {
      await state.c.kube.patch(resource, ns, t.name, patch, PatchType.merge, ctx);
      done.push(`${t.kind}/${t.name}`);
    } catch (err) {
      if (isNotFound(err)) {
        state.events.event(dar, 'Warning', 'RolloutRestartFailed', `rolloutRestartTargets: ${t.kind} ${ns}/${t.name} does not exist; not restarted`);
        continue;
      }
      state.events.event(dar, 'Warning', 'RolloutRestartFailed', `could not restart ${t.kind} ${ns}/${t.name}, will retry: ${explain(err).message}`);
      return dar; // status.rotation.restartedAt stays unset: the next pass tries again (same value: one restart)
    }
  }
  if (done.length) state.events.event(dar, 'Normal', 'RolloutRestartTriggered', `restarted ${done.join(', ')} for the credential rotated at ${rotation.completedAt}`);
  return state.write(dar, ctx, { conditions: [], fields: { rotation: { ...rotation, restartedAt: rfc3339(ctx.now()) } } });
}

/** Available back to True once whatever made it False (a template, a failed rotation) is over. */
async function markAvailable(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
  const available = (dar.status?.conditions ?? []).find((c) => c.type === ConditionType.Available);
  if (available?.status === 'True') return dar;
  return state.write(dar, ctx, {
    conditions: [{ type: ConditionType.Available, status: 'True', reason: Reason.SuccessfullyIssuedCredential, message: `credential in Secret ${dar.status?.secret?.name}; lease ${dar.status?.lease?.id}` }],
  });
}

