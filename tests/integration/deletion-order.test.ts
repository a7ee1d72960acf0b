// Revocation never depends on something that can disappear first: every order in which a
// platform team can delete what an approved, issued request depends on — the Vault AppBinding, the SecretEngine,
// the PostgresRole, the admin Secret, the Vault token Secret, the whole namespace (with the operator running, or
// down while it happens) — ends with the login refused by PostgreSQL, its lease gone from Vault, and no Vault role,
// connection or mount left behind; meanwhile whatever waits for a dependent says which, in a condition.
// Each test works in its own namespace, with its own mount, against one stack and one operator.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { CoreV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import YAML from 'yaml';
import {
  credentialsOf,
  decide,
  getCr,
  guideBindings,
  login,
  sampleIn,
  type Cr,
  loginWorks,
} from './helpers/leasehold.ts';
import { startOperator } from '../../scripts/stack/operator.ts';
import { OperatorSlot } from './helpers/operator.ts';
import { configureVaultForOperator, installCrds, kubectl, vaultRequest } from '../../scripts/stack/leasehold-setup.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';

type Ctx = StackContext & { operator: OperatorSlot };
type T = ExecutionContext<Ctx>;
const test = anyTest as TestFn<Ctx>;
useStack(test);

const OPERATOR_ARGS = ['--operator-service-account=leasehold-system/vault'];
const REQUEST = 'postgres-cred-rqst';
/** Deletions wait on watches, finalizers and the namespace controller (which retries at least every minute). */
const GONE_MS = 4 * 60_000;

test.before(async (t) => {
  const { env } = t.context;
  installCrds(env);
  kubectl(env, ['create', 'namespace', 'leasehold-system']);
  kubectl(env, ['-n', 'leasehold-system', 'create', 'serviceaccount', 'vault']);
  await configureVaultForOperator(env, {
    loginTtl: '1h',
    loginMaxTtl: '2h',
    serviceAccount: { namespace: 'leasehold-system', name: 'vault' },
  });
  // The "vault" ServiceAccount of every namespace may log in (the guide's AppBinding names it), and so may the
  // operator's own (leasehold-system/vault), which AppBindings naming no ServiceAccount use.
  await vaultRequest(env, 'POST', 'auth/kubernetes/role/leasehold-operator', {
    bound_service_account_names: ['vault'],
    bound_service_account_namespaces: ['*'],
    token_policies: ['leasehold-operator'],
    ttl: '1h',
    max_ttl: '2h',
  });
  const admin = new pg.Client({ connectionString: env.postgres.url });
  await admin.connect();
  await admin.query('CREATE TABLE IF NOT EXISTS items (id int)');
  await admin.end();
  t.context.operator = new OperatorSlot(await startOperator(env, OPERATOR_ARGS));
  (t.context.cleanups ??= []).push(async () => {
    await t.context.operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(t.context.operator.logs());
  });
});

// ---- helpers ------------------------------------------------------------------------------------------------------

interface Issued {
  ns: string;
  mount: string;
  vaultRole: string;
  connection: string;
  leaseId: string;
  username: string;
  password: string;
}

function apply(t: T, yaml: string, ns: string): void {
  kubectl(t.context.env, ['apply', '-f', '-'], yaml.replaceAll('my-postgres-se', `se-${ns}`));
}

function del(t: T, ns: string, kind: string, name: string): void {
  // Something waiting for what was deleted before it may have gone on its own meanwhile.
  kubectl(t.context.env, ['-n', ns, 'delete', kind, name, '--wait=false', '--ignore-not-found']);
}

/**
 * The guide in namespace `ns` (mount se-<ns>), a request approved and issued. With `tokenLogin` the Vault AppBinding
 * logs in with a periodic token from the Secret vault-token instead of the kubernetes auth method.
 */
