// How the controllers fail, and recover: every failure reaches status (reason + a message a person can act on)
// and an Event, and nothing leaks — even when the operator dies between issuing a credential and recording it.
// Each test works in its own namespace, with its own mount, against one stack and one operator.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { CoreV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { startOperator } from '../../scripts/stack/operator.ts';
import { OperatorSlot } from './helpers/operator.ts';
import { configureVaultForOperator, installCrds, kubectl, vaultRequest } from '../../scripts/stack/leasehold-setup.ts';
import { credentialsOf, decide, getCr, guideBindings, login, sampleIn, type Cr } from './helpers/leasehold.ts';

type Ctx = StackContext & { operator: OperatorSlot };
const test = anyTest as TestFn<Ctx>;
useStack(test);

test.before(async (t) => {
  const { env } = t.context;
  installCrds(env);
  kubectl(env, ['create', 'namespace', 'leasehold-system']);
  await configureVaultForOperator(env, {
    loginTtl: '1h',
    loginMaxTtl: '2h',
    serviceAccount: { namespace: 'leasehold-system', name: 'vault' },
  });
  kubectl(env, ['-n', 'leasehold-system', 'create', 'serviceaccount', 'vault']);
  // Every test namespace's "vault" ServiceAccount may log in as the operator (the guide's AppBinding names it).
  await vaultRequest(env, 'POST', 'auth/kubernetes/role/leasehold-operator', {
    bound_service_account_names: ['vault'],
    bound_service_account_namespaces: ['*'],
    token_policies: ['leasehold-operator'],
    ttl: '1h',
  });
  const admin = new pg.Client({ connectionString: env.postgres.url });
  await admin.connect();
  await admin.query('CREATE TABLE IF NOT EXISTS items (id int)');
  await admin.end();
  t.context.operator = new OperatorSlot(
    await startOperator(env, ['--operator-service-account=leasehold-system/vault']),
  );
  (t.context.cleanups ??= []).push(async () => {
    await t.context.operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(t.context.operator.logs());
  });
});

/** The guide's objects in namespace `ns`, with the mount path made unique to it. */
function apply(t: ExecutionContext<Ctx>, yaml: string, ns: string): void {
  kubectl(t.context.env, ['apply', '-f', '-'], yaml.replaceAll('my-postgres-se', `se-${ns}`));
}

/** The guide's AppBindings in `ns`; its Vault AppBinding logs in as ServiceAccount "vault" of that namespace. */
function bindings(t: ExecutionContext<Ctx>, ns: string, dbPassword?: string): string {
  const account = `---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: vault\n  namespace: ${ns}\n`;
  return guideBindings(t.context.env, { namespace: ns, dbPassword }) + account;
}

async function phase(
  t: ExecutionContext<Ctx>,
  plural: string,
  ns: string,
  name: string,
  want: string,
  timeoutMs = 60_000,
): Promise<Cr> {
  return eventually(
    t,
    `${plural} ${ns}/${name} phase ${want}`,
    async () => {
      const o = await getCr(t.context.env, plural, ns, name);
      return o?.status?.phase === want ? o : undefined;
    },
    timeoutMs,
  );
}

async function eventReasons(t: ExecutionContext<Ctx>, ns: string, name: string): Promise<string[]> {
  const events = await t.context.env.kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
  return events.items.map((e) => e.reason ?? '');
}

/** Namespace ns with AppBindings, a ready SecretEngine and PostgresRole. */
async function readyRole(t: ExecutionContext<Ctx>, ns: string): Promise<void> {
  apply(t, bindings(t, ns), ns);
  apply(t, sampleIn('30-postgres-secret-engine.yaml', ns), ns);
  await phase(t, 'secretengines', ns, 'postgresql-engine', 'Success');
  apply(t, sampleIn('40-postgres-role.yaml', ns), ns);
  await phase(t, 'postgresroles', ns, 'psql-role', 'Success');
}

async function approvedRequest(t: ExecutionContext<Ctx>, ns: string, name = 'postgres-cred-rqst'): Promise<void> {
  apply(t, sampleIn('50-postgres-access-request.yaml', ns, name), ns);
  await phase(t, 'databaseaccessrequests', ns, name, 'WaitingForApproval', 30_000);
  await decide(t.context.env, ns, name, 'Approved');
}

