// npm run bench [-- --quick] [--scenario NAME[,NAME]] [--concurrency 1,4,16] [--cpu-prof]
//
// Leasehold's benchmarks against the local stack (scripts/stack/: kube-apiserver, etcd, Vault, PostgreSQL on
// 127.0.0.1) with the operator as its own process, each measured against raw Vault in the same run where the
// issue asks for a ratio. Prints a table per scenario and writes bench/results/<timestamp>.json (machine,
// versions, parameters, raw samples, summaries, targets) and an SVG plot next to it. See bench/README.md.
//
// Scenarios run in a fixed order, because later ones reuse the requests earlier ones made ready: latency,
// burst, idle, restart, memory (its largest point is taken by restart), renewal (last: its short leases keep
// renewing).
import fs from 'node:fs';
import YAML from 'yaml';
import os from 'node:os';
import path from 'node:path';
import { startEnv, type Env } from '../stack/env.ts';
import { REPO_ROOT } from '../stack/leasehold-setup.ts';
import { registerTempDir, unregisterTempDir } from '../stack/process.ts';
import { buildOperator, type OperatorRuntime } from './operator.ts';
import { Bench, type Versions } from './harness.ts';
import { renderTable } from './format.ts';
import { plotFile } from './plot.ts';
import { burst } from './scenarios/burst.ts';
import { idle } from './scenarios/idle.ts';
import { latency } from './scenarios/latency.ts';
import { measureMemory, memory } from './scenarios/memory.ts';
import { renewal } from './scenarios/renewal.ts';
import { restart } from './scenarios/restart.ts';
import { peerEso } from './scenarios/peer-eso.ts';
import {
  FULL,
  QUICK,
  type MemoryPoint,
  type ScenarioContext,
  type ScenarioResult,
  type Sizes,
  type Target,
} from './scenarios/types.ts';

const SCENARIOS = ['latency', 'burst', 'idle', 'restart', 'memory', 'renewal'] as const;
type ScenarioName = (typeof SCENARIOS)[number];
/** Peer controllers measured against Leasehold in the same run (after memory, before renewal). */
const PEERS = ['eso'] as const;
type PeerName = (typeof PEERS)[number];
const PEER_RUNNERS: Record<PeerName, (ctx: ScenarioContext) => Promise<ScenarioResult>> = { eso: peerEso };
const RUNNERS: Record<ScenarioName, (ctx: ScenarioContext) => Promise<ScenarioResult>> = {
  latency,
  burst,
  idle,
  memory,
  restart,
  renewal,
};

const USAGE = `usage: npm run bench -- [--quick] [--scenario NAME[,NAME…]] [--peer eso] [--concurrency LIST] [--cpu-prof] [--operator compiled|tsx]

Runs Leasehold's benchmarks on a local stack and writes bench/results/<timestamp>.json and .svg.

  --quick             small sizes (under two minutes with a warm binary cache)
  --scenario NAMES    only these, comma-separated or repeated: ${SCENARIOS.join(', ')}
  --peer NAMES        measure a peer controller side by side: ${PEERS.join(', ')} (External Secrets Operator's
                      VaultDynamicSecret generator; its binary is built on first use). Alone, only the peer
                      comparison runs; with --scenario, those too. The full run (no --scenario, no --peer) has it.
  --concurrency LIST  operator --concurrency values for the burst scenario (default 1,4,16)
  --cpu-prof          write a V8 CPU profile of each operator process to bench/results/profiles/<timestamp>/
  --operator RUNTIME  compiled (default: tsc output on node@24, as the image runs it), tsx (as the tests run it),
                      or the path of a built entry point (e.g. dist/cmd/operator/main.js) to benchmark that build
  --log-level LEVEL   the operator's --log-level (default info)
  --node-options STR  NODE_OPTIONS for the operator process (default: the Deployment's, from
                      manifests/operator/deployment.yaml; "" for none)
  --set NAME=VALUE    override one size, e.g. --set restart=2000 or --set memoryPoints=0,2000 (names as in the JSON's parameters)
  --heap-snapshot     write a V8 heap snapshot of the operator at each memory measurement (next to the CPU profiles)
`;

interface Args {
  quick: boolean;
  scenarios: ScenarioName[];
  peers: PeerName[];
  concurrency?: number[];
  cpuProf: boolean;
  runtime: OperatorRuntime;
  /** A prebuilt entry point (--operator PATH). */
  operatorMain?: string;
  logLevel: string;
  overrides: Partial<Sizes>;
  heapSnapshot: boolean;
  nodeOptions?: string;
}