async function issuedRequest(t: T, ns: string, opts: { tokenLogin?: boolean } = {}): Promise<Issued> {
  const { env } = t.context;
  const docs = YAML.parseAllDocuments(guideBindings(env, { namespace: ns })).map((d) => d.toJS() as Cr);
  docs.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'vault', namespace: ns } });
  if (opts.tokenLogin) {
    const created = (
      await vaultRequest(env, 'POST', 'auth/token/create-orphan', { policies: ['leasehold-operator'], period: '1h' })
    ).body as { auth: { client_token: string } };
    docs.push({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubevault.com/token',
      metadata: { name: 'vault-token', namespace: ns },
      stringData: { token: created.auth.client_token },
    });
    // The README's token form: an address and a token Secret, nothing saying "Vault" (no VaultServerConfiguration,
    // no type): what depends on it must be enough for it to be held while leases need it.
    const ab = docs.find((d) => d.kind === 'AppBinding' && d.metadata.name === 'vault');
    ab.spec.secret = { name: 'vault-token' };
    delete ab.spec.parameters;
  }
  apply(t, docs.map((d) => YAML.stringify(d)).join('---\n'), ns);
  apply(t, sampleIn('30-postgres-secret-engine.yaml', ns), ns);
  await phase(t, 'secretengines', ns, 'postgresql-engine', 'Success');
  apply(t, sampleIn('40-postgres-role.yaml', ns), ns);
  await phase(t, 'postgresroles', ns, 'psql-role', 'Success');
  apply(t, sampleIn('50-postgres-access-request.yaml', ns, REQUEST), ns);
  await phase(t, 'databaseaccessrequests', ns, REQUEST, 'WaitingForApproval');
  await decide(env, ns, REQUEST, 'Approved');
  const dar = await eventually(
    t,
    `a lease for ${ns}/${REQUEST}`,
    async () => {
      const o = await getCr(env, 'databaseaccessrequests', ns, REQUEST);
      return o?.status?.lease?.id && o.status.issuance?.completed ? o : undefined;
    },
    90_000,
  );
  const { username, password } = await credentialsOf(env, ns, dar.status.secret.name);
  t.is((await login(env, username, password)).rows[0].one, 1, 'the issued login works');
  await eventually(
    t,
    'the Vault AppBinding to hold leasehold.dev/in-use',
    async () => (await getCr(env, 'appbindings', ns, 'vault'))?.metadata?.finalizers?.includes('leasehold.dev/in-use'),
    30_000,
  );
  if (opts.tokenLogin) {
    const core = env.kubeConfig.makeApiClient(CoreV1Api);
    await eventually(
      t,
      'the token Secret to hold leasehold.dev/in-use',
      async () =>
        (await core.readNamespacedSecret({ namespace: ns, name: 'vault-token' })).metadata?.finalizers?.includes(
          'leasehold.dev/in-use',
        ),
      30_000,
    );
  }
  return {
    ns,
    mount: `se-${ns}`,
    vaultRole: `k8s.-.${ns}.psql-role`,
    connection: `k8s.-.${ns}.postgres-app`,
    leaseId: dar.status.lease.id,
    username,
    password,
  };
}

async function phase(t: T, plural: string, ns: string, name: string, want: string): Promise<Cr> {
  return eventually(
    t,
    `${plural} ${ns}/${name} phase ${want}`,
    async () => {
      const o = await getCr(t.context.env, plural, ns, name);
      return o?.status?.phase === want ? o : undefined;
    },
    60_000,
  );
}

/** Waits for a condition of `type` on the object whose reason and message match; returns it. */
async function condition(
  t: T,
  plural: string,
  ns: string,
  name: string,
  type: string,
  reason: string,
  message: RegExp,
  timeoutMs = 60_000,
): Promise<Cr> {
  let last: unknown;
  return eventually(
    t,
    `${plural} ${ns}/${name}: ${type} ${reason} matching ${message}`,
    async () => {
      const o = await getCr(t.context.env, plural, ns, name);
      const c = o?.status?.conditions?.find((x: Cr) => x.type === type);
      last = c;
      return c?.reason === reason && message.test(c.message) ? c : undefined;
    },
    timeoutMs,
  ).catch((err: unknown) => {
    t.log(`last ${type} condition: ${JSON.stringify(last)}`);
    throw err;
  });
}