async function issued(t: ExecutionContext<Ctx>, ns: string, name = 'postgres-cred-rqst'): Promise<Cr> {
  return eventually(
    t,
    `a lease for ${ns}/${name}`,
    async () => {
      const o = await getCr(t.context.env, 'databaseaccessrequests', ns, name);
      return o?.status?.lease?.id && o.status.issuance?.completed ? o : undefined;
    },
    90_000,
  );
}

test('a SecretEngine whose AppBindings are missing says so, then recovers when they appear', async (t) => {
  const ns = 'missing-ab';
  kubectl(t.context.env, ['create', 'namespace', ns]);
  apply(t, sampleIn('30-postgres-secret-engine.yaml', ns), ns);
  const failed = await phase(t, 'secretengines', ns, 'postgresql-engine', 'Failed');
  const ready = failed.status.conditions.find((c: Cr) => c.type === 'Ready');
  t.is(ready.reason, 'ReferenceNotFound');
  t.regex(ready.message, /AppBinding missing-ab\/(vault|postgres-app) .*does not exist/);
  await eventually(
    t,
    'a ReferenceNotFound Event',
    async () => (await eventReasons(t, ns, 'postgresql-engine')).includes('ReferenceNotFound'),
    30_000,
  );

  apply(t, bindings(t, ns), ns);
  await phase(t, 'secretengines', ns, 'postgresql-engine', 'Success');
});

test("a wrong admin password fails the engine with the database's words; fixing the Secret recovers it", async (t) => {
  const { env } = t.context;
  const ns = 'wrong-password';
  apply(t, bindings(t, ns, 'not-the-password'), ns);
  apply(t, sampleIn('30-postgres-secret-engine.yaml', ns), ns);
  const failed = await phase(t, 'secretengines', ns, 'postgresql-engine', 'Failed');
  const ready = failed.status.conditions.find((c: Cr) => c.type === 'Ready');
  t.regex(ready.message, /password authentication failed/);
  t.notRegex(ready.message, /not-the-password/);
  const ab = await eventually(
    t,
    'the postgres AppBinding to report the refused login',
    async () => {
      const o = await getCr(env, 'appbindings', ns, 'postgres-app').catch(() => undefined);
      return o?.status?.conditions?.find((c: Cr) => c.type === 'Ready' && c.reason === 'AuthenticationFailed');
    },
    60_000,
  ).catch(() => undefined);
  t.truthy(ab, 'AppBinding Ready=False AuthenticationFailed');

  kubectl(env, [
    '-n',
    ns,
    'patch',
    'secret',
    'postgres-user-cred',
    '--type=merge',
    '-p',
    JSON.stringify({ stringData: { password: env.postgres.password } }),
  ]);
  await phase(t, 'secretengines', ns, 'postgresql-engine', 'Success');
});

test("bad SQL in creationStatements: the request reports the database's error and holds no lease", async (t) => {
  const ns = 'bad-sql';
  await readyRole(t, ns);
  kubectl(t.context.env, [
    '-n',
    ns,
    'patch',
    'postgresrole',
    'psql-role',
    '--type=merge',
    '-p',
    JSON.stringify({
      spec: {
        creationStatements: [
          'CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\';',
          'GRANT SELEKT ON items TO "{{name}}";',
        ],
      },
    }),
  ]);
  await new Promise((r) => setTimeout(r, 2000));
  await phase(t, 'postgresroles', ns, 'psql-role', 'Success');
  await approvedRequest(t, ns);
  let last: unknown;
  const available = await eventually(
    t,
    "Available=False with the database's error",
    async () => {
      const o = await getCr(t.context.env, 'databaseaccessrequests', ns, 'postgres-cred-rqst');
      last = o?.status;
      return o?.status?.conditions?.find(
        (c: Cr) => c.type === 'Available' && c.status === 'False' && /selekt/.test(c.message),
      );
    },
    60_000,
  ).catch((err: unknown) => {
    t.log(`last status: ${JSON.stringify(last)}`);
    throw err;
  });
  t.is(available.reason, 'FailedToGetCredential');
  t.regex(available.message, /unrecognized privilege type "selekt"/);
  const dar = await getCr(t.context.env, 'databaseaccessrequests', ns, 'postgres-cred-rqst');
  t.is(dar.status.phase, 'Approved');
  t.falsy(dar.status.lease);
});

