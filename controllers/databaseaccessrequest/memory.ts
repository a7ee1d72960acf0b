// What this process remembers about requests and leases between passes, behind named methods. None of it is
// needed for correctness after a restart (status is the record): it times metrics, spaces retries, keeps a
// lease this process just issued out of a concurrent sweep's hands, and saves Vault look-ups.
import type { DatabaseAccessRequest } from '../../api/index.ts';
import { RevocationRetries } from './decide.ts';
import { CreatedGrants } from './grants.ts';
import { LeaseLiveness } from './lease-liveness.ts';

/** Leases this process issued are remembered this long, so a sweep never takes one the caches don't show yet. */
const ISSUED_HERE_MS = 10 * 60_000;

export class RequestMemory {
  /** uid → when this process first saw the request approved and not yet issued (issuance latency). */
  private readonly approvalSeen = new Map<string, number>();
  /** uid → renewals failed in a row (an Event on the first failure and on the recovery only). */
  private readonly renewalFailures = new Map<string, number>();
  /** Lease id → the request it was issued for and when (insertion order = age). */
  private readonly issued = new Map<string, { uid: string; atMs: number }>();
  /** Revocations Vault didn't do, per lease: when to try each again. */
  readonly revocationRetries = new RevocationRetries();
  /** Roles and RoleBindings this process created that the caches don't show yet. */
  readonly createdGrants = new CreatedGrants();
  /** uid → the request as this process last wrote it, and the resourceVersions its writes replaced since the cache last showed one of them. */
  private readonly written = new Map<string, { replaced: Set<string>; object: DatabaseAccessRequest }>();

  constructor(readonly liveness: LeaseLiveness) {}

  /** The request is approved and waits for its first credential: latency is measured from the first time seen. */
  approvalSeenAt(uid: string, nowMs: number): number {
    let at = this.approvalSeen.get(uid);
    if (at === undefined) this.approvalSeen.set(uid, (at = nowMs));
    return at;
  }

  /** A renewal failed; returns how many failed in a row now. */
  renewalFailed(uid: string): number {
    const n = (this.renewalFailures.get(uid) ?? 0) + 1;
    this.renewalFailures.set(uid, n);
    return n;
  }

  /** A renewal succeeded (or was answered): returns how many had failed in a row before it. */
  renewalAnswered(uid: string): number {
    const n = this.renewalFailures.get(uid) ?? 0;
    this.renewalFailures.delete(uid);
    return n;
  }

  /** Vault just handed this lease over for the request `uid`: another request's sweep must not take it for a crashed attempt's. */
  issuedHere(leaseId: string, uid: string, nowMs: number): void {
    this.issued.set(leaseId, { uid, atMs: nowMs });
    for (const [id, { atMs }] of this.issued) {
      if (nowMs - atMs <= ISSUED_HERE_MS) break; // insertion order: the rest are newer
      this.issued.delete(id);
    }
  }

  /** A lease issued here was given back (recording it failed). */
  givenBack(leaseId: string): void {
    this.issued.delete(leaseId);
  }

  /**
   * The leases this process issued recently for requests other than `uid`: in flight or not yet in their caches.
   * A request's own are not spared by its sweep: one that never reached its Secret or status is the orphan.
   */
  issuedForOthers(uid: string): string[] {
    return [...this.issued].filter(([, v]) => v.uid !== uid).map(([id]) => id);
  }

  /** This process wrote `object` over the version `replaced` (its status, its finalizers). */
  wrote(replaced: string | undefined, object: DatabaseAccessRequest): void {
    const uid = object.metadata.uid;
    if (!uid || !replaced || object.metadata.resourceVersion === replaced) return;
    const w = this.written.get(uid);
    if (w) {
      w.replaced.add(replaced);
      w.object = object;
    } else {
      this.written.set(uid, { replaced: new Set([replaced]), object });
    }
  }

  /**
   * The freshest request known: the cache's, unless the cache still shows a version one of this process's own
   * writes replaced (their watch events haven't arrived: a pass woken by a child object can run that early), in
   * which case the one written last. Any other version in the cache (ours caught up, or someone else wrote
   * since) is the cache's to tell.
   */
  freshest(cached: DatabaseAccessRequest): DatabaseAccessRequest {
    const uid = cached.metadata.uid ?? '';
    const w = this.written.get(uid);
    if (!w) return cached;
    if (w.replaced.has(cached.metadata.resourceVersion ?? '')) return w.object;
    this.written.delete(uid);
    return cached;
  }

  /** A request went (its finalizer released): forget what was kept about it. */
  forget(uid: string): void {
    this.written.delete(uid);
    this.ended(uid);
  }

  /**
   * A request ended (Revoked, Expired, Denied) in a pass that wrote its final status: forget what was kept for
   * issuing and renewing, but not the write itself, so that a pass woken before the cache shows it (by the Secret it
   * just emptied) doesn't act on the version before it and revoke the lease again.
   */
  ended(uid: string): void {
    this.approvalSeen.delete(uid);
    this.renewalFailures.delete(uid);
    this.liveness.forget(uid);
  }

  /** The first credential was issued: latency measured. Returns when the approval was first seen, if it was. */
  issuedFirst(uid: string): number | undefined {
    const at = this.approvalSeen.get(uid);
    this.approvalSeen.delete(uid);
    return at;
  }
}
