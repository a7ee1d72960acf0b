// On the real stack: status tells the truth about the lease (one revoked in Vault by
// hand, the issuer token revoked, the credential Secret edited by hand: each is noticed and put right, while the
// operator runs and across a restart), and no input makes the operator churn (a request name longer than a label
// value; a guide-style role applied before the SecretEngine that mounts its path).
//
// Leases here live an hour: nothing renews or rotates them during a test, so only the behaviour under test can.
// The operator runs with a short --resync-period, as the look-ups of recorded leases follow it.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Secret } from '@kubernetes/client-node';
import YAML from 'yaml';
import { labelValue } from '../../controllers/shared/names.ts';
import {
  GROUP,
  VERSION,
  getCr,
  type Cr,
  approvedRequest as approved,
  loginWorks,
  prepareGuide,
} from './helpers/leasehold.ts';
import { startOperator } from '../../scripts/stack/operator.ts';
import { OperatorSlot } from './helpers/operator.ts';
import { guideRole, kubectl, vaultRequest } from '../../scripts/stack/leasehold-setup.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';

type Ctx = StackContext & { operator: OperatorSlot };
const test = anyTest as TestFn<Ctx>;
useStack(test);

type T = ExecutionContext<Ctx>;

const NS = 'demo';
const MOUNT = 'my-postgres-se';
const RESYNC = '5s';
const LONG_NAME = 'access-for-the-quarterly-finance-reconciliation-batch-job-in-production-eu';

// ---- helpers ------------------------------------------------------------------------------------------------------

function apply(t: T, obj: unknown): void {
  kubectl(t.context.env, ['apply', '-f', '-'], YAML.stringify(obj));
}

const dar = (t: T, name: string) => getCr(t.context.env, 'databaseaccessrequests', NS, name);

/** Creates a request for `role`, approves it, and waits for its first credential. */
const approvedRequest = (t: T, name: string, role: string): Promise<Cr> =>
  approved(t, t.context.env, { namespace: NS, name, role, spec: { rotationGracePeriod: '2s' } });

async function secretOf(t: T, name: string): Promise<V1Secret> {
  return t.context.env.kubeConfig.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: NS, name });
}

