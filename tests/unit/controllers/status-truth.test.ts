// The pure pieces behind "status tells the truth" and "no input makes the operator churn": label values
// and names derived from request names, the Secret's data digest, and when a recorded lease is looked up in Vault.
import test from 'ava';
import { newSecretName } from '../../../controllers/databaseaccessrequest/decide.ts';
import {
  DEFAULT_VERIFY_PERIOD_MS,
  LeaseLiveness,
  RETRY_VERIFY_MS,
  leaseIdPrefix,
  listingMaxAgeMs,
  verifyDue,
  verifyPeriodMs,
} from '../../../controllers/databaseaccessrequest/lease-liveness.ts';
import { MAX_LABEL_VALUE, labelValue, metadataProblems } from '../../../controllers/shared/names.ts';
import {
  DATA_DIGEST_ANNOTATION,
  dataDigestAnnotation,
  decodeData,
  encodeData,
  secretCacheTransform,
  secretIntegrity,
} from '../../../controllers/shared/secret-integrity.ts';
import { eventName } from '../../../lib/runtime/events.ts';
import type { LeaseInfo, VaultClient } from '../../../lib/vault/client.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';

const LONG = 'access-for-the-quarterly-finance-reconciliation-batch-job-in-production-eu';
const LABEL = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// ---- names and labels ---------------------------------------------------------------------------------------

test('a request name that fits a label value is the label value', (t) => {
  t.is(labelValue('postgres-cred-rqst'), 'postgres-cred-rqst');
  const sixtyThree = 'a'.repeat(62) + 'b';
  t.is(labelValue(sixtyThree), sixtyThree);
});

test("a request name longer than 63 characters becomes a valid label value, the same every time, and different from its neighbours'", (t) => {
  t.true(LONG.length > MAX_LABEL_VALUE);
  const v = labelValue(LONG);
  t.true(v.length <= MAX_LABEL_VALUE, v);
  t.regex(v, LABEL);
  t.true(v.startsWith(LONG.slice(0, 40)), 'a person can still recognise the request');
  t.is(labelValue(LONG), v);
  t.not(labelValue(`${LONG}-2`), v);
  t.deepEqual(metadataProblems('Secret', { name: 'x', labels: { 'leasehold.dev/request': v } }), []);
});

test('every legal request name, up to 253 characters and with dots, gives a valid label value and Secret name', (t) => {
  const names = [
    'a',
    LONG,
    'x'.repeat(253),
    `${'a'.repeat(51)}.b${'c'.repeat(100)}`,
    `${'a'.repeat(52)}.${'b'.repeat(100)}`,
    `${'a'.repeat(239)}.${'b'.repeat(13)}`,
    `${'a'.repeat(239)}-${'b'.repeat(13)}`,
    `${'a.'.repeat(126)}a`,
  ];
  for (const name of names) {
    t.regex(name, SUBDOMAIN, 'the test uses legal names');
    const label = labelValue(name);
    t.true(label.length <= MAX_LABEL_VALUE && LABEL.test(label), `label for ${name.length} chars: ${label}`);
    const secret = newSecretName(name);
    t.true(secret.length <= 253 && SUBDOMAIN.test(secret), `Secret name for ${name.length} chars: ${secret}`);
    t.deepEqual(metadataProblems('Secret', { name: secret, labels: { 'leasehold.dev/request': label } }), []);
  }
});

test('what the API server would refuse is found before anything is asked of Vault', (t) => {
  t.deepEqual(metadataProblems('Secret', { name: 'ok-123456', labels: { a: 'b' } }), []);
  const raw = metadataProblems('Secret', { name: 'ok', labels: { 'leasehold.dev/request': LONG } });
  t.is(raw.length, 1);
  t.regex(raw[0]!, /label leasehold.dev\/request is 74 characters long \(at most 63\)/);
  t.regex(metadataProblems('Secret', { name: 'x'.repeat(254) })[0]!, /254 characters long/);
  t.regex(metadataProblems('Secret', { name: 'Upper_case' })[0]!, /not a DNS-1123 subdomain/);
  t.regex(metadataProblems('Secret', { name: 'x', labels: { k: '-starts-with-dash' } })[0]!, /invalid value/);
  t.regex(
    metadataProblems('Secret', { name: 'x', annotations: { big: 'x'.repeat(256 * 1024) } })[0]!,
    /annotations take/,
  );
});

test('an Event about an object with a 253-character name still has a valid name', (t) => {
  for (const name of [
    'short',
    'x'.repeat(253),
    `${'a'.repeat(230)}.${'b'.repeat(22)}`,
    `${'a'.repeat(232)}-${'b'.repeat(20)}`,
  ]) {
    const e = eventName(name, Date.parse('2026-03-01T12:00:00Z'));
    t.deepEqual(metadataProblems('Event', { name: e }), [], e);
  }
  t.regex(eventName('postgres-cred-rqst', 0), /^postgres-cred-rqst\.0[0-9a-f]{8}$/);
});

