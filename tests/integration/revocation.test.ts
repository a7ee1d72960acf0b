// A revocation is done only when Vault has done it, against the real stack. A login whose role
// may `CREATE` in schema public creates a table; PostgreSQL then refuses Vault's DROP ROLE (the login owns an
// object), and Vault answers HTTP 400, as it does for a lease it doesn't know. Whatever ends the access (deleting
// the request, `kubectl vault revoke`, a rotation's grace period, expiry) must then keep what it was ending, say
// so with Vault's words (one Warning Event), retry with backoff, and finish once the cause is fixed: the role's
// revocationStatements reassign and drop what the login owns (the README's example), or a DBA does it by hand.
// A lease that really is gone (revoked in Vault by hand) still counts as done. Vault's request metrics count the
// expected "not found" answers as such.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { Annotations } from '../../api/index.ts';
import {
  GROUP,
  VERSION,
  credentialsOf,
  getCr,
  login,
  type Cr,
  approvedRequest as approved,
  loginWorks,
  prepareGuide,
} from './helpers/leasehold.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import { guideRole, kubectl, vaultRequest } from '../../scripts/stack/leasehold-setup.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';

type Ctx = StackContext & { operator: OperatorProcess };
const test = anyTest as TestFn<Ctx>;
useStack(test);
type T = ExecutionContext<Ctx>;

const NS = 'demo';
const repo = process.cwd();

/** The role: its logins may create tables in schema public (PostgreSQL 15 no longer lets PUBLIC). */
const OWNING_CREATION = [
  "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
  'GRANT CREATE ON SCHEMA public TO "{{name}}";',
];
/** The README's revocationStatements for logins that may own objects (CURRENT_USER: the admin Vault connects as). */
const README_REVOCATION = [
  'REASSIGN OWNED BY "{{name}}" TO CURRENT_USER;',
  'DROP OWNED BY "{{name}}";',
  'DROP ROLE IF EXISTS "{{name}}";',
];
/** Vault's operation names for vault_requests_total (lib/runtime/metrics.ts). */
const OPERATIONS = new Set([
  'health',
  'readMount',
  'enableMount',
  'tuneMount',
  'disableMount',
  'listConnections',
  'writeConnection',
  'deleteConnection',
  'writeRole',
  'readRole',
  'deleteRole',
  'issueCredential',
  'renewLease',
  'lookupLease',
  'listLeases',
  'revokeLease',
  'login',
  'lookupToken',
  'renewToken',
  'createToken',
]);

// ---- helpers ------------------------------------------------------------------------------------------------------

function apply(t: T, obj: unknown): void {
  kubectl(t.context.env, ['apply', '-f', '-'], YAML.stringify(obj));
}

const dar = (t: T, name: string) => getCr(t.context.env, 'databaseaccessrequests', NS, name);

async function owningRole(t: T, name: string, extra: Record<string, unknown> = {}): Promise<void> {
  apply(t, guideRole(name, { creationStatements: OWNING_CREATION, defaultTTL: '10m', maxTTL: '1h', ...extra }));
  await eventually(
    t,
    `PostgresRole ${name} ready`,
    async () => (await getCr(t.context.env, 'postgresroles', NS, name))?.status?.phase === 'Success',
    60_000,
  );
}

const approvedRequest = (t: T, name: string, role: string, spec: Record<string, unknown> = {}): Promise<Cr> =>
  approved(t, t.context.env, { namespace: NS, name, role, spec });

const canLogin = (t: T, user: string, password: string): Promise<boolean> => loginWorks(t.context.env, user, password);

/** As the database's admin (what a DBA would run). */
async function asAdmin<R = Record<string, unknown>>(t: T, sql: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: t.context.env.postgres.url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as R[];
  } finally {
    await c.end();
  }
}

async function leaseAlive(t: T, leaseId: string): Promise<boolean> {
  const res = await vaultRequest(
    t.context.env,
    'PUT',
    'sys/leases/lookup',
    { lease_id: leaseId },
    { allowError: true },
  );
  return res.status === 200;
}

type Event = { type: string; reason: string; message: string; count?: number };

function events(t: T, name: string): Event[] {
  const list = JSON.parse(
    kubectl(t.context.env, [
      '-n',
      NS,
      'get',
      'events',
      '--field-selector',
      `involvedObject.name=${name}`,
      '-o',
      'json',
    ]),
  ) as { items: Event[] };
  return list.items;
}

