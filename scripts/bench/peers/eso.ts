// External Secrets Operator (ESO) as the benchmark's peer: its controller binary run as its own process against
// the stack's kube-apiserver (the admin kubeconfig, as the operator gets), its CRDs from the pinned Go module, one
// `VaultDynamicSecret` generator per Vault role Leasehold issues from (token auth: a token of the same token role
// and policy as the operator's issuer tokens), and ExternalSecrets in their own namespace, tracked by watch like
// Leasehold's requests. Also what both sides are counted with: Vault's audit log (calls per client token) and
// PostgreSQL's roles (database users created).
import type { KubernetesObject } from '@kubernetes/client-node';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { esoCrdFiles, resolveEso } from '../../stack/binaries.ts';
import type { Env } from '../../stack/env.ts';
import { FatalStartError, request, waitFor } from '../../stack/http.ts';
import { vaultRequest } from '../../stack/leasehold-setup.ts';
import { freePort } from '../../stack/ports.ts';
import { ManagedProcess } from '../../stack/process.ts';
import type { ResourceType } from '../../../lib/runtime/types.ts';
import {
  MOUNT,
  Scrape,
  loginWorks,
  parseProm,
  pool,
  procStats,
  sleep,
  within,
  type Bench,
  type ProcStats,
} from '../harness.ts';
import { Tracker } from '../tracker.ts';

/** The namespace ESO's ExternalSecrets, generators and Secrets live in (apart from Leasehold's `demo`). */
export const ESO_NS = 'eso-peer';
/** The display name of ESO's Vault token: Vault's audit log tells its calls apart by it (`token-<name>`). */
const ESO_TOKEN_DISPLAY = 'esopeer';
const ESO_AUDIT_NAME = `token-${ESO_TOKEN_DISPLAY}`;
const TOKEN_SECRET = 'eso-vault-token';
/** ExternalSecrets (and their Secrets) are named with this prefix; the token Secret is not. */
const PREFIX = 'es-';

const EXTERNAL_SECRETS: ResourceType = {
  group: 'external-secrets.io',
  version: 'v1',
  plural: 'externalsecrets',
  kind: 'ExternalSecret',
};
const SECRETS: ResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' };

export interface EsoSecretState {
  hasCredential: boolean;
  /** The username in the Secret (changes on every refresh). */
  username: string;
}

/** ESO's command line besides the addresses: only the core controllers (no webhook, no cert controller: those are
 * subcommands), no cluster-scoped or push kinds, `--concurrent` like the operator's `--concurrency`, and no
 * client-side request limit (client-go's default 50 QPS would bound the burst; Leasehold has none). */
export function esoArgs(concurrency: number): string[] {
  return [
    `--concurrent=${concurrency}`,
    '--enable-cluster-store-reconciler=false',
    '--enable-cluster-external-secret-reconciler=false',
    '--enable-cluster-push-secret-reconciler=false',
    '--enable-push-secret-reconciler=false',
    '--enable-leader-election=false',
    '--client-qps=1000',
    '--client-burst=2000',
    '--loglevel=info',
  ];
}

export class EsoPeer {
  private proc: ManagedProcess | undefined;
  private binary = '';
  metricsUrl = '';
  concurrency = 4;
  readonly secrets: Tracker<EsoSecretState>;
  private starts = 0;
  /** ExternalSecrets this run created (none are deleted before the peer's last step). */
  created = 0;
  private readonly env: Env;

  constructor(private readonly bench: Bench) {
    this.env = bench.env;
    this.secrets = new Tracker<EsoSecretState>(
      bench.kc,
      bench.kube,
      SECRETS,
      ESO_NS,
      (o) => (o.metadata?.name?.startsWith(PREFIX) ? o.metadata.name : undefined),
      (o) => {
        const d = (o as KubernetesObject & { data?: Record<string, string> }).data;
        return { hasCredential: !!d?.username && !!d?.password, username: d?.username ?? '' };
      },
    );
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return !!this.proc?.running;
  }

