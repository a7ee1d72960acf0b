// How a request's access ends: revoked on request (the revoke-now annotation), run out (spec.renew false: phase
// Expired), or deleted (the finalizer stays until its leases are revoked: the one status records, the one its
// Secret names, the previous ones, and any an unfinished issuance attempt left behind; with the Vault
// AppBinding gone they are left to expire). Revoked and Expired keep the Secret, emptied.
//
// Each ends only once Vault has revoked every lease (or doesn't know it any more): until then the phase, the
// Secret and the finalizer stay as they are, the Revoked condition (False) says which lease and what Vault said,
// and the revocation is retried with backoff (revocation.ts).
import { ConditionType, FINALIZER, KUBEVAULT_FINALIZER, Reason, RequestPhase, type DatabaseAccessRequest } from '../../api/index.ts';
import { DONE, PatchType, RetryableError, hasFinalizer, removeFinalizer, type ConditionInput, type ReconcileContext, type Result } from '../../lib/runtime/index.ts';
import type { StatusUpdate } from '../shared/report.ts';
import { DATABASE_ACCESS_REQUESTS, SECRETS } from '../shared/resources.ts';
import { DATA_DIGEST_ANNOTATION } from '../shared/secret-integrity.ts';
import type { RequestControllerState } from './controller-state.ts';
import { LEASE_ID_ANNOTATION, ownedSecret, secretPresent } from './credential-secret.ts';
import { sweep } from './issuance.ts';
import type { RevocationReason } from './metrics.ts';
import { attemptRevocation, revokeCounted, revokePrevious } from './revocation.ts';

/** What ending a request's access leaves in status, and how hard to try with Vault. */
interface Ending {
  phase: RequestPhase;
  reason: RevocationReason;
  /** Why the leases go, for the condition and Events. */
  why: string;
  conditions: ConditionInput[];
  /** Conditions the end makes moot (a failed revocation's, once it succeeded). */
  dropConditions?: StatusUpdate['dropConditions'];
  /** Without the Vault AppBinding the lease was issued through: wait for it (on request), or leave the lease to
   * run out (it ran out anyway). A Vault that answers must have revoked every lease, either way. */
  strict: boolean;
}

/**
 * Revokes the request's leases, empties its Secret and records the final phase; DONE then. A lease Vault didn't
 * revoke leaves everything as it was but the Revoked condition, and the Result retries it with backoff.
 */
async function endAccess(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext, end: Ending): Promise<Result> {
  const leaseId = dar.status?.lease?.id;
  if (leaseId) {
    const retry = await attemptRevocation(state, dar, ctx, leaseId, end.why, async () => {
      const conn = await state.connectionOf(dar, ctx);
      if (conn) await revokeCounted(state, conn.client, leaseId, end.reason);
      else if (end.strict) throw new RetryableError(Reason.ReferenceNotFound, `cannot reach the Vault lease ${leaseId} was issued through`);
    });
    if (retry) return retry;
  }
  for (const p of dar.status?.previousLeases ?? []) {
    const retry = await attemptRevocation(state, dar, ctx, p.id, end.why, () => revokePrevious(state, dar, p, ctx, end.reason, end.why));
    if (retry) return retry;
  }
  await clearSecret(state, dar, ctx);
  await state.write(dar, ctx, { phase: end.phase, remove: ['previousLeases'], conditions: end.conditions, dropConditions: end.dropConditions });
  state.forget(dar);
  return DONE;
}

export async function revokeNow(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
  const leaseId = dar.status?.lease?.id;
  const result = await endAccess(state, dar, ctx, {
    phase: RequestPhase.Revoked, reason: 'revoke-now', why: 'revoked on request', strict: true,
    conditions: [
      { type: ConditionType.Available, status: 'False', reason: Reason.RevokedOnDemand, message: 'the lease was revoked on request; the credential no longer works' },
      { type: ConditionType.Revoked, status: 'True', reason: Reason.RevokedOnDemand, message: leaseId ? `lease ${leaseId} revoked` : 'nothing had been issued' },
    ],
  });
  if (result === DONE) ctx.log.info('revoked on demand', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId });
  return result;
}

