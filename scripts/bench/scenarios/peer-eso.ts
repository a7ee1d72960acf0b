// The peer comparison: Leasehold against External Secrets Operator's VaultDynamicSecret generator on the same
// stack, the same Vault role and PostgreSQL, the same number of credentials, in turns, each reported side by side
// with the ratio Leasehold / ESO:
//   - burst: N credentials at once (Leasehold: N requests approved, 32 writes in flight; ESO: N ExternalSecrets
//     created, 32 in flight): credentials/s until every Secret holds a credential (and, for Leasehold, its
//     RoleBinding exists); per credential, over creation → settled: requests to the apiserver (the controller's
//     own count plus the person's writes), controller CPU from /proc, Vault calls from Vault's audit log;
//   - latency: one at a time, approval (Leasehold) or creation (ESO) → the Secret holding a credential;
//   - memory: RSS of each controller at the same numbers of credentials;
//   - restart: from the process start to every object reconciled; database users created by the restart;
//   - steady state: N credentials on the short-TTL role (ESO's refreshInterval = the lease TTL) watched for a
//     while: Vault calls, database users created, apiserver writes; Leasehold renews, ESO issues anew.
// Every credential is checked by logging in to PostgreSQL (a sample of 50 when there are more than 100).
import { pinnedVersion } from '../../stack/binaries.ts';
import { mb, ms, perSec, ratio, secs } from '../format.ts';
import { DEFAULT_CONCURRENCY, Scrape, groupedDelta, sleep, within, type Bench, type CpuSnapshot } from '../harness.ts';
import { EsoPeer, PgRolesWatch, VaultAudit, type VaultCalls } from '../peers/eso.ts';
import { round, roundSummary, summarize } from '../stats.ts';
import { measureMemory } from './memory.ts';
import type { ScenarioContext, ScenarioResult, Table, Target } from './types.ts';

const LONG_GEN = 'bench-long';
const SHORT_GEN = 'bench-short';

/** What one side spent between two marks, per credential where it says so. */
interface Cost {
  credentials: number;
  wallSeconds: number;
  /** The controller's own requests to the apiserver (watches aside), and the person's writes (create, approve). */
  controllerRequests: number;
  controllerWrites: number;
  personRequests: number;
  requestsPerCredential: number;
  controllerRequestsByKind: Record<string, number>;
  /** Everything the apiserver served in the window (all clients), per credential: a cross-check. */
  apiserverRequestsPerCredential: number;
  cpuMsPerCredential: number;
  apiserverCpuMsPerCredential: number;
  vaultCalls: number;
  vaultCallsPerCredential: number;
  credentialsIssued: number;
  cpu: ReturnType<Bench['cpuUsage']>;
}

interface Mark {
  api: Scrape;
  side: Scrape;
  cpu: CpuSnapshot;
  vault: VaultCalls;
}

function sample<T>(items: readonly T[], n = 50): T[] {
  if (items.length <= 100) return [...items];
  const step = items.length / n;
  return Array.from({ length: n }, (_, i) => items[Math.floor(i * step)]!);
}

const r1 = (x: number) => round(x, 1);
const r2 = (x: number) => round(x, 2);