async function gone(t: T, plural: string, ns: string, name: string): Promise<void> {
  await eventually(
    t,
    `${plural} ${ns}/${name} to be gone`,
    async () => (await getCr(t.context.env, plural, ns, name)) === undefined,
    GONE_MS,
    500,
  );
}

async function namespaceGone(t: T, ns: string): Promise<void> {
  const core = t.context.env.kubeConfig.makeApiClient(CoreV1Api);
  await eventually(
    t,
    `namespace ${ns} to be gone`,
    async () => {
      try {
        await core.readNamespace({ name: ns });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    },
    GONE_MS,
    1000,
  );
}

const canLogin = (t: T, s: Issued): Promise<boolean> => loginWorks(t.context.env, s.username, s.password);

async function vaultHas(t: T, path: string): Promise<boolean> {
  return (await vaultRequest(t.context.env, 'GET', path, undefined, { allowError: true })).status === 200;
}

async function leaseLive(t: T, leaseId: string): Promise<boolean> {
  return (
    (await vaultRequest(t.context.env, 'PUT', 'sys/leases/lookup', { lease_id: leaseId }, { allowError: true }))
      .status === 200
  );
}

async function mountExists(t: T, mount: string): Promise<boolean> {
  const mounts = (await vaultRequest(t.context.env, 'GET', 'sys/mounts')).body as Record<string, unknown> & {
    data?: Record<string, unknown>;
  };
  return `${mount}/` in (mounts.data ?? mounts);
}

/** What a user checks once access should have ended: PostgreSQL refuses the login and Vault has no lease. */
async function accessEnded(t: T, s: Issued): Promise<void> {
  t.false(await canLogin(t, s), 'PostgreSQL refuses the login');
  t.false(await leaseLive(t, s.leaseId), 'Vault no longer has the lease (sys/leases/lookup)');
}

/** Nothing of the namespace's is left in Vault: no Vault role, no connection, no mount. */
async function nothingLeftInVault(t: T, s: Issued): Promise<void> {
  t.false(await vaultHas(t, `${s.mount}/roles/${s.vaultRole}`), `Vault role ${s.vaultRole} is gone`);
  t.false(await vaultHas(t, `${s.mount}/config/${s.connection}`), `connection ${s.connection} is gone`);
  t.false(await mountExists(t, s.mount), `mount ${s.mount}/ is gone`);
}

/** Deletes what is left of the guide in `ns`, in the guide's own order, and waits for all of it to go. */
async function deleteTheRest(t: T, s: Issued): Promise<void> {
  const rest: Array<[string, string]> = [
    ['postgresrole', 'psql-role'],
    ['secretengine', 'postgresql-engine'],
    ['appbinding', 'vault'],
    ['appbinding', 'postgres-app'],
  ];
  for (const [kind, name] of rest) del(t, s.ns, kind, name);
  await gone(t, 'postgresroles', s.ns, 'psql-role');
  await gone(t, 'secretengines', s.ns, 'postgresql-engine');
  await gone(t, 'appbindings', s.ns, 'vault');
}

async function restartOperator(t: T): Promise<void> {
  await t.context.operator.replace(() => startOperator(t.context.env, OPERATOR_ARGS));
}

const dependsOnRequest = (ns: string) =>
  new RegExp(`DatabaseAccessRequest still holds leases through it \\(${ns}/${REQUEST}\\)`);

// ---- the orders ---------------------------------------------------------------------------------------------------

test('the Vault AppBinding deleted first waits for the request, the engine and the role; then everything is cleaned up', async (t) => {
  t.timeout(10 * 60_000);
  const { env } = t.context;
  const s = await issuedRequest(t, 'ab-first');
  del(t, s.ns, 'appbinding', 'vault');
  const waiting = await condition(
    t,
    'appbindings',
    s.ns,
    'vault',
    'Terminating',
    'LeasesOutstanding',
    dependsOnRequest(s.ns),
  );
  t.regex(
    waiting.message,
    /1 PostgresRole still uses it \(ab-first\/psql-role\); 1 SecretEngine still uses it \(ab-first\/postgresql-engine\)/,
  );
  t.true(await canLogin(t, s), 'the issued login keeps working meanwhile');

  // Nothing new is issued through it.
  apply(t, sampleIn('50-postgres-access-request.yaml', s.ns, 'latecomer'), s.ns);
  await phase(t, 'databaseaccessrequests', s.ns, 'latecomer', 'WaitingForApproval');
  await decide(env, s.ns, 'latecomer', 'Approved');
  await condition(
    t,
    'databaseaccessrequests',
    s.ns,
    'latecomer',
    'Available',
    'ReferenceTerminating',
    /AppBinding ab-first\/vault is being deleted: no new credential is issued through it/,
  );

  del(t, s.ns, 'databaseaccessrequest', REQUEST);
  del(t, s.ns, 'databaseaccessrequest', 'latecomer');
  await gone(t, 'databaseaccessrequests', s.ns, REQUEST);
  await accessEnded(t, s);
  await condition(
    t,
    'appbindings',
    s.ns,
    'vault',
    'Terminating',
    'InUse',
    /PostgresRole still uses it \(ab-first\/psql-role\)/,
  );

  await deleteTheRest(t, s);
  await nothingLeftInVault(t, s);
});

test('the SecretEngine deleted first keeps its connection while the request holds a lease, and its mount while the role is there', async (t) => {
  t.timeout(10 * 60_000);
  const s = await issuedRequest(t, 'se-first');
  del(t, s.ns, 'secretengine', 'postgresql-engine');
  await condition(
    t,
    'secretengines',
    s.ns,
    'postgresql-engine',
    'Terminating',
    'LeasesOutstanding',
    dependsOnRequest(s.ns),
  );
  t.true(await vaultHas(t, `${s.mount}/config/${s.connection}`), 'the connection stays: revoking the lease needs it');
  t.true(await canLogin(t, s));

  del(t, s.ns, 'databaseaccessrequest', REQUEST);
  await gone(t, 'databaseaccessrequests', s.ns, REQUEST);
  await accessEnded(t, s);
  await condition(
    t,
    'secretengines',
    s.ns,
    'postgresql-engine',
    'Terminating',
    'InUse',
    /1 PostgresRole still uses it \(se-first\/psql-role\)/,
  );

  await deleteTheRest(t, s);
  await nothingLeftInVault(t, s);
});

test('the PostgresRole deleted first keeps its Vault role while the request renews through it, and issues nothing new', async (t) => {
  t.timeout(10 * 60_000);
  const { env } = t.context;
  const s = await issuedRequest(t, 'role-first');
  del(t, s.ns, 'postgresrole', 'psql-role');
  await condition(t, 'postgresroles', s.ns, 'psql-role', 'Terminating', 'LeasesOutstanding', dependsOnRequest(s.ns));
  t.true(await vaultHas(t, `${s.mount}/roles/${s.vaultRole}`), 'the Vault role stays: renewing the lease reads it');
  t.true(await canLogin(t, s));

  apply(t, sampleIn('50-postgres-access-request.yaml', s.ns, 'latecomer'), s.ns);
  await phase(t, 'databaseaccessrequests', s.ns, 'latecomer', 'WaitingForApproval');
  await decide(env, s.ns, 'latecomer', 'Approved');
  await condition(
    t,
    'databaseaccessrequests',
    s.ns,
    'latecomer',
    'Available',
    'ReferenceTerminating',
    /PostgresRole role-first\/psql-role is being deleted/,
  );
  t.falsy((await getCr(env, 'databaseaccessrequests', s.ns, 'latecomer')).status.lease, 'no lease for it');

  del(t, s.ns, 'databaseaccessrequest', REQUEST);
  del(t, s.ns, 'databaseaccessrequest', 'latecomer');
  await gone(t, 'databaseaccessrequests', s.ns, REQUEST);
  await accessEnded(t, s);
  await gone(t, 'postgresroles', s.ns, 'psql-role');
  t.false(await vaultHas(t, `${s.mount}/roles/${s.vaultRole}`), 'the Vault role went with its PostgresRole');

  await deleteTheRest(t, s);
  await nothingLeftInVault(t, s);
});

test("the database admin Secret deleted first: Vault keeps its connection, so the request's deletion still revokes the login", async (t) => {
  t.timeout(10 * 60_000);
  const s = await issuedRequest(t, 'secret-first');
  del(t, s.ns, 'secret', 'postgres-user-cred');
  await condition(
    t,
    'secretengines',
    s.ns,
    'postgresql-engine',
    'Ready',
    'ReferenceNotFound',
    /Secret secret-first\/postgres-user-cred .*does not exist/,
  );
  t.true(await canLogin(t, s));

  del(t, s.ns, 'databaseaccessrequest', REQUEST);
  await gone(t, 'databaseaccessrequests', s.ns, REQUEST);
  await accessEnded(t, s);

  await deleteTheRest(t, s);
  await nothingLeftInVault(t, s);
});

test('the Vault token Secret deleted first stays readable while the AppBinding needs it: after a restart the operator still logs in and revokes', async (t) => {
  t.timeout(10 * 60_000);
  const { env } = t.context;
  const s = await issuedRequest(t, 'token-first', { tokenLogin: true });
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  del(t, s.ns, 'secret', 'vault-token');
  await eventually(
    t,
    'an InUse Event on the Secret naming its AppBinding',
    async () => {
      const events = await core.listNamespacedEvent({
        namespace: s.ns,
        fieldSelector: 'involvedObject.name=vault-token',
      });
      return events.items.some(
        (e) =>
          e.reason === 'InUse' &&
          /AppBinding token-first\/vault logs into Vault with this Secret's token/.test(e.message ?? ''),
      );
    },
    30_000,
  );
  t.truthy(
    (await core.readNamespacedSecret({ namespace: s.ns, name: 'vault-token' })).metadata?.deletionTimestamp,
    'it waits, being deleted',
  );

  // A restart loses the login held in memory: the next one reads the token from the Secret being deleted.
  await restartOperator(t);
  del(t, s.ns, 'databaseaccessrequest', REQUEST);
  await gone(t, 'databaseaccessrequests', s.ns, REQUEST);
  await accessEnded(t, s);

  await deleteTheRest(t, s);
  await eventually(
    t,
    'the token Secret to go with its AppBinding',
    async () =>
      core.readNamespacedSecret({ namespace: s.ns, name: 'vault-token' }).then(
        () => false,
        (err: { code?: number }) => err.code === 404,
      ),
    GONE_MS,
    500,
  );
  await nothingLeftInVault(t, s);
});

test("a Vault AppBinding moved to another token Secret lets the old one go: it isn't held for ever", async (t) => {
  t.timeout(10 * 60_000);
  const { env } = t.context;
  const s = await issuedRequest(t, 'token-switch', { tokenLogin: true });
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  const created = (
    await vaultRequest(env, 'POST', 'auth/token/create-orphan', { policies: ['leasehold-operator'], period: '1h' })
  ).body as { auth: { client_token: string } };
  apply(
    t,
    YAML.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubevault.com/token',
      metadata: { name: 'vault-token-2', namespace: s.ns },
      stringData: { token: created.auth.client_token },
    }),
    s.ns,
  );
  kubectl(env, [
    '-n',
    s.ns,
    'patch',
    'appbinding',
    'vault',
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { secret: { name: 'vault-token-2' } } }),
  ]);
  await eventually(
    t,
    'the new token Secret to hold leasehold.dev/in-use',
    async () =>
      (await core.readNamespacedSecret({ namespace: s.ns, name: 'vault-token-2' })).metadata?.finalizers?.includes(
        'leasehold.dev/in-use',
      ),
    30_000,
  );
  del(t, s.ns, 'secret', 'vault-token');
  await eventually(
    t,
    'the old token Secret to go',
    async () =>
      core.readNamespacedSecret({ namespace: s.ns, name: 'vault-token' }).then(
        () => false,
        (err: { code?: number }) => err.code === 404,
      ),
    30_000,
    500,
  );
  // The request still ends as it should, through the new token.
  del(t, s.ns, 'databaseaccessrequest', REQUEST);
  await gone(t, 'databaseaccessrequests', s.ns, REQUEST);
  await accessEnded(t, s);
  await deleteTheRest(t, s);
  await nothingLeftInVault(t, s);
});