/**
 * spec.renew false and the term is over. Vault ends the lease by its own clock, status keeps times to the second,
 * and dropping the login in the database takes a moment: revoking makes sure the login is dead once the phase
 * says Expired. Anything rotated out before is ended too.
 */
export async function expire(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
  const leaseId = dar.status?.lease?.id;
  return endAccess(state, dar, ctx, {
    phase: RequestPhase.Expired, reason: 'expiry', why: 'the request expired', strict: false,
    conditions: [
      { type: ConditionType.Available, status: 'False', reason: Reason.LeaseExpired, message: 'the lease ran out (spec.renew is false); the credential was removed from the Secret' },
      { type: ConditionType.Expired, status: 'True', reason: Reason.LeaseExpired, message: `lease ${leaseId ?? ''} expired` },
    ],
    dropConditions: [ConditionType.Revoked],
  });
}

/** Removes every key from the Secret: the credential and everything rendered from it (the Secret stays). */
export async function clearSecret(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<void> {
  const name = dar.status?.secret?.name;
  if (!name || !(await secretPresent(state, dar, ctx))) return;
  // The digest goes with the data: an emptied Secret is not a credential changed by hand.
  await state.c.kube.patch(SECRETS, dar.metadata.namespace ?? '', name, { data: null, metadata: { annotations: { [DATA_DIGEST_ANNOTATION]: null } } }, PatchType.merge, ctx);
}

// ---- deletion -------------------------------------------------------------------------------------------

export async function finalize(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
  state.forget(dar);
  if (!hasFinalizer(dar, FINALIZER) && !hasFinalizer(dar, KUBEVAULT_FINALIZER)) return DONE;
  const conn = await state.connectionOf(dar, ctx);
  const leaseIds = new Set<string>();
  if (dar.status?.lease?.id) leaseIds.add(dar.status.lease.id);
  const annotated = ownedSecret(state, dar)?.metadata?.annotations?.[LEASE_ID_ANNOTATION];
  if (annotated) leaseIds.add(annotated);
  const previous = (dar.status?.previousLeases ?? []).filter((p) => !leaseIds.has(p.id));
  const why = 'the request is being deleted';
  if (conn) {
    for (const id of leaseIds) {
      const retry = await attemptRevocation(state, dar, ctx, id, why, () => revokeCounted(state, conn.client, id, 'deletion'));
      if (retry) return retry;
    }
    const attempt = dar.status?.issuance;
    if (attempt?.attempt && !attempt.completed) {
      const orphans = { key: `sweep/${dar.metadata.uid}`, subject: 'a lease issued for this request before a restart and never recorded' };
      const retry = await attemptRevocation(state, dar, ctx, orphans, why, () => sweep(state, dar, attempt, conn.client, ctx));
      if (retry) return retry;
    }
    if (leaseIds.size > 0) state.events.event(dar, 'Normal', 'LeaseRevoked', `revoked lease ${[...leaseIds].join(', ')}`);
  } else if (leaseIds.size > 0) {
    state.events.event(dar, 'Warning', 'LeaseNotRevoked', `the Vault AppBinding is gone: lease ${[...leaseIds].join(', ')} is left to expire`);
  }
  for (const p of previous) {
    const retry = await attemptRevocation(state, dar, ctx, p.id, why, () => revokePrevious(state, dar, p, ctx, 'deletion', why));
    if (retry) return retry;
  }
  const obj = (await removeFinalizer(state.c.kube, DATABASE_ACCESS_REQUESTS, dar, FINALIZER, ctx)).object;
  await removeFinalizer(state.c.kube, DATABASE_ACCESS_REQUESTS, obj, KUBEVAULT_FINALIZER, ctx);
  return DONE;
}

