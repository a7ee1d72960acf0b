// Scenario 2, burst: for each --concurrency value, the operator is (re)started with it, N requests are created
// and left waiting for approval, then all are approved at once (32 approval writes in flight). Measured from
// the first approval write to the last request with its lease in status and its RoleBinding: grants per
// second. Then the raw baseline: N `creds/<role>` reads of the same Vault role, `concurrency` at a time.
import { round, roundSummary, summarize } from '../stats.ts';
import { ms, perSec, ratio, secs } from '../format.ts';
import type { CpuUsage, Work } from '../harness.ts';
import type { ScenarioContext, ScenarioResult, Target } from './types.ts';
import { pool } from '../harness.ts';

interface Run {
  concurrency: number;
  requests: number;
  /** Sending every approval took this long (they are part of the measured time). */
  approvalsSentMs: number;
  allReadyMs: number;
  grantsPerSecond: number;
  rawMs: number;
  rawPerSecond: number;
  ratio: number;
  perRequestMs: ReturnType<typeof summarize>;
  rawPerCallMs: ReturnType<typeof summarize>;
  credentialsChecked: number;
  credentialsWorking: number;
  /** Everything the apiserver served (the approvals included) and the operator's writes and Vault calls, during the run. */
  work: Work;
  /**
   * What one grant costs the apiserver, as the issue counts it: the approval write (the benchmark's) plus every
   * request the operator sent (its kube_requests_total, reads and writes; watches aside), per grant.
   */
  requestsPerGrant: number;
  /** Everything the apiserver served per grant (its apiserver_request_total, every client: kube-controller-manager's too). */
  apiserverRequestsPerGrant: number;
  /** DatabaseAccessRequest reconcile passes per grant (each of the operator's own writes to a request wakes one). */
  passesPerGrant: number;
  /** The operator's CPU (user + system, every thread, from /proc) from the first approval to the last grant, per grant. */
  operatorCpuMsPerGrant: number;
  apiserverCpuMsPerGrant: number;
}

