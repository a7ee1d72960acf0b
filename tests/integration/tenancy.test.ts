// Tenancy: a namespace can't borrow another namespace's Vault login or database. Against the
// real stack, with the people's ClusterRoles and the admission policies installed:
//   demo:     KubeVault's guide, set up by a cluster administrator (admin); admin approves there;
//   tenant-b: alice is bound to leasehold-admin and leasehold-requester only, bob to leasehold-approver only.
//             tenant-b has its own Vault login (a kubernetes auth role for its ServiceAccount, with the same policy
//             as demo's: Vault alone can't tell the tenants apart) and its own database login.
// The operator runs as its own process, as a cluster administrator.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { CoreV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import YAML from 'yaml';
import { credentialsOf, getCr as getCrIn, guideBindings, login, sample, type Cr } from './helpers/leasehold.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import {
  configureVaultForOperator,
  guideManifests,
  installCrds,
  kubectl,
  kubectlAsync,
  vaultRequest,
  type KubectlRun,
} from '../../scripts/stack/leasehold-setup.ts';

type Ctx = StackContext & { operator: OperatorProcess };
const test = anyTest as TestFn<Ctx>;
useStack(test);

const DEMO = 'demo';
const TENANT = 'tenant-b';
const ALLOWED = 'leasehold.dev/allowed-namespaces';
/** The mount the tenant's SecretEngine `borrowed` would enable (no spec.path: k8s.<cluster>.postgres.<ns>.<name>). */
const TENANT_MOUNT = `k8s.-.postgres.${TENANT}.borrowed`;
const DEMO_CONNECTION = 'k8s.-.demo.postgres-app';

type User = 'admin' | 'alice' | 'bob';

/** kubectl (with the plugin on PATH) as a user; never throws. */
function as(t: ExecutionContext<Ctx>, user: User, args: string[], input?: string): Promise<KubectlRun> {
  const k = t.context.env.kubernetes;
  return kubectlAsync(t.context.env, args, {
    input,
    kubeconfig: user === 'admin' ? k.kubeconfig : k.users[user].kubeconfig,
  });
}

async function asOk(t: ExecutionContext<Ctx>, user: User, args: string[], input?: string): Promise<string> {
  const r = await as(t, user, args, input);
  if (r.code !== 0) t.fail(`kubectl ${args.join(' ')} as ${user} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const yaml = (...docs: unknown[]) => docs.map((d) => YAML.stringify(d)).join('---\n');
const getCr = (t: ExecutionContext<Ctx>, plural: string, ns: string, name: string) =>
  getCrIn(t.context.env, plural, ns, name);
const condition = (o: Cr, type: string) => (o?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);

/** Waits until an engine or role reports `phase` with Ready's `reason`. */
async function reports(
  t: ExecutionContext<Ctx>,
  plural: string,
  ns: string,
  name: string,
  phase: string,
  reason: string,
): Promise<Cr> {
  return eventually(
    t,
    `${plural} ${ns}/${name} ${phase}/${reason}`,
    async () => {
      const o = await getCr(t, plural, ns, name);
      return o?.status?.phase === phase && condition(o, 'Ready')?.reason === reason ? o : undefined;
    },
    90_000,
  );
}

async function requestAvailable(t: ExecutionContext<Ctx>, ns: string, name: string, reason: string): Promise<Cr> {
  return eventually(
    t,
    `request ${ns}/${name} Available reason ${reason}`,
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', ns, name);
      return condition(o, 'Available')?.reason === reason ? o : undefined;
    },
    90_000,
  );
}

async function issued(t: ExecutionContext<Ctx>, ns: string, name: string): Promise<Cr> {
  return eventually(
    t,
    `a credential for ${ns}/${name}`,
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', ns, name);
      return o?.status?.lease?.id && o.status.secret?.name && o.status.issuance?.completed ? o : undefined;
    },
    90_000,
  );
}

/** Warning Events with `reason` about an object, counting repeats folded into one Event. */
async function warnings(
  t: ExecutionContext<Ctx>,
  ns: string,
  kind: string,
  name: string,
  reason: string,
): Promise<number> {
  const events = await t.context.env.kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}` });
  return events.items
    .filter((e) => e.type === 'Warning' && e.reason === reason)
    .reduce((n, e) => n + (e.count ?? 1), 0);
}