test('Vault stopped mid-flow: the request waits with VaultUnreachable and is served once Vault is back', async (t) => {
  const { env } = t.context;
  const ns = 'vault-down';
  await readyRole(t, ns);
  await env.stopComponent('vault');
  try {
    await approvedRequest(t, ns);
    const c = await eventually(
      t,
      'Available=False VaultUnreachable',
      async () => {
        const o = await getCr(env, 'databaseaccessrequests', ns, 'postgres-cred-rqst');
        return o?.status?.conditions?.find((x: Cr) => x.type === 'Available' && x.reason === 'VaultUnreachable');
      },
      60_000,
    );
    t.regex(c.message, /Vault/);
  } finally {
    await env.startComponent('vault');
  }
  const dar = await issued(t, ns);
  const { username, password } = await credentialsOf(env, ns, dar.status.secret.name);
  t.is((await login(env, username, password)).rows[0].one, 1);
});

test('the PostgresRole deleted while a request holds a lease: it waits for the request, whose deletion still revokes it', async (t) => {
  const { env } = t.context;
  const ns = 'role-gone';
  await readyRole(t, ns);
  await approvedRequest(t, ns);
  const dar = await issued(t, ns);
  const { username, password } = await credentialsOf(env, ns, dar.status.secret.name);
  // The role waits (deletion order, tests/integration/deletion-order.test.ts): renewing the lease reads its Vault role.
  kubectl(env, ['-n', ns, 'delete', 'postgresrole', 'psql-role', '--wait=false']);
  t.is((await login(env, username, password)).rows[0].one, 1, 'the issued login outlives its role');
  kubectl(env, ['-n', ns, 'delete', 'databaseaccessrequest', 'postgres-cred-rqst', '--timeout=60s']);
  await t.throwsAsync(() => login(env, username, password), {
    message: /password authentication failed|does not exist/,
  });
  await eventually(
    t,
    'the PostgresRole to go once the request has',
    async () => (await getCr(env, 'postgresroles', ns, 'psql-role')) === undefined,
    60_000,
  );
});

test('an operator killed between issuing and recording leaves exactly one live lease, the recorded one', async (t) => {
  const { env } = t.context;
  const ns = 'crash';
  await readyRole(t, ns);
  await t.context.operator.stop();
  process.env.LEASEHOLD_FAULT_INJECTION = 'crash-after-issue';
  const doomed = await startOperator(env, ['--operator-service-account=leasehold-system/vault'], 'operator-crashing');
  delete process.env.LEASEHOLD_FAULT_INJECTION;
  await approvedRequest(t, ns);
  await eventually(t, 'the operator to die right after issuing', async () => !doomed.running, 60_000);
  const prefix = `se-${ns}/creds/k8s.-.${ns}.psql-role`;
  const leases = async () =>
    (
      (await vaultRequest(env, 'LIST', `sys/leases/lookup/${prefix}`, undefined, { allowError: true })).body as
        { data?: { keys?: string[] } } | undefined
    )?.data?.keys ?? [];
  t.is((await leases()).length, 1, 'the crashed attempt left one unrecorded lease');
  const before = await getCr(env, 'databaseaccessrequests', ns, 'postgres-cred-rqst');
  t.falsy(before.status.lease, 'and no request records it');

  await t.context.operator.replace(() => startOperator(env, ['--operator-service-account=leasehold-system/vault']));
  const dar = await issued(t, ns);
  const live = await leases();
  t.deepEqual(
    live.map((k) => `${prefix}/${k}`),
    [dar.status.lease.id],
    'one live lease, the recorded one',
  );
  const { username, password } = await credentialsOf(env, ns, dar.status.secret.name);
  t.is((await login(env, username, password)).rows[0].one, 1);

  // A plain restart afterwards issues nothing new and the credential keeps working.
  await t.context.operator.replace(() => startOperator(env, ['--operator-service-account=leasehold-system/vault']));
  await new Promise((r) => setTimeout(r, 3000));
  const after = await getCr(env, 'databaseaccessrequests', ns, 'postgres-cred-rqst');
  t.is(after.status.lease.id, dar.status.lease.id);
  t.is((await leases()).length, 1);
  t.is((await login(env, username, password)).rows[0].one, 1);
});