export async function burst({ bench, sizes }: ScenarioContext): Promise<ScenarioResult> {
  const n = sizes.burst;
  const role = bench.roles.long;
  const started = new Date();
  const runs: Run[] = [];
  const cpu: Record<string, CpuUsage> = {};
  const samples: Record<string, unknown> = {};
  // The operator's current --concurrency first (one restart fewer); later scenarios restart it as they need.
  const order = [...sizes.concurrency].sort(
    (a, b) => Number(b === bench.concurrency) - Number(a === bench.concurrency),
  );
  for (const c of order) {
    if (bench.concurrency !== c) {
      bench.log(`  burst: restarting the operator with --concurrency=${c}`);
      await bench.restartOperator(c);
    }
    const names = Array.from({ length: n }, (_, i) => `burst-c${c}-${i}`);
    await bench.createWaiting(names, role.name);
    await bench.settled();
    const mark = await bench.workMark();
    const cpu0 = bench.cpuSnapshot();
    const mono0 = bench.monotonicUs();
    const t0 = performance.now();
    const done = bench.waitAllReady(names, 1_800_000, `burst c=${c}`);
    const secretTimes = new Map<string, number>();
    const secretsDone = Promise.all(names.map(async (nm) => secretTimes.set(nm, await bench.secretReady(nm))));
    const sent = await bench.approveAll(names, 32);
    const approvalsSentMs = performance.now() - t0;
    const readyTimes = await done;
    await secretsDone;
    const allReadyMs = Math.max(...readyTimes.values()) - t0;
    const opCpu = bench.cpuUsage(cpu0);
    bench.profileWindow(`burst-c${c}`, mono0, n);
    cpu[`operator c=${c}`] = opCpu;
    await bench.settled();
    const work = await bench.workSince(mark);
    const perRequest = names.map((nm) => secretTimes.get(nm)! - sent.get(nm)!);

    // The same number of raw issues, `c` at a time.
    const cpu1 = bench.cpuSnapshot();
    const rawCalls: number[] = [];
    const leases: string[] = [];
    const r0 = performance.now();
    await pool(names, c, async () => {
      const r = await bench.vault.issue(role.vaultRole);
      rawCalls.push(r.ms);
      leases.push(r.leaseId);
    });
    const rawMs = performance.now() - r0;
    cpu[`raw c=${c}`] = bench.cpuUsage(cpu1);
    await bench.vault.revoke(leases);

    // A few of the credentials must work (each check is a PostgreSQL login).
    const checked = names.filter((_, i) => i % Math.max(1, Math.ceil(n / 5)) === 0);
    let working = 0;
    for (const nm of checked) if (await bench.credentialWorks(nm)) working++;

    const run: Run = {
      concurrency: c,
      requests: n,
      approvalsSentMs: round(approvalsSentMs, 1),
      allReadyMs: round(allReadyMs, 1),
      grantsPerSecond: round(n / (allReadyMs / 1000), 2),
      rawMs: round(rawMs, 1),
      rawPerSecond: round(n / (rawMs / 1000), 2),
      ratio: round(n / allReadyMs / (n / rawMs)),
      perRequestMs: roundSummary(summarize(perRequest)),
      rawPerCallMs: roundSummary(summarize(rawCalls)),
      credentialsChecked: checked.length,
      credentialsWorking: working,
      work,
      requestsPerGrant: round((work.operatorKubeRequestsTotal + n) / n, 2),
      apiserverRequestsPerGrant: round(work.apiserverRequestsTotal / n, 1),
      passesPerGrant: round(
        Object.entries(work.operatorReconciles)
          .filter(([k]) => k.includes('controller=databaseaccessrequest'))
          .reduce((a, [, v]) => a + v, 0) / n,
        2,
      ),
      operatorCpuMsPerGrant: round(((opCpu.byComponent.operator ?? NaN) * 1000) / n, 1),
      apiserverCpuMsPerGrant: round(((opCpu.byComponent['kube-apiserver'] ?? NaN) * 1000) / n, 1),
    };
    runs.push(run);
    samples[`c${c}`] = {
      approvalToSecretMs: perRequest.map((x) => round(x, 1)),
      rawIssueMs: rawCalls.map((x) => round(x, 1)),
      readyAtMs: [...readyTimes.values()].map((t) => round(t - t0, 1)).sort((a, b) => a - b),
    };
    bench.log(
      `  burst c=${c}: operator ${perSec(run.grantsPerSecond)} (all ready in ${secs(allReadyMs / 1000)}), raw ${perSec(run.rawPerSecond)}`,
    );
  }
  runs.sort((a, b) => a.concurrency - b.concurrency);

  const targets: Target[] = runs.map((r) => ({
    what: `burst throughput at --concurrency=${r.concurrency}`,
    goal: '≥ 0.8× raw',
    value: `${perSec(r.grantsPerSecond)} vs raw ${perSec(r.rawPerSecond)} = ${ratio(r.ratio)}`,
    met: r.ratio >= 0.8,
  }));
  // The request pipeline's cost per grant: the approval write, one checkpoint, Secret, Role, RoleBinding, the
  // lease record and one Event make 7 requests; 10 ms of operator CPU.
  targets.push({
    what: 'apiserver requests per grant (approval + operator)',
    goal: '≤ 7',
    value: runs.map((r) => `${r.requestsPerGrant} at c=${r.concurrency}`).join(', '),
    met: runs.every((r) => r.requestsPerGrant <= 7),
  });
  targets.push({
    what: 'operator CPU per grant',
    goal: '≤ 10 ms',
    value: runs.map((r) => `${ms(r.operatorCpuMsPerGrant)} at c=${r.concurrency}`).join(', '),
    met: runs.every((r) => r.operatorCpuMsPerGrant <= 10),
  });
  targets.push({
    what: 'burst credentials work',
    goal: 'all checked',
    value: runs.map((r) => `${r.credentialsWorking}/${r.credentialsChecked}`).join(', '),
    met: runs.every((r) => r.credentialsWorking === r.credentialsChecked),
  });
  return {
    name: 'burst',
    parameters: {
      requestsPerRun: n,
      concurrency: sizes.concurrency,
      approvalWritesInFlight: 32,
      vaultRole: role.vaultRole,
    },
    startedAt: started.toISOString(),
    wallSeconds: round((Date.now() - started.getTime()) / 1000, 1),
    cpu,
    samples,
    summary: { runs },
    targets,
    notes: [],
    tables: [
      {
        title: `Burst: ${n} requests approved at once`,
        columns: [
          '--concurrency',
          'approvals sent',
          'all ready',
          'grants/s',
          'per request p50',
          'p99',
          'raw Vault/s',
          'ratio',
          'requests/grant',
          'apiserver, all clients',
          'passes/grant',
          'CPU/grant operator',
          'apiserver',
        ],
        rows: runs.map((r) => [
          r.concurrency,
          ms(r.approvalsSentMs),
          secs(r.allReadyMs / 1000),
          perSec(r.grantsPerSecond),
          ms(r.perRequestMs.p50),
          ms(r.perRequestMs.p99),
          perSec(r.rawPerSecond),
          ratio(r.ratio),
          r.requestsPerGrant,
          r.apiserverRequestsPerGrant,
          r.passesPerGrant,
          ms(r.operatorCpuMsPerGrant),
          ms(r.apiserverCpuMsPerGrant),
        ]),
      },
    ],
  };
}
