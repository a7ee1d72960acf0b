// Scenario 3, idle: N ready requests (long TTL: no renewal falls due) left alone. From the operator's own
// metrics: Vault requests (vault_requests_total) and Kubernetes writes (kube_writes_total) made during the
// window, expected zero; its CPU seconds from /proc/<pid>/stat; reconciles (a cache resync would show here).
import { mb, secs } from '../format.ts';
import { counterDelta, sleep } from '../harness.ts';
import { round } from '../stats.ts';
import { memoryPointAt } from './memory.ts';
import type { ScenarioContext, ScenarioResult } from './types.ts';

export async function idle(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { bench, sizes } = ctx;
  const n = sizes.idleRequests;
  await bench.populate(n);
  if (sizes.memoryPoints.includes(n)) await memoryPointAt(ctx, n);
  await bench.settled();
  const started = new Date();
  const before = await bench.scrape();
  const proc0 = bench.operatorStats();
  const cpu0 = bench.cpuSnapshot();
  const rss: number[] = [];
  const end = performance.now() + sizes.idleSeconds * 1000;
  while (performance.now() < end) {
    rss.push(bench.operatorStats()?.rssBytes ?? NaN);
    await sleep(Math.min(5000, Math.max(0, end - performance.now())));
  }
  const after = await bench.scrape();
  const proc1 = bench.operatorStats();
  const cpu = bench.cpuUsage(cpu0);
  const vault = counterDelta(before, after, 'vault_requests_total');
  const writes = counterDelta(before, after, 'kube_writes_total');
  const reconciles = counterDelta(before, after, 'controller_runtime_reconcile_total');
  const vaultCalls = Object.values(vault).reduce((a, b) => a + b, 0);
  const kubeWrites = Object.values(writes).reduce((a, b) => a + b, 0);
  const cpuSeconds = proc0 && proc1 ? proc1.cpuSeconds - proc0.cpuSeconds : NaN;
  const promCpu = after.sum('process_cpu_seconds_total') - before.sum('process_cpu_seconds_total');
  const ready = bench.readyCount(bench.roles.long.name);
  return {
    name: 'idle',
    parameters: { readyRequests: ready, seconds: sizes.idleSeconds },
    startedAt: started.toISOString(),
    wallSeconds: round((Date.now() - started.getTime()) / 1000, 1),
    cpu: { window: cpu },
    samples: { rssBytesEvery5s: rss },
    summary: {
      vaultCalls,
      kubeWrites,
      vaultCallsByLabel: vault,
      kubeWritesByLabel: writes,
      reconcilesByLabel: reconciles,
      operatorCpuSeconds: round(cpuSeconds),
      operatorCpuSecondsProm: round(promCpu),
      cpuPercentOfOneCore: round((cpuSeconds / sizes.idleSeconds) * 100, 2),
    },
    targets: [
      {
        what: `idle ${ready} ready requests, ${sizes.idleSeconds} s: Vault calls`,
        goal: '0',
        value: String(vaultCalls),
        met: vaultCalls === 0,
      },
      {
        what: `idle ${ready} ready requests, ${sizes.idleSeconds} s: Kubernetes writes`,
        goal: '0',
        value: String(kubeWrites),
        met: kubeWrites === 0,
      },
    ],
    notes: [
      ...(vaultCalls
        ? [
            `Vault calls in the window: ${Object.entries(vault)
              .map(([k, v]) => `${v} × ${k}`)
              .join(', ')}`,
          ]
        : []),
      ...(kubeWrites
        ? [
            `Kubernetes writes in the window: ${Object.entries(writes)
              .map(([k, v]) => `${v} × ${k}`)
              .join(', ')}`,
          ]
        : []),
      ...(Object.keys(reconciles).length
        ? [
            `reconciles in the window: ${Object.entries(reconciles)
              .map(([k, v]) => `${v} × ${k}`)
              .join(', ')}`,
          ]
        : []),
    ],
    tables: [
      {
        title: `Idle: ${ready} ready requests for ${sizes.idleSeconds} s`,
        columns: ['Vault calls', 'Kubernetes writes', 'reconciles', 'operator CPU', 'CPU % of a core', 'RSS at end'],
        rows: [
          [
            vaultCalls,
            kubeWrites,
            Object.values(reconciles).reduce((a, b) => a + b, 0),
            secs(cpuSeconds),
            `${((cpuSeconds / sizes.idleSeconds) * 100).toFixed(2)} %`,
            mb(rss.at(-1) ?? NaN),
          ],
        ],
      },
    ],
  };
}