  /** Builds (first use) or finds the binary, installs the CRDs, the namespace, the Vault token and the generators. */
  async setUp(roles: Array<{ generator: string; vaultRole: string }>): Promise<void> {
    const log = (l: string) => this.bench.log(`  [eso] ${l}`);
    this.binary = await resolveEso(log);
    const crds = esoCrdFiles().flatMap((f) => ['-f', f]);
    await this.bench.kubectl(['apply', '--server-side', ...crds]);
    await this.bench.kubectl(['wait', '--for=condition=Established', '--timeout=120s', ...crds]);
    await this.bench.kubectl(['create', 'namespace', ESO_NS]);
    // A token like the operator's issuer tokens: the same token role, so the same policy.
    const res = await vaultRequest(this.env, 'POST', 'auth/token/create/leasehold-issuer', {
      ttl: '24h',
      display_name: ESO_TOKEN_DISPLAY,
    });
    const token = (res.body as { auth: { client_token: string } }).auth.client_token;
    const docs: unknown[] = [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: TOKEN_SECRET, namespace: ESO_NS },
        stringData: { token },
      },
      ...roles.map((r) => ({
        apiVersion: 'generators.external-secrets.io/v1alpha1',
        kind: 'VaultDynamicSecret',
        metadata: { name: r.generator, namespace: ESO_NS },
        spec: {
          path: `${MOUNT}/creds/${r.vaultRole}`,
          method: 'GET',
          resultType: 'Data',
          provider: {
            server: this.env.vault.addr,
            caBundle: Buffer.from(this.env.vault.caCert).toString('base64'),
            auth: { tokenSecretRef: { name: TOKEN_SECRET, key: 'token' } },
          },
        },
      })),
    ];
    await this.bench.kubectl(['apply', '-f', '-'], docs.map((d) => YAML.stringify(d)).join('---\n'));
    await this.secrets.start();
    await this.start(this.concurrency);
  }

  /** Starts the controller; resolves once its ExternalSecret controller's work queue shows in its metrics. */
  async start(concurrency: number): Promise<number> {
    this.concurrency = concurrency;
    const port = await freePort();
    this.metricsUrl = `http://127.0.0.1:${port}/metrics`;
    const logFile = path.join(this.env.dir, 'logs', `operator-eso-${++this.starts}-c${concurrency}.log`);
    const proc = new ManagedProcess({
      name: 'eso',
      command: this.binary,
      args: [...esoArgs(concurrency), `--metrics-addr=127.0.0.1:${port}`],
      env: { KUBECONFIG: this.env.kubernetes.kubeconfig, PATH: process.env.PATH ?? '' },
      logFile,
      stopGraceMs: 35_000,
    });
    const t0 = performance.now();
    proc.start();
    this.proc = proc;
    await waitFor(
      'External Secrets Operator to start its controllers',
      async () => {
        if (!proc.running) throw new FatalStartError(`ESO exited before it was ready:\n${proc.tail(30)}`);
        const r = await request({ url: this.metricsUrl });
        return r.status === 200 && /workqueue_depth\{[^}]*name="externalsecret"/.test(r.text);
      },
      120_000,
      100,
    );
    this.bench.peerPids.eso = proc.pid;
    return performance.now() - t0;
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    this.proc = undefined;
    this.bench.peerPids.eso = undefined;
  }

  tail(lines = 20): string {
    return this.proc?.tail(lines) ?? '';
  }

  async scrape(): Promise<Scrape> {
    const res = await fetch(this.metricsUrl, { signal: AbortSignal.timeout(30_000) });
    return new Scrape(parseProm(await res.text()), performance.now());
  }

  stats(): ProcStats | undefined {
    return procStats(this.proc?.pid);
  }

  /** Reconcile passes of the ExternalSecret controller so far. */
  static reconciles(s: Scrape): number {
    return s.sum('controller_runtime_reconcile_total', { controller: 'externalsecret' });
  }

  /** Requests ESO's process sent the apiserver (client-go's `rest_client_requests_total`), and its writes. */
  static kubeRequests(s: Scrape): { total: number; writes: number; byMethod: Record<string, number> } {
    const byMethod: Record<string, number> = {};
    for (const x of s.samples)
      if (x.name === 'rest_client_requests_total')
        byMethod[x.labels.method ?? ''] = (byMethod[x.labels.method ?? ''] ?? 0) + x.value;
    const total = Object.values(byMethod).reduce((a, b) => a + b, 0);
    const writes = ['POST', 'PUT', 'PATCH', 'DELETE'].reduce((a, m) => a + (byMethod[m] ?? 0), 0);
    return { total, writes, byMethod };
  }

  /** Waits until the ExternalSecret controller is idle (nothing queued or running, no pass for `quietMs`). */
  async settled(timeoutMs = 600_000, quietMs = 750): Promise<Scrape> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let quietSince = performance.now();
    for (;;) {
      const s = await this.scrape();
      const n = EsoPeer.reconciles(s);
      const busy =
        s.sum('workqueue_depth', { name: 'externalsecret' }) +
        s.sum('controller_runtime_active_workers', { controller: 'externalsecret' });
      if (n !== last || busy > 0) {
        last = n;
        quietSince = performance.now();
      } else if (performance.now() - quietSince >= quietMs) {
        return s;
      }
      if (Date.now() > deadline) throw new Error(`ESO did not settle within ${timeoutMs / 1000} s`);
      await sleep(250);
    }
  }

  /** An ExternalSecret whose Secret `name` holds one credential of `generator`, refreshed every `refreshInterval`. */
  async create(name: string, generator: string, refreshInterval: string): Promise<void> {
    await this.bench.kube.create(EXTERNAL_SECRETS, ESO_NS, {
      apiVersion: 'external-secrets.io/v1',
      kind: 'ExternalSecret',
      metadata: { name, namespace: ESO_NS, labels: { 'bench.leasehold.dev/generator': generator } },
      spec: {
        refreshInterval,
        target: { name, creationPolicy: 'Owner' },
        dataFrom: [
          {
            sourceRef: {
              generatorRef: {
                apiVersion: 'generators.external-secrets.io/v1alpha1',
                kind: 'VaultDynamicSecret',
                name: generator,
              },
            },
          },
        ],
      },
    } as KubernetesObject);
    this.created++;
  }

  /** Resolves when the Secret of `name` holds a credential. */
  secretReady(name: string): Promise<number> {
    return this.secrets.when(name, (s) => s.hasCredential);
  }

  /** ExternalSecrets whose Secret holds a credential. */
  readyCount(): number {
    return this.secrets.count((s) => s.hasCredential);
  }

  nextName(kind: string): string {
    return `${PREFIX}${kind}-${this.secrets.states.size}-${Math.random().toString(36).slice(2, 7)}`;
  }

  /** Creates `names` (`parallel` creates in flight) and waits until each Secret holds a credential. */
  async createReady(
    names: readonly string[],
    generator: string,
    refreshInterval: string,
    parallel = 16,
    timeoutMs = 1_800_000,
  ): Promise<Map<string, number>> {
    const times = new Map<string, number>();
    const all = Promise.all(names.map(async (n) => times.set(n, await this.secretReady(n))));
    await pool(names, parallel, (n) => this.create(n, generator, refreshInterval));
    await within(
      all,
      timeoutMs,
      () => `${names.length - times.size} of ${names.length} ESO Secrets not ready\n${this.tail(10)}`,
    );
    return times;
  }

  /** Deletes every ExternalSecret of a generator (their Secrets go with them: owner references). */
  async deleteAll(generator: string): Promise<void> {
    await this.bench.kubectl([
      '-n',
      ESO_NS,
      'delete',
      'externalsecrets.external-secrets.io',
      '-l',
      `bench.leasehold.dev/generator=${generator}`,
      '--wait=false',
    ]);
  }

  /** Logs in to PostgreSQL with the credential in ESO's Secret `name`. */
  async credentialWorks(name: string): Promise<boolean> {
    const s = await this.bench.kube.get<KubernetesObject & { data?: Record<string, string> }>(SECRETS, ESO_NS, name);
    return loginWorks(
      this.env,
      Buffer.from(s.data?.username ?? '', 'base64').toString(),
      Buffer.from(s.data?.password ?? '', 'base64').toString(),
    );
  }

  close(): void {
    this.secrets.stop();
  }
}