/** NODE_OPTIONS as the Deployment sets them: the benchmark measures the operator as it is deployed. */
function deploymentNodeOptions(): string {
  const file = path.join(REPO_ROOT, 'manifests/operator/deployment.yaml');
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
    const d = doc.toJS() as {
      kind?: string;
      spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } };
    };
    if (d?.kind !== 'Deployment') continue;
    for (const c of d.spec?.template?.spec?.containers ?? []) {
      const v = c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value;
      if (v !== undefined) return v;
    }
  }
  return '';
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: false,
    scenarios: [],
    peers: [],
    cpuProf: false,
    runtime: 'compiled',
    logLevel: 'info',
    overrides: {},
    heapSnapshot: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) usageError(`${flag} needs a value`);
      return v!;
    };
    switch (flag) {
      case '--quick':
        args.quick = true;
        break;
      case '--cpu-prof':
        args.cpuProf = true;
        break;
      case '--scenario':
      case '--scenarios':
        for (const s of value()
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)) {
          if (!(SCENARIOS as readonly string[]).includes(s))
            usageError(`unknown scenario ${s} (one of ${SCENARIOS.join(', ')})`);
          args.scenarios.push(s as ScenarioName);
        }
        break;
      case '--peer':
      case '--peers':
        for (const p of value()
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)) {
          if (!(PEERS as readonly string[]).includes(p)) usageError(`unknown peer ${p} (one of ${PEERS.join(', ')})`);
          args.peers.push(p as PeerName);
        }
        break;
      case '--concurrency': {
        const list = value()
          .split(',')
          .map((x) => Number(x.trim()));
        if (list.length === 0 || list.some((c) => !Number.isInteger(c) || c < 1 || c > 1000))
          usageError('--concurrency takes whole numbers from 1 to 1000, e.g. 1,4,16');
        args.concurrency = list;
        break;
      }
      case '--operator': {
        const v = value();
        if (v === 'compiled' || v === 'tsx') {
          args.runtime = v;
        } else {
          if (!fs.existsSync(v)) usageError(`--operator: ${v} is neither compiled, tsx nor an existing file`);
          args.operatorMain = path.resolve(v);
        }
        break;
      }
      case '--log-level': {
        args.logLevel = value();
        break;
      }
      case '--heap-snapshot':
        args.heapSnapshot = true;
        break;
      case '--node-options':
        args.nodeOptions = value();
        break;
      case '--set': {
        const [k, v] = value().split('=', 2) as [string, string | undefined];
        if (!(k in FULL) || v === undefined)
          usageError(`--set takes NAME=VALUE with NAME one of ${Object.keys(FULL).join(', ')}`);
        const nums = v!.split(',').map(Number);
        if (nums.some((x) => !Number.isFinite(x) || x < 0))
          usageError(`--set ${k}: ${v} is not a number (or a comma-separated list)`);
        (args.overrides as Record<string, unknown>)[k] = Array.isArray(FULL[k as keyof Sizes]) ? nums : nums[0];
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        usageError(`unknown argument ${argv[i]}`);
    }
  }
  if (args.scenarios.length === 0 && args.peers.length === 0) {
    args.scenarios = [...SCENARIOS];
    args.peers = [...PEERS];
  }
  return args;
}

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

// ---- output ------------------------------------------------------------------------------------------------------

const startedAtMs = Date.now();
const stamp = () => `[${((Date.now() - startedAtMs) / 1000).toFixed(1).padStart(6)}s]`;
const log = (line: string) => console.log(`${stamp()} ${line}`);

function printResult(r: ScenarioResult): void {
  for (const t of r.tables) console.log(`\n${renderTable(t.title, t.columns, t.rows)}`);
  for (const t of r.targets)
    console.log(`  ${t.met === true ? '✓' : t.met === false ? '✗' : '·'} ${t.what}: ${t.value} (goal ${t.goal})`);
  for (const n of r.notes) console.log(`  note: ${n}`);
  console.log('');
}

// ---- main ---------------------------------------------------------------------------------------------------------

let env: Env | undefined;
let bench: Bench | undefined;
let buildDir: string | undefined;
/** Where the operator logs are copied before the stack's directory goes. */
let logsDir: string | undefined;
let interrupted = false;
let tearingDown: Promise<void> | undefined;