/** Warning Events about `name` with `reason`, counting repeats the recorder folded into one. */
function warnings(t: T, name: string, reason: string): number {
  return events(t, name)
    .filter((e) => e.type === 'Warning' && e.reason === reason)
    .reduce((n, e) => n + (e.count ?? 1), 0);
}

const condition = (o: Cr, type: string) => (o?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);

async function metrics(t: T): Promise<string> {
  return (await fetch(t.context.operator.metricsUrl)).text();
}

/** Every sample of a metric: its labels and value. */
function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    out.push({
      labels: Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!])),
      value: Number(m[4]),
    });
  }
  return out;
}

function metricValue(text: string, name: string, labels: Record<string, string>): number {
  return samples(text, name)
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

/** Waits until the operator has tried (and failed) `n` times for `reason`: a retry happened. */
async function failedRevocations(t: T, reason: string, n: number): Promise<void> {
  await eventually(
    t,
    `${n} failed ${reason} revocations`,
    async () => metricValue(await metrics(t), 'leasehold_lease_revocations_total', { reason, outcome: 'failed' }) >= n,
    60_000,
    500,
  );
}

/** The real kubectl, finding our plugin (and Node 24 for it) first on PATH, as a user's shell would. */
function kubectlVault(t: T, args: string[]): string {
  const { env } = t.context;
  return execFileSync(env.kubernetes.kubectl, ['vault', ...args, `--kubeconfig=${env.kubernetes.kubeconfig}`], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${path.join(repo, 'bin')}:${path.join(repo, 'node_modules/.bin')}:${process.env.PATH}`,
    },
  });
}

/** Logs in with the request's credential and creates a table: the login now owns an object. */
async function ownSomething(t: T, o: Cr, table: string): Promise<{ username: string; password: string }> {
  const c = await credentialsOf(t.context.env, NS, o.status.secret.name);
  await login(t.context.env, c.username, c.password, `CREATE TABLE ${table} (x int)`);
  return c;
}

/** What every failed revocation must look like while it lasts: the access not ended, Vault's words, one Warning. */
async function stuck(
  t: T,
  name: string,
  leaseId: string,
  c: { username: string; password: string },
  reason: string,
): Promise<Cr> {
  const o = await eventually(
    t,
    `${name}: Revoked False, RevocationFailed`,
    async () => {
      const x = await dar(t, name);
      return condition(x, 'Revoked')?.reason === 'RevocationFailed' ? x : undefined;
    },
    60_000,
    500,
  );
  const revoked = condition(o, 'Revoked');
  t.is(revoked.status, 'False');
  t.regex(
    revoked.message,
    /cannot be dropped because some objects depend on it/,
    'the condition carries what PostgreSQL said, through Vault',
  );
  t.regex(revoked.message, new RegExp(leaseId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  await failedRevocations(t, reason, 2);
  t.is(warnings(t, name, 'RevocationFailed'), 1, 'one Warning, not one per retry');
  t.true(await canLogin(t, c.username, c.password), 'the login still works');
  t.true(await leaseAlive(t, leaseId), 'the lease is still live in Vault');
  return (await dar(t, name))!;
}

// ---- set-up --------------------------------------------------------------------------------------------------------

test.before(async (t) => {
  const { env } = t.context;
  await prepareGuide(env);
  t.context.operator = await startOperator(env);
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
  kubectl(env, ['apply', '-f', 'manifests/samples/30-postgres-secret-engine.yaml']);
  await eventually(
    t as unknown as T,
    'SecretEngine phase Success',
    async () => (await getCr(env, 'secretengines', NS, 'postgresql-engine'))?.status?.phase === 'Success',
    60_000,
  );
});

// ---- the tests -----------------------------------------------------------------------------------------------------

test("a deleted request whose login owns a table stays until Vault revoked the lease; the README's revocationStatements let it go", async (t) => {
  t.timeout(4 * 60_000);
  await owningRole(t, 'owner-delete');
  const o = await approvedRequest(t, 'delete-owner', 'owner-delete');
  const leaseId: string = o.status.lease.id;
  const c = await ownSomething(t, o, 'made_by_delete_owner');

  kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', 'delete-owner', '--wait=false']);
  const held = await stuck(t, 'delete-owner', leaseId, c, 'deletion');
  t.truthy(held.metadata.deletionTimestamp);
  t.true(held.metadata.finalizers.includes('leasehold.dev/finalizer'), 'the finalizer stays');
  t.is(held.status.phase, 'Approved', 'status does not claim the access ended');
  t.is(held.status.lease.id, leaseId);

  // What the troubleshooting table says to do: the role's revocationStatements reassign and drop what it owns.
  // Vault revokes with the role's statements as they are now, so the lease issued before the fix goes too.
  apply(
    t,
    guideRole('owner-delete', {
      creationStatements: OWNING_CREATION,
      revocationStatements: README_REVOCATION,
      defaultTTL: '10m',
      maxTTL: '1h',
    }),
  );
  await eventually(t, 'the request to go', async () => !(await dar(t, 'delete-owner')), 90_000, 500);
  t.false(await canLogin(t, c.username, c.password), 'the login no longer works');
  t.false(await leaseAlive(t, leaseId), 'the lease is gone from Vault');
  const owner = await asAdmin<{ tableowner: string }>(
    t,
    "SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_delete_owner'",
  );
  t.deepEqual(
    owner,
    [{ tableowner: t.context.env.postgres.user }],
    'the table was handed to the admin Vault connects as, not lost',
  );

  // A login issued under the fixed role goes at once.
  const next = await approvedRequest(t, 'delete-owner-2', 'owner-delete');
  const c2 = await ownSomething(t, next, 'made_by_delete_owner_2');
  kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', 'delete-owner-2', '--timeout=60s']);
  t.false(await canLogin(t, c2.username, c2.password));
  t.false(await leaseAlive(t, next.status.lease.id));
  t.is(warnings(t, 'delete-owner-2', 'RevocationFailed'), 0);
});

test('kubectl vault revoke: the phase stays until Vault revoked the lease; after a DBA drops what the login owns it becomes Revoked', async (t) => {
  t.timeout(5 * 60_000);
  await owningRole(t, 'owner-revoke');
  const o = await approvedRequest(t, 'revoke-owner', 'owner-revoke');
  const leaseId: string = o.status.lease.id;
  const c = await ownSomething(t, o, 'made_by_revoke_owner');

  t.regex(kubectlVault(t, ['revoke', 'databaseaccessrequest', 'revoke-owner', '-n', NS]), /revocation requested/);
  const held = await stuck(t, 'revoke-owner', leaseId, c, 'revoke-now');
  t.is(held.status.phase, 'Approved', 'not Revoked while the login works');
  t.is(condition(held, 'Available')?.status, 'True');
  t.not(held.status.phase, 'Revoked');
  t.truthy(
    (await credentialsOf(t.context.env, NS, held.status.secret.name)).password,
    'the Secret still holds the working credential',
  );

  // The DBA hands the login's objects (and privileges) over by hand; Vault's default DROP ROLE then succeeds at
  // the next retry, which comes on its own (nothing else wakes the request).
  await asAdmin(t, `REASSIGN OWNED BY "${c.username}" TO CURRENT_USER; DROP OWNED BY "${c.username}"`);
  const done = await eventually(
    t,
    'phase Revoked',
    async () => {
      const x = await dar(t, 'revoke-owner');
      return x?.status?.phase === 'Revoked' ? x : undefined;
    },
    150_000,
    1000,
  );
  t.is(condition(done, 'Revoked')?.status, 'True');
  t.is(condition(done, 'Revoked')?.reason, 'RevokedOnDemand');
  t.false(await canLogin(t, c.username, c.password), 'the login no longer works');
  t.false(await leaseAlive(t, leaseId), 'the lease is gone from Vault');
  kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', 'revoke-owner', '--timeout=60s']);
});

test('a rotated-out login that owns a table is kept in previousLeases, reported, and revoked once the DBA fixes it', async (t) => {
  t.timeout(4 * 60_000);
  await owningRole(t, 'owner-rotate');
  const o = await approvedRequest(t, 'rotate-owner', 'owner-rotate', { rotationGracePeriod: '3s' });
  const oldLease: string = o.status.lease.id;
  const old = await ownSomething(t, o, 'made_by_rotate_owner');

  await t.context.env.kubeConfig.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: 'databaseaccessrequests',
      name: 'rotate-owner',
      body: { metadata: { annotations: { [Annotations.rotateNow]: 'once' } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const held = await stuck(t, 'rotate-owner', oldLease, old, 'rotation');
  t.deepEqual(
    held.status.previousLeases.map((p: { id: string }) => p.id),
    [oldLease],
    'the lease Vault did not revoke stays recorded',
  );
  t.not(held.status.lease.id, oldLease);
  t.is(condition(held, 'Available')?.status, 'True', 'the new credential is available throughout');
  const current = await credentialsOf(t.context.env, NS, held.status.secret.name);
  t.true(await canLogin(t, current.username, current.password));

  await asAdmin(t, `REASSIGN OWNED BY "${old.username}" TO CURRENT_USER; DROP OWNED BY "${old.username}"`);
  const done = await eventually(
    t,
    'previousLeases emptied',
    async () => {
      const x = await dar(t, 'rotate-owner');
      return x && !x.status?.previousLeases ? x : undefined;
    },
    150_000,
    1000,
  );
  t.is(condition(done, 'Revoked'), undefined, 'the failure leaves status once the lease is revoked');
  t.false(await canLogin(t, old.username, old.password), 'the old login no longer works');
  t.false(await leaseAlive(t, oldLease));
  t.true(await canLogin(t, current.username, current.password), 'the new login is unaffected');
  // The current login holds CREATE on schema public, which Vault's default DROP ROLE trips over as well: the
  // README's revocationStatements let the request go.
  apply(
    t,
    guideRole('owner-rotate', {
      creationStatements: OWNING_CREATION,
      revocationStatements: README_REVOCATION,
      defaultTTL: '10m',
      maxTTL: '1h',
    }),
  );
  await eventually(
    t,
    'the role updated',
    async () => (await getCr(t.context.env, 'postgresroles', NS, 'owner-rotate'))?.status?.observedGeneration === 2,
    30_000,
  );
  kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', 'rotate-owner', '--timeout=60s']);
  t.false(await canLogin(t, current.username, current.password));
});

test('renew: false — a request whose lease ran out is not Expired while Vault still holds it; it is once the lease is revoked', async (t) => {
  t.timeout(4 * 60_000);
  await owningRole(t, 'owner-expire', { defaultTTL: '10s', maxTTL: '1h' });
  const o = await approvedRequest(t, 'expire-owner', 'owner-expire', { renew: false });
  const leaseId: string = o.status.lease.id;
  const c = await ownSomething(t, o, 'made_by_expire_owner');

  // Past its TTL: Vault's own revocation and the operator's both fail (VALID UNTIL has ended the password, but the
  // role, its table and the lease remain).
  const held = await eventually(
    t,
    'expire-owner: Revoked False, RevocationFailed',
    async () => {
      const x = await dar(t, 'expire-owner');
      return condition(x, 'Revoked')?.reason === 'RevocationFailed' ? x : undefined;
    },
    90_000,
    500,
  );
  t.regex(condition(held, 'Revoked').message, /cannot be dropped because some objects depend on it/);
  t.not(held.status.phase, 'Expired', 'not Expired while Vault holds the lease');
  t.true(await leaseAlive(t, leaseId));
  t.deepEqual(
    await asAdmin(t, `SELECT 1 AS one FROM pg_roles WHERE rolname = '${c.username}'`),
    [{ one: 1 }],
    'the database role still exists',
  );

  await asAdmin(t, `REASSIGN OWNED BY "${c.username}" TO CURRENT_USER; DROP OWNED BY "${c.username}"`);
  const done = await eventually(
    t,
    'phase Expired',
    async () => {
      const x = await dar(t, 'expire-owner');
      return x?.status?.phase === 'Expired' ? x : undefined;
    },
    150_000,
    1000,
  );
  t.is(condition(done, 'Expired')?.status, 'True');
  t.is(condition(done, 'Revoked'), undefined);
  t.false(await leaseAlive(t, leaseId));
  t.deepEqual(
    await asAdmin(t, `SELECT 1 AS one FROM pg_roles WHERE rolname = '${c.username}'`),
    [],
    'the database role is gone',
  );
  kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', 'expire-owner', '--timeout=60s']);
});

test('a request deleted while Vault is down keeps its finalizer and says VaultUnreachable; it goes once Vault is back', async (t) => {
  t.timeout(4 * 60_000);
  const { env } = t.context;
  apply(t, guideRole('plain-down', { defaultTTL: '10m', maxTTL: '1h' }));
  await eventually(
    t,
    'PostgresRole plain-down ready',
    async () => (await getCr(env, 'postgresroles', NS, 'plain-down'))?.status?.phase === 'Success',
    60_000,
  );
  const o = await approvedRequest(t, 'vault-down', 'plain-down');
  const leaseId: string = o.status.lease.id;
  const c = await credentialsOf(env, NS, o.status.secret.name);
  await env.stopComponent('vault');
  try {
    kubectl(env, ['-n', NS, 'delete', 'databaseaccessrequest', 'vault-down', '--wait=false']);
    const held = await eventually(
      t,
      'Revoked False, VaultUnreachable',
      async () => {
        const x = await dar(t, 'vault-down');
        return condition(x, 'Revoked')?.reason === 'VaultUnreachable' ? x : undefined;
      },
      60_000,
      500,
    );
    t.regex(condition(held, 'Revoked').message, /not revoked yet \(the request is being deleted\)/);
    t.true(held.metadata.finalizers.includes('leasehold.dev/finalizer'));
    await eventually(t, 'one Warning', async () => warnings(t, 'vault-down', 'VaultUnreachable') === 1, 15_000, 500);
    t.true(await canLogin(t, c.username, c.password), 'nothing revoked the login');
  } finally {
    await env.startComponent('vault');
  }
  await eventually(t, 'the request to go', async () => !(await dar(t, 'vault-down')), 120_000, 1000);
  t.false(await canLogin(t, c.username, c.password));
  t.false(await leaseAlive(t, leaseId));
});

test('a lease revoked in Vault by hand still counts as revoked: the deleted request goes at once', async (t) => {
  t.timeout(3 * 60_000);
  apply(t, guideRole('plain', { defaultTTL: '10m', maxTTL: '1h' }));
  await eventually(
    t,
    'PostgresRole plain ready',
    async () => (await getCr(t.context.env, 'postgresroles', NS, 'plain'))?.status?.phase === 'Success',
    60_000,
  );
  const o = await approvedRequest(t, 'gone-by-hand', 'plain');
  const leaseId: string = o.status.lease.id;
  const c = await credentialsOf(t.context.env, NS, o.status.secret.name);
  await vaultRequest(t.context.env, 'PUT', 'sys/leases/revoke', { lease_id: leaseId });
  t.false(await leaseAlive(t, leaseId));
  t.false(await canLogin(t, c.username, c.password));

  kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', 'gone-by-hand', '--timeout=60s']);
  t.falsy(await dar(t, 'gone-by-hand'));
  t.is(warnings(t, 'gone-by-hand', 'RevocationFailed'), 0);
});

test('vault_requests_total: fixed operation names, and the expected "not found" answers are not errors', async (t) => {
  t.timeout(3 * 60_000);
  // A lease revoked by hand is looked up when its renewal is refused (the request then rotates): not found, expected.
  apply(t, guideRole('short', { defaultTTL: '10s', maxTTL: '1h' }));
  await eventually(
    t,
    'PostgresRole short ready',
    async () => (await getCr(t.context.env, 'postgresroles', NS, 'short'))?.status?.phase === 'Success',
    60_000,
  );
  const o = await approvedRequest(t, 'looked-up', 'short');
  await vaultRequest(t.context.env, 'PUT', 'sys/leases/revoke', { lease_id: o.status.lease.id });
  await eventually(
    t,
    'the renewal to find the lease gone',
    async () => (await dar(t, 'looked-up'))?.status?.rotation?.reason === 'LeaseRevoked',
    30_000,
    500,
  );
  kubectl(t.context.env, ['-n', NS, 'delete', 'databaseaccessrequest', 'looked-up', '--timeout=60s']);

  const text = await metrics(t);
  const count = (labels: Record<string, string>) => metricValue(text, 'vault_requests_total', labels);
  t.true(
    count({ operation: 'lookupLease', outcome: 'not_found' }) >= 1,
    'the lookup of the lease revoked by hand is counted as not_found',
  );
  t.true(
    count({ operation: 'readMount', outcome: 'not_found' }) >= 1,
    "the SecretEngine's look at its absent mount is counted as not_found",
  );
  t.is(count({ operation: 'lookupLease', outcome: 'error' }), 0);
  t.is(count({ operation: 'readMount', outcome: 'error' }), 0);
  t.true(
    count({ operation: 'revokeLease', outcome: 'error' }) >= 1,
    'the revocations that failed in the tests above are errors',
  );
  // Every operation label is one of the documented names, not the first word of a sentence.
  const operations = new Set(samples(text, 'vault_requests_total').map((x) => x.labels.operation!));
  t.deepEqual(
    [...operations].filter((op) => !OPERATIONS.has(op)),
    [],
  );
  t.true(operations.has('issueCredential') && operations.has('renewLease') && operations.has('writeRole'));
  t.true(operations.has('login') || operations.has('lookupToken'), "the operator's own logins are counted too");
});