// ---- Vault's audit log: calls per client --------------------------------------------------------------------

export interface VaultCalls {
  /** Every request ESO's token made (responses in the audit log). */
  eso: number;
  /** Of those, credentials issued (`<mount>/creds/<role>` reads). */
  esoIssued: number;
  /** Every request made with any other token than root's and ESO's: Leasehold's login and issuer tokens. */
  leasehold: number;
  leaseholdIssued: number;
}

/** A file audit device on the stack's Vault, read incrementally: calls by client token (display name). */
export class VaultAudit {
  private readonly file: string;
  private offset = 0;
  private rest = '';
  private readonly totals: VaultCalls = { eso: 0, esoIssued: 0, leasehold: 0, leaseholdIssued: 0 };

  constructor(private readonly env: Env) {
    this.file = path.join(env.dir, 'vault-audit-peer.log');
  }

  async enable(): Promise<void> {
    await vaultRequest(this.env, 'PUT', 'sys/audit/bench-peer', { type: 'file', options: { file_path: this.file } });
  }

  async disable(): Promise<void> {
    await vaultRequest(this.env, 'DELETE', 'sys/audit/bench-peer', undefined, { allowError: true });
  }

  /** The totals up to now (reads what the file gained since the last call). */
  read(): VaultCalls {
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.file, 'r');
      const size = fs.fstatSync(fd).size;
      if (size > this.offset) {
        const buf = Buffer.alloc(size - this.offset);
        fs.readSync(fd, buf, 0, buf.length, this.offset);
        this.offset = size;
        const lines = (this.rest + buf.toString('utf8')).split('\n');
        this.rest = lines.pop() ?? '';
        for (const line of lines) this.count(line);
      }
    } catch {
      // no file yet: no calls
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    return { ...this.totals };
  }

  private count(line: string): void {
    if (!line) return;
    let e: { type?: string; auth?: { display_name?: string }; request?: { path?: string; operation?: string } };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      return;
    }
    if (e.type !== 'response') return;
    const who = e.auth?.display_name ?? '';
    // An issue is a read of `<mount>/creds/<role>` (not a lease lookup such as sys/leases/lookup/<mount>/creds/…).
    const issued = e.request?.operation === 'read' && /^(?!sys\/)[^/]+\/creds\//.test(e.request.path ?? '') ? 1 : 0;
    if (who === ESO_AUDIT_NAME) {
      this.totals.eso++;
      this.totals.esoIssued += issued;
    } else if (who !== 'root' && who !== '') {
      this.totals.leasehold++;
      this.totals.leaseholdIssued += issued;
    }
  }

  static delta(a: VaultCalls, b: VaultCalls): VaultCalls {
    return {
      eso: b.eso - a.eso,
      esoIssued: b.esoIssued - a.esoIssued,
      leasehold: b.leasehold - a.leasehold,
      leaseholdIssued: b.leaseholdIssued - a.leaseholdIssued,
    };
  }
}

