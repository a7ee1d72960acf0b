// The Helm chart on the real stack: every object it renders (with non-default values) passes the API server's own
// validation (--dry-run=server), then `helm install` as release lh in namespace ops-leasehold, and the guide runs
// with the operator started from that install's ServiceAccount token: no admin credentials, only the chart's RBAC,
// under the chart's admission policies (which must exempt the renamed ServiceAccount). People act as themselves:
// alice requests, bob approves. The stack has no container runtime, so the operator runs as a local process (as in
// every integration test) and the chart's Deployment is installed scaled to 0 (replicaCount=0; without --wait: the stack runs no Deployment controller to report it rolled out).
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { AuthorizationV1Api } from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { credentialsOf, getCr as getCrIn, guideBindings, login, sample } from './helpers/leasehold.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { resolveHelm } from '../../scripts/stack/binaries.ts';
import { CHART_PATH, Helm, parseObjects, type HelmRun } from '../../scripts/stack/helm.ts';
import { writeKubeconfig } from '../../scripts/stack/kube.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import {
  configureVaultForOperator,
  kubectl,
  pathWithPlugin,
  vaultRequest,
} from '../../scripts/stack/leasehold-setup.ts';

type Ctx = StackContext & {
  helm: Helm;
  /** `kubectl create --dry-run=server -o name` of the non-default render. */
  dryRun: string[];
  install: HelmRun;
  operator: OperatorProcess;
  operatorKubeconfig: string;
};
const test = anyTest as TestFn<Ctx>;
useStack(test);

const RELEASE = 'lh';
const NS = 'ops-leasehold';
const SA = 'lh-leasehold';
const OPERATOR = `system:serviceaccount:${NS}:${SA}`;
type User = 'admin' | 'alice' | 'bob';

/** kubectl as a user (the plugin on PATH); never throws. */
function as(t: ExecutionContext<Ctx>, user: User, args: string[], input?: string) {
  const k = t.context.env.kubernetes;
  const r = spawnSync(
    k.kubectl,
    [...args, `--kubeconfig=${user === 'admin' ? k.kubeconfig : k.users[user].kubeconfig}`],
    {
      input,
      encoding: 'utf8',
      env: { ...process.env, PATH: pathWithPlugin() },
    },
  );
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const getCr = (t: ExecutionContext<Ctx>, plural: string, name: string) => getCrIn(t.context.env, plural, 'demo', name);

async function phase(t: ExecutionContext<Ctx>, name: string, want: string, timeoutMs = 60_000) {
  return eventually(
    t,
    `${name} in phase ${want}`,
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', name);
      return o?.status?.phase === want ? o : undefined;
    },
    timeoutMs,
  );
}

function requestYaml(name: string): string {
  const doc = sample('50-postgres-access-request.yaml')[0] as { metadata: Record<string, unknown> };
  doc.metadata = { name, namespace: 'demo' };
  return YAML.stringify(doc);
}

/** Whether the API server lets `user` do `verb` on `resource` (cluster-wide when no namespace). */
async function allowed(
  t: ExecutionContext<Ctx>,
  user: string,
  verb: string,
  resource: string,
  group = '',
  namespace?: string,
  name?: string,
) {
  const authz = t.context.env.kubeConfig.makeApiClient(AuthorizationV1Api);
  const review = await authz.createSubjectAccessReview({
    body: { spec: { user, resourceAttributes: { verb, resource, group, namespace, name } } },
  });
  return review.status?.allowed === true;
}

