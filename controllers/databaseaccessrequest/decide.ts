// The pure helpers plan.ts decides with: a request's stage, a lease's schedule (renew, rotate, expire),
// previous leases and their grace periods, revocation retries. No I/O, no clock (now is a parameter).
import crypto from 'node:crypto';
import { ConditionType, DEFAULT_RENEW_FRACTION, decisionOf, type DatabaseAccessRequest } from '../../api/index.ts';
import type { AccessRole } from './engine.ts';

export { DEFAULT_RENEW_FRACTION };
/** Renewals are spread by up to this fraction of the lease, per request, so leases issued together don't renew together. */
const MAX_JITTER = 0.1;

/** Where a request is in its life: what a pass over it is about. */
export type Stage = 'finalize' | 'denied' | 'waitForApproval' | 'revokeNow' | 'finished' | 'approved';

/** What stage of its life a request is in (the decision conditions people write decide most of it). */
export function stageOf(dar: DatabaseAccessRequest, revokeAnnotation: string | undefined): Stage {
  if (dar.metadata.deletionTimestamp) return 'finalize';
  const decision = decisionOf(dar);
  if (decision?.type === ConditionType.Denied) return 'denied';
  if (!decision) return 'waitForApproval';
  const phase = dar.status?.phase;
  if (phase === 'Revoked' || phase === 'Expired') return 'finished';
  if (revokeAnnotation) return 'revokeNow';
  return 'approved';
}

