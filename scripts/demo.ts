// npm run demo [-- --engine postgres|mysql|mariadb|redis] [--keep]
//
// KubeVault's PostgreSQL guide (or its MySQL, MariaDB or Redis guide: --engine; what changes per engine is in
// demo-engines.ts), end to end, on this machine: a real Kubernetes control plane, Vault and the database on
// 127.0.0.1 (scripts/stack/), Leasehold's operator as its own process, the guide's manifests (addresses aside),
// approval with the `kubectl vault` plugin, the credential proved with the engine's own client and then revoked.
// Each step prints one line with the time since start; a failed step ends the run with exit code 1 and says
// which step it was. `--keep` leaves everything running and says how to reach it; Ctrl-C tears everything down.
//
// package.json runs this as `node --import tsx`, not through the tsx CLI: the CLI relays Ctrl-C to its child and
// SIGKILLs it if the child doesn't acknowledge within ~60 ms (as when it is inside a synchronous call such as
// initdb), which would leave the stack's processes running.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ENGINE_DEMOS, ENGINE_NAMES, samplePath, type EngineDemo, type EngineName } from './demo-engines.ts';
import { cacheRoot, pinnedVersion, resolveBinaries } from './stack/binaries.ts';
import { startEnv, type Env } from './stack/env.ts';
import {
  REPO_ROOT,
  configureVaultForOperator,
  guideManifests,
  installCrdsAsync,
  kubectlAsync,
  vaultRequest,
  type KubectlRun,
} from './stack/leasehold-setup.ts';
import { startOperator, type OperatorProcess } from './stack/operator.ts';

const USAGE = `usage: npm run demo [-- --engine postgres|mysql|mariadb|redis] [--keep]

Runs KubeVault's PostgreSQL guide (or, with --engine, its MySQL, MariaDB or Redis guide) against Leasehold on a
local stack (Kubernetes, Vault, the database on 127.0.0.1): request, approve with \`kubectl vault\`, log in with
the issued credential using the engine's own client, revoke.

  --engine NAME  the database: postgres (default), mysql, mariadb (both on the stack's MariaDB), redis
  --keep         leave everything running afterwards and print how to reach it; Ctrl-C stops it
`;

const NS = 'demo';
/** The guide's Vault AppBinding logs in with the kubernetes auth role it names (parameters.vaultRole). */
const AUTH_ROLE = 'vault-policy-controller';
/** The person who approves: a non-admin user of the stack, given only the leasehold-approver ClusterRole. */
const APPROVER = 'alice';

// ---- output -------------------------------------------------------------------------------------------------------

const startedAt = Date.now();
const stamp = () => `[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s]`;
const say = (mark: string, text: string) => console.log(`${stamp()} ${mark} ${text}`);
/** Indented lines under a step (command output, details). */
const detail = (text: string) => {
  for (const l of text.replace(/\n+$/, '').split('\n')) console.log(`           ${l}`);
};

