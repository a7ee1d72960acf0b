// `kubectl vault` end to end: the real kubectl finds the plugin on PATH (bin/kubectl-vault, running the
// TypeScript sources through the repository's tsx on node@24; or, from plugin-bundle.test.ts and
// plugin-sea.test.ts, the one-file builds in an empty directory: helpers/plugin-under-test.ts) and drives it
// against a real kube-apiserver with the CRDs installed and real RBAC. Every check is on the cluster's state
// afterwards, not only on what the plugin printed.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Annotations, KINDS, type DatabaseAccessRequest } from '../../api/index.ts';
import { crdName } from '../../api/crd.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { preparePlugin, type PluginRun } from './helpers/plugin-under-test.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NS = 'plugin-demo';
const OTHER = 'plugin-other';
const QUALIFIED = 'databaseaccessrequest.engine.kubevault.com';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real kubectl with the plugin on PATH; KUBECONFIG is the admin's unless `env` says otherwise. */
function kubectl(
  t: ExecutionContext<StackContext>,
  args: string[],
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const { kubernetes } = t.context.env;
  const env = { ...plugin.env, KUBECONFIG: kubernetes.kubeconfig, ...opts.env };
  return new Promise((resolve) => {
    const child = execFile(
      kubernetes.kubectl,
      args,
      { env, cwd: plugin.cwd, timeout: 120_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}

async function kubectlOk(
  t: ExecutionContext<StackContext>,
  args: string[],
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const r = await kubectl(t, args, opts);
  if (r.code !== 0) t.fail(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `kubectl vault ARGS` as alice (whose kubeconfig has no permissions until a test grants some). */
function asAlice(t: ExecutionContext<StackContext>, args: string[]): Promise<Run> {
  return kubectl(t, ['vault', ...args, '--kubeconfig', t.context.env.kubernetes.users.alice.kubeconfig]);
}

async function getRequest(t: ExecutionContext<StackContext>, ns: string, name: string): Promise<DatabaseAccessRequest> {
  return JSON.parse(
    await kubectlOk(t, ['get', 'databaseaccessrequests.engine.kubevault.com', '-n', ns, name, '-o', 'json']),
  );
}

function requestManifest(name: string, ns: string): string {
  return JSON.stringify({
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: { name, namespace: ns },
    spec: {
      roleRef: { kind: 'PostgresRole', name: 'psql-role', namespace: ns },
      subjects: [{ kind: 'ServiceAccount', name: 'demo-sa', namespace: ns }],
      ttl: '1h',
    },
  });
}

async function createRequest(t: ExecutionContext<StackContext>, name: string, ns = NS): Promise<void> {
  await kubectlOk(t, ['create', '-f', '-'], { input: requestManifest(name, ns) });
}

/** Writes status fields as the operator would (merge patch on the status subresource, as the admin). */
async function patchStatus(
  t: ExecutionContext<StackContext>,
  ns: string,
  name: string,
  status: unknown,
): Promise<void> {
  await kubectlOk(t, [
    'patch',
    'databaseaccessrequests.engine.kubevault.com',
    name,
    '-n',
    ns,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

let adminName = '';
/** The kubectl-vault under test and where kubectl runs it. */
let plugin: PluginRun;

test.before(async (t) => {
  plugin = await preparePlugin(t.context.env.kubernetes.kubectl);
  await kubectlOk(t, ['apply', '-f', path.join(root, 'manifests/crds')]);
  for (const def of KINDS)
    await kubectlOk(t, ['wait', '--for=condition=Established', `crd/${crdName(def)}`, '--timeout=60s']);
  await kubectlOk(t, ['create', 'namespace', NS]);
  await kubectlOk(t, ['create', 'namespace', OTHER]);
  // Who the API server says the admin is: what the plugin must record, learnt independently of it.
  adminName = (await kubectlOk(t, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'])).trim();
  t.truthy(adminName);
  // Alice may read requests in NS, but not write their status and not read Secrets.
  await kubectlOk(t, [
    'create',
    'role',
    'dar-reader',
    '-n',
    NS,
    '--verb=get,list,watch',
    '--resource=databaseaccessrequests.engine.kubevault.com',
  ]);
  await kubectlOk(t, ['create', 'rolebinding', 'alice-dar-reader', '-n', NS, '--role=dar-reader', '--user=alice']);
  await eventually(t, 'alice to read requests', async () => (await asAlice(t, ['get', 'dar', '-n', NS])).code === 0);
});

test.after.always(() => plugin?.cleanup());

test('kubectl finds the plugin; version and --help on every command exit 0', async (t) => {
  const version = await kubectl(t, ['vault', 'version']);
  t.is(version.code, 0, version.stderr);
  t.regex(version.stdout, /^kubectl-vault v0\.1\.0\nAPI: engine\.kubevault\.com\/v1alpha1/);
  t.regex(version.stdout, /Node\.js: v24\./);
  for (const args of [
    ['--help'],
    ['approve', '--help'],
    ['deny', '--help'],
    ['revoke', '--help'],
    ['rotate', '--help'],
    ['get', '--help'],
    ['credentials', '--help'],
    ['report', '--help'],
    ['version', '--help'],
    ['help', 'approve'],
  ]) {
    const r = await kubectl(t, ['vault', ...args]);
    t.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stdout, /Usage:\n {2}kubectl vault /, args.join(' '));
  }
  const list = await kubectl(t, ['plugin', 'list']);
  t.regex(list.stdout, /bin\/kubectl-vault/);
});

test('an unknown command or flag exits 2 with a pointer to help', async (t) => {
  const r = await kubectl(t, ['vault', 'frobnicate']);
  t.is(r.code, 2);
  t.is(r.stderr, 'error: unknown command "frobnicate" for "kubectl vault"\nSee \'kubectl vault --help\' for usage.\n');
  const flag = await kubectl(t, ['vault', 'get', 'dar', '--bogus']);
  t.is(flag.code, 2);
  t.regex(flag.stderr, /unknown flag: --bogus/);
  const reason = await kubectl(t, ['vault', 'approve', 'dar', 'x', '-n', NS, '--reason', 'looks fine']);
  t.is(reason.code, 2);
  t.regex(reason.stderr, /--reason must be one CamelCase word.*--message "looks fine"/);
});

test('approve writes Approved=True through /status, naming the admin as the API server knows them', async (t) => {
  await createRequest(t, 'approve-me');
  const before = await getRequest(t, NS, 'approve-me');
  const startedAt = Date.now();
  const r = await kubectl(t, [
    'vault',
    'approve',
    'databaseaccessrequest',
    'approve-me',
    '-n',
    NS,
    '--message',
    'OPS-1234 checked',
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${QUALIFIED}/approve-me approved\n`);
  const after = await getRequest(t, NS, 'approve-me');
  const conditions = after.status?.conditions ?? [];
  t.is(conditions.length, 1);
  const c = conditions[0]!;
  t.like(c, {
    type: 'Approved',
    status: 'True',
    reason: 'KubectlApprove',
    observedGeneration: before.metadata.generation,
  });
  t.is(c.message, `This was approved by: ${adminName} (with kubectl vault approve): OPS-1234 checked`);
  t.true(Math.abs(Date.parse(c.lastTransitionTime!) - startedAt) < 60_000, c.lastTransitionTime);
  // Nothing but the status changed.
  t.deepEqual(after.spec, before.spec);
  t.deepEqual(after.metadata.annotations, before.metadata.annotations);
});

test('deny writes Denied=True with the given reason; approve after deny is refused and changes nothing', async (t) => {
  await createRequest(t, 'deny-me');
  const r = await kubectl(t, [
    'vault',
    'deny',
    'dar',
    'deny-me',
    '-n',
    NS,
    '--reason',
    'UseReplica',
    '--message',
    'read from the replica',
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${QUALIFIED}/deny-me denied\n`);
  const denied = await getRequest(t, NS, 'deny-me');
  t.like(denied.status?.conditions?.[0], {
    type: 'Denied',
    status: 'True',
    reason: 'UseReplica',
    message: `This was denied by: ${adminName} (with kubectl vault deny): read from the replica`,
  });

  const again = await kubectl(t, ['vault', 'approve', 'dar', 'deny-me', '-n', NS]);
  t.is(again.code, 1);
  t.is(again.stdout, '');
  t.regex(
    again.stderr,
    /^error: databaseaccessrequest plugin-demo\/deny-me was denied at \S+ \(This was denied by: .*\); a decision is permanent/,
  );
  t.notRegex(again.stderr, /\n\s+at /);
  const after = await getRequest(t, NS, 'deny-me');
  t.is(after.metadata.resourceVersion, denied.metadata.resourceVersion);

  const twice = await kubectl(t, ['vault', 'deny', 'dar', 'deny-me', '-n', NS]);
  t.is(twice.code, 1);
  t.regex(twice.stderr, /already denied/);
});

test('deny after approve is refused, pointing at revoke', async (t) => {
  await createRequest(t, 'approved-then-deny');
  await kubectlOk(t, ['vault', 'approve', 'dar', 'approved-then-deny', '-n', NS]);
  const before = await getRequest(t, NS, 'approved-then-deny');
  const r = await kubectl(t, ['vault', 'deny', 'dar', 'approved-then-deny', '-n', NS]);
  t.is(r.code, 1);
  t.regex(r.stderr, /was approved .*kubectl vault revoke databaseaccessrequest approved-then-deny -n plugin-demo/);
  t.is((await getRequest(t, NS, 'approved-then-deny')).metadata.resourceVersion, before.metadata.resourceVersion);
});

test("the API server enforces the resourceVersion precondition the plugin's status writes rely on", async (t) => {
  await createRequest(t, 'stale-write');
  const current = await getRequest(t, NS, 'stale-write');
  await kubectlOk(t, ['label', 'databaseaccessrequests.engine.kubevault.com', 'stale-write', '-n', NS, 'touched=yes']);
  const stale = await kubectl(t, [
    'patch',
    'databaseaccessrequests.engine.kubevault.com',
    'stale-write',
    '-n',
    NS,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({
      metadata: { resourceVersion: current.metadata.resourceVersion },
      status: {
        conditions: [
          {
            type: 'Approved',
            status: 'True',
            reason: 'KubectlApprove',
            message: 'stale',
            lastTransitionTime: '2026-01-01T00:00:00Z',
          },
        ],
      },
    }),
  ]);
  t.not(stale.code, 0);
  t.regex(stale.stderr, /Conflict|has been modified/);
  t.is((await getRequest(t, NS, 'stale-write')).status?.conditions, undefined);
});

test('a user without permission on databaseaccessrequests/status is refused with a readable 403, and nothing changes', async (t) => {
  await createRequest(t, 'alice-tries');
  const before = await getRequest(t, NS, 'alice-tries');
  for (const verb of ['approve', 'deny']) {
    const r = await asAlice(t, [verb, 'databaseaccessrequest', 'alice-tries', '-n', NS]);
    t.is(r.code, 1, verb);
    t.is(r.stdout, '');
    t.regex(
      r.stderr,
      /^error: you may not patch databaseaccessrequests\/status in namespace plugin-demo \(forbidden\)/,
      verb,
    );
    t.notRegex(r.stderr, /HTTP|\n\s+at |Token|Bearer/i);
  }
  const after = await getRequest(t, NS, 'alice-tries');
  t.is(after.metadata.resourceVersion, before.metadata.resourceVersion);
  t.is(after.status?.conditions, undefined);

  // Where she can't even read, the message says so.
  await createRequest(t, 'elsewhere', OTHER);
  const other = await asAlice(t, ['approve', 'dar', 'elsewhere', '-n', OTHER]);
  t.is(other.code, 1);
  t.regex(other.stderr, /^error: you may not get databaseaccessrequests in namespace plugin-other \(forbidden\)/);
});

test('approve -f takes the request from a manifest, as the KubeVault guide does', async (t) => {
  await createRequest(t, 'from-file');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plugin-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'request.yaml');
  fs.writeFileSync(file, requestManifest('from-file', NS));
  const r = await kubectl(t, ['vault', 'approve', '-f', file]);
  t.is(r.code, 0, r.stderr);
  t.is((await getRequest(t, NS, 'from-file')).status?.conditions?.[0]?.type, 'Approved');
});

test("get: the table in a namespace, with -A, with --pending; the context's namespace is the default", async (t) => {
  const ns = 'plugin-list';
  await kubectlOk(t, ['create', 'namespace', ns]);
  for (const name of ['list-approved', 'list-denied', 'list-pending']) await createRequest(t, name, ns);
  await createRequest(t, 'list-pending-other', OTHER);
  await kubectlOk(t, ['vault', 'approve', 'dar', 'list-approved', '-n', ns]);
  await kubectlOk(t, ['vault', 'deny', 'dar', 'list-denied', '-n', ns]);
  const expires = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  await patchStatus(t, ns, 'list-approved', {
    phase: 'Approved',
    lease: { expiresAt: expires },
    requester: { username: 'bob' },
  });

  const table = await kubectl(t, ['vault', 'get', 'databaseaccessrequests', '-n', ns]);
  t.is(table.code, 0, table.stderr);
  const rows = table.stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));
  t.deepEqual(rows[0], ['NAME', 'PHASE', 'ROLE', 'SUBJECTS', 'REQUESTER', 'AGE', 'EXPIRES']);
  t.deepEqual(
    rows.slice(1).map((r) => [r[0], r[1], r[2], r[3], r[4]]),
    [
      ['list-approved', 'Approved', 'psql-role', 'ServiceAccount/demo-sa', 'bob'],
      ['list-denied', 'Denied', 'psql-role', 'ServiceAccount/demo-sa', '<unknown>'],
      ['list-pending', 'WaitingForApproval', 'psql-role', 'ServiceAccount/demo-sa', '<unknown>'],
    ],
  );
  t.regex(rows[1]![6]!, /^in (59|60)m$/);
  t.is(rows[2]![6], '<none>');
  t.regex(rows[1]![5]!, /^\d+s$/);

  const pending = await kubectl(t, ['vault', 'get', 'dar', '-A', '--pending']);
  t.is(pending.code, 0, pending.stderr);
  const pendingRows = pending.stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));
  t.deepEqual(pendingRows[0]!.slice(0, 3), ['NAMESPACE', 'NAME', 'PHASE']);
  const names = pendingRows.slice(1).map((r) => `${r[0]}/${r[1]}`);
  t.true(names.includes(`${ns}/list-pending`));
  t.true(names.includes(`${OTHER}/list-pending-other`));
  t.false(names.some((n) => n.includes('list-approved') || n.includes('list-denied')));
  t.true(pendingRows.slice(1).every((r) => r[2] === 'WaitingForApproval'));

  // The namespace comes from the kubeconfig's context when -n isn't given (and KUBECONFIG is honoured).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plugin-kubeconfig-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const copy = path.join(dir, 'config');
  fs.copyFileSync(t.context.env.kubernetes.kubeconfig, copy);
  await kubectlOk(t, ['config', 'set-context', '--current', `--namespace=${ns}`, '--kubeconfig', copy]);
  const fromContext = await kubectl(t, ['vault', 'get', 'dar'], { env: { KUBECONFIG: copy } });
  t.is(fromContext.code, 0, fromContext.stderr);
  t.deepEqual(
    fromContext.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[0]),
    ['list-approved', 'list-denied', 'list-pending'],
  );

  const empty = await kubectl(t, ['vault', 'get', 'dar', '-n', 'default']);
  t.is(empty.code, 0);
  t.is(empty.stdout, '');
  t.is(empty.stderr, 'No resources found in default namespace.\n');

  const noSuchContext = await kubectl(t, ['vault', 'get', 'dar', '--context', 'nope']);
  t.is(noSuchContext.code, 1);
  t.regex(noSuchContext.stderr, /^error: context "nope" is not in KUBECONFIG=/);
});

test("credentials prints the Secret the status names, as env, json and uri; alice, who can't read it, is refused", async (t) => {
  await createRequest(t, 'with-creds');
  await kubectlOk(t, ['vault', 'approve', 'dar', 'with-creds', '-n', NS]);
  const waiting = await kubectl(t, ['vault', 'credentials', 'dar', 'with-creds', '-n', NS]);
  t.is(waiting.code, 1);
  t.regex(waiting.stderr, /approved, but no credentials have been issued yet/);

  const password = "pa ss'word$";
  await kubectlOk(t, [
    'create',
    'secret',
    'generic',
    'with-creds-cred',
    '-n',
    NS,
    '--from-literal=username=v-kube-reader-1',
    `--from-literal=password=${password}`,
    '--from-literal=host=127.0.0.1',
    `--from-literal=port=${t.context.env.postgres.port}`,
    '--from-literal=dbname=postgres',
  ]);
  await patchStatus(t, NS, 'with-creds', { phase: 'Approved', secret: { name: 'with-creds-cred' } });

  const env = await kubectl(t, ['vault', 'credentials', 'databaseaccessrequest', 'with-creds', '-n', NS]);
  t.is(env.code, 0, env.stderr);
  t.is(
    env.stdout,
    [
      'export PGHOST=127.0.0.1',
      `export PGPORT=${t.context.env.postgres.port}`,
      'export PGDATABASE=postgres',
      'export PGUSER=v-kube-reader-1',
      "export PGPASSWORD='pa ss'\\''word$'",
      '',
    ].join('\n'),
  );
  // The env form is what a shell reads back.
  const sourced = await new Promise<string>((resolve, reject) =>
    execFile('sh', ['-c', `${env.stdout}\nprintf %s "$PGPASSWORD"`], (err, out) => (err ? reject(err) : resolve(out))),
  );
  t.is(sourced, password);

  const json = await kubectl(t, ['vault', 'credentials', 'dar', 'with-creds', '-n', NS, '-o', 'json']);
  t.is(json.code, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), {
    dbname: 'postgres',
    host: '127.0.0.1',
    password,
    port: String(t.context.env.postgres.port),
    username: 'v-kube-reader-1',
  });

  const uri = await kubectl(t, ['vault', 'credentials', 'dar', 'with-creds', '-n', NS, '--output=uri']);
  t.is(uri.code, 0, uri.stderr);
  t.is(
    uri.stdout,
    `postgresql://v-kube-reader-1:${encodeURIComponent(password)}@127.0.0.1:${t.context.env.postgres.port}/postgres\n`,
  );
  t.is(decodeURIComponent(new URL(uri.stdout.trim()).password), password);

  const alice = await asAlice(t, ['credentials', 'dar', 'with-creds', '-n', NS]);
  t.is(alice.code, 1);
  t.is(alice.stdout, '');
  t.regex(alice.stderr, /^error: you may not get secrets in namespace plugin-demo \(forbidden\)/);
  t.false(alice.stderr.includes(password));
});

test('revoke sets the revoke-now annotation to an RFC 3339 time; the operator does the rest', async (t) => {
  await createRequest(t, 'revoke-me');
  const notApproved = await kubectl(t, ['vault', 'revoke', 'databaseaccessrequest', 'revoke-me', '-n', NS]);
  t.is(notApproved.code, 1);
  t.regex(notApproved.stderr, /never approved/);
  t.is((await getRequest(t, NS, 'revoke-me')).metadata.annotations?.[Annotations.revokeNow], undefined);

  await kubectlOk(t, ['vault', 'approve', 'dar', 'revoke-me', '-n', NS]);
  const startedAt = Date.now();
  const r = await kubectl(t, ['vault', 'revoke', 'databaseaccessrequest', 'revoke-me', '-n', NS]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${QUALIFIED}/revoke-me revocation requested\n`);
  const value = (await getRequest(t, NS, 'revoke-me')).metadata.annotations?.[Annotations.revokeNow];
  t.regex(value ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  t.true(Math.abs(Date.parse(value!) - startedAt) < 60_000);

  const twice = await kubectl(t, ['vault', 'revoke', 'dar', 'revoke-me', '-n', NS]);
  t.is(twice.code, 1);
  t.regex(twice.stderr, /already requested/);
});

test('rotate sets the rotate-now annotation on an approved request', async (t) => {
  await createRequest(t, 'rotate-me');
  await kubectlOk(t, ['vault', 'approve', 'dar', 'rotate-me', '-n', NS]);
  const r = await kubectl(t, ['vault', 'rotate', 'dar', 'rotate-me', '-n', NS]);
  t.is(r.code, 0, r.stderr);
  t.regex(
    (await getRequest(t, NS, 'rotate-me')).metadata.annotations?.[Annotations.rotateNow] ?? '',
    /^\d{4}-\d\d-\d\dT/,
  );
});

/** A port nothing listens on (taken from the kernel, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('an unreachable API server is one readable line, exit 1', async (t) => {
  const port = await closedPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plugin-unreachable-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config');
  fs.writeFileSync(
    file,
    `apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- name: x\n  cluster: {server: "https://127.0.0.1:${port}"}\n` +
      'users:\n- name: x\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\n',
  );
  const r = await kubectl(t, ['vault', 'get', 'dar', '--kubeconfig', file]);
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    new RegExp(`^error: cannot reach the Kubernetes API server: https://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\n$`),
  );
});

test('report lists the requests that gave access, with who approved them, and reads no Secret', async (t) => {
  const ns = 'plugin-report';
  await kubectlOk(t, ['create', 'namespace', ns]);
  for (const name of ['report-active', 'report-revoked', 'report-pending']) await createRequest(t, name, ns);
  await kubectlOk(t, ['vault', 'approve', 'dar', 'report-active', 'report-revoked', '-n', ns]);
  const issuedAt = new Date(Date.now() - 600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const revokedAt = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const expiresAt = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  // No lease id on the live one: the file's lease audit would look for it in Vault (no operator issues here).
  await patchStatus(t, ns, 'report-active', { phase: 'Approved', lease: { issuedAt, expiresAt } });
  const revoked = await getRequest(t, ns, 'report-revoked');
  await patchStatus(t, ns, 'report-revoked', {
    phase: 'Revoked',
    lease: { id: 'database/creds/ro/b', issuedAt, expiresAt },
    conditions: [
      ...(revoked.status?.conditions ?? []),
      { type: 'Revoked', status: 'True', reason: 'RevokedOnDemand', message: 'revoked', lastTransitionTime: revokedAt },
    ],
  });
  // Alice may list requests here but not read Secrets: the report needs nothing more.
  await kubectlOk(t, ['create', 'rolebinding', 'alice-dar-reader', '-n', ns, '--role=dar-reader', '--user=alice']);
  await kubectlOk(t, [
    'create',
    'role',
    'dar-reader',
    '-n',
    ns,
    '--verb=get,list,watch',
    '--resource=databaseaccessrequests.engine.kubevault.com',
  ]);
  const r = await eventually(t, 'alice to run the report', async () => {
    const run = await asAlice(t, ['report', '-n', ns, '-o', 'json']);
    return run.code === 0 ? run : undefined;
  });
  const items = (JSON.parse(r.stdout) as { items: Record<string, unknown>[] }).items;
  t.deepEqual(
    items.map((i) => [i.request, i.approvedBy, i.from, i.until, i.ended]),
    [
      ['report-active', [adminName], issuedAt, undefined, 'active'],
      ['report-revoked', [adminName], issuedAt, revokedAt, 'Revoked'],
    ],
  );
  const table = await kubectlOk(t, ['vault', 'report', '-n', ns]);
  t.regex(table, /^REQUEST +ROLE +SUBJECTS +REQUESTER +APPROVED-BY +BREAK-GLASS +FROM +UNTIL +ENDED\n/);
  t.regex(table, /\nreport-active +PostgresRole\/psql-role +ServiceAccount\/demo-sa .* active +-\n/);
});
