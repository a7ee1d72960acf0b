// What every scenario shares: the stack with Leasehold installed, the operator as its own process (restartable
// with other flags), watches on requests, Secrets and RoleBindings, the operator's Prometheus metrics and
// /proc numbers, a raw Vault client for the baselines, and bulk creation/approval of requests.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { BenchKube } from './kube.ts';
import type { ResourceType } from '../../lib/runtime/types.ts';
import { pinnedVersion } from '../stack/binaries.ts';
import type { Env } from '../stack/env.ts';
import {
  REPO_ROOT,
  SAMPLES_DIR,
  configureVaultForOperator,
  guideManifests,
  guideRole,
  installCrdsAsync,
  kubectlAsync,
  vaultRequest,
} from '../stack/leasehold-setup.ts';
import { startOperator, type OperatorProcess } from '../stack/operator.ts';
import type { OperatorRuntime } from './operator.ts';
import { Tracker } from './tracker.ts';

export const GROUP = 'engine.kubevault.com';
export const VERSION = 'v1alpha1';
export const NS = 'demo';
export const MOUNT = 'my-postgres-se';
/** The guide's Vault AppBinding logs in with this kubernetes auth role (parameters.vaultRole). */
const AUTH_ROLE = 'vault-policy-controller';

export const DARS: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'databaseaccessrequests',
  kind: 'DatabaseAccessRequest',
};
export const ROLES: ResourceType = { group: GROUP, version: VERSION, plural: 'postgresroles', kind: 'PostgresRole' };
const SECRETS: ResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' };
const ROLE_BINDINGS: ResourceType = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural: 'rolebindings',
  kind: 'RoleBinding',
};
const REQUEST_LABEL = 'leasehold.dev/request';
const LEASE_ID_ANNOTATION = 'leasehold.dev/lease-id';