type Answer = { data?: Record<string, unknown> } & Record<string, unknown>;

/** Everything of demo's in Vault a tenant could touch: its mount, tuning, connections, roles and leases. */
async function demoInVault(t: ExecutionContext<Ctx>): Promise<unknown> {
  const { env } = t.context;
  const read = async (method: string, p: string) => {
    const r = await vaultRequest(env, method, p, undefined, { allowError: true });
    return { status: r.status, data: (r.body as Answer | undefined)?.data };
  };
  const mounts = (await vaultRequest(env, 'GET', 'sys/mounts')).body as Answer;
  return {
    mounts: Object.keys(mounts.data ?? mounts)
      .filter((k) => k.endsWith('/'))
      .sort(),
    tune: await read('GET', 'sys/mounts/my-postgres-se/tune'),
    connections: await read('LIST', 'my-postgres-se/config'),
    connection: await read('GET', `my-postgres-se/config/${DEMO_CONNECTION}`),
    roles: await read('LIST', 'my-postgres-se/roles'),
    leases: await read('LIST', 'sys/leases/lookup/my-postgres-se/creds/k8s.-.demo.psql-role/'),
  };
}

async function superusers(t: ExecutionContext<Ctx>): Promise<string[]> {
  const c = new pg.Client({ connectionString: t.context.env.postgres.url });
  await c.connect();
  try {
    return (
      await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY rolname')
    ).rows.map((r) => r.rolname);
  } finally {
    await c.end();
  }
}

// ---- what tenant-b's people write ----------------------------------------------------------------------------

/** The SecretEngine: demo's Vault login and demo's database, from tenant-b. */
const borrowingEngine = {
  apiVersion: 'engine.kubevault.com/v1alpha1',
  kind: 'SecretEngine',
  metadata: { name: 'borrowed', namespace: TENANT },
  spec: {
    vaultRef: { name: 'vault', namespace: DEMO },
    postgres: { databaseRef: { name: 'postgres-app', namespace: DEMO } },
  },
};

function role(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'PostgresRole',
    metadata: { name, namespace: TENANT },
    spec: {
      ...spec,
      creationStatements: [
        "CREATE ROLE \"{{name}}\" WITH LOGIN SUPERUSER PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
      ],
      defaultTTL: '1h',
    },
  };
}

function request(name: string, roleName: string) {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: { name, namespace: TENANT },
    spec: {
      roleRef: { kind: 'PostgresRole', name: roleName, namespace: TENANT },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: TENANT }],
    },
  };
}

test.before(async (t) => {
  const { env } = t.context;
  installCrds(env);
  kubectl(env, ['create', 'namespace', 'leasehold-system']);
  kubectl(env, ['apply', '-f', 'manifests/rbac/people.yaml']);
  kubectl(env, ['apply', '-f', 'manifests/admission/']);
  // demo: the guide, as its administrator sets it up.
  kubectl(env, ['apply', '-f', '-'], guideBindings(env));
  kubectl(env, ['-n', DEMO, 'create', 'serviceaccount', 'vault']);
  kubectl(env, ['-n', DEMO, 'create', 'serviceaccount', 'demo-sa']);
  await configureVaultForOperator(env, {
    loginTtl: '1h',
    loginMaxTtl: '2h',
    serviceAccount: { namespace: DEMO, name: 'vault' },
  });
  // tenant-b: its own Vault login (same policy, its own ServiceAccount) and its own database login.
  kubectl(env, ['apply', '-f', '-'], guideManifests(env, { namespace: TENANT, vaultRole: 'tenant-b-login' }));
  kubectl(env, ['-n', TENANT, 'create', 'serviceaccount', 'vault']);
  await configureVaultForOperator(env, {
    loginTtl: '1h',
    loginMaxTtl: '2h',
    serviceAccount: { namespace: TENANT, name: 'vault' },
    authRole: 'tenant-b-login',
  });
  for (const [user, clusterRole] of [
    ['alice', 'leasehold-admin'],
    ['alice', 'leasehold-requester'],
    ['bob', 'leasehold-approver'],
  ]) {
    kubectl(env, [
      '-n',
      TENANT,
      'create',
      'rolebinding',
      `${user}-${clusterRole}`,
      `--clusterrole=${clusterRole}`,
      `--user=${user}`,
    ]);
  }
  kubectl(env, ['apply', '-f', 'manifests/samples/30-postgres-secret-engine.yaml']);
  kubectl(env, ['apply', '-f', 'manifests/samples/40-postgres-role.yaml']);
  t.context.operator = await startOperator(env);
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
  await reports(t as never, 'postgresroles', DEMO, 'psql-role', 'Success', 'Provisioned');
});