export async function peerEso(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { bench, sizes } = ctx;
  const started = new Date();
  const eso = new EsoPeer(bench);
  const audit = new VaultAudit(bench.env);
  const notes: string[] = [];
  const targets: Target[] = [];
  const tables: Table[] = [];
  const summary: Record<string, unknown> = {};
  const samples: Record<string, unknown> = {};
  const errors: Array<{ step: string; message: string }> = [];
  const cpuWindows: Record<string, ReturnType<Bench['cpuUsage']>> = {};
  const long = bench.roles.long;
  const short = bench.roles.short;
  const c = DEFAULT_CONCURRENCY;

  const leaseholdScrape = () => bench.scrape();
  const esoScrape = () => eso.scrape();
  const mark = async (side: 'leasehold' | 'eso'): Promise<Mark> => ({
    api: await bench.apiserverScrape(),
    side: await (side === 'leasehold' ? leaseholdScrape() : esoScrape()),
    cpu: bench.cpuSnapshot(),
    vault: audit.read(),
  });
  const costSince = async (side: 'leasehold' | 'eso', m: Mark, n: number, personRequests: number): Promise<Cost> => {
    const cpu = bench.cpuUsage(m.cpu);
    const now = await mark(side);
    const api = groupedDelta(m.api, now.api, 'apiserver_request_total', ['verb', 'resource', 'subresource']);
    const apiTotal = Object.values(api).reduce((a, b) => a + b, 0);
    const vault = VaultAudit.delta(m.vault, now.vault);
    let controllerRequests: number;
    let controllerWrites: number;
    let byKind: Record<string, number>;
    if (side === 'leasehold') {
      byKind = groupedDelta(m.side, now.side, 'kube_requests_total', ['verb', 'resource']);
      controllerRequests = Object.values(byKind).reduce((a, b) => a + b, 0);
      controllerWrites = now.side.sum('kube_writes_total') - m.side.sum('kube_writes_total');
    } else {
      const a = EsoPeer.kubeRequests(m.side);
      const b = EsoPeer.kubeRequests(now.side);
      byKind = Object.fromEntries(
        Object.entries(b.byMethod)
          .map(([k, v]) => [k, v - (a.byMethod[k] ?? 0)] as const)
          .filter(([, v]) => v !== 0),
      );
      controllerRequests = b.total - a.total;
      controllerWrites = b.writes - a.writes;
    }
    const calls = side === 'leasehold' ? vault.leasehold : vault.eso;
    const issued = side === 'leasehold' ? vault.leaseholdIssued : vault.esoIssued;
    const cpuS = cpu.byComponent[side === 'leasehold' ? 'operator' : 'eso'] ?? NaN;
    return {
      credentials: n,
      wallSeconds: cpu.wallSeconds,
      controllerRequests,
      controllerWrites,
      personRequests,
      requestsPerCredential: r2((controllerRequests + personRequests) / n),
      controllerRequestsByKind: byKind,
      apiserverRequestsPerCredential: r2(apiTotal / n),
      cpuMsPerCredential: r2((cpuS * 1000) / n),
      apiserverCpuMsPerCredential: r2(((cpu.byComponent['kube-apiserver'] ?? NaN) * 1000) / n),
      vaultCalls: calls,
      vaultCallsPerCredential: r2(calls / n),
      credentialsIssued: issued,
      cpu,
    };
  };
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!eso.running && name !== 'setup') {
      await eso.start(c).catch(() => undefined);
    }
    const t0 = performance.now();
    bench.log(`  peer eso: ${name}`);
    try {
      await fn();
      bench.log(`  peer eso: ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      errors.push({ step: name, message });
      bench.log(`  peer eso: ${name} failed: ${message}\n  ESO log, last lines:\n${eso.tail(10)}`);
    }
  };
  const rows: Array<Array<string | number>> = [];
  const row = (what: string, l: number, e: number, fmt: (x: number) => string, bound = '') =>
    rows.push([what, fmt(l), fmt(e), ratio(l / e), bound]);
  const target = (what: string, goal: string, value: string, met: boolean | null) =>
    targets.push({ what: `vs ESO: ${what}`, goal, value, met });

  await bench.ensureConcurrency(c);
  let setUp = false;
  await step('setup', async () => {
    await audit.enable();
    await eso.setUp([
      { generator: LONG_GEN, vaultRole: long.vaultRole },
      { generator: SHORT_GEN, vaultRole: short.vaultRole },
    ]);
    setUp = true;
  });
  if (!setUp) {
    await eso.stop().catch(() => undefined);
    eso.close();
    await audit.disable().catch(() => undefined);
    throw new Error(`External Secrets Operator could not be set up: ${errors[0]?.message ?? ''}`);
  }
  const steadyNames: string[] = [];
  try {
    // ---- memory at 0 (before anything of ESO's exists) ----
    const memory: Array<{ credentials: number; leasehold?: number; leaseholdCredentials?: number; eso?: number }> = [];
    const points = [...sizes.memoryPoints].sort((a, b) => a - b);
    const esoRss = async () => {
      await eso.settled();
      const v: number[] = [];
      for (let i = 0; i < 3; i++) {
        if (i) await sleep(500);
        v.push(eso.stats()?.rssBytes ?? NaN);
      }
      return v.sort((a, b) => a - b)[1]!;
    };
    const leaseholdRss = async (n: number): Promise<{ rss?: number; at?: number }> => {
      const known = ctx.memory.get(n);
      if (known) return { rss: known.rssBytes, at: known.readyRequests };
      if (bench.readyCount(long.name) > n) return {};
      await bench.populate(n, 'peer-pop');
      const p = await measureMemory(bench);
      ctx.memory.set(n, p);
      return { rss: p.rssBytes, at: p.readyRequests };
    };
    if (points[0] === 0) {
      await step('memory at 0', async () => {
        const l = await leaseholdRss(0);
        memory.push({ credentials: 0, leasehold: l.rss, leaseholdCredentials: l.at, eso: await esoRss() });
      });
    }

    // ---- latency ----
    if (sizes.latency > 0)
      await step('latency', async () => {
        const n = sizes.latency;
        const lMs: number[] = [];
        const eMs: number[] = [];
        let lOk = 0;
        let eOk = 0;
        await bench.settled();
        for (let i = 0; i < n; i++) {
          const name = `peer-lat-${i}`;
          await bench.createWaiting([name], long.name, 1, 60_000);
          const secret = bench.secretReady(name);
          const t0 = performance.now();
          await bench.approve(name);
          lMs.push((await within(secret, 60_000, () => `Leasehold's Secret for ${name}`)) - t0);
          if (await bench.credentialWorks(name)) lOk++;
          const en = eso.nextName('lat');
          const esecret = eso.secretReady(en);
          const t1 = performance.now();
          await eso.create(en, LONG_GEN, '24h');
          eMs.push((await within(esecret, 60_000, () => `ESO's Secret ${en}\n${eso.tail(10)}`)) - t1);
          if (await eso.credentialWorks(en)) eOk++;
        }
        const l = summarize(lMs);
        const e = summarize(eMs);
        samples.latency = { leaseholdApprovalToSecretMs: lMs.map(r2), esoCreationToSecretMs: eMs.map(r2) };
        summary.latency = {
          credentials: n,
          leasehold: { ...roundSummary(l), credentialsWorking: lOk },
          eso: { ...roundSummary(e), credentialsWorking: eOk },
          ratio: { p50: r2(l.p50 / e.p50), p99: r2(l.p99 / e.p99) },
        };
        row(
          `latency p50 (${n} one at a time)`,
          l.p50,
          e.p50,
          ms,
          'round trips: approval write + checkpoint + Vault + Secret',
        );
        row('latency p99', l.p99, e.p99, ms);
        notes.push(`latency: ${lOk}/${n} Leasehold and ${eOk}/${n} ESO credentials log in`);
      });

    // ---- burst ----
    if (sizes.burst > 0)
      await step('burst', async () => {
        const n = sizes.burst;
        await bench.settled();
        // Leasehold: requests created and waiting, then all approved at once.
        const names = Array.from({ length: n }, (_, i) => `peer-burst-${i}`);
        const lm = await mark('leasehold');
        const mono0 = bench.monotonicUs();
        await bench.createWaiting(names, long.name, 16, 600_000);
        const ready = Promise.all(
          names.map(async (x) => Math.max(...(await Promise.all([bench.secretReady(x), bench.granted(x)])))),
        );
        const t0 = performance.now();
        await bench.approveAll(names, 32);
        const lTimes = await within(ready, 1_800_000, () => bench.stuck(names, (s) => !!s?.ready));
        const lSeconds = (Math.max(...lTimes) - t0) / 1000;
        await bench.settled();
        const lCost = await costSince('leasehold', lm, n, 2 * n);
        bench.profileWindow('peer-burst', mono0, n);
        cpuWindows.burstLeasehold = lCost.cpu;
        let lOk = 0;
        for (const x of sample(names)) if (await bench.credentialWorks(x)) lOk++;
        // ESO: ExternalSecrets created at once.
        await eso.settled();
        const enames = Array.from({ length: n }, () => eso.nextName('burst'));
        const em = await mark('eso');
        const t1 = performance.now();
        const eTimes = await eso.createReady(enames, LONG_GEN, '24h', 32);
        const eSeconds = (Math.max(...eTimes.values()) - t1) / 1000;
        await eso.settled();
        const eCost = await costSince('eso', em, n, n);
        cpuWindows.burstEso = eCost.cpu;
        let eOk = 0;
        const checked = sample(enames);
        for (const x of checked) if (await eso.credentialWorks(x)) eOk++;
        const lRate = n / lSeconds;
        const eRate = n / eSeconds;
        summary.burst = {
          credentials: n,
          concurrency: c,
          leasehold: { seconds: r2(lSeconds), credentialsPerSecond: r1(lRate), ...lCost, credentialsWorking: lOk },
          eso: { seconds: r2(eSeconds), credentialsPerSecond: r1(eRate), ...eCost, credentialsWorking: eOk },
          credentialsChecked: checked.length,
          ratio: {
            credentialsPerSecond: r2(lRate / eRate),
            cpuMsPerCredential: r2(lCost.cpuMsPerCredential / eCost.cpuMsPerCredential),
            requestsPerCredential: r2(lCost.requestsPerCredential / eCost.requestsPerCredential),
            vaultCallsPerCredential: r2(lCost.vaultCallsPerCredential / eCost.vaultCallsPerCredential),
          },
        };
        row(
          `burst credentials/s (${n} at once, c=${c})`,
          lRate,
          eRate,
          perSec,
          'CPU: 2 shared cores, mostly the apiserver',
        );
        row(
          '  apiserver requests/credential',
          lCost.requestsPerCredential,
          eCost.requestsPerCredential,
          (x) => x.toFixed(2),
          "controller's own + the person's writes",
        );
        row(
          '  apiserver requests/credential, all clients',
          lCost.apiserverRequestsPerCredential,
          eCost.apiserverRequestsPerCredential,
          (x) => x.toFixed(2),
        );
        row(
          '  controller CPU ms/credential',
          lCost.cpuMsPerCredential,
          eCost.cpuMsPerCredential,
          (x) => x.toFixed(1),
          '/proc, creation → settled',
        );
        row(
          '  apiserver CPU ms/credential',
          lCost.apiserverCpuMsPerCredential,
          eCost.apiserverCpuMsPerCredential,
          (x) => x.toFixed(1),
        );
        row(
          '  Vault calls/credential',
          lCost.vaultCallsPerCredential,
          eCost.vaultCallsPerCredential,
          (x) => x.toFixed(2),
          "Vault's audit log",
        );
        target(
          'burst credentials/s',
          '≥ 1.0× ESO',
          `${perSec(lRate)} vs ${perSec(eRate)} = ${ratio(lRate / eRate)}`,
          lRate / eRate >= 1,
        );
        target(
          'operator CPU per credential',
          '≤ 1.0× ESO',
          `${lCost.cpuMsPerCredential} vs ${eCost.cpuMsPerCredential} ms = ${ratio(lCost.cpuMsPerCredential / eCost.cpuMsPerCredential)}`,
          lCost.cpuMsPerCredential <= eCost.cpuMsPerCredential,
        );
        target(
          'apiserver requests per credential',
          '≤ 1.5× ESO',
          `${lCost.requestsPerCredential} vs ${eCost.requestsPerCredential} = ${ratio(lCost.requestsPerCredential / eCost.requestsPerCredential)}`,
          lCost.requestsPerCredential <= 1.5 * eCost.requestsPerCredential,
        );
        notes.push(
          `burst: ${lOk}/${checked.length} Leasehold and ${eOk}/${checked.length} ESO credentials checked log in`,
        );
      });

    // ---- memory ----
    await step('memory', async () => {
      for (const p of points) {
        if (p === 0) continue;
        const l = await leaseholdRss(p);
        const have = eso.readyCount();
        if (have < p) {
          bench.log(`  peer eso: ESO ${have} → ${p} credentials`);
          for (let left = p - have; left > 0; left -= 1000) {
            const names = Array.from({ length: Math.min(1000, left) }, () => eso.nextName('mem'));
            await eso.createReady(names, LONG_GEN, '24h', 16);
          }
        }
        memory.push({ credentials: p, leasehold: l.rss, leaseholdCredentials: l.at, eso: await esoRss() });
      }
      summary.memory = memory.map((m) => ({ ...m, ratio: m.leasehold && m.eso ? r2(m.leasehold / m.eso) : null }));
      for (const m of memory)
        row(
          `RSS at ${m.credentials}${m.leaseholdCredentials !== undefined && m.leaseholdCredentials !== m.credentials ? ` (Leasehold ${m.leaseholdCredentials})` : ''}`,
          m.leasehold ?? NaN,
          m.eso ?? NaN,
          mb,
          m.credentials === 0 ? 'fixed cost: client-node generated API vs Go binary' : '',
        );
      const top = memory.filter((m) => m.leasehold && m.eso).at(-1);
      if (top)
        target(
          `RSS at ${top.credentials}`,
          "≤ ESO's (at 5,000)",
          `${mb(top.leasehold!)} vs ${mb(top.eso!)} = ${ratio(top.leasehold! / top.eso!)}`,
          top.credentials >= 5000 ? top.leasehold! <= top.eso! : null,
        );
    });

    // ---- restart ----
    await step('restart', async () => {
      const restartOne = async (side: 'leasehold' | 'eso') => {
        const count = side === 'leasehold' ? bench.requests.states.size : eso.created;
        const users = new PgRolesWatch(bench.env);
        await users.start(1000);
        const v0 = audit.read();
        if (side === 'leasehold') await bench.stopOperator();
        else await eso.stop();
        const cpu0 = bench.cpuSnapshot();
        const t0 = performance.now();
        if (side === 'leasehold') await bench.startOperator(c);
        else await eso.start(c);
        const startMs = performance.now() - t0;
        // Every object reconciled at least once and nothing queued.
        let doneAt: number;
        const deadline = Date.now() + 900_000;
        for (;;) {
          const s = await (side === 'leasehold' ? leaseholdScrape() : esoScrape());
          const controller = side === 'leasehold' ? 'databaseaccessrequest' : 'externalsecret';
          const n = s.sum('controller_runtime_reconcile_total', { controller });
          const busy =
            s.sum('workqueue_depth', { name: controller }) + s.sum('controller_runtime_active_workers', { controller });
          if (n >= count && busy === 0) {
            doneAt = performance.now();
            break;
          }
          if (Date.now() > deadline) throw new Error(`${side}: ${n} of ${count} reconciled after 900 s`);
          await sleep(100);
        }
        const cpu = bench.cpuUsage(cpu0);
        await sleep(5000); // anything a pass started late
        const created = await users.stop();
        const vault = VaultAudit.delta(v0, audit.read());
        return {
          objects: count,
          startSeconds: r2(startMs / 1000),
          reconciledSeconds: r2((doneAt - t0) / 1000),
          newDatabaseUsers: side === 'leasehold' ? created.leasehold : created.eso,
          vaultCalls: side === 'leasehold' ? vault.leasehold : vault.eso,
          credentialsIssued: side === 'leasehold' ? vault.leaseholdIssued : vault.esoIssued,
          cpuSeconds: cpu.byComponent[side === 'leasehold' ? 'operator' : 'eso'] ?? NaN,
        };
      };
      await bench.settled();
      await eso.settled();
      const l = await restartOne('leasehold');
      const e = await restartOne('eso');
      summary.restart = {
        leasehold: l,
        eso: e,
        ratio: { reconciledSeconds: r2(l.reconciledSeconds / e.reconciledSeconds) },
      };
      row(
        `restart: all reconciled (${l.objects} / ${e.objects} objects)`,
        l.reconciledSeconds,
        e.reconciledSeconds,
        secs,
        'one list, one pass each, no calls',
      );
      row('  new database users by the restart', l.newDatabaseUsers, e.newDatabaseUsers, String);
      target(
        'restart: new database users',
        '0 each',
        `Leasehold ${l.newDatabaseUsers}, ESO ${e.newDatabaseUsers}`,
        l.newDatabaseUsers === 0,
      );
    });

    // ---- steady state ----
    if (sizes.steadyRequests > 0 && sizes.steadySeconds > 0)
      await step('steady', async () => {
        const n = sizes.steadyRequests;
        const ttl = sizes.renewalTtlSeconds;
        const window = sizes.steadySeconds;
        bench.log(`  peer eso: steady state: ${n} credentials each, TTL ${ttl} s, watched ${window} s`);
        for (let i = 0; i < n; i++) steadyNames.push(`peer-steady-${i}`);
        await bench.createWaiting(steadyNames, short.name, 16, 900_000);
        await bench.approveAll(steadyNames, 16);
        await bench.waitAllReady(steadyNames, 1_800_000, 'steady (Leasehold)');
        const enames = Array.from({ length: n }, () => eso.nextName('steady'));
        await eso.createReady(enames, SHORT_GEN, `${ttl}s`, 16);
        const users = new PgRolesWatch(bench.env);
        await users.start(Math.max(1000, Math.min(5000, (ttl * 1000) / 3)));
        const lm = await mark('leasehold');
        const em = { ...lm, side: await esoScrape() };
        const t0 = Date.now();
        while (Date.now() - t0 < window * 1000) {
          await sleep(Math.min(60_000, window * 1000 - (Date.now() - t0)));
          bench.log(`  steady: ${Math.round((Date.now() - t0) / 1000)}/${window} s`);
        }
        const created = await users.stop();
        const l = await costSince('leasehold', lm, n, 0);
        const e = await costSince('eso', em, n, 0);
        cpuWindows.steady = l.cpu;
        // A sample of logins at the end of the window: does every Secret still hold a working credential?
        let lOk = 0;
        let eOk = 0;
        const lCheck = sample(steadyNames, 20);
        const eCheck = sample(enames, 20);
        for (const x of lCheck) if (await bench.credentialWorks(x)) lOk++;
        for (const x of eCheck) if (await eso.credentialWorks(x)) eOk++;
        const perHour = (x: number) => r1((x * 3600) / l.wallSeconds);
        const side = (x: Cost, users: number, ok: number, checked: number) => ({
          vaultCalls: x.vaultCalls,
          credentialsIssued: x.credentialsIssued,
          newDatabaseUsers: users,
          newDatabaseUsersPerHour: perHour(users),
          vaultCallsPerHour: perHour(x.vaultCalls),
          apiserverWrites: x.controllerWrites,
          apiserverWritesPerHour: perHour(x.controllerWrites),
          controllerRequests: x.controllerRequests,
          cpuSeconds: x.cpu.byComponent[x === l ? 'operator' : 'eso'] ?? NaN,
          credentialsWorkingAtEnd: `${ok}/${checked}`,
        });
        summary.steady = {
          credentials: n,
          ttlSeconds: ttl,
          esoRefreshInterval: `${ttl}s`,
          windowSeconds: r1(l.wallSeconds),
          leasehold: side(l, created.leasehold, lOk, lCheck.length),
          eso: side(e, created.eso, eOk, eCheck.length),
          ratio: {
            vaultCalls: r2(l.vaultCalls / e.vaultCalls),
            apiserverWrites: r2(l.controllerWrites / e.controllerWrites),
          },
        };
        row(
          `steady ${n} × TTL ${ttl} s, ${window} s: Vault calls/h`,
          perHour(l.vaultCalls),
          perHour(e.vaultCalls),
          (x) => x.toFixed(0),
          'Leasehold renews at 2/3 of the term; ESO re-issues every TTL',
        );
        row(
          '  new database users/h',
          perHour(created.leasehold),
          perHour(created.eso),
          (x) => x.toFixed(0),
          'pg_roles polled',
        );
        row('  apiserver writes/h', perHour(l.controllerWrites), perHour(e.controllerWrites), (x) => x.toFixed(0));
        row('  controller CPU s', l.cpu.byComponent.operator ?? NaN, e.cpu.byComponent.eso ?? NaN, (x) => x.toFixed(1));
        target(
          'steady: new database users per hour',
          '0 (renewal)',
          `Leasehold ${perHour(created.leasehold)}/h vs ESO ${perHour(created.eso)}/h`,
          created.leasehold === 0,
        );
        target(
          'steady: Vault calls',
          '≤ 0.5× ESO',
          `${l.vaultCalls} vs ${e.vaultCalls} = ${ratio(l.vaultCalls / e.vaultCalls)}`,
          l.vaultCalls <= 0.5 * e.vaultCalls,
        );
        notes.push(
          `steady: at the end of the window ${lOk}/${lCheck.length} Leasehold and ${eOk}/${eCheck.length} ESO credentials checked log in`,
        );
      });
  } finally {
    // The steady state's short leases would keep renewing (and re-issuing) under the scenarios that follow.
    if (ctx.more) await eso.deleteAll(SHORT_GEN).catch(() => undefined);
    for (let i = 0; ctx.more && i < steadyNames.length; i += 200)
      await bench
        .kubectl(['-n', 'demo', 'delete', 'databaseaccessrequests', '--wait=false', ...steadyNames.slice(i, i + 200)])
        .catch(() => undefined);
    await eso.stop().catch(() => undefined);
    eso.close();
    await audit.disable().catch(() => undefined);
  }
  for (const e of errors) notes.push(`${e.step} failed: ${e.message}`);
  tables.push({
    title: `Leasehold vs External Secrets Operator ${esoVersion()} (same stack, Vault role, PostgreSQL; --concurrency ${c} / --concurrent ${c})`,
    columns: ['', 'Leasehold', 'ESO', 'Leasehold/ESO', 'bound by'],
    rows,
  });
  summary.errors = errors;
  return {
    name: 'peer-eso',
    parameters: {
      latency: sizes.latency,
      burst: sizes.burst,
      memoryPoints: sizes.memoryPoints,
      steadyRequests: sizes.steadyRequests,
      steadySeconds: sizes.steadySeconds,
      ttlSeconds: sizes.renewalTtlSeconds,
      concurrency: c,
      esoVersion: esoVersion(),
      vaultRole: long.vaultRole,
    },
    startedAt: started.toISOString(),
    wallSeconds: r1((Date.now() - started.getTime()) / 1000),
    cpu: cpuWindows,
    samples,
    summary,
    targets,
    notes,
    tables,
  };
}

/** The ESO version scripts/go/eso pins. */
function esoVersion(): string {
  return `v${pinnedVersion('eso')}`;
}