test('kubectl delete namespace: the request revokes first, then the role, the engine and the AppBinding clean up, and the namespace goes', async (t) => {
  t.timeout(10 * 60_000);
  const s = await issuedRequest(t, 'ns-delete');
  kubectl(t.context.env, ['delete', 'namespace', s.ns, '--wait=false']);
  await namespaceGone(t, s.ns);
  await accessEnded(t, s);
  await nothingLeftInVault(t, s);
});

test('a namespace deleted while the operator is down (token login): once it is back, cleanup completes', async (t) => {
  t.timeout(10 * 60_000);
  const { env } = t.context;
  const s = await issuedRequest(t, 'ns-token', { tokenLogin: true });
  await t.context.operator.stop();
  kubectl(env, ['delete', 'namespace', s.ns, '--wait=false']);
  await eventually(
    t,
    "the namespace's content to be deleted",
    async () => !!(await getCr(env, 'appbindings', s.ns, 'vault'))?.metadata?.deletionTimestamp,
    60_000,
  );
  t.true(await canLogin(t, s), 'nothing is revoked while the operator is down');
  await restartOperator(t);
  await namespaceGone(t, s.ns);
  await accessEnded(t, s);
  await nothingLeftInVault(t, s);
});

test("a namespace deleted while the operator is down (kubernetes auth): cleanup waits, saying no login can be had; moved to the operator's ServiceAccount, it completes", async (t) => {
  t.timeout(10 * 60_000);
  const { env } = t.context;
  const s = await issuedRequest(t, 'ns-k8s');
  await t.context.operator.stop();
  kubectl(env, ['delete', 'namespace', s.ns, '--wait=false']);
  await eventually(
    t,
    "the namespace's content to be deleted",
    async () => !!(await getCr(env, 'appbindings', s.ns, 'vault'))?.metadata?.deletionTimestamp,
    60_000,
  );
  await restartOperator(t);
  const stuck = await condition(
    t,
    'appbindings',
    s.ns,
    'vault',
    'Terminating',
    'VaultLoginUnavailable',
    /no Vault login as ServiceAccount ns-k8s\/vault/,
    120_000,
  );
  t.regex(stuck.message, /namespace ns-k8s is being deleted|does not exist/);
  t.regex(stuck.message, /--operator-service-account/, 'it says what to do');
  t.regex(stuck.message, dependsOnRequest(s.ns), 'and who waits on it');
  await condition(
    t,
    'databaseaccessrequests',
    s.ns,
    REQUEST,
    'Revoked',
    'VaultLoginUnavailable',
    /is not revoked yet .*no Vault login as ServiceAccount ns-k8s\/vault/,
  );
  await condition(t, 'postgresroles', s.ns, 'psql-role', 'Terminating', 'LeasesOutstanding', dependsOnRequest(s.ns));
  t.true(await canLogin(t, s), 'the login lives until the operator can reach Vault');

  // What the condition says to do: log in as the operator's own ServiceAccount (an edit is allowed while deleting).
  kubectl(env, [
    '-n',
    s.ns,
    'patch',
    'appbinding',
    'vault',
    '--type=json',
    '-p',
    JSON.stringify([{ op: 'remove', path: '/spec/parameters/serviceAccountName' }]),
  ]);
  await namespaceGone(t, s.ns);
  await accessEnded(t, s);
  await nothingLeftInVault(t, s);
});