test.serial("KubeVault's guide works in demo, with nothing to opt in", async (t) => {
  await asOk(t, 'admin', ['apply', '-f', 'manifests/samples/50-postgres-access-request.yaml']);
  await asOk(t, 'admin', ['vault', 'approve', 'databaseaccessrequest', 'postgres-cred-rqst', '-n', DEMO]);
  const dar = await issued(t, DEMO, 'postgres-cred-rqst');
  const { username, password } = await credentialsOf(t.context.env, DEMO, dar.status.secret.name);
  t.is((await login(t.context.env, username, password)).rows[0].one, 1);
  t.is((await getCr(t, 'secretengines', DEMO, 'postgresql-engine'))?.status?.phase, 'Success');
});

test.serial(
  "tenant-b can't borrow demo's Vault login and database: the SecretEngine says ReferenceNotAllowed once, and nothing is written or issued",
  async (t) => {
    const before = { vault: await demoInVault(t), superusers: await superusers(t) };
    await asOk(
      t,
      'alice',
      ['apply', '-f', '-'],
      yaml(borrowingEngine, role('root', { secretEngineRef: { name: 'borrowed' } }), request('root-please', 'root')),
    );
    // The approver in tenant-b approves: it is tenant-b's role, tenant-b's request.
    await asOk(t, 'bob', ['vault', 'approve', 'dar', 'root-please', '-n', TENANT]);

    const engine = await reports(t, 'secretengines', TENANT, 'borrowed', 'Failed', 'ReferenceNotAllowed');
    const message = condition(engine, 'Ready').message as string;
    t.regex(
      message,
      /^spec\.vaultRef of SecretEngine tenant-b\/borrowed refers to AppBinding demo\/vault \(its Vault login\) in another namespace, which does not admit namespace tenant-b/,
    );
    t.regex(message, /kubectl -n demo annotate appbinding vault leasehold\.dev\/allowed-namespaces=tenant-b/);
    t.is(condition(engine, 'Failed').status, 'True');
    const refusedRole = await reports(t, 'postgresroles', TENANT, 'root', 'Failed', 'ReferenceNotAllowed');
    t.regex(condition(refusedRole, 'Ready').message, /spec\.vaultRef of SecretEngine tenant-b\/borrowed/);
    const dar = await requestAvailable(t, TENANT, 'root-please', 'ReferenceNotAllowed');
    t.is(dar.status.phase, 'Approved');
    t.falsy(dar.status.lease, 'no credential is issued');
    t.falsy(dar.status.secret);
    t.falsy(dar.status.issuance, 'Vault was not even asked');
    // alice, who wrote it, can read why.
    t.regex(
      await asOk(t, 'alice', [
        'get',
        'secretengine',
        'borrowed',
        '-n',
        TENANT,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
      ]),
      /^ReferenceNotAllowed$/,
    );

    t.is(await warnings(t, TENANT, 'SecretEngine', 'borrowed', 'ReferenceNotAllowed'), 1, 'one Warning Event');
    const mounts = (await vaultRequest(t.context.env, 'GET', 'sys/mounts')).body as Answer;
    t.false(`${TENANT_MOUNT}/` in (mounts.data ?? mounts), 'no mount for tenant-b');
    t.not(
      (
        await vaultRequest(t.context.env, 'GET', `${TENANT_MOUNT}/config/${DEMO_CONNECTION}`, undefined, {
          allowError: true,
        })
      ).status,
      200,
      `no connection ${DEMO_CONNECTION} written by it`,
    );
    t.deepEqual(await demoInVault(t), before.vault, "nothing of demo's changed in Vault");
    t.deepEqual(await superusers(t), before.superusers, 'no new superuser in the database');
  },
);