test('revoke-now on a request whose operator died between issuing and recording revokes that unrecorded lease too', async (t) => {
  const { env } = t.context;
  const ns = 'crash-revoke';
  await readyRole(t, ns);
  await t.context.operator.stop();
  process.env.LEASEHOLD_FAULT_INJECTION = 'crash-after-issue';
  const doomed = await startOperator(
    env,
    ['--operator-service-account=leasehold-system/vault'],
    'operator-crashing-revoke',
  );
  delete process.env.LEASEHOLD_FAULT_INJECTION;
  await approvedRequest(t, ns);
  await eventually(t, 'the operator to die right after issuing', async () => !doomed.running, 60_000);
  const prefix = `se-${ns}/creds/k8s.-.${ns}.psql-role`;
  const leases = async () =>
    (
      (await vaultRequest(env, 'LIST', `sys/leases/lookup/${prefix}`, undefined, { allowError: true })).body as
        { data?: { keys?: string[] } } | undefined
    )?.data?.keys ?? [];
  t.is((await leases()).length, 1, 'the crashed attempt left one unrecorded lease');
  kubectl(env, ['-n', ns, 'annotate', 'databaseaccessrequest', 'postgres-cred-rqst', 'leasehold.dev/revoke-now=now']);

  await t.context.operator.replace(() => startOperator(env, ['--operator-service-account=leasehold-system/vault']));
  await phase(t, 'databaseaccessrequests', ns, 'postgres-cred-rqst', 'Revoked');
  t.deepEqual(await leases(), [], 'no lease is left live in Vault');
});

test('requests issued in parallel when the operator is killed: afterwards each holds one live lease, and no other lease is left', async (t) => {
  const { env } = t.context;
  const ns = 'crash-parallel';
  await readyRole(t, ns);
  const names = Array.from({ length: 6 }, (_, i) => `rqst-${i}`);
  for (const name of names) apply(t, sampleIn('50-postgres-access-request.yaml', ns, name), ns);
  for (const name of names) await phase(t, 'databaseaccessrequests', ns, name, 'WaitingForApproval', 30_000);
  await t.context.operator.stop();
  // Killed at the third issue: by then some requests are recorded and others are in flight.
  process.env.LEASEHOLD_FAULT_INJECTION = 'crash-after-issue@3';
  const doomed = await startOperator(
    env,
    ['--operator-service-account=leasehold-system/vault', '--concurrency=4'],
    'operator-crashing',
  );
  delete process.env.LEASEHOLD_FAULT_INJECTION;
  await Promise.all(names.map((name) => decide(env, ns, name, 'Approved')));
  await eventually(t, 'the operator to die right after issuing', async () => !doomed.running, 60_000);
  const prefix = `se-${ns}/creds/k8s.-.${ns}.psql-role`;
  const leases = async () =>
    (
      (await vaultRequest(env, 'LIST', `sys/leases/lookup/${prefix}`, undefined, { allowError: true })).body as
        { data?: { keys?: string[] } } | undefined
    )?.data?.keys ?? [];
  const afterCrash = await leases();
  t.true(afterCrash.length >= 1, 'the crash left at least one unrecorded lease');
  t.log(`${afterCrash.length} lease(s) live when the operator died`);

  await t.context.operator.replace(() =>
    startOperator(env, ['--operator-service-account=leasehold-system/vault', '--concurrency=4']),
  );
  const recorded: string[] = [];
  for (const name of names) recorded.push((await issued(t, ns, name)).status.lease.id);
  t.is(new Set(recorded).size, names.length, 'one lease per request, none shared');
  t.deepEqual(
    (await leases()).map((k) => `${prefix}/${k}`).sort(),
    [...recorded].sort(),
    'the live leases are exactly the recorded ones',
  );
});
