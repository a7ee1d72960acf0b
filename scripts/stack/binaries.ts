// Finds the stack's binaries, building them from the pinned Go helper modules (scripts/go/*) when absent.
// Search order, per binary: $KUBEBUILDER_ASSETS, $LEASEHOLD_BIN_DIR, PATH, the per-user cache
// (~/.cache/leasehold/bin/<component>-<version>), and finally a build into that cache.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerTempDir, unregisterTempDir } from './process.ts';

const scriptsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  /** `bao` (OpenBao) when supplied, otherwise `vault`; both speak the same HTTP API and config language. */
  vaultServer: string;
  vaultFlavor: 'openbao' | 'vault';
  postgresBinDir: string;
  /** The kubectl the tests drive: the machine's own, or one built from the pinned Kubernetes module. */
  kubectl: string;
}

type Log = (line: string) => void;

/** The Go module each helper module in scripts/go/ pins, by helper. */
const PINNED_MODULES = {
  k8s: 'k8s.io/kubernetes',
  vault: 'github.com/hashicorp/vault',
  helm: 'helm.sh/helm/v3',
  promtool: 'github.com/prometheus/prometheus',
  eso: 'github.com/external-secrets/external-secrets',
} as const;

/** Reads the version a helper module pins, e.g. `k8s.io/kubernetes v1.33.13` → `1.33.13`. */
export function pinnedVersion(module: keyof typeof PINNED_MODULES): string {
  const gomod = fs.readFileSync(path.join(scriptsDir, 'go', module, 'go.mod'), 'utf8');
  const dep = PINNED_MODULES[module];
  const m = gomod.match(new RegExp(`^\\s*(?:require\\s+)?${dep.replace(/\./g, '\\.')} v(\\S+)`, 'm'));
  if (!m?.[1]) throw new Error(`scripts/go/${module}/go.mod does not pin ${dep}`);
  return m[1];
}

export function cacheRoot(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'leasehold', 'bin');
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function searchDirs(cacheDir: string): string[] {
  const dirs: string[] = [];
  if (process.env.KUBEBUILDER_ASSETS) dirs.push(process.env.KUBEBUILDER_ASSETS);
  if (process.env.LEASEHOLD_BIN_DIR) dirs.push(process.env.LEASEHOLD_BIN_DIR);
  dirs.push(...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean));
  dirs.push(cacheDir);
  return dirs;
}