function teardown(): Promise<void> {
  tearingDown ??= (async () => {
    await bench?.close().catch(() => undefined);
    if (env && logsDir) {
      try {
        const from = path.join(env.dir, 'logs');
        fs.mkdirSync(logsDir, { recursive: true });
        for (const f of fs.readdirSync(from))
          if (f.startsWith('operator-')) fs.copyFileSync(path.join(from, f), path.join(logsDir, f));
      } catch {
        // best effort
      }
    }
    await env?.stop().catch(() => undefined);
    if (buildDir) {
      fs.rmSync(buildDir, { recursive: true, force: true });
      unregisterTempDir(buildDir);
    }
  })();
  return tearingDown;
}

function onSignal(sig: NodeJS.Signals): void {
  if (interrupted) process.exit(130);
  interrupted = true;
  console.log(`\n${stamp()} ${sig}: stopping the operator and the stack…`);
  void teardown().then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const nodeOptions = args.nodeOptions ?? deploymentNodeOptions();
  const sizes: Sizes = {
    ...(args.quick ? QUICK : FULL),
    ...(args.concurrency ? { concurrency: args.concurrency } : {}),
    ...args.overrides,
  };
  const timestamp = new Date(startedAtMs).toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(REPO_ROOT, 'bench/results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const cpuProfileDir = args.cpuProf || args.heapSnapshot ? path.join(resultsDir, 'profiles', timestamp) : undefined;
  if (cpuProfileDir) fs.mkdirSync(cpuProfileDir, { recursive: true });
  const loadavgStart = os.loadavg();
  log(
    `Leasehold bench (${args.quick ? 'quick' : 'full'}): ${[...args.scenarios, ...args.peers.map((p) => `peer ${p}`)].join(', ')}; ${os.cpus().length} CPUs, load ${loadavgStart.map((x) => x.toFixed(2)).join(' ')}`,
  );

  logsDir = path.join(resultsDir, `${timestamp}-logs`);
  const t0 = performance.now();
  // The operator compiles while the stack starts.
  let operatorMain: Promise<string> | undefined;
  if (args.operatorMain) {
    operatorMain = Promise.resolve(args.operatorMain);
  } else if (args.runtime === 'compiled') {
    buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-bench-build-'));
    registerTempDir(buildDir);
    operatorMain = buildOperator(buildDir);
    operatorMain.catch(() => undefined);
  }
  env = await startEnv({ log: (l) => log(`  [stack] ${l}`) });
  const stackSeconds = (performance.now() - t0) / 1000;
  bench = new Bench(env, {
    log,
    cpuProfileDir: args.cpuProf ? cpuProfileDir : undefined,
    heapSnapshotDir: args.heapSnapshot ? cpuProfileDir : undefined,
    runtime: args.runtime,
    operatorMain,
    logLevel: args.logLevel,
    nodeOptions,
  });
  const t1 = performance.now();
  await bench.setUp({ longTtl: '24h', shortTtl: `${sizes.renewalTtlSeconds}s` });
  const setupSeconds = (performance.now() - t1) / 1000;
  log(
    `stack up in ${stackSeconds.toFixed(1)} s, Leasehold set up and operator running in ${setupSeconds.toFixed(1)} s`,
  );
  const versions: Versions = await bench.versions();

  const memoryPoints = new Map<number, MemoryPoint>();
  const ctx: ScenarioContext = { bench, sizes, memory: memoryPoints };
  if (args.scenarios.includes('memory') && sizes.memoryPoints.includes(0)) {
    const p = await measureMemory(bench);
    memoryPoints.set(0, p);
    log(`  memory: RSS ${(p.rssBytes / 1048576).toFixed(1)} MB with no requests`);
  }

  const scenarios: Partial<Record<ScenarioName, ScenarioResult>> = {};
  const errors: Array<{ scenario: string; message: string }> = [];
  const peers: Partial<Record<PeerName, ScenarioResult>> = {};
  let peersRan = false;
  const runPeers = async () => {
    if (peersRan) return;
    peersRan = true;
    for (const p of args.peers) {
      if (interrupted) return;
      log(`▶ peer ${p}`);
      try {
        const r = await PEER_RUNNERS[p]({ ...ctx, more: args.scenarios.includes('renewal') });
        peers[p] = r;
        log(`✓ peer ${p} (${r.wallSeconds} s)`);
        printResult(r);
      } catch (err) {
        if (interrupted) return;
        const message = err instanceof Error ? err.message : String(err);
        errors.push({ scenario: `peer-${p}`, message });
        log(`✗ peer ${p}: ${message}`);
      }
      if (!bench!.operator?.running) await bench!.startOperator(bench!.concurrency).catch(() => undefined);
    }
  };
  for (const name of SCENARIOS) {
    // Peers run before renewal: its short leases keep renewing, which would load the peer's measurements.
    if (name === 'renewal') await runPeers();
    if (!args.scenarios.includes(name) || interrupted) continue;
    log(`▶ ${name}`);
    try {
      const r = await RUNNERS[name](ctx);
      scenarios[name] = r;
      log(`✓ ${name} (${r.wallSeconds} s)`);
      printResult(r);
    } catch (err) {
      if (interrupted) break;
      const message = err instanceof Error ? err.message : String(err);
      errors.push({ scenario: name, message });
      log(`✗ ${name}: ${message}`);
      if (bench.operator) log(`  operator log, last lines:\n${bench.operator.tail(15)}`);
      if (!bench.operator?.running) {
        log('  the operator is not running: starting it again for the next scenarios');
        await bench
          .startOperator(bench.concurrency)
          .catch((e) => log(`  could not: ${e instanceof Error ? e.message : String(e)}`));
      }
    }
  }
  await runPeers();
  if (interrupted) return 130;

  const totalSeconds = (Date.now() - startedAtMs) / 1000;
  const targets: Array<Target & { scenario: string }> = [...Object.values(scenarios), ...Object.values(peers)].flatMap(
    (r) => r.targets.map((t) => ({ scenario: r.name, ...t })),
  );
  const results = {
    schema: 1,
    startedAt: new Date(startedAtMs).toISOString(),
    finishedAt: new Date().toISOString(),
    totalSeconds: Math.round(totalSeconds * 10) / 10,
    mode: args.quick ? 'quick' : 'full',
    argv: process.argv.slice(2),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? '',
      memoryBytes: os.totalmem(),
      freeMemoryBytesAtEnd: os.freemem(),
      loadavgStart: loadavgStart.map((x) => Math.round(x * 100) / 100),
      loadavgEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
      kernel: os.release(),
      platform: `${os.platform()} ${os.arch()}`,
    },
    versions,
    parameters: sizes,
    stack: {
      startSeconds: Math.round(stackSeconds * 10) / 10,
      setupSeconds: Math.round(setupSeconds * 10) / 10,
      operator: {
        runtime: args.operatorMain ? `prebuilt ${args.operatorMain}` : args.runtime,
        flags: [`--log-level=${args.logLevel}`, '--concurrency=<per scenario, 4 unless burst>'],
        nodeOptions,
      },
    },
    scenarios,
    peers,
    targets,
    errors,
  };
  const jsonPath = path.join(resultsDir, `${timestamp}.json`);
  fs.writeFileSync(jsonPath, `${JSON.stringify(results, null, 1)}\n`);
  const svgPath = plotFile(jsonPath);
  await teardown();

  console.log('Targets:');
  for (const t of targets)
    console.log(
      `  ${t.met === true ? '✓' : t.met === false ? '✗' : '·'} [${t.scenario}] ${t.what}: ${t.value} (goal ${t.goal})`,
    );
  for (const e of errors) console.log(`  ✗ [${e.scenario}] failed: ${e.message}`);
  log(
    `done in ${totalSeconds.toFixed(1)} s; load now ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `results: ${path.relative(process.cwd(), jsonPath)}\nplot:    ${path.relative(process.cwd(), svgPath)}\noperator logs: ${path.relative(process.cwd(), logsDir!)}` +
      `${cpuProfileDir ? `\nprofiles: ${path.relative(process.cwd(), cpuProfileDir)}` : ''}`,
  );
  return errors.length ? 1 : 0;
}

process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));
try {
  process.exitCode = await main();
} catch (err) {
  if (!interrupted) {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (bench?.operator) console.error(`operator log, last lines:\n${bench.operator.tail(20)}`);
    process.exitCode = 1;
  }
  await teardown();
}
// Stray handles (keep-alive sockets, watches) must not keep the process alive once the stack is gone.
if (!interrupted) setTimeout(() => process.exit(), 500).unref();