test.before(async (t) => {
  const { env } = t.context;
  t.context.helm = new Helm(await resolveHelm((l) => t.log(l)));
  const { helm } = t.context;
  const kc = env.kubernetes.kubeconfig;

  // Every object of a non-default render, checked by the API server without being stored. Rendered against the
  // live cluster (--validate: its API versions, so the requester MutatingAdmissionPolicy is in), into `default`,
  // which exists. The prometheus-operator kinds are left out: the stack doesn't serve their CRDs.
  const dry = await helm.run(
    [
      'template',
      'dry',
      CHART_PATH,
      '--namespace',
      'default',
      '--validate',
      '--set',
      'serviceAccount.name=dry-run-operator,replicaCount=3,podDisruptionBudget.maxUnavailable=null,podDisruptionBudget.minAvailable=2',
      '--set',
      'config.concurrency=8,config.leaderElect=true,metrics.service.enabled=true,admission.requesterMutatingPolicy=true',
      '--set-string',
      'config.logLevel=debug,config.operatorServiceAccount=default/dry-run-operator,config.resyncPeriod=5m',
    ],
    { kubeconfig: kc },
  );
  if (dry.code !== 0) throw new Error(`helm template --validate failed: ${dry.stderr}`);
  const objects = parseObjects(dry.stdout).filter((o) => !o.apiVersion.startsWith('monitoring.coreos.com/'));
  t.context.dryRun = kubectl(
    env,
    ['create', '--dry-run=server', '-o', 'name', '-f', '-'],
    objects.map((o) => `---\n${YAML.stringify(o)}`).join(''),
  )
    .trim()
    .split('\n');

  t.context.install = await helm.run(
    ['install', RELEASE, CHART_PATH, '--namespace', NS, '--create-namespace', '--set', 'replicaCount=0'],
    { kubeconfig: kc, timeoutMs: 180_000 },
  );
  if (t.context.install.code !== 0) throw new Error(`helm install failed: ${t.context.install.stderr}`);
  kubectl(env, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);

  // The platform team's part of the guide (as the cluster admin): the AppBindings and their Secrets, the
  // ServiceAccounts, Vault's side, and who may request and approve.
  kubectl(env, ['apply', '-f', '-'], guideBindings(env));
  kubectl(env, ['-n', 'demo', 'create', 'serviceaccount', 'vault']);
  kubectl(env, ['-n', 'demo', 'create', 'serviceaccount', 'demo-sa']);
  // Established is not served everywhere at once: for a moment after `helm install` the API server may still answer
  // 503 "Resource kind … not found. There can be a delay…". Wait until a request can be created (server dry run).
  await eventually(
    t,
    'DatabaseAccessRequests served',
    async () =>
      as(t as never, 'admin', ['create', '--dry-run=server', '-f', 'manifests/samples/50-postgres-access-request.yaml'])
        .code === 0,
    30_000,
    500,
  );
  kubectl(env, [
    '-n',
    'demo',
    'create',
    'rolebinding',
    'alice-requests',
    '--clusterrole=leasehold-requester',
    '--user=alice',
  ]);
  kubectl(env, [
    '-n',
    'demo',
    'create',
    'rolebinding',
    'bob-approves',
    '--clusterrole=leasehold-approver',
    '--user=bob',
  ]);
  await configureVaultForOperator(env, {
    loginTtl: '1h',
    loginMaxTtl: '2h',
    serviceAccount: { namespace: 'demo', name: 'vault' },
  });
  const admin = new pg.Client({ connectionString: env.postgres.url });
  await admin.connect();
  await admin.query('CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2)');
  await admin.end();

  // The operator as the chart's ServiceAccount: a token from the API server, nothing else.
  const token = kubectl(env, ['-n', NS, 'create', 'token', SA, '--duration=2h']).trim();
  t.context.operatorKubeconfig = path.join(env.dir, 'operator-sa.kubeconfig');
  writeKubeconfig(t.context.operatorKubeconfig, env.kubernetes.server, env.kubernetes.caFile, SA, token);
  t.context.operator = await startOperator(env, [
    `--kubeconfig=${t.context.operatorKubeconfig}`,
    `--operator-namespace=${NS}`,
    '--leader-elect',
    `--leader-election-namespace=${NS}`,
  ]);
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
});

test.serial('every object the chart renders with non-default values passes the API server validation', (t) => {
  const names = t.context.dryRun;
  for (const want of [
    'deployment.apps/dry-leasehold',
    'serviceaccount/dry-run-operator',
    'poddisruptionbudget.policy/dry-leasehold',
    'service/dry-leasehold-metrics',
    'customresourcedefinition.apiextensions.k8s.io/databaseaccessrequests.engine.kubevault.com',
    'validatingadmissionpolicy.admissionregistration.k8s.io/leasehold-approval',
    'mutatingadmissionpolicy.admissionregistration.k8s.io/leasehold-requester',
    'clusterrole.rbac.authorization.k8s.io/leasehold-operator',
    'role.rbac.authorization.k8s.io/leasehold-leader-election',
  ])
    t.true(names.includes(want), `${want} not among ${names.join(', ')}`);
});

test.serial(
  'helm install as lh in ops-leasehold prints the next step and installs the renamed ServiceAccount, scaled-down Deployment and policies',
  (t) => {
    const { env, install } = t.context;
    t.regex(install.stdout, /STATUS: deployed/);
    t.regex(install.stdout, /NEXT STEP: prepare Vault/);
    t.regex(install.stdout, new RegExp(OPERATOR));
    t.regex(install.stdout, /MutatingAdmissionPolicy leasehold-requester \(admissionregistration\.k8s\.io\/v1alpha1\)/);
    t.is(kubectl(env, ['-n', NS, 'get', 'serviceaccount', SA, '-o', 'name']).trim(), `serviceaccount/${SA}`);
    t.is(kubectl(env, ['-n', NS, 'get', 'deployment', SA, '-o', 'jsonpath={.spec.replicas}']), '0');
    const policy = JSON.parse(
      kubectl(env, ['get', 'validatingadmissionpolicy', 'leasehold-approval', '-o', 'json']),
    ) as {
      spec: { matchConditions: Array<{ expression: string }> };
    };
    t.is(policy.spec.matchConditions[0]?.expression, `request.userInfo.username != '${OPERATOR}'`);
  },
);