function find(names: string[], cacheDir: string): string | undefined {
  for (const dir of searchDirs(cacheDir)) {
    for (const name of names) {
      const candidate = path.join(dir, name);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** The directories on PATH. */
export function pathDirs(): string[] {
  return (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
}

/** The first of `names` that is executable in one of `dirs` (absent ones skipped), in order. */
export function findExecutable(names: string[], dirs: Array<string | undefined>): string | undefined {
  for (const dir of dirs.filter((d): d is string => !!d)) {
    for (const name of names) {
      const candidate = path.join(dir, name);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

function findPostgresBinDir(): string {
  const candidates = [process.env.LEASEHOLD_PG_BIN_DIR, '/usr/lib/postgresql/15/bin'];
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  for (const dir of candidates) {
    if (dir && isExecutable(path.join(dir, 'postgres')) && isExecutable(path.join(dir, 'initdb'))) return dir;
  }
  throw new Error(
    'PostgreSQL server binaries not found (looked for postgres and initdb in $LEASEHOLD_PG_BIN_DIR, ' +
      '/usr/lib/postgresql/15/bin and `pg_config --bindir`). Install them: apt-get install postgresql-15',
  );
}

/** Builds one component with scripts/stack/build-binaries.sh, printing progress, under a lock so that two
 * test processes never build the same thing at once. */
async function build(
  component: 'k8s' | 'kubectl' | 'vault' | 'helm' | 'promtool' | 'eso',
  outDir: string,
  expect: string[],
  log: Log,
): Promise<void> {
  if (spawnSync('go', ['version']).status !== 0) {
    throw new Error(
      `cannot build ${component} binaries: Go is not installed. Install Go >= 1.24, or put ` +
        `${expect.join(', ')} in a directory named by LEASEHOLD_BIN_DIR or on PATH.`,
    );
  }
  fs.mkdirSync(path.dirname(outDir), { recursive: true });
  const lock = `${outDir}.lock`;
  const started = Date.now();
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)}s`;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (expect.every((b) => isExecutable(path.join(outDir, b)))) return; // another process built it
      if (Date.now() - fs.statSync(lock).mtimeMs > 90 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
  registerTempDir(lock); // a Ctrl-C during the build must not leave the lock behind
  try {
    if (expect.every((b) => isExecutable(path.join(outDir, b)))) return;
    log(
      `building ${expect.join(', ')} from Go modules into ${outDir} (cold: about 5-15 min for k8s, 10-25 min for vault or eso on 2 cores)`,
    );
    const child = spawn('bash', [path.join(scriptsDir, 'stack', 'build-binaries.sh'), component, outDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tailLines: string[] = [];
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        tailLines.push(line);
        if (tailLines.length > 40) tailLines.shift();
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const ticker = setInterval(() => log(`  still building ${component} (${elapsed()} elapsed)`), 60_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(ticker);
    if (code !== 0) {
      const df = spawnSync('df', ['-h', path.dirname(outDir)], { encoding: 'utf8' }).stdout;
      throw new Error(
        `building ${component} failed (exit ${code}) after ${elapsed()}:\n${tailLines.join('\n')}\n${df}`,
      );
    }
    log(`built ${component} in ${elapsed()}`);
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
    unregisterTempDir(lock);
  }
}

export async function resolveBinaries(log: Log = (l) => process.stderr.write(`[stack] ${l}\n`)): Promise<Binaries> {
  const postgresBinDir = findPostgresBinDir();
  const k8sCache = path.join(cacheRoot(), `k8s-${pinnedVersion('k8s')}`);
  const k8sNames = ['etcd', 'kube-apiserver', 'kube-controller-manager'];
  if (!k8sNames.every((n) => find([n], k8sCache))) await build('k8s', k8sCache, k8sNames, log);
  const vaultCache = path.join(cacheRoot(), `vault-${pinnedVersion('vault')}`);
  if (!find(['bao', 'vault'], vaultCache)) await build('vault', vaultCache, ['vault'], log);
  const need = (names: string[], dir: string) => {
    const found = find(names, dir);
    if (!found) throw new Error(`binary ${names.join(' or ')} not found after building into ${dir}`);
    return found;
  };
  const vaultServer = need(['bao', 'vault'], vaultCache);
  const kubectlCache = path.join(cacheRoot(), `kubectl-${pinnedVersion('k8s')}`);
  if (!find(['kubectl'], kubectlCache)) await build('kubectl', kubectlCache, ['kubectl'], log);
  return {
    etcd: need(['etcd'], k8sCache),
    kubeApiserver: need(['kube-apiserver'], k8sCache),
    kubeControllerManager: need(['kube-controller-manager'], k8sCache),
    vaultServer,
    vaultFlavor: path.basename(vaultServer) === 'bao' ? 'openbao' : 'vault',
    kubectl: need(['kubectl'], kubectlCache),
    postgresBinDir,
  };
}

/**
 * The helm CLI the chart tests drive (lint, template, install): found like the stack's other binaries
 * ($KUBEBUILDER_ASSETS, $LEASEHOLD_BIN_DIR, PATH, ~/.cache/leasehold/bin/helm-<version>/), else built there from
 * scripts/go/helm (about a minute with a warm Go build cache). Not part of `resolveBinaries`: the stack runs without it.
 */
export async function resolveHelm(log: Log = (l) => process.stderr.write(`[stack] ${l}\n`)): Promise<string> {
  const cache = path.join(cacheRoot(), `helm-${pinnedVersion('helm')}`);
  if (!find(['helm'], cache)) await build('helm', cache, ['helm'], log);
  const found = find(['helm'], cache);
  if (!found) throw new Error(`binary helm not found after building into ${cache}`);
  return found;
}

/** promtool and promql-selectors (scripts/go/promtool), for checking the alert rules and the dashboard. */
export interface PrometheusTools {
  promtool: string;
  /** Reads a JSON array of PromQL expressions, prints the metric names each selects (scripts/go/promtool/promql-selectors). */
  promqlSelectors: string;
}

/**
 * Finds promtool and promql-selectors like the stack's other binaries ($LEASEHOLD_BIN_DIR, PATH, then the cache
 * ~/.cache/leasehold/bin/promtool-<prometheus module version>), building both from scripts/go/promtool when either
 * is missing (cold: a few minutes on 2 cores).
 */
export async function resolvePrometheusTools(
  log: Log = (l) => process.stderr.write(`[stack] ${l}\n`),
): Promise<PrometheusTools> {
  const dir = path.join(cacheRoot(), `promtool-${pinnedVersion('promtool')}`);
  const names = ['promtool', 'promql-selectors'];
  if (!names.every((n) => find([n], dir))) await build('promtool', dir, names, log);
  const need = (name: string) => {
    const found = find([name], dir);
    if (!found) throw new Error(`binary ${name} not found after building into ${dir}`);
    return found;
  };
  return { promtool: need('promtool'), promqlSelectors: need('promql-selectors') };
}

/**
 * External Secrets Operator's controller binary (`external-secrets`, the peer of `npm run bench -- --peer eso`),
 * found like the others or built from scripts/go/eso into ~/.cache/leasehold/bin/eso-<version>/. Never needed by
 * the tests.
 */
export async function resolveEso(log: Log = (l) => process.stderr.write(`[stack] ${l}\n`)): Promise<string> {
  const dir = path.join(cacheRoot(), `eso-${pinnedVersion('eso')}`);
  if (!find(['external-secrets'], dir)) await build('eso', dir, ['external-secrets'], log);
  const found = find(['external-secrets'], dir);
  if (!found) throw new Error(`binary external-secrets not found after building into ${dir}`);
  return found;
}

/**
 * ESO's CRD manifests (the files of `config/crds/bases`, its kustomization aside) in the Go module cache,
 * downloading the pinned module first when it is not there (`go mod download` in scripts/go/eso: the Go module proxy).
 */
export function esoCrdFiles(): string[] {
  const mod = `${PINNED_MODULES.eso}@v${pinnedVersion('eso')}`;
  const r = spawnSync('go', ['mod', 'download', '-json', mod], {
    cwd: path.join(scriptsDir, 'go', 'eso'),
    encoding: 'utf8',
    env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly' },
  });
  if (r.status !== 0) throw new Error(`go mod download ${mod} failed: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  const dir = path.join((JSON.parse(r.stdout) as { Dir: string }).Dir, 'config', 'crds', 'bases');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.yaml') && f.includes('_')) : [];
  if (files.length === 0) throw new Error(`${mod} has no CRD manifests in config/crds/bases`);
  return files.map((f) => path.join(dir, f));
}
