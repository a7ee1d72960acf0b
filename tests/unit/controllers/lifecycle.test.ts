import test from 'ava';
import {
  MAX_PREVIOUS_LEASES,
  RotationReason,
  addPrevious,
  duePrevious,
  earliest,
  jitterFraction,
  leaseStep,
  renewAtMs,
  renewalTruncated,
  retirePrevious,
  rotateRequestToken,
  rotateRequested,
  type PreviousLease,
} from '../../../controllers/databaseaccessrequest/decide.ts';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const UID = 'uid-1';
/** A 10 s lease issued at T0 (the integration test's default_ttl). */
const lease = { issuedAt: iso(T0), expiresAt: iso(T0 + 10_000), renewable: true };
const opts = (nowMs: number, more: Partial<{ renew: boolean; fraction: number }> = {}) => ({
  renew: true,
  fraction: 2 / 3,
  uid: UID,
  nowMs,
  ...more,
});

test("renewal falls due at the fraction of the term, less the request's own jitter", (t) => {
  const due = renewAtMs(T0, 10, 2 / 3, UID);
  t.true(due <= T0 + 6_667 && due >= T0 + 5_666, `${due - T0} ms`);
  t.is(due, T0 + 10_000 * (2 / 3 - jitterFraction(UID)));
  t.deepEqual(leaseStep(lease, opts(T0 + 1000)), { kind: 'wait', atMs: due });
  t.deepEqual(leaseStep(lease, opts(due)), { kind: 'renew', askSeconds: 10 });
});

test('the term is counted from the last renewal', (t) => {
  const renewed = { ...lease, lastRenewalTime: iso(T0 + 6000), expiresAt: iso(T0 + 16_000) };
  const step = leaseStep(renewed, opts(T0 + 7000));
  t.is(step.kind, 'wait');
  t.is((step as { atMs: number }).atMs, renewAtMs(T0 + 6000, 10, 2 / 3, UID));
});

test('a lease that ran out is rotated (renew) or expires (no renew)', (t) => {
  t.deepEqual(leaseStep(lease, opts(T0 + 10_000)).kind, 'rotate');
  t.is((leaseStep(lease, opts(T0 + 10_000)) as { reason: string }).reason, RotationReason.LeaseExpired);
  t.deepEqual(leaseStep(lease, opts(T0 + 10_000, { renew: false })), { kind: 'expire' });
  t.deepEqual(leaseStep({ ...lease, expiresAt: undefined }, opts(T0)), {
    kind: 'rotate',
    reason: RotationReason.LeaseExpired,
    message: 'the lease ran out before it was renewed',
  });
});

test('without renew the lease is left alone until its end', (t) => {
  t.deepEqual(leaseStep(lease, opts(T0 + 9000, { renew: false })), { kind: 'wait', atMs: T0 + 10_000 });
});

test("a lease Vault won't renew is replaced at the renewal point, not at its end", (t) => {
  const step = leaseStep({ ...lease, renewable: false }, opts(T0 + 9000));
  t.is(step.kind, 'rotate');
  t.is((step as { reason: string }).reason, RotationReason.NotRenewable);
});

test('truncation: less than asked and less than the last term; a steady mount cap is not truncation', (t) => {
  // default_ttl 10 s, max_ttl 30 s: the renewal at ~27 s gets the 3 s left.
  t.true(renewalTruncated(10, 3, 10));
  t.false(renewalTruncated(10, 10, 10));
  // The request asks 60 s, the mount caps every lease at 10 s: same term each time.
  t.false(renewalTruncated(60, 10, 10));
  t.true(renewalTruncated(60, 7, 10));
  t.true(renewalTruncated(10, 0, 10));
});

test('previous leases: added without a revocation time, timed when the rotation completes, revoked when due', (t) => {
  const ab = { namespace: 'demo', name: 'vault' };
  const first = addPrevious([], { id: 'old-1', vaultAppBinding: ab });
  const overflow = first.overflow;
  let previous = first.previous;
  t.deepEqual(overflow, []);
  t.deepEqual(previous, [{ id: 'old-1', vaultAppBinding: ab }]);
  // Not due while the rotation is under way, however long it takes.
  t.deepEqual(duePrevious(previous, T0 + 3_600_000), { due: [], keep: previous });
  previous = retirePrevious(previous, T0, 5);
  t.is(previous[0]!.revokeAt, iso(T0 + 5000));
  t.deepEqual(duePrevious(previous, T0 + 4999), { due: [], keep: previous, nextAtMs: T0 + 5000 });
  t.deepEqual(duePrevious(previous, T0 + 5000), { due: previous, keep: [] });
  // A second rotation within the grace period keeps the first one's time.
  ({ previous } = addPrevious(previous, { id: 'old-2' }));
  const retired = retirePrevious(previous, T0 + 2000, 5);
  t.deepEqual(
    retired.map((p) => p.revokeAt),
    [iso(T0 + 5000), iso(T0 + 7000)],
  );
  const d = duePrevious(retired, T0 + 6000);
  t.deepEqual(
    d.due.map((p) => p.id),
    ['old-1'],
  );
  t.deepEqual(
    d.keep.map((p) => p.id),
    ['old-2'],
  );
  t.is(d.nextAtMs, T0 + 7000);
});

test('previous leases are bounded: the oldest overflow, and the same lease is never listed twice', (t) => {
  let previous: PreviousLease[] = [];
  for (let i = 0; i < MAX_PREVIOUS_LEASES; i++)
    previous = addPrevious(previous, { id: `l${i}`, revokeAt: iso(T0) }).previous;
  const r = addPrevious(previous, { id: 'new' });
  t.deepEqual(
    r.overflow.map((p) => p.id),
    ['l0'],
  );
  t.is(r.previous.length, MAX_PREVIOUS_LEASES);
  t.is(r.previous.at(-1)!.id, 'new');
  t.is(addPrevious([{ id: 'a' }], { id: 'a' }).previous.length, 1);
});

test('rotate-now: each new value once', (t) => {
  t.false(rotateRequested(undefined, undefined));
  t.false(rotateRequested('', 'x'));
  t.true(rotateRequested('2026-03-01T12:00:00Z', undefined));
  t.false(rotateRequested('2026-03-01T12:00:00Z', '2026-03-01T12:00:00Z'));
  t.true(rotateRequested('2026-03-01T12:05:00Z', '2026-03-01T12:00:00Z'));
  // Long values are kept hashed (status has a bound); the comparison is on what status keeps.
  const long = 'x'.repeat(1000);
  const token = rotateRequestToken(long)!;
  t.regex(token, /^sha256:[0-9a-f]{64}$/);
  t.false(rotateRequested(rotateRequestToken(long), token));
  t.is(rotateRequestToken('short'), 'short');
  t.is(rotateRequestToken(undefined), undefined);
});

test('earliest ignores missing points', (t) => {
  t.is(earliest(undefined, 5, 3, undefined), 3);
  t.is(earliest(undefined), undefined);
  t.is(earliest(NaN, 7), 7);
});
