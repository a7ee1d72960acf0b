// How a request's access ends: revoked on request (the revoke-now annotation), run out (spec.renew false: phase
// Expired), or deleted (the finalizer stays until its leases are revoked: the one status records, the one its
// Secret names, the previous ones, and any an unfinished issuance attempt left behind; with the Vault
// AppBinding gone they are left to expire). Revoked and Expired keep the Secret, emptied.
import { ConditionType, FINALIZER, KUBEVAULT_FINALIZER, Reason, RequestPhase, type DatabaseAccessRequest } from '../../api/index.ts';
import { DONE, PatchType, RetryableError, hasFinalizer, removeFinalizer, type ConditionInput, type ReconcileContext, type Result } from '../../lib/runtime/index.ts';
import { DATABASE_ACCESS_REQUESTS, SECRETS } from '../shared/resources.ts';
import { DATA_DIGEST_ANNOTATION } from '../shared/secret-integrity.ts';
import type { RequestControllerState } from './controller-state.ts';
import { LEASE_ID_ANNOTATION, ownedSecret, secretPresent } from './credential-secret.ts';
import { sweep } from './issuance.ts';
import type { RevocationReason } from './metrics.ts';
import { revokeCounted, revokePrevious } from './revocation.ts';

/** What ending a request's access leaves in status, and how hard to try with Vault. */
interface Ending {
  phase: RequestPhase;
  reason: RevocationReason;
  /** Why previous leases go, for their Event. */
  why: string;
  conditions: ConditionInput[];
  /** Vault must be reachable and every lease revoked (on request), or best effort (a lease that ran out anyway). */
  strict: boolean;
}

/** Revokes the request's leases, empties its Secret and records the final phase. */
async function endAccess(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext, end: Ending): Promise<void> {
  const leaseId = dar.status?.lease?.id;
  if (leaseId) {
    const conn = await state.connectionOf(dar, ctx);
    if (conn) await revokeCounted(state, conn.client, leaseId, end.reason);
    else if (end.strict) throw new RetryableError(Reason.ReferenceNotFound, `cannot reach the Vault lease ${leaseId} was issued through`);
  }
  for (const p of dar.status?.previousLeases ?? []) {
    const revoked = revokePrevious(state, dar, p, ctx, end.reason, end.why);
    await (end.strict ? revoked : revoked.catch(() => undefined));
  }
  await clearSecret(state, dar, ctx);
  await state.write(dar, ctx, { phase: end.phase, remove: ['previousLeases'], conditions: end.conditions });
  state.forget(dar);
}

export async function revokeNow(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
  const leaseId = dar.status?.lease?.id;
  await endAccess(state, dar, ctx, {
    phase: RequestPhase.Revoked, reason: 'revoke-now', why: 'revoked on request', strict: true,
    conditions: [
      { type: ConditionType.Available, status: 'False', reason: Reason.RevokedOnDemand, message: 'the lease was revoked on request; the credential no longer works' },
      { type: ConditionType.Revoked, status: 'True', reason: Reason.RevokedOnDemand, message: leaseId ? `lease ${leaseId} revoked` : 'nothing had been issued' },
    ],
  });
  ctx.log.info('revoked on demand', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId });
  return DONE;
}

/**
 * spec.renew false and the term is over. Vault ends the lease by its own clock, status keeps times to the second,
 * and dropping the login in the database takes a moment: revoking makes sure the login is dead once the phase
 * says Expired. Anything rotated out before is ended too.
 */
export async function expire(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
  const leaseId = dar.status?.lease?.id;
  await endAccess(state, dar, ctx, {
    phase: RequestPhase.Expired, reason: 'expiry', why: 'the request expired', strict: false,
    conditions: [
      { type: ConditionType.Available, status: 'False', reason: Reason.LeaseExpired, message: 'the lease ran out (spec.renew is false); the credential was removed from the Secret' },
      { type: ConditionType.Expired, status: 'True', reason: Reason.LeaseExpired, message: `lease ${leaseId ?? ''} expired` },
    ],
  });
  return DONE;
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
  if (conn) {
    for (const id of leaseIds) await revokeCounted(state, conn.client, id, 'deletion');
    const attempt = dar.status?.issuance;
    if (attempt?.attempt && !attempt.completed) await sweep(state, dar, attempt, conn.client, ctx);
    if (leaseIds.size > 0) state.events.event(dar, 'Normal', 'LeaseRevoked', `revoked lease ${[...leaseIds].join(', ')}`);
  } else if (leaseIds.size > 0) {
    state.events.event(dar, 'Warning', 'LeaseNotRevoked', `the Vault AppBinding is gone: lease ${[...leaseIds].join(', ')} is left to expire`);
  }
  for (const p of previous) await revokePrevious(state, dar, p, ctx, 'deletion', 'the request was deleted');
  const obj = (await removeFinalizer(state.c.kube, DATABASE_ACCESS_REQUESTS, dar, FINALIZER, ctx)).object;
  await removeFinalizer(state.c.kube, DATABASE_ACCESS_REQUESTS, obj, KUBEVAULT_FINALIZER, ctx);
  return DONE;
}