/** The fraction of a lease's term after which it is renewed: the request's, else its role's, else the default. */
export function renewFraction(dar: DatabaseAccessRequest, role: AccessRole | undefined): number {
  return dar.spec.renewFraction ?? role?.spec.renewFraction ?? DEFAULT_RENEW_FRACTION;
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

/**
 * A Secret name for a request: `<name>-<6 random chars>`, a DNS-1123 subdomain within the 253-character limit
 * for any request name (a long one is cut at 240 characters, and a `.` or `-` it would end on dropped).
 */
export function newSecretName(requestName: string): string {
  const suffix = crypto.randomBytes(4).toString('hex').slice(0, 6);
  return `${requestName.slice(0, 240).replace(/[-.]+$/, '')}-${suffix}`;
}

// ---- the life of a recorded lease: renew, rotate, expire ---------------------------------------------------

/** How long a rotated-out login keeps working after the new one is in the Secret, unless spec.rotationGracePeriod says. */
export const DEFAULT_ROTATION_GRACE_SECONDS = 60;
/** Previous leases kept waiting for revocation at most; beyond that the oldest is revoked at once. */
export const MAX_PREVIOUS_LEASES = 16;

/** Why a credential is replaced (status.rotation.reason, the rotations metric's label, Event text). */
export const RotationReason = {
  /** Vault renewed for less than asked: max_ttl is near, so renewals can't keep the lease alive. */
  RenewalTruncated: 'RenewalTruncated',
  /** Vault refused to renew a lease that still exists. */
  RenewalRefused: 'RenewalRefused',
  /** The lease no longer exists in Vault: revoked behind the operator's back. */
  LeaseRevoked: 'LeaseRevoked',
  /** The lease ran out before it could be renewed (the operator or Vault was down). */
  LeaseExpired: 'LeaseExpired',
  /** Vault won't renew this kind of lease: replaced at the renewal point instead. */
  NotRenewable: 'NotRenewable',
  /** Someone set the rotate-now annotation (kubectl vault rotate). */
  RotateRequested: 'RotateRequested',
  /** The credential Secret was deleted. */
  SecretDeleted: 'SecretDeleted',
  /** The credential in the Secret (username or password) was changed or removed by hand. */
  SecretModified: 'SecretModified',
} as const;
export type RotationReason = (typeof RotationReason)[keyof typeof RotationReason];

/** What status.lease holds, as far as the schedule is concerned. */
export interface LeaseTimes {
  issuedAt?: string;
  lastRenewalTime?: string;
  expiresAt?: string;
  renewable?: boolean;
}

export type LeaseStep =
  | { kind: 'wait'; atMs: number }
  | { kind: 'renew'; askSeconds: number }
  | { kind: 'rotate'; reason: RotationReason; message: string }
  | { kind: 'expire' };

/**
 * The next thing to do with a recorded lease at `nowMs`. With renew: renew at `fraction` of the current term
 * (less the request's jitter), or replace a lease Vault won't renew at that point, or one that ran out. Without
 * renew: wait for the end, then expire.
 */
export function leaseStep(
  lease: LeaseTimes,
  o: { renew: boolean; fraction: number; uid: string; nowMs: number },
): LeaseStep {
  const expiresAt = lease.expiresAt ? Date.parse(lease.expiresAt) : NaN;
  if (!Number.isFinite(expiresAt) || o.nowMs >= expiresAt) {
    return o.renew
      ? { kind: 'rotate', reason: RotationReason.LeaseExpired, message: 'the lease ran out before it was renewed' }
      : { kind: 'expire' };
  }
  if (!o.renew) return { kind: 'wait', atMs: expiresAt };
  const { dueMs: due, termSeconds } = renewalDue(lease, expiresAt, o);
  if (o.nowMs < due) return { kind: 'wait', atMs: due };
  if (lease.renewable === false)
    return { kind: 'rotate', reason: RotationReason.NotRenewable, message: 'Vault does not renew this lease' };
  return { kind: 'renew', askSeconds: Math.max(1, Math.round(termSeconds)) };
}

/**
 * When a lease that runs out at `expiresAtMs` is due for renewal (ms; in the past when the renewal is overdue), and
 * its current term (seconds): from status.lease's last renewal, else its issue time, else `nowMs`.
 */
export function renewalDue(
  lease: LeaseTimes,
  expiresAtMs: number,
  o: { fraction: number; uid: string; nowMs: number },
): { dueMs: number; termSeconds: number } {
  const fromText = lease.lastRenewalTime ?? lease.issuedAt;
  const parsed = fromText ? Date.parse(fromText) : NaN;
  const from = Number.isFinite(parsed) ? parsed : o.nowMs;
  const termSeconds = Math.max(1, (expiresAtMs - from) / 1000);
  return { dueMs: renewAtMs(from, termSeconds, o.fraction, o.uid), termSeconds };
}

/**
 * Vault granted less than was asked, and less than the lease's last term: it hit a max TTL (role, mount or
 * system) and can't be kept alive. (A mount cap below the asked TTL that gives the same term every time is not
 * truncation: comparing with the term keeps that from rotating on every renewal.)
 */
export function renewalTruncated(askedSeconds: number, grantedSeconds: number, termSeconds: number): boolean {
  return grantedSeconds < Math.min(askedSeconds, termSeconds);
}

/** A rotated-out lease awaiting revocation (status.previousLeases[]). */
export interface PreviousLease {
  id: string;
  /** Set once the new credential is in the Secret: completion + grace. Absent while the rotation is under way. */
  revokeAt?: string;
  vaultAppBinding?: { namespace?: string; name: string };
}

/** Adds a lease to the previous ones; beyond MAX_PREVIOUS_LEASES the oldest overflow (to be revoked at once). */
export function addPrevious(
  previous: readonly PreviousLease[],
  lease: PreviousLease,
): { previous: PreviousLease[]; overflow: PreviousLease[] } {
  const all = [...previous.filter((p) => p.id !== lease.id), lease];
  const overflow = all.length > MAX_PREVIOUS_LEASES ? all.slice(0, all.length - MAX_PREVIOUS_LEASES) : [];
  return { previous: all.slice(overflow.length), overflow };
}

/** When a rotation completes at `completedAtMs`: the leases it retired get their revocation time. */
export function retirePrevious(
  previous: readonly PreviousLease[],
  completedAtMs: number,
  graceSeconds: number,
): PreviousLease[] {
  const at = new Date(completedAtMs + graceSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return previous.map((p) => (p.revokeAt ? p : { ...p, revokeAt: at }));
}

/** Previous leases due for revocation at `nowMs`, the rest, and when the next one falls due. */
export function duePrevious(
  previous: readonly PreviousLease[],
  nowMs: number,
): { due: PreviousLease[]; keep: PreviousLease[]; nextAtMs?: number } {
  const due: PreviousLease[] = [];
  const keep: PreviousLease[] = [];
  let nextAtMs: number | undefined;
  for (const p of previous) {
    const at = p.revokeAt ? Date.parse(p.revokeAt) : NaN;
    if (!Number.isFinite(at)) {
      keep.push(p);
    } else if (at <= nowMs) {
      due.push(p);
    } else {
      keep.push(p);
      nextAtMs = nextAtMs === undefined ? at : Math.min(nextAtMs, at);
    }
  }
  return { due, keep, ...(nextAtMs !== undefined ? { nextAtMs } : {}) };
}

/** The rotate-now value as status keeps it: as is, or its hash when long. */
export function rotateRequestToken(value: string | undefined): string | undefined {
  if (!value) return undefined;
  return value.length <= 128 ? value : `sha256:${crypto.createHash('sha256').update(value).digest('hex')}`;
}

/** The rotate-now annotation holds a value not handled yet. */
export function rotateRequested(annotation: string | undefined, lastHandled: string | undefined): boolean {
  return !!annotation && annotation !== lastHandled;
}

/** The earliest of some points in time (undefined ones ignored). */
export function earliest(...points: Array<number | undefined>): number | undefined {
  const defined = points.filter((p): p is number => p !== undefined && Number.isFinite(p));
  return defined.length ? Math.min(...defined) : undefined;
}

/** The first retry of a revocation Vault didn't do comes this long after the failure; each further failure doubles it. */
export const REVOCATION_RETRY_BASE_MS = 5_000;
/** ... up to this. */
export const REVOCATION_RETRY_MAX_MS = 5 * 60_000;
/** A lease whose failures stopped (the request went some other way) is forgotten after this long. */
const REVOCATION_RETRY_FORGET_MS = 60 * 60_000;

/** How long to wait after the `failures`-th failed revocation of one lease: 5 s, 10 s, 20 s, … at most 5 min. */
export function revocationRetryDelayMs(failures: number): number {
  return Math.min(REVOCATION_RETRY_BASE_MS * 2 ** Math.max(0, failures - 1), REVOCATION_RETRY_MAX_MS);
}

/**
 * Failed revocations per lease id, so each retry waits longer than the last: what a process remembers (after a
 * restart the schedule starts over). Every revocation path records its failures here and its successes clear them.
 */
export class RevocationRetries {
  private readonly byLease = new Map<string, { failures: number; retryAtMs: number }>();

  /** Counts a failure at `nowMs`; returns the delay before the next try (ms). */
  failed(leaseId: string, nowMs: number): number {
    for (const [id, r] of this.byLease) if (r.retryAtMs < nowMs - REVOCATION_RETRY_FORGET_MS) this.byLease.delete(id);
    const failures = (this.byLease.get(leaseId)?.failures ?? 0) + 1;
    const delay = revocationRetryDelayMs(failures);
    this.byLease.set(leaseId, { failures, retryAtMs: nowMs + delay });
    return delay;
  }

  /** Revoked, or gone: no more retries. */
  done(leaseId: string): void {
    this.byLease.delete(leaseId);
  }

  /** When the lease's next try is due (undefined: it never failed, try whenever). */
  retryAtMs(leaseId: string): number | undefined {
    return this.byLease.get(leaseId)?.retryAtMs;
  }

  failures(leaseId: string): number {
    return this.byLease.get(leaseId)?.failures ?? 0;
  }
}
