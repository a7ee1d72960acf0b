// Giving leases back to Vault, which issuance, lease keeping and a request's end all do: each revocation
// counted by why and how it went; and a rotated-out (previous) lease's grace period, kept by renewing it until
// its revokeAt, then ended.
import { parseDurationSeconds, type DatabaseAccessRequest } from '../../api/index.ts';
import type { ReconcileContext } from '../../lib/runtime/index.ts';
import type { VaultClient } from '../../lib/vault/client.ts';
import { VaultRequestError } from '../../lib/vault/errors.ts';
import { explain } from '../shared/report.ts';
import type { RequestControllerState } from './controller-state.ts';
import { DEFAULT_ROTATION_GRACE_SECONDS, type PreviousLease } from './decide.ts';
import type { RevocationReason } from './metrics.ts';

/** Revokes a lease, counting the outcome; a lease already gone is fine. */
export async function revokeCounted(state: RequestControllerState, vault: VaultClient, leaseId: string, reason: RevocationReason): Promise<'success' | 'gone'> {
  try {
    await vault.revokeLease(leaseId);
    state.metrics.revocations.labels(reason, 'success').inc();
    return 'success';
  } catch (err) {
    if (err instanceof VaultRequestError && (err.kind === 'Invalid' || err.kind === 'NotFound')) {
      state.metrics.revocations.labels(reason, 'gone').inc();
      return 'gone';
    }
    state.metrics.revocations.labels(reason, 'error').inc();
    throw err;
  }
}

/** Revokes one previous lease (gone already counts as done); throws when Vault can't be asked. */
export async function revokePrevious(state: RequestControllerState, dar: DatabaseAccessRequest, p: PreviousLease, ctx: ReconcileContext,
  reason: RevocationReason = 'rotation', why = 'the rotation\'s grace period is over'): Promise<void> {
  const conn = await state.connectionOf(dar, ctx, p.vaultAppBinding);
  if (!conn) {
    state.events.event(dar, 'Warning', 'LeaseNotRevoked', `the Vault AppBinding is gone: previous lease ${p.id} is left to expire`);
    return;
  }
  try {
    const outcome = await revokeCounted(state, conn.client, p.id, reason);
    state.events.event(dar, 'Normal', 'LeaseRevoked', `revoked the previous lease ${p.id}${outcome === 'gone' ? ' (it had already ended)' : ''}: ${why}`);
  } catch (err) {
    state.events.event(dar, 'Warning', 'LeaseRevocationFailed', `could not revoke the previous lease ${p.id}, will retry: ${explain(err).message}`);
    throw err;
  }
}

export function graceSeconds(dar: DatabaseAccessRequest): number {
  return dar.spec.rotationGracePeriod ? parseDurationSeconds(dar.spec.rotationGracePeriod) : DEFAULT_ROTATION_GRACE_SECONDS;
}

/**
 * A retired lease is renewed to last until its revokeAt (plus a little): the grace period is a promise to the
 * clients still using it, whatever was left of its term. A lease at its max TTL can't be extended; one renewed
 * for longer than needed is shortened to the grace period, which only narrows the exposure. Best effort.
 */
export async function extendForGrace(state: RequestControllerState, dar: DatabaseAccessRequest, p: PreviousLease, ctx: ReconcileContext): Promise<void> {
  const left = p.revokeAt ? Math.ceil((Date.parse(p.revokeAt) - ctx.now().getTime()) / 1000) : NaN;
  if (!Number.isFinite(left) || left <= 0) return;
  try {
    const conn = await state.connectionOf(dar, ctx, p.vaultAppBinding);
    await conn?.client.renewLease(p.id, left + 5);
  } catch (err) {
    ctx.log.debug('could not extend a retired lease for its grace period', { leaseId: p.id, error: explain(err).message });
  }
}
