// A revocation Vault didn't do is retried with a delay that grows with each failure of the same lease (the
// whole paths, deletion, revoke-now, expiry and a rotation's grace period, are unit-tested pass by pass in
// databaseaccessrequest-reconcile.test.ts, and end to end in tests/integration/revocation.test.ts).
import test from 'ava';
import {
  REVOCATION_RETRY_BASE_MS,
  REVOCATION_RETRY_MAX_MS,
  RevocationRetries,
  revocationRetryDelayMs,
} from '../../../controllers/databaseaccessrequest/decide.ts';

const T0 = Date.parse('2026-03-01T12:00:00Z');

test('a failed revocation is retried after 5 s, then twice as long each time, at most every 5 minutes', (t) => {
  t.deepEqual([1, 2, 3, 4].map(revocationRetryDelayMs), [5_000, 10_000, 20_000, 40_000]);
  t.is(revocationRetryDelayMs(1), REVOCATION_RETRY_BASE_MS);
  t.is(revocationRetryDelayMs(50), REVOCATION_RETRY_MAX_MS);
  const retries = new RevocationRetries();
  t.is(retries.failed('a', T0), 5_000);
  t.is(retries.failed('a', T0 + 5_000), 10_000);
  t.is(retries.retryAtMs('a'), T0 + 15_000);
  t.is(retries.failed('b', T0), 5_000, 'each lease has its own schedule');
  retries.done('a');
  t.is(retries.retryAtMs('a'), undefined);
  t.is(retries.failed('a', T0), 5_000, 'a success starts the schedule over');
});

// ---- deletion -----------------------------------------------------------------------------------------------------