// ---- the Secret's data digest --------------------------------------------------------------------------------

const written = { username: 'v-token-abc', password: 'p@ss:w/rd', uri: 'postgresql://v-token-abc:p%40ss@db:5432/app' };
const annotation = dataDigestAnnotation(encodeData(written));
/** The data as the API server sends it back (base64). */
const asServed = (d: Record<string, string>) =>
  Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));

test('a Secret holding what Leasehold wrote is intact', (t) => {
  t.is(secretIntegrity(annotation, decodeData(asServed(written))), 'intact');
});

test('a password edited or removed by hand is a changed credential; so is a username', (t) => {
  t.is(secretIntegrity(annotation, decodeData(asServed({ ...written, password: 'wrong' }))), 'credential');
  const { password: _p, ...noPassword } = written;
  t.is(secretIntegrity(annotation, decodeData(asServed(noPassword))), 'credential');
  t.is(secretIntegrity(annotation, decodeData(asServed({ ...written, username: 'postgres' }))), 'credential');
  t.is(secretIntegrity(annotation, decodeData({})), 'credential');
});

test('other keys edited, removed or added leave the credential intact: the layout changed', (t) => {
  t.is(secretIntegrity(annotation, decodeData(asServed({ ...written, uri: 'postgresql://elsewhere' }))), 'layout');
  const { uri: _u, ...noUri } = written;
  t.is(secretIntegrity(annotation, decodeData(asServed(noUri))), 'layout');
  t.is(secretIntegrity(annotation, decodeData(asServed({ ...written, extra: 'x' }))), 'layout');
});

test('without a digest (or with one of another version) there is nothing to compare with', (t) => {
  t.is(secretIntegrity(undefined, decodeData(asServed(written))), undefined);
  t.is(secretIntegrity('v2.a.b.c', decodeData(asServed(written))), undefined);
  t.is(secretIntegrity('garbage', decodeData(asServed(written))), undefined);
});

test('the digest is salted per write and shows no value', (t) => {
  const again = dataDigestAnnotation(encodeData(written));
  t.not(again, annotation, 'two writes of the same data record different digests');
  t.is(secretIntegrity(again, decodeData(asServed(written))), 'intact');
  for (const v of Object.values(written)) t.false(annotation.includes(v));
  t.regex(annotation, /^v1\.[0-9a-f]{16}\.[0-9a-f]{32}\.[0-9a-f]{32}$/);
});

test('the Secrets cache keeps the verdict, never the data', (t) => {
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: 's',
      namespace: 'demo',
      annotations: { [DATA_DIGEST_ANNOTATION]: annotation },
      managedFields: [{}],
    },
    data: asServed({ ...written, password: 'edited' }),
  };
  const cached = secretCacheTransform(secret);
  t.is(cached.integrity, 'credential');
  t.false('data' in cached);
  t.is(cached.metadata?.managedFields, undefined);
  t.false(JSON.stringify(cached).includes(Buffer.from('edited').toString('base64')));
  const other = secretCacheTransform({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'admin' },
    data: asServed({ password: 'x' }),
  } as never);
  t.is(other.integrity, undefined, 'a Secret without a digest gets no verdict');
});

// ---- when a lease is looked up ---------------------------------------------------------------------------------

const P = 10 * 60_000;

test('a lease is looked up once after a start, then not again within the resync period, and again at each resync', (t) => {
  t.true(verifyDue(undefined, 0, P), 'never verified by this process (just started)');
  t.false(verifyDue(1_000, 1_000 + 60_000, P), 'a watch event a minute later: no look-up');
  t.false(verifyDue(1_000, 1_000 + 0.79 * P, P));
  // Resyncs come 0.9–1.1 periods apart: each one is due.
  t.true(verifyDue(1_000, 1_000 + 0.9 * P, P));
  t.true(verifyDue(1_000, 1_000 + 1.1 * P, P));
  t.is(verifyPeriodMs(0), DEFAULT_VERIFY_PERIOD_MS, 'no resync: the default period');
  t.is(verifyPeriodMs(5_000), 5_000);
  t.is(listingMaxAgeMs(P), 60_000);
  t.is(listingMaxAgeMs(6_000), 3_000);
  t.is(leaseIdPrefix('my-postgres-se/creds/k8s.-.demo.r/AbC'), 'my-postgres-se/creds/k8s.-.demo.r/');
  t.is(leaseIdPrefix('nope'), undefined);
});