function decoded(s: V1Secret): Record<string, string> {
  return Object.fromEntries(
    Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

const canLogin = (t: T, user: string | undefined, password: string | undefined): Promise<boolean> =>
  loginWorks(t.context.env, user, password);

/** A merge patch of a Secret, as someone editing it by hand would (`kubectl edit`). */
async function editSecret(t: T, name: string, data: Record<string, string | null>): Promise<void> {
  const body = {
    data: Object.fromEntries(
      Object.entries(data).map(([k, v]) => [k, v === null ? null : Buffer.from(v).toString('base64')]),
    ),
  };
  await t.context.env.kubeConfig
    .makeApiClient(CoreV1Api)
    .patchNamespacedSecret({ namespace: NS, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

/** Live leases under a role's prefix, as Vault lists them with the root token. */
async function leasesOf(t: T, role: string): Promise<string[]> {
  const prefix = `${MOUNT}/creds/k8s.-.${NS}.${role}`;
  const res = await vaultRequest(t.context.env, 'GET', `sys/leases/lookup/${prefix}/?list=true`, undefined, {
    allowError: true,
  });
  if (res.status === 404) return [];
  return ((res.body as { data?: { keys?: string[] } }).data?.keys ?? []).map((k) => `${prefix}/${k}`).sort();
}

async function leaseAlive(t: T, leaseId: string): Promise<boolean> {
  return (
    (await vaultRequest(t.context.env, 'PUT', 'sys/leases/lookup', { lease_id: leaseId }, { allowError: true }))
      .status === 200
  );
}

/** Waits for the request to hold a lease other than `oldLeaseId`, recorded by a completed rotation. */
async function rotatedFrom(t: T, name: string, oldLeaseId: string, timeoutMs = 60_000): Promise<Cr> {
  return eventually(
    t,
    `${name}: a new lease in place of ${oldLeaseId}`,
    async () => {
      const o = await dar(t, name);
      return o?.status?.lease?.id &&
        o.status.lease.id !== oldLeaseId &&
        o.status.issuance?.completed &&
        o.status.rotation?.completedAt
        ? o
        : undefined;
    },
    timeoutMs,
    250,
  );
}

function available(o: Cr): { status: string; reason: string; message: string } {
  return (o.status.conditions as Array<{ type: string; status: string; reason: string; message: string }>).find(
    (c) => c.type === 'Available',
  )!;
}

/** What a rotation replaced: the lease and the login the Secret held. */
function old(leaseId: string, data: Record<string, string>): { leaseId: string; username: string; password: string } {
  return { leaseId, username: data.username ?? '', password: data.password ?? '' };
}

/** After a rotation: status names the new lease, Vault has it, the Secret's login works and the old one doesn't. */
async function assertRotated(
  t: T,
  o: Cr,
  old: { leaseId: string; username: string; password: string },
  reason: string,
): Promise<void> {
  t.is(o.status.rotation.reason, reason);
  t.is(available(o).status, 'True');
  t.true(available(o).message.includes(o.status.lease.id), `Available names the live lease: ${available(o).message}`);
  t.true(await leaseAlive(t, o.status.lease.id), 'the recorded lease exists in Vault');
  const now = decoded(await secretOf(t, o.status.secret.name));
  t.not(now.username, old.username);
  t.true(await canLogin(t, now.username, now.password), 'the new login works');
  await eventually(
    t,
    'the old login to stop working and its lease to be gone',
    async () => !(await canLogin(t, old.username, old.password)) && !(await leaseAlive(t, old.leaseId)),
    20_000,
    500,
  );
}

async function restartOperator(t: T, resync: string, during?: () => Promise<void>): Promise<void> {
  await t.context.operator.replace(async () => {
    await during?.();
    return startOperator(t.context.env, [`--resync-period=${resync}`]);
  });
}

/** The issuer token's Secret (leasehold-system), as the operator keeps it. */
async function issuerSecret(t: T): Promise<{ name: string; accessor: string }> {
  const list = await t.context.env.kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedSecret({ namespace: 'leasehold-system' });
  const s = list.items.find((x) => x.metadata?.annotations?.['leasehold.dev/vault-appbinding'] === `${NS}/vault`);
  if (!s) throw new Error('no issuer token Secret for demo/vault');
  return { name: s.metadata!.name!, accessor: decoded(s).accessor! };
}

// ---- set-up --------------------------------------------------------------------------------------------------------

test.before(async (t) => {
  const { env } = t.context;
  await prepareGuide(env);
  t.context.operator = new OperatorSlot(await startOperator(env, [`--resync-period=${RESYNC}`]));
  (t.context.cleanups ??= []).push(async () => {
    await t.context.operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(t.context.operator.logs());
  });
  kubectl(env, ['apply', '-f', 'manifests/samples/30-postgres-secret-engine.yaml']);
  await eventually(
    t as unknown as T,
    'SecretEngine phase Success',
    async () => (await getCr(env, 'secretengines', NS, 'postgresql-engine'))?.status?.phase === 'Success',
    60_000,
  );
  for (const r of ['truth-role', 'long-role']) {
    apply(
      t as unknown as T,
      guideRole(r, {
        defaultTTL: '1h',
        maxTTL: '24h',
        secretTemplate: { uri: 'postgresql://<%urlUser%>:<%urlPassword%>@<%urlHost%>:<%port%>/<%urlDbname%>' },
      }),
    );
    await eventually(
      t as unknown as T,
      `PostgresRole ${r} ready`,
      async () => (await getCr(env, 'postgresroles', NS, r))?.status?.phase === 'Success',
      60_000,
    );
  }
});

// ---- a lease revoked in Vault by hand ---------------------------------------------------------------------------

test('a lease revoked in Vault by hand is replaced at the next resync: a new lease in status, the new login works, the old one fails', async (t) => {
  const o = await approvedRequest(t, 'revoked-by-hand', 'truth-role');
  const leaseId: string = o.status.lease.id;
  const before = decoded(await secretOf(t, o.status.secret.name));
  t.true(await canLogin(t, before.username, before.password));
  await vaultRequest(t.context.env, 'PUT', 'sys/leases/revoke', { lease_id: leaseId });
  t.false(await canLogin(t, before.username, before.password), 'revoking the lease dropped the login');
  // The lease would next be renewed in about 40 minutes: only the look-up at a resync can find it gone.
  const after = await rotatedFrom(t, 'revoked-by-hand', leaseId);
  await assertRotated(t, after, old(leaseId, before), 'LeaseRevoked');
  t.is(after.status.secret.name, o.status.secret.name, 'the same Secret');
  t.deepEqual(after.status.previousLeases ?? [], [], 'a dead lease is not kept for a grace period');
  const live = await leasesOf(t, 'truth-role');
  t.true(live.includes(after.status.lease.id) && !live.includes(leaseId));
});

test('a lease revoked while the operator is stopped is replaced after it starts (no resync needed)', async (t) => {
  const o = await approvedRequest(t, 'revoked-while-down', 'truth-role');
  const leaseId: string = o.status.lease.id;
  const before = decoded(await secretOf(t, o.status.secret.name));
  // Restarted with an hour-long resync: only the look-up after the start can notice.
  await restartOperator(t, '1h', async () => {
    await vaultRequest(t.context.env, 'PUT', 'sys/leases/revoke', { lease_id: leaseId });
  });
  try {
    const after = await rotatedFrom(t, 'revoked-while-down', leaseId);
    await assertRotated(t, after, old(leaseId, before), 'LeaseRevoked');
  } finally {
    await restartOperator(t, RESYNC);
  }
});

// ---- the credential Secret edited by hand -----------------------------------------------------------------------

test('a password edited by hand in the Secret is replaced by a fresh login within seconds', async (t) => {
  const o = await approvedRequest(t, 'edited-password', 'truth-role');
  const before = decoded(await secretOf(t, o.status.secret.name));
  await editSecret(t, o.status.secret.name, { password: 'not-the-password' });
  const after = await rotatedFrom(t, 'edited-password', o.status.lease.id, 15_000);
  await assertRotated(t, after, old(o.status.lease.id, before), 'SecretModified');
  const data = decoded(await secretOf(t, o.status.secret.name));
  t.not(data.password, 'not-the-password');
  t.true(data.uri?.includes(encodeURIComponent(data.username!)), 'the templated key follows the new login');
});

test('a password key removed from the Secret is replaced by a fresh login within seconds', async (t) => {
  const o = await approvedRequest(t, 'removed-password', 'truth-role');
  await editSecret(t, o.status.secret.name, { password: null });
  const after = await rotatedFrom(t, 'removed-password', o.status.lease.id, 15_000);
  t.is(after.status.rotation.reason, 'SecretModified');
  const data = decoded(await secretOf(t, o.status.secret.name));
  t.true(await canLogin(t, data.username, data.password));
});

test('a templated key edited or removed by hand is rendered again from the same login (no new lease)', async (t) => {
  const o = await approvedRequest(t, 'edited-uri', 'truth-role');
  const before = decoded(await secretOf(t, o.status.secret.name));
  await editSecret(t, o.status.secret.name, { uri: 'postgresql://somewhere-else/' });
  await eventually(
    t,
    'the uri rendered again',
    async () => decoded(await secretOf(t, o.status.secret.name)).uri === before.uri,
    15_000,
    250,
  );
  await editSecret(t, o.status.secret.name, { uri: null, extra: 'added by hand' });
  const repaired = await eventually(
    t,
    'the uri back and the extra key gone',
    async () => {
      const d = decoded(await secretOf(t, o.status.secret.name));
      return d.uri === before.uri && d.extra === undefined ? d : undefined;
    },
    15_000,
    250,
  );
  t.is(repaired.username, before.username, 'the same login');
  t.is(repaired.password, before.password);
  const now = await dar(t, 'edited-uri');
  t.is(now.status.lease.id, o.status.lease.id, 'no new lease');
  t.true(await canLogin(t, repaired.username, repaired.password));
});

test('a Secret edited while the operator is stopped is put right after it starts', async (t) => {
  const o = await approvedRequest(t, 'edited-while-down', 'truth-role');
  const before = decoded(await secretOf(t, o.status.secret.name));
  await restartOperator(t, '1h', async () => {
    await editSecret(t, o.status.secret.name, { password: 'edited-while-down' });
  });
  try {
    const after = await rotatedFrom(t, 'edited-while-down', o.status.lease.id, 30_000);
    await assertRotated(t, after, old(o.status.lease.id, before), 'SecretModified');
  } finally {
    await restartOperator(t, RESYNC);
  }
});

// ---- no churn ---------------------------------------------------------------------------------------------------

test('a request named with more than 63 characters is issued exactly once into a valid Secret, and nothing churns', async (t) => {
  t.timeout(3 * 60_000);
  t.true(LONG_NAME.length > 63);
  const o = await approvedRequest(t, LONG_NAME, 'long-role');
  const secretName: string = o.status.secret.name;
  const secret = await secretOf(t, secretName);
  t.is(secret.metadata?.labels?.['leasehold.dev/request'], labelValue(LONG_NAME));
  // Selecting by the label finds the request's Secret, Role and RoleBinding.
  const selector = `leasehold.dev/request=${labelValue(LONG_NAME)}`;
  for (const kind of ['secret', 'role', 'rolebinding']) {
    t.is(
      kubectl(t.context.env, ['-n', NS, 'get', kind, '-l', selector, '-o', 'name']).trim(),
      `${kind === 'secret' ? 'secret' : `${kind}.rbac.authorization.k8s.io`}/${secretName}`,
    );
  }
  const data = decoded(secret);
  t.true(await canLogin(t, data.username, data.password));
  t.deepEqual(await leasesOf(t, 'long-role'), [o.status.lease.id], 'one lease issued');
  // Half a minute (three resyncs, several ~10 s retry periods of the old loop): still the one lease.
  await new Promise((r) => setTimeout(r, 30_000));
  t.deepEqual(await leasesOf(t, 'long-role'), [o.status.lease.id], 'no second lease');
  const later = await dar(t, LONG_NAME);
  t.is(later.status.lease.id, o.status.lease.id);
  t.is(available(later).status, 'True');
  const metrics = await (await fetch(t.context.operator.metricsUrl)).text();
  t.false(
    /leasehold_lease_revocations_total\{[^}]*reason="unrecorded"[^}]*\} [1-9]/.test(metrics),
    'no lease was issued and given back',
  );
});

test('a guide-style role applied before the SecretEngine that mounts its path is Success within 15 s of the engine', async (t) => {
  // With an hour-long resync only the fix can make the role try again in time: the engine waking it, or the
  // role's own retry of "not found" (it used to wait 5 minutes).
  await restartOperator(t, '1h');
  try {
    await roleBeforeItsMount(t);
  } finally {
    await restartOperator(t, RESYNC);
  }
});

async function roleBeforeItsMount(t: T): Promise<void> {
  const path = 'late-mount';
  apply(t, guideRole('early-role', { path }));
  await eventually(
    t,
    'the role to have tried (and failed: no mount yet)',
    async () => (await getCr(t.context.env, 'postgresroles', NS, 'early-role'))?.status?.phase === 'Failed',
    30_000,
  );
  const failed = await getCr(t.context.env, 'postgresroles', NS, 'early-role');
  t.is(
    (failed.status.conditions as Array<{ type: string; reason: string }>).find((c) => c.type === 'Ready')?.reason,
    'VaultNotFound',
  );
  apply(t, {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'SecretEngine',
    metadata: { name: 'late-engine', namespace: NS },
    spec: {
      vaultRef: { name: 'vault' },
      path,
      postgres: {
        databaseRef: { name: 'postgres-app', namespace: NS },
        pluginName: 'postgresql-database-plugin',
        allowedRoles: ['*'],
      },
    },
  });
  await eventually(
    t,
    'the SecretEngine Success',
    async () => (await getCr(t.context.env, 'secretengines', NS, 'late-engine'))?.status?.phase === 'Success',
    60_000,
  );
  await eventually(
    t,
    'the role Success within 15 s of its mount',
    async () => (await getCr(t.context.env, 'postgresroles', NS, 'early-role'))?.status?.phase === 'Success',
    15_000,
  );
  const role = await vaultRequest(t.context.env, 'GET', `${path}/roles/k8s.-.${NS}.early-role`);
  t.is(role.status, 200, 'the Vault role exists');
}

// ---- the issuer token revoked in Vault (last: it revokes every lease issued so far) --------------------------

test('the issuer token revoked in Vault: its leases are rotated, a new issuer token issues them, and LeaseOwnership stays True', async (t) => {
  const a = await approvedRequest(t, 'owned-a', 'truth-role');
  const b = await approvedRequest(t, 'owned-b', 'truth-role');
  const credsA = decoded(await secretOf(t, a.status.secret.name));
  const issuer = await issuerSecret(t);
  await vaultRequest(t.context.env, 'PUT', 'auth/token/revoke-accessor', { accessor: issuer.accessor });
  // Vault revokes the token's leases with it.
  await eventually(
    t,
    "Vault to revoke the token's leases",
    async () => !(await leaseAlive(t, a.status.lease.id)) && !(await leaseAlive(t, b.status.lease.id)),
    30_000,
    500,
  );
  const afterA = await rotatedFrom(t, 'owned-a', a.status.lease.id);
  const afterB = await rotatedFrom(t, 'owned-b', b.status.lease.id);
  await assertRotated(t, afterA, old(a.status.lease.id, credsA), 'LeaseRevoked');
  t.is(afterB.status.rotation.reason, 'LeaseRevoked');
  t.true(await leaseAlive(t, afterB.status.lease.id));
  // A new issuer token, which Vault knows, stored in the same Secret.
  const now = await issuerSecret(t);
  t.is(now.name, issuer.name);
  t.not(now.accessor, issuer.accessor, 'a new issuer token');
  const lookup = await vaultRequest(t.context.env, 'PUT', 'auth/token/lookup-accessor', { accessor: now.accessor });
  t.true(
    (lookup.body as { data?: { orphan?: boolean } }).data?.orphan === true,
    'the new token is an orphan, like the first',
  );
  const ownership = await eventually(t, "the AppBinding's LeaseOwnership condition", async () => {
    const ab = await getCr(t.context.env, 'appbindings', NS, 'vault');
    return (ab?.status?.conditions as Array<{ type: string; status: string; reason: string }> | undefined)?.find(
      (c) => c.type === 'LeaseOwnership',
    );
  });
  t.is(ownership.status, 'True');
  t.is(ownership.reason, 'IssuerToken');
});
