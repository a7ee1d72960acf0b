// Whether a recorded lease still exists in Vault. A lease can be revoked behind the operator's back (by hand, or
// with the token that owns it); nothing tells the operator, and until the renewal point status would claim a
// dead credential. So every recorded lease is looked up once after the operator starts and then at most once per
// resync period (--resync-period), never on every watch event: an idle request costs no Vault call between
// resyncs.
//
// Looking up is shared: one LIST of `sys/leases/lookup/<mount>/creds/<role>/` (operator policy: list, sudo) answers
// for every lease of that role within a short window, so a resync of N requests of one role costs one call, not
// N. Only a lease the listing doesn't show is looked up on its own (`sys/leases/lookup`), to tell one issued
// after the listing from one revoked; when the listing is refused, each lease is looked up on its own.
import type { VaultClient } from '../../lib/vault/client.ts';

/** A lease is due for another look once this fraction of the resync period has passed (resyncs are jittered ±10 %). */
export const VERIFY_FRACTION = 0.8;
/** The period used when --resync-period is 0 (no resync): a lease is then looked up only when a pass runs anyway. */
export const DEFAULT_VERIFY_PERIOD_MS = 10 * 60_000;
/** A listing answers for the leases of its role this long at most (and at most half the period). */
const MAX_LISTING_AGE_MS = 60_000;
/** After a look-up that couldn't be made (Vault unreachable, refused), the next try waits this long. */
export const RETRY_VERIFY_MS = 30_000;

export type Liveness = 'alive' | 'gone' | 'unknown';

/** A lease this close to its recorded end (or 10 % of its term, if more) is not looked up: it is running out. */
export const LIVENESS_END_MARGIN_MS = 5_000;

/** The period a lease is looked up at most once per: --resync-period, or DEFAULT_VERIFY_PERIOD_MS without one. */
export function verifyPeriodMs(resyncPeriodMs: number): number {
  return resyncPeriodMs > 0 ? resyncPeriodMs : DEFAULT_VERIFY_PERIOD_MS;
}

/**
 * Whether a lease this process last verified at `lastMs` (undefined: never, e.g. since it started) is to be looked
 * up again at `nowMs`: once VERIFY_FRACTION of the period has passed, so each resync (0.9–1.1 periods apart)
 * looks once and a watch event in between doesn't.
 */
export function verifyDue(lastMs: number | undefined, nowMs: number, periodMs: number): boolean {
  return lastMs === undefined || nowMs - lastMs >= periodMs * VERIFY_FRACTION;
}

/** How long a listing of a role's leases may answer for them, for a period of `periodMs`. */
export function listingMaxAgeMs(periodMs: number): number {
  return Math.min(MAX_LISTING_AGE_MS, periodMs / 2);
}

/** The prefix a lease id lives under (`<mount>/creds/<role>/`), or undefined for an id without one. */
export function leaseIdPrefix(leaseId: string): string | undefined {
  const i = leaseId.lastIndexOf('/');
  return i > 0 ? leaseId.slice(0, i + 1) : undefined;
}

interface Listing {
  atMs: number;
  ids: Set<string>;
}

/** What this process knows about lease liveness: when each request's lease was last verified, recent listings. */
export class LeaseLiveness {
  /** Request uid → its lease and when this process last knew it alive (issued, renewed or looked up). */
  private readonly verified = new Map<string, { leaseId: string; atMs: number }>();
  /** `<vault AppBinding>|<prefix>` → the latest listing (or the one under way). */
  private readonly listings = new Map<string, Listing | Promise<Listing>>();

  constructor(readonly periodMs: number) {}

  /** Whether the request's lease is to be looked up now (see verifyDue). */
  due(uid: string, leaseId: string, nowMs: number): boolean {
    const v = this.verified.get(uid);
    return verifyDue(v && v.leaseId === leaseId ? v.atMs : undefined, nowMs, this.periodMs);
  }

  /** The lease is known alive as of `atMs` (just issued, renewed, or found). */
  alive(uid: string, leaseId: string, atMs: number): void {
    const v = this.verified.get(uid);
    if (!v || v.leaseId !== leaseId || v.atMs < atMs) this.verified.set(uid, { leaseId, atMs });
  }

  /** A look-up failed: try again after RETRY_VERIFY_MS rather than on every pass. */
  retryLater(uid: string, leaseId: string, nowMs: number): void {
    this.verified.set(uid, { leaseId, atMs: nowMs - this.periodMs * VERIFY_FRACTION + RETRY_VERIFY_MS });
  }

  forget(uid: string): void {
    this.verified.delete(uid);
  }

  /**
   * Looks the lease up: in a listing of its role's leases no older than listingMaxAgeMs (made now if there is
   * none), then on its own when the listing doesn't show it. Records it alive when it is. 'unknown' when Vault
   * couldn't be asked (the caller keeps the lease and tries later).
   */
  async check(
    lease: { uid: string; leaseId: string },
    vault: VaultClient,
    how: { connectionKey: string; nowMs: () => number; signal?: AbortSignal },
  ): Promise<Liveness> {
    const { uid, leaseId } = lease;
    const { connectionKey, nowMs, signal } = how;
    const prefix = leaseIdPrefix(leaseId);
    let listing: Listing | undefined;
    if (prefix) {
      try {
        listing = await this.listing(`${connectionKey}|${prefix}`, prefix, vault, nowMs);
      } catch {
        listing = undefined; // refused (no list capability) or Vault down: the lease's own look-up decides
      }
    }
    if (listing?.ids.has(leaseId)) {
      this.alive(uid, leaseId, listing.atMs);
      return 'alive';
    }
    const at = nowMs();
    try {
      const info = await vault.lookupLease(leaseId, { signal });
      if (!info) return 'gone';
      this.alive(uid, leaseId, at);
      return 'alive';
    } catch {
      this.retryLater(uid, leaseId, at);
      return 'unknown';
    }
  }

  private async listing(key: string, prefix: string, vault: VaultClient, nowMs: () => number): Promise<Listing> {
    const existing = this.listings.get(key);
    if (existing instanceof Promise) return existing;
    if (existing && nowMs() - existing.atMs < listingMaxAgeMs(this.periodMs)) return existing;
    const at = nowMs();
    const pending = vault.listLeases(prefix).then((ids) => ({ atMs: at, ids: new Set(ids) }));
    this.listings.set(key, pending);
    try {
      const done = await pending;
      this.listings.set(key, done);
      // Past its age it answers for nothing: its ids don't stay in memory until the next resync.
      setTimeout(() => {
        if (this.listings.get(key) === done) this.listings.delete(key);
      }, listingMaxAgeMs(this.periodMs)).unref();
      return done;
    } catch (err) {
      this.listings.delete(key);
      throw err;
    }
  }
}
