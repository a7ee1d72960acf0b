// Pure decisions of the DatabaseAccessRequest controller: no I/O, no clock (now is a parameter).
import crypto from 'node:crypto';
import { ConditionType, type DatabaseAccessRequest, type PostgresRole } from '../../api/index.ts';

export const DEFAULT_RENEW_FRACTION = 2 / 3;
/** Renewals are spread by up to this fraction of the lease, per request, so leases issued together don't renew together. */
const MAX_JITTER = 0.1;

export type Decision =
  | { kind: 'finalize' }
  | { kind: 'denied' }
  | { kind: 'waitForApproval' }
  | { kind: 'revokeNow' }
  | { kind: 'finished' }
  | { kind: 'approved' };

function conditionTrue(dar: DatabaseAccessRequest, type: string): boolean {
  return (dar.status?.conditions ?? []).some((c) => c.type === type && (c.status ?? 'True') === 'True');
}

/** What stage of its life a request is in; the reconciler acts on it. */
export function decide(dar: DatabaseAccessRequest, revokeAnnotation: string | undefined): Decision {
  if (dar.metadata.deletionTimestamp) return { kind: 'finalize' };
  if (conditionTrue(dar, ConditionType.Denied)) return { kind: 'denied' };
  if (!conditionTrue(dar, ConditionType.Approved)) return { kind: 'waitForApproval' };
  const phase = dar.status?.phase;
  if (phase === 'Revoked' || phase === 'Expired') return { kind: 'finished' };
  if (revokeAnnotation) return { kind: 'revokeNow' };
  return { kind: 'approved' };
}

/** A role admits a request from its own namespace, and from those it lists in allowedRequestNamespaces. */
export function namespaceAllowed(role: PostgresRole, requestNamespace: string): boolean {
  if (role.metadata.namespace === requestNamespace) return true;
  const allowed = role.spec.allowedRequestNamespaces ?? [];
  return allowed.includes('*') || allowed.includes(requestNamespace);
}

/** Deterministic per-request jitter in [0, MAX_JITTER). */
export function jitterFraction(uid: string): number {
  const h = crypto.createHash('sha256').update(uid).digest();
  return (h.readUInt32BE(0) / 0x1_0000_0000) * MAX_JITTER;
}

/** When to renew a lease that started (or was last renewed) at `fromMs` for `durationSeconds`. */
export function renewAtMs(fromMs: number, durationSeconds: number, fraction: number, uid: string): number {
  const f = Math.max(0.1, Math.min(0.95, fraction - jitterFraction(uid)));
  return fromMs + durationSeconds * 1000 * f;
}

/** A Secret name for a request: `<name>-<6 random chars>`, within the 253-character limit. */
export function newSecretName(requestName: string): string {
  const suffix = crypto.randomBytes(4).toString('hex').slice(0, 6);
  return `${requestName.slice(0, 240)}-${suffix}`;
}