/** A Vault that answers listings and look-ups from a set of live leases, counting calls. */
function fakeVault(live: Set<string>, o: { listFails?: boolean; lookupFails?: boolean } = {}) {
  const calls = { list: 0, lookup: 0 };
  const vault = {
    async listLeases(prefix: string): Promise<string[]> {
      calls.list++;
      if (o.listFails) throw new VaultRequestError('PermissionDenied', 'listing leases', 'permission denied', 403);
      return [...live].filter((id) => id.startsWith(prefix));
    },
    async lookupLease(id: string): Promise<LeaseInfo | undefined> {
      calls.lookup++;
      if (o.lookupFails) throw new VaultRequestError('Unreachable', 'looking up a lease', 'connection refused');
      return live.has(id) ? { leaseId: id, ttlSeconds: 60, renewable: true } : undefined;
    },
  } as unknown as VaultClient;
  return { vault, calls };
}

const lease = (n: number) => `m/creds/r/lease-${n}`;

test('one listing answers for every lease of a role; only a lease it lacks is looked up on its own', async (t) => {
  const live = new Set([lease(1), lease(2), lease(3)]);
  const { vault, calls } = fakeVault(live);
  const l = new LeaseLiveness(P);
  let now = 1_000;
  const results = await Promise.all(
    [1, 2, 3].map((n) =>
      l.check({ uid: `uid-${n}`, leaseId: lease(n) }, vault, { connectionKey: 'demo/vault', nowMs: () => now }),
    ),
  );
  t.deepEqual(results, ['alive', 'alive', 'alive']);
  t.deepEqual(calls, { list: 1, lookup: 0 }, 'three requests, one call');
  live.delete(lease(2));
  t.is(
    await l.check({ uid: 'uid-2', leaseId: lease(2) }, vault, { connectionKey: 'demo/vault', nowMs: () => now }),
    'alive',
    "within the listing's age it still answers",
  );
  t.false(l.due('uid-1', lease(1), now + 60_000), 'verified: not due until the next resync');
  now += 0.85 * P; // the next resync
  t.true(l.due('uid-2', lease(2), now));
  t.is(
    await l.check({ uid: 'uid-2', leaseId: lease(2) }, vault, { connectionKey: 'demo/vault', nowMs: () => now }),
    'gone',
  );
  t.deepEqual(calls, { list: 2, lookup: 1 }, 'a fresh listing, then a look-up to confirm');
  t.true(l.due('uid-2', lease(2), now), 'a lease found gone stays due (it is rotated, not trusted)');
});

test('a lease issued after the listing is confirmed by its own look-up, not taken for revoked', async (t) => {
  const live = new Set([lease(1)]);
  const { vault, calls } = fakeVault(live);
  const l = new LeaseLiveness(P);
  t.is(
    await l.check({ uid: 'uid-1', leaseId: lease(1) }, vault, { connectionKey: 'demo/vault', nowMs: () => 0 }),
    'alive',
  );
  live.add(lease(9));
  t.is(
    await l.check({ uid: 'uid-9', leaseId: lease(9) }, vault, { connectionKey: 'demo/vault', nowMs: () => 10 }),
    'alive',
  );
  t.deepEqual(calls, { list: 1, lookup: 1 });
});

test("without the list capability each lease is looked up on its own; when Vault can't answer, the lease is kept and tried again later", async (t) => {
  const { vault, calls } = fakeVault(new Set([lease(1)]), { listFails: true });
  const l = new LeaseLiveness(P);
  t.is(
    await l.check({ uid: 'uid-1', leaseId: lease(1) }, vault, { connectionKey: 'demo/vault', nowMs: () => 0 }),
    'alive',
  );
  t.is(
    await l.check({ uid: 'uid-2', leaseId: lease(2) }, vault, { connectionKey: 'demo/vault', nowMs: () => 0 }),
    'gone',
  );
  t.deepEqual(calls, { list: 2, lookup: 2 });
  const down = fakeVault(new Set([lease(1)]), { listFails: true, lookupFails: true });
  const m = new LeaseLiveness(P);
  t.is(
    await m.check({ uid: 'uid-1', leaseId: lease(1) }, down.vault, { connectionKey: 'demo/vault', nowMs: () => 0 }),
    'unknown',
  );
  t.false(m.due('uid-1', lease(1), RETRY_VERIFY_MS - 1), 'not on every pass');
  t.true(m.due('uid-1', lease(1), RETRY_VERIFY_MS));
});

test('a new lease of the same request is due on its own; a renewal counts as a look-up', (t) => {
  const l = new LeaseLiveness(P);
  l.alive('uid-1', lease(1), 0);
  t.false(l.due('uid-1', lease(1), 1_000));
  t.true(l.due('uid-1', lease(2), 1_000), 'another lease: never verified');
  l.alive('uid-1', lease(1), 0.85 * P);
  t.false(l.due('uid-1', lease(1), 0.9 * P));
  l.forget('uid-1');
  t.true(l.due('uid-1', lease(1), 0.9 * P));
});