test.serial(
  "a PostgresRole in tenant-b naming demo's database, by databaseRef or by its connection name, is refused, though tenant-b's own Vault login works",
  async (t) => {
    const before = await demoInVault(t);
    // tenant-b's own Vault AppBinding logs in (so it is the reference, not the login, that is refused).
    await eventually(
      t,
      "tenant-b's Vault AppBinding Ready",
      async () => condition(await getCr(t, 'appbindings', TENANT, 'vault'), 'Ready')?.status === 'True',
      90_000,
    );
    await asOk(
      t,
      'alice',
      ['apply', '-f', '-'],
      yaml(
        role('by-ref', {
          vaultRef: { name: 'vault' },
          path: 'my-postgres-se',
          databaseRef: { name: 'postgres-app', namespace: DEMO },
        }),
        role('by-name', { vaultRef: { name: 'vault' }, path: 'my-postgres-se', databaseName: DEMO_CONNECTION }),
      ),
    );
    const byRef = await reports(t, 'postgresroles', TENANT, 'by-ref', 'Failed', 'ReferenceNotAllowed');
    t.regex(
      condition(byRef, 'Ready').message,
      /^spec\.databaseRef of PostgresRole tenant-b\/by-ref refers to AppBinding demo\/postgres-app /,
    );
    const byName = await reports(t, 'postgresroles', TENANT, 'by-name', 'Failed', 'ReferenceNotAllowed');
    t.regex(
      condition(byName, 'Ready').message,
      /^spec\.databaseName of PostgresRole tenant-b\/by-name refers to AppBinding demo\/postgres-app /,
    );
    for (const name of ['by-ref', 'by-name']) {
      t.is(
        (
          await vaultRequest(t.context.env, 'GET', `my-postgres-se/roles/k8s.-.${TENANT}.${name}`, undefined, {
            allowError: true,
          })
        ).status,
        404,
        `no Vault role for ${name}`,
      );
      t.is(await warnings(t, TENANT, 'PostgresRole', name, 'ReferenceNotAllowed'), 1);
    }
    t.deepEqual(await demoInVault(t), before);
  },
);

test.serial(
  "a SecretEngine in tenant-b can't write into the mount demo's SecretEngine enabled, nor tune it; deleting it leaves the mount alone",
  async (t) => {
    const before = await demoInVault(t);
    const squatter = {
      apiVersion: 'engine.kubevault.com/v1alpha1',
      kind: 'SecretEngine',
      metadata: { name: 'squatter', namespace: TENANT },
      spec: {
        vaultRef: { name: 'vault' },
        path: 'my-postgres-se',
        postgres: { databaseRef: { name: 'postgres-app' } },
        defaultLeaseTTL: '5m',
        maxLeaseTTL: '10m',
      },
    };
    await asOk(t, 'alice', ['apply', '-f', '-'], yaml(squatter));
    const engine = await reports(t, 'secretengines', TENANT, 'squatter', 'Failed', 'ReferenceNotAllowed');
    t.regex(
      condition(engine, 'Ready').message,
      /^spec\.path of SecretEngine tenant-b\/squatter refers to SecretEngine demo\/postgresql-engine \(the owner of the mount my-postgres-se\/\)/,
    );
    t.regex(
      condition(engine, 'Ready').message,
      /kubectl -n demo annotate secretengine postgresql-engine leasehold\.dev\/allowed-namespaces=tenant-b/,
    );
    t.deepEqual(await demoInVault(t), before, "no connection added to demo's mount, its TTLs untouched");
    await asOk(t, 'alice', ['delete', 'secretengine', 'squatter', '-n', TENANT, '--timeout=60s']);
    t.deepEqual(await demoInVault(t), before, 'and its deletion removed nothing');
  },
);

