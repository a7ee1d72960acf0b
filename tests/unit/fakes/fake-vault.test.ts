// The in-memory Vault answers like Vault does where the controllers decide on the answer: TTLs, truncated
// renewals, revocations that find nothing, mounts taking their leases along, and errors of the kinds
// NodeVaultClient produces for the same HTTP answers.
import test from 'ava';
import { FakeClock } from '../../../lib/runtime/clock.ts';
import type { DatabaseRoleSpec } from '../../../lib/vault/client.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';
import { FakeVault, SYSTEM_DEFAULT_TTL_SECONDS } from '../../fakes/fake-vault.ts';

const role = (defaultTtlSeconds: number, maxTtlSeconds: number): DatabaseRoleSpec => ({
  dbName: 'k8s.test.demo.postgres-app',
  creationStatements: ['CREATE ROLE "{{name}}"'],
  revocationStatements: [],
  rollbackStatements: [],
  renewStatements: [],
  defaultTtlSeconds,
  maxTtlSeconds,
});

/** A Vault with mount `db`, its connection and role `app` (1 h default, 2 h max), on a FakeClock. */
async function vaultWithRole(ttl = { def: 3600, max: 7200 }) {
  const clock = new FakeClock();
  const vault = new FakeVault({ now: () => clock.now() });
  await vault.enableDatabaseMount('db', 'test', {});
  await vault.writeConnection('db', 'k8s.test.demo.postgres-app', {
    pluginName: 'postgresql-database-plugin',
    connectionUrl: 'postgresql://{{username}}:{{password}}@db:5432/app',
    username: 'postgres',
    password: 'root',
    allowedRoles: ['*'],
    verifyConnection: true,
  });
  await vault.writeRole('db', 'app', role(ttl.def, ttl.max));
  vault.resetCalls();
  return { clock, vault };
}

const kindOf = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return err instanceof VaultRequestError
    ? err.kind
    : err === undefined
      ? 'resolved'
      : `not a VaultRequestError: ${String(err)}`;
};

test("a credential is a lease under <mount>/creds/<role>/ for the role's default TTL, with a fresh login", async (t) => {
  const { vault } = await vaultWithRole();
  const a = await vault.issueCredential('db', 'app');
  const b = await vault.issueCredential('db', 'app');
  t.regex(a.leaseId, /^db\/creds\/app\/[A-Za-z0-9]{24}$/);
  t.is(a.leaseDurationSeconds, 3600);
  t.true(a.renewable);
  t.not(a.username, b.username);
  t.not(a.password, b.password);
  t.is(vault.liveLeases().length, 2);
  t.is(vault.calls.issueCredential, 2);
});

test("a role without TTLs issues for the mount's default, or Vault's 768 hours", async (t) => {
  const { vault } = await vaultWithRole({ def: 0, max: 0 });
  t.is((await vault.issueCredential('db', 'app')).leaseDurationSeconds, SYSTEM_DEFAULT_TTL_SECONDS);
  await vault.tuneMount('db', { defaultLeaseTtlSeconds: 600, maxLeaseTtlSeconds: 900 });
  t.is((await vault.issueCredential('db', 'app')).leaseDurationSeconds, 600);
});

test('a renewal past max TTL is truncated to what is left of issue time + max TTL', async (t) => {
  const { clock, vault } = await vaultWithRole();
  const { leaseId } = await vault.issueCredential('db', 'app');
  clock.advance(30 * 60_000);
  t.is((await vault.renewLease(leaseId, 3600)).leaseDurationSeconds, 3600, 'well within max TTL: granted as asked');
  clock.advance(55 * 60_000);
  t.is((await vault.renewLease(leaseId, 3600)).leaseDurationSeconds, 2100, '85 min after issue, 2 h max: 35 min left');
  t.is((await vault.lookupLease(leaseId))?.ttlSeconds, 2100);
  clock.advance(35 * 60_000);
  t.is(await kindOf(vault.renewLease(leaseId, 3600)), 'Invalid', 'at max TTL the lease is gone: Vault answers 400');
});

test("a renewal without an increment is granted the role's default TTL", async (t) => {
  const { clock, vault } = await vaultWithRole({ def: 600, max: 7200 });
  const { leaseId } = await vault.issueCredential('db', 'app');
  clock.advance(60_000);
  t.is((await vault.renewLease(leaseId)).leaseDurationSeconds, 600);
});

test("a lease past its expire time is gone: renew refuses, lookup and list don't know it, revoke answers gone", async (t) => {
  const { clock, vault } = await vaultWithRole();
  const { leaseId } = await vault.issueCredential('db', 'app');
  clock.advance(3600_000);
  t.is(await kindOf(vault.renewLease(leaseId, 60)), 'Invalid');
  t.is(await vault.lookupLease(leaseId), undefined);
  t.deepEqual(await vault.listLeases('db/creds/app/'), []);
  t.is(await vault.revokeLease(leaseId), 'gone');
  t.is(vault.leaseRecord(leaseId)?.ended?.how, 'expired');
});

test('revoking a lease twice answers revoked, then gone', async (t) => {
  const { vault } = await vaultWithRole();
  const { leaseId } = await vault.issueCredential('db', 'app');
  t.is(await vault.revokeLease(leaseId), 'revoked');
  t.is(await vault.revokeLease(leaseId), 'gone');
  t.deepEqual(vault.liveLeases(), []);
});