// ---- small utilities ------------------------------------------------------------------------------------------

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn` over `items` with at most `n` at a time. */
export async function pool<T>(
  items: readonly T[],
  n: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** Resolves `promise`, or rejects with `what` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${(ms / 1000).toFixed(0)} s: ${what()}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- Prometheus text ------------------------------------------------------------------------------------------

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export class Scrape {
  constructor(
    readonly samples: Sample[],
    readonly at: number,
  ) {}
  /** Sum of a metric's samples whose labels include `match`. */
  sum(name: string, match: Record<string, string> = {}): number {
    let total = 0;
    for (const s of this.samples) {
      if (s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  }
  /** A metric's samples as `label=value,...` → value (for by-label breakdowns). */
  byLabels(name: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples) {
      if (s.name !== name) continue;
      const key =
        Object.entries(s.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '(none)';
      out[key] = (out[key] ?? 0) + s.value;
    }
    return out;
  }
}

/** `after - before` per label set, keeping only the non-zero changes. */
export function counterDelta(before: Scrape | undefined, after: Scrape, name: string): Record<string, number> {
  const b = before?.byLabels(name) ?? {};
  const a = after.byLabels(name);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) {
    const d = v - (b[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** `after - before` summed by some labels only (e.g. verb and resource of apiserver_request_total), non-zero only. */
export function groupedDelta(before: Scrape, after: Scrape, name: string, by: string[]): Record<string, number> {
  const group = (sc: Scrape) => {
    const out: Record<string, number> = {};
    for (const s of sc.samples) {
      if (s.name !== name) continue;
      const k = by
        .map((l) => s.labels[l] ?? '')
        .filter(Boolean)
        .join(' ');
      out[k] = (out[k] ?? 0) + s.value;
    }
    return out;
  };
  const b = group(before);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(group(after))) if (v - (b[k] ?? 0) !== 0) out[k] = v - (b[k] ?? 0);
  return Object.fromEntries(Object.entries(out).sort((x, y) => y[1] - x[1]));
}

/** What the operator and the apiserver did between two points: calls by kind, for "per grant" figures. */
export interface Work {
  /** Requests the apiserver served (every client: the operator, this benchmark, kube-controller-manager), by verb and resource. */
  apiserverRequests: Record<string, number>;
  apiserverRequestsTotal: number;
  /** The operator's own requests to the apiserver (its kube_requests_total: reads and writes, watches aside). */
  operatorKubeRequests: Record<string, number>;
  operatorKubeRequestsTotal: number;
  operatorKubeWrites: Record<string, number>;
  operatorVaultCalls: Record<string, number>;
  /** Reconcile passes of the operator's controllers (controller_runtime_reconcile_total), by controller and result. */
  operatorReconciles: Record<string, number>;
}

// ---- /proc ------------------------------------------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcStats {
  /** user + system CPU seconds of the process and its reaped children. */
  cpuSeconds: number;
  rssBytes: number;
}

/** utime, stime, cutime, cstime (in ticks) and the parent pid of a process, from /proc/<pid>/stat. */
function statOf(pid: number): { own: number; reaped: number; ppid: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command, state is field 3: ppid is 4, utime (14) … cstime (17) are at indexes 11 … 14.
    return { own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]), ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

export function procStats(pid: number | undefined): ProcStats | undefined {
  if (!pid) return undefined;
  const st = statOf(pid);
  if (!st) return undefined;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { cpuSeconds: (st.own + st.reaped) / CLK_TCK, rssBytes: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process tree: the process, its reaped children and its live descendants. Counting the live
 * ones matters for PostgreSQL (a backend per connection): a backend's CPU would otherwise all land in the
 * window in which it exits (cutime of the postmaster), e.g. Vault's pool connections closed during a restart.
 */
function treeCpuSeconds(
  root: number,
  children: Map<number, number[]>,
  stats: Map<number, { own: number; reaped: number }>,
): number {
  let ticks = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    const st = stats.get(pid);
    if (st) ticks += st.own + st.reaped;
    stack.push(...(children.get(pid) ?? []));
  }
  return ticks / CLK_TCK;
}

function processTable(): { children: Map<number, number[]>; stats: Map<number, { own: number; reaped: number }> } {
  const children = new Map<number, number[]>();
  const stats = new Map<number, { own: number; reaped: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const st = statOf(pid);
    if (!st) continue;
    stats.set(pid, st);
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  return { children, stats };
}

/** Machine-wide busy and total CPU seconds (all cores) from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

export interface CpuSnapshot {
  at: number;
  machine: { busy: number; total: number };
  byComponent: Record<string, number>;
}

export interface CpuUsage {
  wallSeconds: number;
  /** Fraction of the whole machine (all cores) busy, whoever used it. */
  machineBusy: number;
  /** CPU seconds per component of the stack (the operator, the apiserver, …, and this benchmark process). */
  byComponent: Record<string, number>;
  /** CPU seconds the machine spent on anything else (other people's tests): busy minus ours. */
  others: number;
  loadavg: number[];
}

// ---- the raw Vault baseline ---------------------------------------------------------------------------------------

export class RawVault {
  private readonly agent: https.Agent;
  private readonly url: URL;
  token = '';

  constructor(private readonly env: Env) {
    this.url = new URL(env.vault.addr);
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: env.vault.caCert });
  }

  /** A token like the operator's issuer tokens (same token role, same policy), so ACL checks are alike. */
  async init(): Promise<void> {
    const res = await vaultRequest(this.env, 'POST', 'auth/token/create/leasehold-issuer', { ttl: '24h' });
    this.token = (res.body as { auth: { client_token: string } }).auth.client_token;
  }

  call(
    method: string,
    apiPath: string,
    body?: unknown,
    token = this.token,
  ): Promise<{ status: number; json: unknown }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path: `/v1/${apiPath}`,
          method,
          agent: this.agent,
          headers: { 'x-vault-token': token, ...(payload ? { 'content-type': 'application/json' } : {}) },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = text;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`Vault ${method} ${apiPath} timed out`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** One `creds/<role>` read, as the operator issues: returns its duration and lease id. */
  async issue(vaultRole: string): Promise<{ ms: number; leaseId: string }> {
    const t0 = performance.now();
    const res = await this.call('GET', `${MOUNT}/creds/${vaultRole}`);
    const ms = performance.now() - t0;
    if (res.status !== 200)
      throw new Error(`raw creds read: HTTP ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
    return { ms, leaseId: (res.json as { lease_id: string }).lease_id };
  }

  /** Revokes leases the baseline issued (with the root token), so they don't pile up in PostgreSQL. */
  async revoke(leaseIds: readonly string[]): Promise<void> {
    await pool(leaseIds, 8, async (id) => {
      await this.call('PUT', 'sys/leases/revoke', { lease_id: id }, this.env.vault.rootToken);
    });
  }

  /** Live leases under `<mount>/creds/<role>/` (LIST sys/leases/lookup with the root token). */
  async leases(vaultRole: string): Promise<string[]> {
    const prefix = `${MOUNT}/creds/${vaultRole}`;
    const res = await this.call('LIST', `sys/leases/lookup/${prefix}/`, undefined, this.env.vault.rootToken);
    if (res.status === 404) return [];
    if (res.status !== 200) throw new Error(`listing leases: HTTP ${res.status}`);
    return ((res.json as { data?: { keys?: string[] } }).data?.keys ?? []).map((k) => `${prefix}/${k}`);
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---- tracked state ------------------------------------------------------------------------------------------------

export interface DarState {
  role: string;
  uid: string;
  phase?: string;
  leaseId?: string;
  issuedAt?: string;
  lastRenewalTime?: string;
  expiresAt?: string;
  ready: boolean;
  failed: boolean;
  /** Available's reason while it is False (why a request is stuck). */
  notAvailable?: string;
}

type DarObject = KubernetesObject & {
  spec?: { roleRef?: { name?: string } };
  status?: {
    phase?: string;
    lease?: { id?: string; issuedAt?: string; lastRenewalTime?: string; expiresAt?: string };
    issuance?: { completed?: boolean };
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
};

function darState(o: KubernetesObject): DarState {
  const d = o as DarObject;
  const st = d.status;
  const available = st?.conditions?.find((c) => c.type === 'Available');
  return {
    role: d.spec?.roleRef?.name ?? '',
    uid: d.metadata?.uid ?? '',
    phase: st?.phase,
    leaseId: st?.lease?.id,
    issuedAt: st?.lease?.issuedAt,
    lastRenewalTime: st?.lease?.lastRenewalTime,
    expiresAt: st?.lease?.expiresAt,
    ready: !!st?.lease?.id && st?.issuance?.completed === true,
    failed: st?.phase === 'Failed',
    notAvailable:
      available && available.status !== 'True'
        ? `${available.reason}: ${available.message ?? ''}`.slice(0, 300)
        : undefined,
  };
}

export interface SecretState {
  name: string;
  hasCredential: boolean;
  leaseId?: string;
}

// ---- the bench context ----------------------------------------------------------------------------------------

export interface RoleInfo {
  name: string;
  vaultRole: string;
}

export interface Versions {
  node: string;
  operatorNode: string;
  kubernetes: string;
  vault: string;
  vaultFlavor: string;
  postgres: string;
  commit: string;
  /** Files under api/, cmd/, controllers/, lib/ that differ from the commit when the run started. */
  uncommitted: string[];
}

export interface BenchOptions {
  log: (line: string) => void;
  /** Extra flags for every operator start. */
  operatorArgs?: string[];
  /** Directory for --cpu-prof profiles of the operator, when profiling. */
  cpuProfileDir?: string;
  /** NODE_OPTIONS for the operator (V8 flags such as --max-old-space-size). */
  nodeOptions?: string;
  /** Directory for heap snapshots (taken with SIGUSR2 at memory measurements). */
  heapSnapshotDir?: string;
  runtime: OperatorRuntime;
  logLevel?: string;
  /** The compiled entry point (runtime `compiled`). */
  operatorMain?: Promise<string>;
}

/** The operator's --concurrency except in the burst scenario (the flag's default). */
export const DEFAULT_CONCURRENCY = 4;

export class Bench {
  readonly kube: BenchKube;
  readonly kc: KubeConfig;
  readonly vault: RawVault;
  readonly requests: Tracker<DarState>;
  readonly secrets: Tracker<SecretState>;
  readonly bindings: Tracker<boolean>;
  operator: OperatorProcess | undefined;
  /** Processes of a peer controller (e.g. `eso`), counted by `cpuSnapshot` like the stack's components. */
  readonly peerPids: Record<string, number | undefined> = {};
  concurrency = DEFAULT_CONCURRENCY;
  /** Times the operator was started, for log names. */
  private starts = 0;
  /** The current operator's log and profile name (`operator-<n>-c<concurrency>`). */
  private operatorName = '';
  readonly roles: { long: RoleInfo; short: RoleInfo } = {
    long: { name: 'bench-long', vaultRole: '' },
    short: { name: 'bench-short', vaultRole: '' },
  };

  constructor(
    readonly env: Env,
    readonly opts: BenchOptions,
  ) {
    this.kc = env.kubeConfig;
    this.kube = new BenchKube(env.kubeConfig);
    this.vault = new RawVault(env);
    this.requests = new Tracker(this.kc, this.kube, DARS, NS, (o) => o.metadata?.name, darState);
    this.secrets = new Tracker<SecretState>(
      this.kc,
      this.kube,
      SECRETS,
      NS,
      (o) => o.metadata?.labels?.[REQUEST_LABEL],
      (o) => {
        const s = o as KubernetesObject & { data?: Record<string, string> };
        return {
          name: s.metadata?.name ?? '',
          hasCredential: !!s.data?.username && !!s.data?.password,
          leaseId: s.metadata?.annotations?.[LEASE_ID_ANNOTATION],
        };
      },
      `${REQUEST_LABEL}`,
    );
    this.bindings = new Tracker<boolean>(
      this.kc,
      this.kube,
      ROLE_BINDINGS,
      NS,
      (o) => o.metadata?.labels?.[REQUEST_LABEL],
      () => true,
      `${REQUEST_LABEL}`,
    );
  }

  log(line: string): void {
    this.opts.log(line);
  }

  // ---- set-up ----

  /** CRDs, the guide's AppBindings, Vault for the operator, the operator, the SecretEngine and two roles. */
  async setUp(roles: { longTtl: string; shortTtl: string }): Promise<void> {
    const env = this.env;
    await installCrdsAsync(env);
    await this.kubectl(['create', 'namespace', 'leasehold-system']);
    await this.kubectl(['apply', '-f', '-'], guideManifests(env));
    await this.kubectl(['-n', NS, 'create', 'serviceaccount', 'vault']);
    await this.kubectl(['-n', NS, 'create', 'serviceaccount', 'bench-sa']);
    await configureVaultForOperator(env, {
      loginTtl: '1h',
      loginMaxTtl: '24h',
      serviceAccount: { namespace: NS, name: 'vault' },
      authRole: AUTH_ROLE,
    });
    await this.vault.init();
    await Promise.all([this.requests.start(), this.secrets.start(), this.bindings.start()]);
    await this.startOperator(this.concurrency);
    await this.kubectl(['apply', '-f', path.join(SAMPLES_DIR, '30-postgres-secret-engine.yaml')]);
    // The guide's role and statements; its max TTL raised so no run reaches it.
    const role = (name: string, defaultTTL: string) => guideRole(name, { defaultTTL, maxTTL: '48h' });
    await this.kubectl(
      ['apply', '-f', '-'],
      [role(this.roles.long.name, roles.longTtl), role(this.roles.short.name, roles.shortTtl)]
        .map((r) => YAML.stringify(r))
        .join('---\n'),
    );
    for (const r of [this.roles.long, this.roles.short]) {
      r.vaultRole = await this.until(
        `PostgresRole ${r.name} ready`,
        async () => {
          const o = await this.kube.tryGet<KubernetesObject & { status?: { phase?: string; vaultRole?: string } }>(
            ROLES,
            NS,
            r.name,
          );
          return o?.status?.phase === 'Success' ? o.status.vaultRole : undefined;
        },
        90_000,
      );
    }
  }

  async kubectl(args: string[], input?: string): Promise<string> {
    const r = await kubectlAsync(this.env, args, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async until<V>(
    what: string,
    probe: () => Promise<V | undefined | false>,
    timeoutMs: number,
    intervalMs = 250,
  ): Promise<V> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe().catch(() => undefined);
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`no ${what} after ${timeoutMs / 1000} s`);
      await sleep(intervalMs);
    }
  }

  // ---- the operator ----

  async startOperator(concurrency: number): Promise<number> {
    this.concurrency = concurrency;
    const name = `operator-${++this.starts}-c${concurrency}`;
    this.operatorName = name;
    const t0 = performance.now();
    const prof = this.opts.cpuProfileDir;
    const heap = this.opts.heapSnapshotDir;
    const nodeOptions = [
      ...(this.opts.nodeOptions ? [this.opts.nodeOptions] : []),
      ...(prof ? [`--cpu-prof --cpu-prof-dir=${prof} --cpu-prof-name=${name}.cpuprofile`] : []),
      ...(heap ? [`--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${heap}`] : []),
    ];
    this.operator = await startOperator(
      this.env,
      [`--concurrency=${concurrency}`, ...(this.opts.operatorArgs ?? [])],
      name,
      {
        logLevel: this.opts.logLevel ?? 'info',
        readyTimeoutMs: 300_000,
        stopGraceMs: 35_000,
        entryPoint: await this.opts.operatorMain,
        nodeOptions: nodeOptions.length ? nodeOptions.join(' ') : undefined,
      },
    );
    return performance.now() - t0;
  }

  /**
   * A point in time on the clock V8's CPU profiles use (CLOCK_MONOTONIC, microseconds): `profileWindow` turns
   * two of them into a window of the current operator's profile.
   */
  monotonicUs(): number {
    return Number(process.hrtime.bigint() / 1000n);
  }

  /**
   * With --cpu-prof, records that the current operator's profile spent [startUs, now] on `label` (`grants`
   * grants), in `windows.json` beside the profiles: `scripts/bench/profile-summary.ts --window LABEL` reads it.
   */
  profileWindow(label: string, startUs: number, grants: number): void {
    const dir = this.opts.cpuProfileDir;
    if (!dir) return;
    const file = path.join(dir, 'windows.json');
    const list = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as unknown[]) : [];
    list.push({ label, profile: `${this.operatorName}.cpuprofile`, startUs, endUs: this.monotonicUs(), grants });
    fs.writeFileSync(file, `${JSON.stringify(list, null, 1)}\n`);
  }

  async stopOperator(): Promise<void> {
    await this.operator?.stop();
    this.operator = undefined;
  }

  async restartOperator(concurrency: number): Promise<void> {
    await this.stopOperator();
    await this.startOperator(concurrency);
  }

  async scrape(): Promise<Scrape> {
    if (!this.operator) throw new Error('the operator is not running');
    const res = await fetch(this.operator.metricsUrl, { signal: AbortSignal.timeout(30_000) });
    return new Scrape(parseProm(await res.text()), performance.now());
  }

  async apiserverScrape(): Promise<Scrape> {
    return new Scrape(parseProm(await this.kube.metricsText()), performance.now());
  }

  /** A point to measure work from (see `workSince`). */
  async workMark(): Promise<{ api: Scrape; op: Scrape }> {
    const [api, op] = await Promise.all([this.apiserverScrape(), this.scrape()]);
    return { api, op };
  }

  async workSince(mark: { api: Scrape; op: Scrape }): Promise<Work> {
    const now = await this.workMark();
    const api = groupedDelta(mark.api, now.api, 'apiserver_request_total', ['verb', 'resource', 'subresource']);
    const operatorKubeRequests = counterDelta(mark.op, now.op, 'kube_requests_total');
    return {
      apiserverRequests: api,
      apiserverRequestsTotal: Object.values(api).reduce((a, b) => a + b, 0),
      operatorKubeRequests,
      operatorKubeRequestsTotal: Object.values(operatorKubeRequests).reduce((a, b) => a + b, 0),
      operatorKubeWrites: counterDelta(mark.op, now.op, 'kube_writes_total'),
      operatorVaultCalls: counterDelta(mark.op, now.op, 'vault_requests_total'),
      operatorReconciles: counterDelta(mark.op, now.op, 'controller_runtime_reconcile_total'),
    };
  }

  /** Writes a heap snapshot of the operator (when enabled) and waits until the file is complete. */
  async heapSnapshot(label: string): Promise<string | undefined> {
    const dir = this.opts.heapSnapshotDir;
    const pid = this.operator?.pid;
    if (!dir || !pid) return undefined;
    const before = new Set(fs.readdirSync(dir));
    process.kill(pid, 'SIGUSR2');
    const file = await this.until(
      'a heap snapshot',
      async () => fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f)),
      300_000,
      500,
    );
    // Written in one go by the operator's main thread: complete once its size stops changing.
    let size = -1;
    for (;;) {
      await sleep(1000);
      const now = fs.statSync(path.join(dir, file)).size;
      if (now === size) break;
      size = now;
    }
    const named = path.join(dir, `${label}.heapsnapshot`);
    fs.renameSync(path.join(dir, file), named);
    this.log(`  heap snapshot: ${path.relative(REPO_ROOT, named)}`);
    return named;
  }

  operatorStats(): ProcStats | undefined {
    return procStats(this.operator?.pid);
  }

  /**
   * Waits until the request controller is idle: nothing queued, no worker busy, and no reconcile finished for
   * `quietMs`. Returns the last scrape.
   */
  async settled(timeoutMs = 600_000, quietMs = 750): Promise<Scrape> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let quietSince = performance.now();
    for (;;) {
      const s = await this.scrape();
      const reconciles = s.sum('controller_runtime_reconcile_total', { controller: 'databaseaccessrequest' });
      const busy =
        s.sum('workqueue_depth', { name: 'databaseaccessrequest' }) +
        s.sum('controller_runtime_active_workers', { controller: 'databaseaccessrequest' });
      if (reconciles !== last || busy > 0) {
        last = reconciles;
        quietSince = performance.now();
      } else if (performance.now() - quietSince >= quietMs) {
        return s;
      }
      if (Date.now() > deadline) throw new Error(`the operator did not settle within ${timeoutMs / 1000} s`);
      await sleep(250);
    }
  }

  // ---- machine ----

  cpuSnapshot(): CpuSnapshot {
    const byComponent: Record<string, number> = {};
    const { children, stats } = processTable();
    const pids: Record<string, number | undefined> = {
      ...this.env.pids,
      operator: this.operator?.pid,
      ...this.peerPids,
    };
    for (const [name, pid] of Object.entries(pids))
      if (pid && stats.has(pid)) byComponent[name] = treeCpuSeconds(pid, children, stats);
    const me = process.cpuUsage();
    byComponent.benchmark = (me.user + me.system) / 1e6;
    return { at: performance.now(), machine: machineCpu(), byComponent };
  }

  /** CPU use between two snapshots. An operator restarted in between counts from zero (a new process). */
  cpuUsage(a: CpuSnapshot, b: CpuSnapshot = this.cpuSnapshot()): CpuUsage {
    const wall = (b.at - a.at) / 1000;
    const byComponent: Record<string, number> = {};
    for (const [k, v] of Object.entries(b.byComponent)) {
      const before = a.byComponent[k] ?? 0;
      byComponent[k] = Math.round(Math.max(0, v >= before ? v - before : v) * 100) / 100;
    }
    const busy = b.machine.busy - a.machine.busy;
    const total = b.machine.total - a.machine.total;
    const ours = Object.values(byComponent).reduce((x, y) => x + y, 0);
    return {
      wallSeconds: Math.round(wall * 100) / 100,
      machineBusy: total > 0 ? Math.round((busy / total) * 1000) / 1000 : 0,
      byComponent,
      others: Math.round(Math.max(0, busy - ours) * 100) / 100,
      loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    };
  }

  async versions(): Promise<Versions> {
    const nodeBin = path.join(REPO_ROOT, 'node_modules/.bin/node');
    const operatorNode = fs.existsSync(nodeBin)
      ? execFileSync(nodeBin, ['--version'], { encoding: 'utf8' }).trim()
      : process.version;
    const k8s = await this.kube
      .request<{ gitVersion?: string }>('GET', '/version')
      .catch(() => ({ gitVersion: `v${pinnedVersion('k8s')}` }));
    const health = await this.vault.call('GET', 'sys/health').catch(() => ({ json: {} }));
    const c = new pg.Client({ connectionString: this.env.postgres.url });
    const postgres = await c
      .connect()
      .then(() => c.query<{ server_version: string }>('SHOW server_version'))
      .then(
        (r) => r.rows[0]?.server_version ?? '',
        () => '',
      )
      .finally(() => c.end().catch(() => undefined));
    const git = (args: string[]) => {
      try {
        return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
      } catch {
        return '';
      }
    };
    return {
      node: process.version,
      operatorNode,
      kubernetes: k8s.gitVersion ?? '',
      vault: (health.json as { version?: string })?.version ?? '',
      vaultFlavor: this.env.vault.flavor,
      postgres,
      commit: git(['rev-parse', 'HEAD']),
      uncommitted: git(['status', '--porcelain', '--', 'api', 'cmd', 'controllers', 'lib']).split('\n').filter(Boolean),
    };
  }

  // ---- requests ----

  private body(name: string, role: string): KubernetesObject {
    return {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DatabaseAccessRequest',
      metadata: { name, namespace: NS },
      spec: {
        roleRef: { kind: 'PostgresRole', name: role, namespace: NS },
        subjects: [{ kind: 'ServiceAccount', name: 'bench-sa', namespace: NS }],
      },
    } as KubernetesObject;
  }

  async create(name: string, role: string): Promise<void> {
    await this.kube.create(DARS, NS, this.body(name, role));
  }

  /** The approval a person's tool writes: an Approved condition through the status subresource. */
  async approve(name: string): Promise<void> {
    const condition = {
      type: 'Approved',
      status: 'True',
      reason: 'KubectlApprove',
      message: 'approved by the benchmark',
      lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    await this.kube.patch(
      DARS,
      NS,
      name,
      { status: { conditions: [condition] } },
      'application/merge-patch+json',
      'status',
    );
  }

  waiting(name: string): Promise<number> {
    return this.requests.when(name, (s) => s.phase === 'WaitingForApproval');
  }

  ready(name: string): Promise<number> {
    return this.requests.when(name, (s) => s.ready);
  }

  secretReady(name: string): Promise<number> {
    return this.secrets.when(name, (s) => s.hasCredential);
  }

  granted(name: string): Promise<number> {
    return this.bindings.when(name, () => true);
  }

  /** Why some of `names` are not ready (for error messages). */
  stuck(names: readonly string[], pred: (s: DarState | undefined) => boolean): string {
    const bad = names.filter((n) => !pred(this.requests.states.get(n)));
    const sample = bad.slice(0, 3).map((n) => {
      const s = this.requests.states.get(n);
      return `${n}: ${s ? `phase ${s.phase ?? '(none)'}${s.notAvailable ? `, ${s.notAvailable}` : ''}` : 'not seen'}`;
    });
    return `${bad.length} of ${names.length} not there yet (${sample.join('; ')})`;
  }

  /** Creates requests and waits until the operator has put each in WaitingForApproval. */
  async createWaiting(names: readonly string[], role: string, parallel = 16, timeoutMs = 600_000): Promise<void> {
    const all = Promise.all(names.map((n) => this.waiting(n)));
    await pool(names, parallel, (n) => this.create(n, role));
    await within(all, timeoutMs, () => this.stuck(names, (s) => s?.phase === 'WaitingForApproval'));
  }

  /** Approves requests `parallel` at a time; resolves with when each approval write was sent. */
  async approveAll(names: readonly string[], parallel = 32): Promise<Map<string, number>> {
    const sent = new Map<string, number>();
    await pool(names, parallel, async (n) => {
      sent.set(n, performance.now());
      await this.approve(n);
    });
    return sent;
  }

  /**
   * Approves requests keeping at most `outstanding` approved-but-not-ready: issuance never queues up behind the
   * per-role lock, so workers stay free for other work (renewals). Resolves when all are ready.
   */
  async approvePaced(names: readonly string[], outstanding: number, timeoutMs: number): Promise<void> {
    await within(
      pool(names, outstanding, async (n) => {
        const ready = this.ready(n);
        await this.approve(n);
        await ready;
      }),
      timeoutMs,
      () => this.stuck(names, (s) => !!s?.ready),
    );
  }

  /** Restarts the operator if its --concurrency is not `c`. */
  async ensureConcurrency(c: number): Promise<void> {
    if (this.concurrency !== c || !this.operator) {
      this.log(`  restarting the operator with --concurrency=${c}`);
      await this.restartOperator(c);
    }
  }

  async waitAllReady(names: readonly string[], timeoutMs: number, progress?: string): Promise<Map<string, number>> {
    const times = new Map<string, number>();
    let timer: NodeJS.Timeout | undefined;
    if (progress) {
      timer = setInterval(() => this.log(`  ${progress}: ${times.size}/${names.length} ready`), 10_000);
      timer.unref();
    }
    try {
      await within(
        Promise.all(
          names.map(async (n) => {
            const [a, b] = await Promise.all([this.ready(n), this.granted(n)]);
            times.set(n, Math.max(a, b));
          }),
        ),
        timeoutMs,
        () => this.stuck(names, (s) => !!s?.ready),
      );
    } finally {
      clearInterval(timer);
    }
    return times;
  }

  /** Ready requests of a role (as the watch sees them). */
  readyCount(role: string): number {
    return this.requests.count((s) => s.role === role && s.ready);
  }

  /**
   * Brings the number of ready requests of the long-TTL role up to `n`: creates, waits for WaitingForApproval,
   * approves, waits for ready, in chunks (so a chunk's objects exist before the next is created).
   */
  async populate(n: number, prefix = 'pop'): Promise<void> {
    const role = this.roles.long.name;
    const have = this.readyCount(role);
    if (have >= n) return;
    const t0 = performance.now();
    this.log(`populating: ${have} → ${n} ready requests`);
    let index = this.requests.count((s) => s.role === role);
    const chunk = 1000;
    for (let left = n - have; left > 0; left -= chunk) {
      const names = Array.from({ length: Math.min(chunk, left) }, () => `${prefix}-${index++}`);
      await this.createWaiting(names, role, 16, 900_000);
      await this.approveAll(names, 16);
      await this.waitAllReady(names, 1_800_000, 'populating');
    }
    this.log(`populated ${this.readyCount(role)} ready requests in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  /** Logs in to PostgreSQL with the credential in a request's Secret. */
  async credentialWorks(request: string): Promise<boolean> {
    const secretName = this.secrets.states.get(request)?.name;
    if (!secretName) return false;
    const s = await this.kube.get<KubernetesObject & { data?: Record<string, string> }>(SECRETS, NS, secretName);
    const user = Buffer.from(s.data?.username ?? '', 'base64').toString();
    const password = Buffer.from(s.data?.password ?? '', 'base64').toString();
    return loginWorks(this.env, user, password);
  }

  async close(): Promise<void> {
    this.requests.stop();
    this.secrets.stop();
    this.bindings.stop();
    this.vault.close();
    this.kube.close();
    await this.stopOperator().catch(() => undefined);
  }
}

/** Whether `user`/`password` log in to the stack's PostgreSQL and run a query (false for an empty user). */
export async function loginWorks(env: Env, user: string, password: string): Promise<boolean> {
  if (!user) return false;
  const c = new pg.Client({
    host: env.postgres.host,
    port: env.postgres.port,
    database: env.postgres.database,
    user,
    password,
    connectionTimeoutMillis: 10_000,
  });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}