class StepFailed extends Error {
  constructor(
    readonly step: string,
    readonly error: unknown,
  ) {
    super(`${step}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Runs one step; its function returns the ✓ line, and maybe lines to show under it. A throw becomes a
 * StepFailed naming the step. */
async function step(name: string, fn: () => Promise<string | [line: string, details: string]>): Promise<void> {
  let done: string | [string, string];
  try {
    done = await fn();
  } catch (err) {
    throw new StepFailed(name, err);
  }
  const [line, details] = typeof done === 'string' ? [done, undefined] : done;
  say('✓', line);
  if (details) detail(details);
}

// ---- state and teardown ---------------------------------------------------------------------------------------

let env: Env | undefined;
let operator: OperatorProcess | undefined;
let interrupted = false;
let tearingDown: Promise<void> | undefined;

function teardown(): Promise<void> {
  tearingDown ??= (async () => {
    await operator?.stop().catch(() => undefined);
    await env?.stop().catch(() => undefined);
  })();
  return tearingDown;
}

function onSignal(sig: NodeJS.Signals): void {
  const code = sig === 'SIGINT' ? 130 : 143;
  if (interrupted) {
    // A second Ctrl-C: the stack's exit hook still kills every process it started and removes its directory.
    console.log(`\n${sig} again: exiting now`);
    process.exit(code);
  }
  interrupted = true;
  console.log(`\n${stamp()} ${sig}: stopping the operator and the stack…`);
  void teardown().then(() => {
    say('✓', 'stopped; nothing left running');
    process.exit(code);
  });
}

// ---- helpers ------------------------------------------------------------------------------------------------------

function need(e: Env | undefined): Env {
  if (!e) throw new Error('the stack is not running');
  return e;
}

async function kc(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<KubectlRun> {
  const r = await kubectlAsync(need(env), args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

type Cr = { status?: Record<string, any> } & Record<string, unknown>; // eslint-disable-line @typescript-eslint/no-explicit-any -- status read for display

async function getCr(plural: string, name: string): Promise<Cr | undefined> {
  try {
    return (await need(env)
      .kubeConfig.makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({
        group: plural === 'appbindings' ? 'appcatalog.appscode.com' : 'engine.kubevault.com',
        version: 'v1alpha1',
        namespace: NS,
        plural,
        name,
      })) as Cr;
  } catch {
    return undefined;
  }
}

/** Polls until `probe` returns something truthy; fails with `what` (and the last thing seen) after `timeoutMs`. */
async function until<V>(
  what: string,
  probe: () => Promise<V | undefined | false>,
  timeoutMs: number,
  seen?: () => Promise<string>,
): Promise<V> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v) return v;
    if (interrupted) throw new Error('interrupted');
    if (Date.now() > deadline)
      throw new Error(
        `no ${what} after ${timeoutMs / 1000}s${seen ? ` (${await seen().catch(() => 'nothing')})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The last status condition that isn't True, to say why something is stuck. */
function statusSummary(o: Cr | undefined): string {
  if (!o) return 'the object does not exist';
  const conditions = (o.status?.conditions ?? []) as Array<{
    type: string;
    status: string;
    reason?: string;
    message?: string;
  }>;
  const bad =
    conditions.find((c) => c.status === 'False' && c.type !== 'Failed') ??
    conditions.find((c) => c.type === 'Failed' && c.status === 'True');
  return `phase ${o.status?.phase ?? '(none)'}${bad ? `, ${bad.type}=${bad.status} ${bad.reason ?? ''}: ${bad.message ?? ''}` : ''}`;
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Copies the stack's logs (the operator's among them) out of its directory before teardown deletes it. */
function keepLogs(): string | undefined {
  if (!env) return undefined;
  const from = path.join(env.dir, 'logs');
  if (!fs.existsSync(from)) return undefined;
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-demo-logs-'));
  fs.cpSync(from, to, { recursive: true });
  return to;
}

// ---- the demo ---------------------------------------------------------------------------------------------------

/**
 * The cache directory a build of ours is writing, while it runs. The stack's builder holds `<dir>.lock` during a
 * build and removes it in a `finally`, which an exit on Ctrl-C skips; a lock left behind would make the next run
 * wait for it (up to 90 minutes) before building. Only the lock's holder prints "building … into DIR".
 */
let buildingInto: string | undefined;
process.on('exit', () => {
  if (buildingInto) fs.rmSync(`${buildingInto}.lock`, { recursive: true, force: true });
});

async function demo(engine: EngineDemo, keep: boolean): Promise<void> {
  const REQUEST = engine.request;
  let coldNoted = false;
  await step('start the local stack', async () => {
    env = await startEnv({
      databases: engine.databases,
      log: (l) => {
        if (l.startsWith('stack ready')) return;
        const into = /^building .* into (\S+) \(/.exec(l);
        if (into) buildingInto = into[1];
        if (l.startsWith('built ')) buildingInto = undefined;
        if (l.startsWith('building') && !coldNoted) {
          coldNoted = true;
          say(
            '…',
            `cold machine: building the stack's binaries from pinned Go modules (once; cached in ${cacheRoot()}).`,
          );
          detail('This usually takes about 15 minutes on 2 cores (Kubernetes, then Vault); progress every minute:');
        }
        detail(l);
      },
    });
    const seeded = await engine.seed(env);
    const vault = env.vault.flavor === 'vault' ? `vault ${pinnedVersion('vault')}` : 'openbao';
    return `stack up (kubernetes ${pinnedVersion('k8s')}, ${vault}, ${seeded}) in ${env.dir}`;
  });

  await step("install Leasehold and the guide's AppBindings", async () => {
    const e = need(env);
    await installCrdsAsync(e);
    await kc(['create', 'namespace', 'leasehold-system']);
    await kc(['apply', '-f', path.join(REPO_ROOT, 'manifests/rbac/people.yaml')]);
    await kc(['apply', '-f', '-'], { input: guideManifests(e) });
    const app = engine.appManifest(e);
    if (app) await kc(['apply', '-f', '-'], { input: app });
    await kc(['-n', NS, 'create', 'serviceaccount', 'vault']);
    await kc(['-n', NS, 'create', 'serviceaccount', 'demo-sa']);
    await kc([
      '-n',
      NS,
      'create',
      'rolebinding',
      `${APPROVER}-approves`,
      '--clusterrole=leasehold-approver',
      `--user=${APPROVER}`,
    ]);
    return `CRDs and ClusterRoles installed; namespace ${NS}, AppBindings vault and ${engine.appBinding} (addresses pointed at the stack); ${APPROVER} may approve in ${NS}`;
  });

  await step('configure Vault for the operator', async () => {
    await configureVaultForOperator(need(env), {
      loginTtl: '1h',
      loginMaxTtl: '24h',
      serviceAccount: { namespace: NS, name: 'vault' },
      authRole: AUTH_ROLE,
    });
    return `Vault: policies leasehold-operator and leasehold-issuer, token role leasehold-issuer, kubernetes auth role ${AUTH_ROLE} (ServiceAccount ${NS}/vault)`;
  });

  await step('start the operator', async () => {
    operator = await startOperator(need(env), [], 'operator', { logLevel: 'debug', stopGraceMs: 15_000 });
    return `operator running (pid ${operator.pid}; log ${operator.logFile})`;
  });

  await step(`SecretEngine ${engine.secretEngine}`, async () => {
    await kc(['apply', '-f', samplePath(engine.samples.engine)]);
    const se = await until(
      'SecretEngine phase Success',
      async () => {
        const o = await getCr('secretengines', engine.secretEngine);
        return o?.status?.phase === 'Success' ? o : undefined;
      },
      60_000,
      async () => statusSummary(await getCr('secretengines', engine.secretEngine)),
    );
    return `SecretEngine ${engine.secretEngine}: Success (database engine at ${se.status!.path}/, connection k8s.-.${NS}.${engine.appBinding})`;
  });

  await step(`AppBinding ${engine.appBinding} is Ready`, async () => {
    const ab = await until(
      `AppBinding ${engine.appBinding} Ready`,
      async () => {
        const o = await getCr('appbindings', engine.appBinding);
        const ready = ((o?.status?.conditions ?? []) as Array<{ type: string; status: string; message?: string }>).find(
          (c) => c.type === 'Ready',
        );
        return ready?.status === 'True' ? ready : undefined;
      },
      60_000,
      async () => statusSummary(await getCr('appbindings', engine.appBinding)),
    );
    return `AppBinding ${engine.appBinding}: Ready (${ab.message})`;
  });

  let vaultRole = '';
  await step(`${engine.roleKind} ${engine.role}`, async () => {
    await kc(['apply', '-f', samplePath(engine.samples.role)]);
    const role = await until(
      `${engine.roleKind} phase Success`,
      async () => {
        const o = await getCr(engine.rolePlural, engine.role);
        return o?.status?.phase === 'Success' ? o : undefined;
      },
      60_000,
      async () => statusSummary(await getCr(engine.rolePlural, engine.role)),
    );
    vaultRole = String(role.status!.vaultRole);
    return `${engine.roleKind} ${engine.role}: Success (Vault role ${vaultRole})`;
  });

  await step(`DatabaseAccessRequest ${REQUEST} waits for approval`, async () => {
    await kc(['apply', '-f', samplePath(engine.samples.request)]);
    const waiting = await until(
      'phase WaitingForApproval',
      async () => {
        const o = await getCr('databaseaccessrequests', REQUEST);
        return o?.status?.phase === 'WaitingForApproval' ? o : undefined;
      },
      30_000,
      async () => statusSummary(await getCr('databaseaccessrequests', REQUEST)),
    );
    if (waiting.status?.lease || waiting.status?.secret) throw new Error('something was issued before approval');
    const table = await kc(['get', 'databaseaccessrequest', '-n', NS]);
    return [
      `request ${REQUEST} is waiting for approval; nothing is issued yet:`,
      `$ kubectl get databaseaccessrequest -n ${NS}\n${table.stdout}`,
    ];
  });

  let approvedAt = 0;
  await step('approve with kubectl vault', async () => {
    const e = need(env);
    const args = ['vault', 'approve', 'databaseaccessrequest', REQUEST, '-n', NS];
    const r = await kubectlAsync(e, args, { kubeconfig: e.kubernetes.users[APPROVER].kubeconfig });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    approvedAt = Date.now();
    return [
      `approved by ${APPROVER} (ClusterRole leasehold-approver) with the plugin:`,
      `$ kubectl vault approve databaseaccessrequest ${REQUEST} -n ${NS}\n${(r.stdout + r.stderr).trim()}`,
    ];
  });

  const issued = { username: '', password: '' };
  let leaseId = '';
  await step('credential Secret', async () => {
    const e = need(env);
    const dar = await until(
      "lease and Secret recorded in the request's status",
      async () => {
        const o = await getCr('databaseaccessrequests', REQUEST);
        return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
      },
      60_000,
      async () => statusSummary(await getCr('databaseaccessrequests', REQUEST)),
    );
    const st = dar.status!;
    const secret = await e.kubeConfig
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: NS, name: st.secret.name });
    issued.username = Buffer.from(secret.data?.username ?? '', 'base64').toString();
    issued.password = Buffer.from(secret.data?.password ?? '', 'base64').toString();
    if (!issued.username || !issued.password)
      throw new Error(`Secret ${NS}/${st.secret.name} holds no username/password`);
    leaseId = String(st.lease.id);
    const available = ((st.conditions ?? []) as Array<{ type: string; message?: string }>).find(
      (c) => c.type === 'Available',
    );
    const owner = available?.message?.includes('login token')
      ? "the operator's login token (no issuer token role: dies with the login)"
      : "the issuer token (orphan, periodic: outlives the operator's login)";
    return [
      `credential issued ${((Date.now() - approvedAt) / 1000).toFixed(1)}s after approval into Secret ${NS}/${st.secret.name} (readable by ${NS}/demo-sa):`,
      [
        `Vault role   ${vaultRole}`,
        `lease id     ${leaseId}`,
        `expires      ${st.lease.expiresAt} (lease ${st.lease.duration}, renewed at about 2/3 of it)`,
        `lease owner  ${owner}`,
        `username     ${issued.username}   (the password stays in the Secret)`,
      ].join('\n'),
    ];
  });

  await step('log in as the issued user', () => engine.use(need(env), issued));

  await step('delete the request', async () => {
    await kc(['delete', 'databaseaccessrequest', REQUEST, '-n', NS, '--timeout=60s']);
    const refused = await engine.refusal(need(env), issued);
    if (!refused) throw new Error(`${issued.username} can still log in after the request was deleted`);
    const lookup = await vaultRequest(
      need(env),
      'PUT',
      'sys/leases/lookup',
      { lease_id: leaseId },
      { allowError: true },
    );
    if (lookup.status < 400) throw new Error(`Vault still knows lease ${leaseId}`);
    return [
      `request ${REQUEST} deleted: the operator revoked lease ${leaseId.split('/').pop()} in Vault; the same login now fails:`,
      `$ kubectl delete databaseaccessrequest ${REQUEST} -n ${NS}\nlogin as ${issued.username}  →  ${refused}`,
    ];
  });

  if (!keep) {
    await step('stop everything', async () => {
      await teardown();
      return `stopped the operator and the stack (demo took ${((Date.now() - startedAt) / 1000).toFixed(1)}s)`;
    });
    return;
  }
  // Already found (or built) by startEnv: this only looks them up again, for the vault command line below.
  const vaultBinary = (await resolveBinaries(() => undefined)).vaultServer;
  printKeepHelp(need(env), engine, vaultBinary);
  setInterval(() => undefined, 1 << 30);
}

