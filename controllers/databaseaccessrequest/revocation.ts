// Giving leases back to Vault: what a revocation Vault has not done looks like in status, and a rotated-out
// lease's grace period. The revoking itself is a step (execute.ts), planned wherever access ends (plan.ts).
//
// A revocation is done only when Vault has done it. VaultClient.revokeLease resolves only when Vault revoked the
// lease or doesn't know it; a revocation Vault tried and failed (PostgreSQL refusing to drop a login that owns
// objects, say) throws RevocationFailed with Vault's words, and one Vault can't be asked for throws too. Every
// path that revokes (deletion, revoke-now, expiry, a rotation's grace period, the sweep) then keeps what it was
// ending (the finalizer, the phase, the previous lease), records the failure in the Revoked condition (False,
// with what Vault said; one Warning Event when it starts), and tries again after a delay that doubles with each
// failure of the same lease (decide.ts revocationRetryDelayMs).
import { ConditionType, parseDurationSeconds, type DatabaseAccessRequest } from '../../api/index.ts';
import type { ConditionInput } from '../../lib/runtime/index.ts';
import { VaultRequestError } from '../../lib/vault/errors.ts';
import { explain } from '../shared/report.ts';
import { DEFAULT_ROTATION_GRACE_SECONDS } from './decide.ts';

/**
 * The Revoked condition while a revocation Vault has not done is retried: False, the reason from what failed
 * (RevocationFailed: Vault tried and the database refused; VaultUnreachable, …), and a message naming the lease,
 * why it was being revoked (`context`), what Vault said, and what to do.
 */
export function notRevokedCondition(target: RevocationTarget, err: unknown, context: string): ConditionInput {
  const { reason, message } = explain(err);
  const subject = typeof target === 'string' ? `lease ${target}` : target.subject;
  const text =
    err instanceof VaultRequestError && err.kind === 'RevocationFailed'
      ? `Vault could not revoke ${subject} (${context}): its database login was not dropped and may still work. Vault said: ${typeof target === 'string' ? err.detail : err.message}. If the login owns ` +
        "objects (PostgreSQL), the role's revocationStatements must reassign or drop them (REASSIGN OWNED BY … TO …; DROP OWNED BY …) " +
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

export function graceSeconds(dar: DatabaseAccessRequest): number {
  return dar.spec.rotationGracePeriod
    ? parseDurationSeconds(dar.spec.rotationGracePeriod)
    : DEFAULT_ROTATION_GRACE_SECONDS;
}