test("a revocation the database refuses is RevocationFailed with Vault's words, and the lease stays live", async (t) => {
  const { vault } = await vaultWithRole();
  const { leaseId } = await vault.issueCredential('db', 'app');
  const allow = vault.refuseRevocation(leaseId, 'pq: role "v-x" cannot be dropped because some objects depend on it');
  const err = await vault.revokeLease(leaseId).catch((e: unknown) => e);
  t.true(
    err instanceof VaultRequestError && err.kind === 'RevocationFailed' && /cannot be dropped/.test(err.detail),
    String(err),
  );
  t.is(vault.liveLeases().length, 1);
  allow();
  t.is(await vault.revokeLease(leaseId), 'revoked');
});

test("a lease whose connection was deleted can't be revoked (Vault needs the connection)", async (t) => {
  const { vault } = await vaultWithRole();
  const { leaseId } = await vault.issueCredential('db', 'app');
  await vault.deleteConnection('db', 'k8s.test.demo.postgres-app');
  t.is(await kindOf(vault.revokeLease(leaseId)), 'RevocationFailed');
});

test('disabling a mount revokes its leases and takes its roles along', async (t) => {
  const { vault } = await vaultWithRole();
  const a = await vault.issueCredential('db', 'app');
  await vault.issueCredential('db', 'app');
  await vault.disableMount('db');
  t.deepEqual(vault.liveLeases(), []);
  t.is(vault.leaseRecord(a.leaseId)?.ended?.how, 'mount-disabled');
  t.is(await vault.readMount('db'), undefined);
  t.is(await kindOf(vault.writeRole('db', 'app', role(60, 60))), 'NotFound', 'no mount: the route does not exist');
  t.is(vault.roleAt('db', 'app'), undefined);
});

test("a mount one of whose leases can't be revoked stays, with every lease", async (t) => {
  const { vault } = await vaultWithRole();
  const { leaseId } = await vault.issueCredential('db', 'app');
  vault.refuseRevocation(leaseId);
  t.is(await kindOf(vault.disableMount('db')), 'Invalid');
  t.truthy(await vault.readMount('db'));
  t.is(vault.liveLeases().length, 1);
});

test('leases are listed one level under a prefix, as full ids', async (t) => {
  const { vault } = await vaultWithRole();
  const a = await vault.issueCredential('db', 'app');
  const b = await vault.issueCredential('db', 'app');
  t.deepEqual((await vault.listLeases('db/creds/app/')).sort(), [a.leaseId, b.leaseId].sort());
  t.deepEqual(await vault.listLeases('db/creds/'), ['db/creds/app/']);
  t.deepEqual(await vault.listLeases('db/creds/other/'), []);
});

test('an injected fault fails the next N calls with the kind NodeVaultClient gives that HTTP answer, then clears', async (t) => {
  const { vault } = await vaultWithRole();
  const { leaseId } = await vault.issueCredential('db', 'app');
  vault.fail('renewLease', 'PermissionDenied', { times: 2 });
  t.is(await kindOf(vault.renewLease(leaseId, 60)), 'PermissionDenied');
  t.is(await kindOf(vault.renewLease(leaseId, 60)), 'PermissionDenied');
  t.is(await kindOf(vault.renewLease(leaseId, 60)), 'resolved');
  vault.fail('issueCredential', { status: 500, errors: ['plugin crashed'] });
  const err = await vault.issueCredential('db', 'app').catch((e: unknown) => e);
  t.true(
    err instanceof VaultRequestError &&
      err.kind === 'Server' &&
      err.message === 'issuing credentials for role app in db: plugin crashed',
    String(err),
  );
  t.is(vault.calls.renewLease, 3);
});

test('an outage makes every call Unreachable (connection refused) until Vault is up again', async (t) => {
  const { vault } = await vaultWithRole();
  const { leaseId } = await vault.issueCredential('db', 'app');
  vault.down();
  t.is(await kindOf(vault.health()), 'Unreachable');
  t.is(await kindOf(vault.revokeLease(leaseId)), 'Unreachable');
  const err = await vault.readMount('db').catch((e: unknown) => e);
  t.regex(String((err as Error).message), /^reading mount db: connection refused/);
  vault.up();
  t.is(await vault.revokeLease(leaseId), 'revoked');
});

test('a sealed Vault says so in health and answers Sealed to everything else', async (t) => {
  const { vault } = await vaultWithRole();
  vault.seal();
  t.true((await vault.health()).sealed);
  t.is(await kindOf(vault.issueCredential('db', 'app')), 'Sealed');
});

test('a fault can target one lease only', async (t) => {
  const { vault } = await vaultWithRole();
  const a = await vault.issueCredential('db', 'app');
  const b = await vault.issueCredential('db', 'app');
  vault.fail('revokeLease', 'Unreachable', { when: ([id]) => id === a.leaseId });
  t.is(await kindOf(vault.revokeLease(a.leaseId)), 'Unreachable');
  t.is(await vault.revokeLease(b.leaseId), 'revoked');
});

test('a role whose default TTL exceeds its max TTL is refused, as Vault refuses it', async (t) => {
  const { vault } = await vaultWithRole();
  t.is(await kindOf(vault.writeRole('db', 'bad', role(7200, 3600))), 'Invalid');
});

test("a cancelled call never reaches Vault and rejects with the signal's reason", async (t) => {
  const { vault } = await vaultWithRole();
  const abort = new AbortController();
  abort.abort(new Error('shutting down'));
  const err = await vault.issueCredential('db', 'app', { signal: abort.signal }).catch((e: unknown) => e);
  t.is((err as Error).message, 'shutting down');
  t.deepEqual(vault.liveLeases(), []);
});

test('enabling a mount twice is refused; reading an absent mount is undefined', async (t) => {
  const { vault } = await vaultWithRole();
  t.is(await kindOf(vault.enableDatabaseMount('db', 'again', {})), 'Invalid');
  t.is(await vault.readMount('elsewhere'), undefined);
  t.deepEqual(await vault.readMount('db'), { type: 'database', description: 'test' });
});
