// Scenario 5, restart: with N ready requests, the operator is stopped (SIGTERM) and started again. Measured
// from the start of the new process: /readyz (caches synced), and "every request reconciled": the request
// controller has finished at least as many reconciles as there are requests, with nothing queued and no
// worker busy (every key is queued by the initial list before the workers start, so a drained queue means
// each was reconciled). New leases: Vault's lease list under <mount>/creds/<role>/ (root token) before the
// stop and after the new process has settled: must be unchanged.
import { mb, secs } from '../format.ts';
import { DEFAULT_CONCURRENCY, counterDelta, sleep, type Scrape } from '../harness.ts';
import { round } from '../stats.ts';
import { measureMemory } from './memory.ts';
import type { ScenarioContext, ScenarioResult } from './types.ts';

export async function restart(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { bench, sizes } = ctx;
  const role = bench.roles.long;
  await bench.populate(sizes.restart);
  // The long-running process's memory at this population, before it goes (the memory scenario reports it).
  const longRunning = await measureMemory(bench, 'long-running');
  const started = new Date();
  const total = bench.requests.states.size;
  const ready = bench.readyCount(role.name);
  const before = new Set([
    ...(await bench.vault.leases(role.vaultRole)),
    ...(await bench.vault.leases(bench.roles.short.vaultRole)),
  ]);
  await bench.stopOperator();
  const cpu0 = bench.cpuSnapshot();
  const t0 = performance.now();
  const startMs = await bench.startOperator(DEFAULT_CONCURRENCY);
  const readyzMs = performance.now() - t0;
  let reconciledMs: number;
  for (;;) {
    const s: Scrape = await bench.scrape();
    const reconciles = s.sum('controller_runtime_reconcile_total', { controller: 'databaseaccessrequest' });
    const busy =
      s.sum('workqueue_depth', { name: 'databaseaccessrequest' }) +
      s.sum('controller_runtime_active_workers', { controller: 'databaseaccessrequest' });
    if (reconciles >= total && busy === 0) {
      reconciledMs = s.at - t0;
      break;
    }
    if (performance.now() - t0 > 1_800_000)
      throw new Error(`restart: only ${reconciles}/${total} reconciles after 30 min`);
    await sleep(200);
  }
  const cpu = bench.cpuUsage(cpu0);
  const rss = bench.operatorStats()?.rssBytes ?? NaN;
  const settledScrape = await bench.settled();
  const fresh0 = await measureMemory(bench, 'restarted');
  ctx.memory.set(longRunning.readyRequests, {
    ...longRunning,
    freshRssBytes: fresh0.rssBytes,
    freshHeapUsedBytes: fresh0.heapUsedBytes,
  });
  await sleep(1000);
  const after = [
    ...(await bench.vault.leases(role.vaultRole)),
    ...(await bench.vault.leases(bench.roles.short.vaultRole)),
  ];
  const fresh = after.filter((id) => !before.has(id));
  const gone = [...before].filter((id) => !after.includes(id));
  const vault = counterDelta(undefined, settledScrape, 'vault_requests_total');
  const writes = counterDelta(undefined, settledScrape, 'kube_writes_total');
  const reconciles = counterDelta(undefined, settledScrape, 'controller_runtime_reconcile_total');
  const reconciledS = reconciledMs / 1000;
  return {
    name: 'restart',
    parameters: { readyRequests: ready, requests: total, operatorConcurrency: bench.concurrency },
    startedAt: started.toISOString(),
    wallSeconds: round((Date.now() - started.getTime()) / 1000, 1),
    cpu: { untilReconciled: cpu },
    samples: {},
    summary: {
      readyzMs: round(readyzMs, 1),
      startOperatorMs: round(startMs, 1),
      everyRequestReconciledMs: round(reconciledMs, 1),
      leasesBefore: before.size,
      leasesAfter: after.length,
      newLeases: fresh.length,
      leasesGone: gone.length,
      vaultCallsByLabel: vault,
      kubeWritesByLabel: writes,
      reconcilesByLabel: reconciles,
      rssAfterReconcileBytes: rss,
      rssBeforeRestartBytes: longRunning.rssBytes,
      rssAfterRestartSettledBytes: fresh0.rssBytes,
    },
    targets: [
      {
        what: `restart with ${ready} ready requests: all reconciled`,
        goal: '≤ 30 s',
        value: secs(reconciledS),
        met: reconciledS <= 30,
      },
      { what: 'restart: new leases', goal: '0', value: String(fresh.length), met: fresh.length === 0 },
    ],
    notes: [],
    tables: [
      {
        title: `Restart with ${ready} ready requests (${total} in all)`,
        columns: [
          '/readyz',
          'all reconciled',
          'reconciles/s',
          'new leases',
          'Vault calls',
          'Kubernetes writes',
          'RSS before',
          'RSS after',
        ],
        rows: [
          [
            secs(readyzMs / 1000),
            secs(reconciledS),
            (total / reconciledS).toFixed(0),
            fresh.length,
            Object.values(vault).reduce((a, b) => a + b, 0),
            Object.values(writes).reduce((a, b) => a + b, 0),
            mb(longRunning.rssBytes),
            mb(fresh0.rssBytes),
          ],
        ],
      },
    ],
  };
}