function printKeepHelp(e: Env, engine: EngineDemo, vaultBinary: string): void {
  const bin = path.join(REPO_ROOT, 'bin');
  console.log(`
Everything is still running (--keep). In another shell:

  export KUBECONFIG=${e.kubernetes.kubeconfig}
  export PATH="${bin}:${path.join(REPO_ROOT, 'node_modules/.bin')}:$PATH"     # kubectl vault
  kubectl get appbindings,secretengines,${engine.rolePlural},databaseaccessrequests -n ${NS}

  # request again, approve as ${APPROVER} (leasehold-approver in ${NS}), read the credential
  kubectl apply -f ${samplePath(engine.samples.request)}
  kubectl vault approve databaseaccessrequest ${engine.request} -n ${NS} --kubeconfig ${e.kubernetes.users[APPROVER].kubeconfig}
  kubectl vault get databaseaccessrequests -n ${NS}
  ${engine.keepHelp(e)}

  # Vault (root token in ${path.join(e.dir, 'vault/init.json')}, key rootToken)
  export VAULT_ADDR=${e.vault.addr} VAULT_CACERT=${e.vault.caFile}
  export VAULT_TOKEN=$(node -p 'require("${path.join(e.dir, 'vault/init.json')}").rootToken')
  ${vaultBinary} secrets list

  operator log: ${operator?.logFile ?? '(not running)'}
  stack logs:   ${path.join(e.dir, 'logs')}

Press Ctrl-C to stop everything.`);
}

