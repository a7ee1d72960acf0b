// Giving leases back to Vault, which issuance, lease keeping and a request's end all do: each revocation
// counted by why and how it went; a rotated-out (previous) lease's grace period, kept by renewing it until its
// revokeAt, then ended.
//
// A revocation is done only when Vault has done it. VaultClient.revokeLease resolves only when Vault revoked the
// lease or doesn't know it; a revocation Vault tried and failed (PostgreSQL refusing to drop a login that owns
// objects, say) throws RevocationFailed with Vault's words, and one Vault can't be asked for throws too. Every
// path that revokes (deletion, revoke-now, expiry, a rotation's grace period, the sweep) then keeps what it was
// ending (the finalizer, the phase, the previous lease), records the failure in the Revoked condition (False,
// with what Vault said; report() emits one Warning Event when it starts), and tries again after a delay that
// doubles with each failure of the same lease (decide.ts revocationRetryDelayMs).
import { ConditionType, parseDurationSeconds, type DatabaseAccessRequest } from '../../api/index.ts';
import { requeueAfter, type ConditionInput, type ReconcileContext, type Result } from '../../lib/runtime/index.ts';
import type { VaultClient } from '../../lib/vault/client.ts';
import { VaultRequestError, isRevocationFailed } from '../../lib/vault/errors.ts';
import { explain } from '../shared/report.ts';
import type { RequestControllerState } from './controller-state.ts';
import { DEFAULT_ROTATION_GRACE_SECONDS, type PreviousLease } from './decide.ts';
import type { RevocationReason } from './metrics.ts';

/**
 * Revokes a lease, counting the outcome: `success` (Vault revoked it) or `gone` (Vault doesn't know it: revoked
 * or expired before). Throws whatever kept Vault from revoking it (a VaultRequestError: RevocationFailed,
 * Unreachable, …); the caller keeps the lease recorded and retries.
 */
export async function revokeCounted(state: RequestControllerState, vault: VaultClient, leaseId: string, reason: RevocationReason): Promise<'success' | 'gone'> {
  try {
    const outcome = (await vault.revokeLease(leaseId)) === 'revoked' ? 'success' : 'gone';
    state.metrics.revocations.labels(reason, outcome).inc();
    state.revocationRetries.done(leaseId);
    return outcome;
  } catch (err) {
    state.metrics.revocations.labels(reason, isRevocationFailed(err) ? 'failed' : 'error').inc();
    throw err;
  }
}

/** Revokes one previous lease (gone already counts as done); throws when Vault didn't revoke it. */
export async function revokePrevious(state: RequestControllerState, dar: DatabaseAccessRequest, p: PreviousLease, ctx: ReconcileContext,
  reason: RevocationReason = 'rotation', why = 'the rotation\'s grace period is over'): Promise<void> {
  const conn = await state.connectionOf(dar, ctx, p.vaultAppBinding);
  if (!conn) {
    state.events.event(dar, 'Warning', 'LeaseNotRevoked', `the Vault AppBinding is gone: previous lease ${p.id} is left to expire`);
    return;
  }
  const outcome = await revokeCounted(state, conn.client, p.id, reason);
  state.events.event(dar, 'Normal', 'LeaseRevoked', `revoked the previous lease ${p.id}${outcome === 'gone' ? ' (it had already ended)' : ''}: ${why}`);
}

/**
 * The Revoked condition while a revocation Vault has not done is retried: False, the reason from what failed
 * (RevocationFailed: Vault tried and the database refused; VaultUnreachable, …), and a message naming the lease,
 * why it was being revoked (`context`), what Vault said, and what to do.
 */
export function notRevokedCondition(target: RevocationTarget, err: unknown, context: string): ConditionInput {
  const { reason, message } = explain(err);
  const subject = typeof target === 'string' ? `lease ${target}` : target.subject;
  const text = err instanceof VaultRequestError && err.kind === 'RevocationFailed'
    ? `Vault could not revoke ${subject} (${context}): its database login was not dropped and may still work. Vault said: ${typeof target === 'string' ? err.detail : err.message}. If the login owns ` +
      'objects, the PostgresRole\'s revocationStatements must reassign or drop them (REASSIGN OWNED BY … TO …; DROP OWNED BY …) ' +
      'before DROP ROLE; retried with backoff'
    : `${subject} is not revoked yet (${context}): ${message}; retried with backoff`;
  return { type: ConditionType.Revoked, status: 'False', reason, message: text };
}

/** A lease id, or (for the sweep, which finds its leases as it goes) what to call them and a key of their own. */
export type RevocationTarget = string | { key: string; subject: string };

/** A Revoked condition that records a failure (as notRevokedCondition writes it). */
export function revocationFailing(dar: DatabaseAccessRequest): boolean {
  return (dar.status?.conditions ?? []).some((c) => c.type === ConditionType.Revoked && c.status === 'False');
}

/** Counts a failed revocation, logs it, and returns the delay before the next try (ms). */
export function scheduleRevocationRetry(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext, target: RevocationTarget, err: unknown, context: string): number {
  const key = typeof target === 'string' ? target : target.key;
  const delay = state.revocationRetries.failed(key, ctx.now().getTime());
  ctx.log.warn('lease not revoked, will retry', {
    namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId: key, context, failures: state.revocationRetries.failures(key),
    retryInSeconds: Math.round(delay / 1000), error: explain(err).message,
  });
  return delay;
}

/**
 * Tries `revoke` (which revokes the target's lease); when it throws, records the failure on the request (the
 * Revoked condition, one Warning Event when it starts) and returns the Result that retries with backoff;
 * undefined when the lease is revoked or gone. What the caller was ending stays as it is.
 */
export async function attemptRevocation(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext, target: RevocationTarget,
  context: string, revoke: () => Promise<unknown>): Promise<Result | undefined> {
  try {
    await revoke();
    if (typeof target !== 'string') state.revocationRetries.done(target.key);
    return undefined;
  } catch (err) {
    const delay = scheduleRevocationRetry(state, dar, ctx, target, err, context);
    await state.writeFresh(dar, ctx, () => ({ conditions: [notRevokedCondition(target, err, context)] }));
    return requeueAfter(delay);
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
