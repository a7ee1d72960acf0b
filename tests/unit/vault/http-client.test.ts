// The Vault boundary tells a lease that is gone from a revocation that failed (Vault answers HTTP 400 to both),
// and counts calls under fixed operation names, expected "not found" answers apart from errors.
import test from 'ava';
import { HttpVaultClient } from '../../../lib/vault/http-client.ts';
import { VaultTransport, type CallOutcome, type HttpSend, type VaultOperation } from '../../../lib/vault/transport.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';
import { explain } from '../../../controllers/shared/report.ts';

/** Vault's answer with an HTTP error status. */
function answer(status: number, errors: string[]): { status: number; body: unknown } {
  return { status, body: { errors } };
}
const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8200'), { code: 'ECONNREFUSED' });

const LEASE = 'my-postgres-se/creds/k8s.-.demo.psql-role/AbCdEf123';
const UNKNOWN_LEASE = answer(400, ['invalid lease']);
/** What Vault said on the stack when PostgreSQL refused to drop a login owning a table. */
const DROP_REFUSED = answer(400, [
  `failed to revoke lease: lease_id=${LEASE}: failed to revoke entry: resp: (*logical.Response)(nil) err: ` +
    'pq: role "v-k8s-psql-abc" cannot be dropped because some objects depend on it',
]);

/** A client over a fake HTTP sender: `routes` answers each path (a body for 200, an `answer(…)`, or an Error to throw). */
function client(routes: Record<string, unknown>) {
  const calls: string[] = [];
  const counted: Array<[VaultOperation, CallOutcome]> = [];
  const send: HttpSend = async ({ path }) => {
    calls.push(path);
    const r = routes[path];
    if (r instanceof Error) throw r;
    if (r === undefined) throw new Error(`unexpected call to ${path}`);
    return typeof r === 'object' && r !== null && 'status' in r
      ? (r as { status: number; body: unknown })
      : { status: 200, body: r };
  };
  const transport = new VaultTransport(
    { address: 'https://vault.test:8200' },
    (op, outcome) => counted.push([op, outcome]),
    send,
  );
  const vault = new HttpVaultClient(transport, async () => 'test-token');
  return { vault, calls, counted };
}

const liveLease = {
  data: {
    id: LEASE,
    issue_time: '2026-03-01T12:00:00Z',
    expire_time: '2026-03-01T13:00:00Z',
    ttl: 3000,
    renewable: true,
  },
};

test('a revocation Vault did resolves "revoked"', async (t) => {
  const { vault, counted } = client({ 'sys/leases/revoke': {} });
  t.is(await vault.revokeLease(LEASE), 'revoked');
  t.deepEqual(counted, [['revokeLease', 'success']]);
});

test('a lease Vault no longer knows is "gone", and neither call counts as an error', async (t) => {
  const { vault, calls, counted } = client({ 'sys/leases/revoke': UNKNOWN_LEASE, 'sys/leases/lookup': UNKNOWN_LEASE });
  t.is(await vault.revokeLease(LEASE), 'gone');
  t.deepEqual(calls, ['sys/leases/revoke', 'sys/leases/lookup']);
  t.deepEqual(counted, [
    ['lookupLease', 'not_found'],
    ['revokeLease', 'not_found'],
  ]);
});

test("a 400 for a lease that is still there is a failed revocation carrying Vault's words, never success", async (t) => {
  const { vault, counted } = client({ 'sys/leases/revoke': DROP_REFUSED, 'sys/leases/lookup': liveLease });
  const err = await t.throwsAsync(vault.revokeLease(LEASE), { instanceOf: VaultRequestError });
  t.is(err.kind, 'RevocationFailed');
  t.regex(err.detail, /cannot be dropped because some objects depend on it/);
  t.true(err.retryable);
  t.deepEqual(counted, [
    ['lookupLease', 'success'],
    ['revokeLease', 'error'],
  ]);
  const explained = explain(err);
  t.is(explained.reason, 'RevocationFailed');
  t.regex(explained.message, /cannot be dropped/);
});

test('a 500 for a lease that is still there is a failed revocation too', async (t) => {
  const { vault } = client({ 'sys/leases/revoke': answer(500, ['internal error']), 'sys/leases/lookup': liveLease });
  const err = await t.throwsAsync(vault.revokeLease(LEASE), { instanceOf: VaultRequestError });
  t.is(err.kind, 'RevocationFailed');
});

test('an unreachable Vault is not asked about the lease, and the revocation throws Unreachable', async (t) => {
  const { vault, calls, counted } = client({ 'sys/leases/revoke': refused });
  const err = await t.throwsAsync(vault.revokeLease(LEASE), { instanceOf: VaultRequestError });
  t.is(err.kind, 'Unreachable');
  t.deepEqual(calls, ['sys/leases/revoke']);
  t.deepEqual(counted, [['revokeLease', 'error']]);
  t.is(explain(err).reason, 'VaultUnreachable');
});

test('a refusal whose lookup can\'t be made is not read as "gone"', async (t) => {
  const { vault } = client({ 'sys/leases/revoke': DROP_REFUSED, 'sys/leases/lookup': refused });
  const err = await t.throwsAsync(vault.revokeLease(LEASE), { instanceOf: VaultRequestError });
  t.is(err.kind, 'Unreachable');
});

test('a denied revocation stays PermissionDenied (the lease is not looked up)', async (t) => {
  const { vault, calls } = client({ 'sys/leases/revoke': answer(403, ['permission denied']) });
  const err = await t.throwsAsync(vault.revokeLease(LEASE), { instanceOf: VaultRequestError });
  t.is(err.kind, 'PermissionDenied');
  t.deepEqual(calls, ['sys/leases/revoke']);
});

test('expected "not found" answers are counted as not_found, with fixed operation names', async (t) => {
  const { vault, counted } = client({
    'sys/mounts/absent': answer(400, ['No secret engine mount at absent/']),
    'sys/leases/lookup/db/creds/none': answer(404, []),
    'sys/leases/lookup': UNKNOWN_LEASE,
  });
  t.is(await vault.readMount('absent'), undefined);
  t.deepEqual(await vault.listLeases('db/creds/none/'), []);
  t.is(await vault.lookupLease(LEASE), undefined);
  t.deepEqual(counted, [
    ['readMount', 'not_found'],
    ['listLeases', 'not_found'],
    ['lookupLease', 'not_found'],
  ]);
});

test("other failures are errors under the method's own name, whatever the message says", async (t) => {
  const { vault, counted } = client({
    'db/config/conn': answer(400, ['connection "conn" is in use by role "r"']),
    'sys/mounts/broken': answer(500, ['storage failure']),
  });
  const deleted = await t.throwsAsync(vault.deleteConnection('db', 'conn'), { instanceOf: VaultRequestError });
  t.is(deleted.kind, 'Invalid');
  t.is(explain(deleted).reason, 'VaultInvalid');
  await t.throwsAsync(vault.readMount('broken'), { instanceOf: VaultRequestError });
  t.deepEqual(counted, [
    ['deleteConnection', 'error'],
    ['readMount', 'error'],
  ]);
});