test.serial(
  "only someone with rights in demo can opt in; once demo's AppBindings admit tenant-b, the borrowed engine, its role and the approved request work",
  async (t) => {
    const { env } = t.context;
    const denied = await as(t, 'alice', ['annotate', '-n', DEMO, 'appbinding', 'vault', `${ALLOWED}=${TENANT}`]);
    t.not(denied.code, 0);
    t.regex(denied.stderr, /forbidden/i);

    await asOk(t, 'admin', ['annotate', '-n', DEMO, 'appbinding', 'vault', 'postgres-app', `${ALLOWED}=${TENANT}`]);
    await reports(t, 'secretengines', TENANT, 'borrowed', 'Success', 'Provisioned');
    t.is((await vaultRequest(env, 'GET', `${TENANT_MOUNT}/config/${DEMO_CONNECTION}`)).status, 200);
    await reports(t, 'postgresroles', TENANT, 'root', 'Success', 'Provisioned');
    await reports(t, 'postgresroles', TENANT, 'by-ref', 'Success', 'Provisioned');
    const dar = await issued(t, TENANT, 'root-please');
    const { username, password } = await credentialsOf(env, TENANT, dar.status.secret.name);
    const me = await login(env, username, password, 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
    t.true(me.rows[0].rolsuper, "what demo agreed to: the role's own SQL");
  },
);

test.serial('withdrawing the opt-in stops new issuance and renewal; revoking still works', async (t) => {
  const { env } = t.context;
  const old = (await getCr(t, 'databaseaccessrequests', TENANT, 'root-please'))!;
  const { username, password } = await credentialsOf(env, TENANT, old.status.secret.name);

  await asOk(t, 'admin', ['annotate', '-n', DEMO, 'appbinding', 'vault', `${ALLOWED}-`]);
  await reports(t, 'secretengines', TENANT, 'borrowed', 'Failed', 'ReferenceNotAllowed');
  await reports(t, 'postgresroles', TENANT, 'root', 'Failed', 'ReferenceNotAllowed');
  const kept = await requestAvailable(t, TENANT, 'root-please', 'ReferenceNotAllowed');
  t.regex(
    condition(kept, 'Available').message,
    /is not renewed and ends at .*; nothing new is issued: spec\.vaultRef of SecretEngine tenant-b\/borrowed/,
  );

  await asOk(t, 'alice', ['apply', '-f', '-'], yaml(request('root-again', 'root')));
  await asOk(t, 'bob', ['vault', 'approve', 'dar', 'root-again', '-n', TENANT]);
  const again = await requestAvailable(t, TENANT, 'root-again', 'ReferenceNotAllowed');
  t.falsy(again.status.lease, 'nothing new is issued');
  t.falsy(again.status.issuance);

  // The lease issued while demo agreed is still revoked when its request goes.
  t.is((await login(env, username, password)).rows[0].one, 1);
  await asOk(t, 'alice', ['delete', 'dar', 'root-please', '-n', TENANT, '--timeout=90s']);
  await t.throwsAsync(() => login(env, username, password), {
    message: /password authentication failed|does not exist/,
  });
});

test.serial("demo's guide still works after all of tenant-b's attempts", async (t) => {
  const { env } = t.context;
  const doc = {
    ...(sample('50-postgres-access-request.yaml')[0] as object),
    metadata: { name: 'after-tenants', namespace: DEMO },
  };
  await asOk(t, 'admin', ['apply', '-f', '-'], yaml(doc));
  await asOk(t, 'admin', ['vault', 'approve', 'dar', 'after-tenants', '-n', DEMO]);
  const dar = await issued(t, DEMO, 'after-tenants');
  const { username, password } = await credentialsOf(env, DEMO, dar.status.secret.name);
  t.is((await login(env, username, password)).rows[0].one, 1);
  t.is((await getCr(t, 'postgresroles', DEMO, 'psql-role'))?.status?.phase, 'Success');
  t.is((await getCr(t, 'secretengines', DEMO, 'postgresql-engine'))?.status?.phase, 'Success');
});
