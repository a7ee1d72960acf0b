// How a request is ended on purpose: revoked on request (the revoke-now annotation: its leases revoked, phase
// Revoked, the Secret emptied but kept), or deleted (the finalizer stays until its leases are revoked: the one
// status records, the one its Secret names, the previous ones, and any an unfinished issuance attempt left
// behind; with the Vault AppBinding gone they are left to expire). Expiry (spec.renew false) is lease-keeper.ts's.
import { ConditionType, FINALIZER, KUBEVAULT_FINALIZER, Reason, RequestPhase, type DatabaseAccessRequest } from '../../api/index.ts';
import { DONE, PatchType, RetryableError, hasFinalizer, removeFinalizer, type ReconcileContext, type Result } from '../../lib/runtime/index.ts';
import { DATABASE_ACCESS_REQUESTS, SECRETS } from '../shared/resources.ts';
import type { RequestControllerState } from './controller-state.ts';
import { LEASE_ID_ANNOTATION, ownedSecret, secretPresent } from './credential-secret.ts';
import { sweep } from './issuance.ts';
import { revokeCounted, revokePrevious } from './revocation.ts';

export async function revokeNow(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
  const leaseId = dar.status?.lease?.id;
  const previous = dar.status?.previousLeases ?? [];
  if (leaseId) {
    const conn = await state.connectionOf(dar, ctx);
    if (!conn) throw new RetryableError(Reason.ReferenceNotFound, `cannot reach the Vault lease ${leaseId} was issued through`);
    await revokeCounted(state, conn.client, leaseId, 'revoke-now');
  }
  for (const p of previous) await revokePrevious(state, dar, p, ctx, 'revoke-now', 'revoked on request');
  await clearSecret(state, dar, ctx);
  await state.write(dar, ctx, {
    phase: RequestPhase.Revoked,
    remove: ['previousLeases'],
    conditions: [
      { type: ConditionType.Available, status: 'False', reason: Reason.RevokedOnDemand, message: 'the lease was revoked on request; the credential no longer works' },
      { type: ConditionType.Revoked, status: 'True', reason: Reason.RevokedOnDemand, message: leaseId ? `lease ${leaseId} revoked` : 'nothing had been issued' },
    ],
  });
  state.forget(dar);
  ctx.log.info('revoked on demand', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId });
  return DONE;
}

/** Removes every key from the Secret: the credential and everything rendered from it (the Secret stays). */
export async function clearSecret(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<void> {
  const name = dar.status?.secret?.name;
  if (!name || !(await secretPresent(state, dar, ctx))) return;
  await state.c.kube.patch(SECRETS, dar.metadata.namespace ?? '', name, { data: null }, PatchType.merge, ctx);
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