// ---- PostgreSQL: database users created -----------------------------------------------------------------------

/**
 * Database users Vault created while it watched: the roles present at each poll that were not there at the
 * start, split by whose token issued them (Vault names a user `v-<token display name, 8>-<role, 8>-…`). Users
 * live at least a lease's TTL, so polling every few seconds sees every one.
 */
export class PgRolesWatch {
  private readonly seen = new Set<string>();
  private readonly initial = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private client: pg.Client | undefined;
  private polling: Promise<void> | undefined;

  constructor(private readonly env: Env) {}

  private async names(): Promise<string[]> {
    const r = await this.client!.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'");
    return r.rows.map((x) => x.rolname);
  }

  async start(everyMs: number): Promise<void> {
    this.client = new pg.Client({ connectionString: this.env.postgres.url });
    await this.client.connect();
    for (const n of await this.names()) this.initial.add(n);
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, everyMs);
  }

  private async poll(): Promise<void> {
    for (const n of await this.names().catch(() => [])) if (!this.initial.has(n)) this.seen.add(n);
  }

  /** Stops polling (after a last poll): new users by issuer. */
  async stop(): Promise<{ eso: number; leasehold: number }> {
    clearInterval(this.timer);
    await this.polling;
    await this.poll();
    await this.client?.end().catch(() => undefined);
    const esoPrefix = `v-${ESO_AUDIT_NAME.slice(0, 8)}-`;
    let eso = 0;
    for (const n of this.seen) if (n.startsWith(esoPrefix)) eso++;
    return { eso, leasehold: this.seen.size - eso };
  }
}