// ---- main -------------------------------------------------------------------------------------------------------

function parseArgs(argv: string[]): { keep: boolean; engine: EngineName } {
  let keep = false;
  let engine: EngineName = 'postgres';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = a.startsWith('--engine=')
      ? a.slice('--engine='.length)
      : a === '--engine'
        ? (argv[++i] ?? '')
        : undefined;
    if (value !== undefined) {
      if (!(ENGINE_NAMES as readonly string[]).includes(value)) {
        process.stderr.write(`demo: --engine takes one of ${ENGINE_NAMES.join(', ')}, not "${value}"\n${USAGE}`);
        process.exit(2);
      }
      engine = value as EngineName;
    } else if (a === '--keep') keep = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else {
      process.stderr.write(`demo: unknown argument ${a}\n${USAGE}`);
      process.exit(2);
    }
  }
  return { keep, engine };
}

const { keep, engine: engineName } = parseArgs(process.argv.slice(2));
const engine = ENGINE_DEMOS[engineName];
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));
say('▶', `Leasehold demo: KubeVault's ${engine.title} guide on a local stack${keep ? ' (--keep)' : ''}`);
try {
  await demo(engine, keep);
} catch (err) {
  // Ctrl-C reaches the whole foreground process group: a kubectl or openssl child may die of it (failing the
  // step) before our own handler runs. Give the handler its turn before calling this a failure.
  await new Promise((r) => setTimeout(r, 200));
  if (interrupted) {
    await teardown();
  } else {
    const failed = err instanceof StepFailed ? err : new StepFailed('demo', err);
    say('✗', `failed: ${failed.step}`);
    detail(errorText(failed.error));
    if (operator) detail(`operator log, last lines:\n${operator.tail(15)}`);
    const kept = keepLogs();
    if (kept) {
      const operatorLog = fs.readdirSync(kept).find((f) => f.startsWith('operator-'));
      detail(`logs kept in ${kept}${operatorLog ? ` (operator: ${path.join(kept, operatorLog)})` : ''}`);
    }
    await teardown();
    console.error(`demo failed at step "${failed.step}"`);
    process.exitCode = 1;
  }
}