test.serial("the operator's ServiceAccount holds the chart's least privilege, not an administrator's", async (t) => {
  t.true(await allowed(t, OPERATOR, 'patch', 'databaseaccessrequests', 'engine.kubevault.com'));
  t.true(await allowed(t, OPERATOR, 'update', 'leases', 'coordination.k8s.io', NS));
  t.false(await allowed(t, OPERATOR, 'update', 'leases', 'coordination.k8s.io', 'kube-system'));
  t.false(await allowed(t, OPERATOR, 'create', 'clusterrolebindings', 'rbac.authorization.k8s.io'));
  t.false(await allowed(t, OPERATOR, 'delete', 'namespaces'));
  t.false(await allowed(t, OPERATOR, 'create', 'databaseaccessrequests', 'engine.kubevault.com', 'demo'));
  const holder = await eventually(t, 'the leader Lease in the release namespace held', async () =>
    kubectl(t.context.env, [
      '-n',
      NS,
      'get',
      'lease',
      'leasehold-operator-lock',
      '-o',
      'jsonpath={.spec.holderIdentity}',
    ]),
  );
  t.truthy(holder);
});

test.serial('the SecretEngine, the Vault AppBinding and the PostgresRole reach Success and Ready', async (t) => {
  const { env } = t.context;
  kubectl(env, ['apply', '-f', 'manifests/samples/30-postgres-secret-engine.yaml']);
  kubectl(env, ['apply', '-f', 'manifests/samples/40-postgres-role.yaml']);
  await eventually(
    t,
    'SecretEngine Success',
    async () => (await getCr(t, 'secretengines', 'postgresql-engine'))?.status?.phase === 'Success',
    60_000,
  );
  await eventually(
    t,
    'AppBinding vault Ready',
    async () =>
      (await getCr(t, 'appbindings', 'vault'))?.status?.conditions?.some(
        (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
      ),
    60_000,
  );
  await eventually(
    t,
    'PostgresRole Success',
    async () => (await getCr(t, 'postgresroles', 'psql-role'))?.status?.phase === 'Success',
    60_000,
  );
  const role = await vaultRequest(env, 'GET', 'my-postgres-se/roles/k8s.-.demo.psql-role');
  t.is(role.status, 200);
});

test.serial(
  'alice requests, the requester is recorded, she cannot approve herself, bob approves and the credentials work',
  async (t) => {
    const { env } = t.context;
    const created = as(t, 'alice', ['apply', '-f', 'manifests/samples/50-postgres-access-request.yaml']);
    t.is(created.code, 0, created.stderr);
    const waiting = await phase(t, 'postgres-cred-rqst', 'WaitingForApproval', 30_000);
    t.falsy(waiting.status.lease, 'nothing is issued before approval');
    t.is(JSON.parse(waiting.metadata.annotations['leasehold.dev/requester']).username, 'alice');

    kubectl(env, [
      '-n',
      'demo',
      'create',
      'rolebinding',
      'alice-approves',
      '--clusterrole=leasehold-approver',
      '--user=alice',
    ]);
    const self = as(t, 'alice', ['vault', 'approve', 'databaseaccessrequest', 'postgres-cred-rqst', '-n', 'demo']);
    t.not(self.code, 0, 'four eyes: the requester may not approve');
    t.regex(self.stderr + self.stdout, /four eyes/);

    const approved = as(t, 'bob', ['vault', 'approve', 'databaseaccessrequest', 'postgres-cred-rqst', '-n', 'demo']);
    t.is(approved.code, 0, approved.stderr);
    const dar = await eventually(
      t,
      'a lease and Secret recorded by the operator',
      async () => {
        const o = await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst');
        return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
      },
      60_000,
    );
    t.is(dar.status.phase, 'Approved');
    t.is(dar.status.requester?.username, 'alice');
    const { username, password } = await credentialsOf(env, 'demo', dar.status.secret.name);
    t.is((await login(env, username, password, 'SELECT count(*)::int AS n FROM items')).rows[0].n, 2);
    t.true(
      await allowed(t, 'system:serviceaccount:demo:demo-sa', 'get', 'secrets', '', 'demo', dar.status.secret.name),
    );
  },
);

test.serial('bob denies a request and nothing is issued', async (t) => {
  t.is(as(t, 'alice', ['apply', '-f', '-'], requestYaml('denied-rqst')).code, 0);
  await phase(t, 'denied-rqst', 'WaitingForApproval', 30_000);
  const denied = as(t, 'bob', ['vault', 'deny', 'databaseaccessrequest', 'denied-rqst', '-n', 'demo']);
  t.is(denied.code, 0, denied.stderr);
  const o = await phase(t, 'denied-rqst', 'Denied', 30_000);
  t.falsy(o.status.lease);
  t.falsy(o.status.secret);
});

test.serial('kubectl vault revoke ends the access, and deleting a request revokes its login', async (t) => {
  const { env } = t.context;
  t.is(as(t, 'alice', ['apply', '-f', '-'], requestYaml('revoke-rqst')).code, 0);
  await phase(t, 'revoke-rqst', 'WaitingForApproval', 30_000);
  t.is(as(t, 'bob', ['vault', 'approve', 'dar', 'revoke-rqst', '-n', 'demo']).code, 0);
  const dar = await eventually(
    t,
    'revoke-rqst issued',
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', 'revoke-rqst');
      return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
    },
    60_000,
  );
  const { username, password } = await credentialsOf(env, 'demo', dar.status.secret.name);
  t.is((await login(env, username, password)).rows[0].one, 1);
  const revoked = as(t, 'admin', ['vault', 'revoke', 'databaseaccessrequest', 'revoke-rqst', '-n', 'demo']);
  t.is(revoked.code, 0, revoked.stderr);
  await phase(t, 'revoke-rqst', 'Revoked');
  await t.throwsAsync(() => login(env, username, password), {
    message: /password authentication failed|does not exist/,
  });

  const first = (await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst'))!;
  const creds = await credentialsOf(env, 'demo', first.status.secret.name);
  const deleted = as(t, 'alice', [
    '-n',
    'demo',
    'delete',
    'databaseaccessrequest',
    'postgres-cred-rqst',
    '--timeout=60s',
  ]);
  t.is(deleted.code, 0, deleted.stderr);
  await t.throwsAsync(() => login(env, creds.username, creds.password, 'SELECT 1'), {
    message: /password authentication failed|does not exist/,
  });
});

test.serial(
  'deleting the PostgresRole deletes the Vault role, and the operator never logged a permission error',
  async (t) => {
    const { env, operator } = t.context;
    kubectl(env, ['-n', 'demo', 'delete', 'postgresrole', 'psql-role', '--timeout=60s']);
    const res = await vaultRequest(env, 'GET', 'my-postgres-se/roles/k8s.-.demo.psql-role', undefined, {
      allowError: true,
    });
    t.is(res.status, 404);
    t.notRegex(operator.logs(), /is forbidden: User|denied request/);
  },
);

test.serial(
  'helm upgrade changes a flag; helm uninstall removes the operator, its RBAC and the policies but keeps the CRDs and the requests',
  async (t) => {
    const { env, helm, operator } = t.context;
    const kc = env.kubernetes.kubeconfig;
    const upgraded = await helm.run(
      ['upgrade', RELEASE, CHART_PATH, '--namespace', NS, '--reuse-values', '--set-string', 'config.logLevel=warn'],
      { kubeconfig: kc },
    );
    t.is(upgraded.code, 0, upgraded.stderr);
    t.regex(upgraded.stdout, /REVISION: 2/);
    const args = JSON.parse(
      kubectl(env, ['-n', NS, 'get', 'deployment', SA, '-o', 'jsonpath={.spec.template.spec.containers[0].args}']),
    ) as string[];
    t.true(args.includes('--log-level=warn'));

    await operator.stop();
    const uninstalled = await helm.run(['uninstall', RELEASE, '--namespace', NS], { kubeconfig: kc });
    t.is(uninstalled.code, 0, uninstalled.stderr);
    const gone = (what: string[]) => kubectl(env, [...what, '--ignore-not-found', '-o', 'name']).trim();
    t.is(gone(['-n', NS, 'get', 'deployment', SA]), '');
    t.is(gone(['-n', NS, 'get', 'serviceaccount', SA]), '');
    t.is(gone(['get', 'clusterrole', 'leasehold-operator']), '');
    t.is(gone(['get', 'validatingadmissionpolicy', 'leasehold-approval']), '');
    t.is(
      gone(['get', 'crd', 'databaseaccessrequests.engine.kubevault.com']),
      'customresourcedefinition.apiextensions.k8s.io/databaseaccessrequests.engine.kubevault.com',
    );
    t.is(
      gone(['-n', 'demo', 'get', 'databaseaccessrequest', 'denied-rqst']),
      'databaseaccessrequest.engine.kubevault.com/denied-rqst',
    );
  },
);
