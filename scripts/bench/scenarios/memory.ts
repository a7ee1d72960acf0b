// Scenario 4, memory: the operator's RSS (from /proc/<pid>/status) with 0, 1,000 and 5,000 ready requests (each
// with its Secret, Role and RoleBinding in the operator's caches), measured once the operator is idle: the
// median of three readings a second apart, with V8's heap figures from its own metrics alongside. Points
// are collected as the population grows (other scenarios reuse it); this scenario fills in what is missing.
import { mb } from '../format.ts';
import { NS, sleep, type Bench } from '../harness.ts';
import { round } from '../stats.ts';
import type { MemoryPoint, ScenarioContext, ScenarioResult } from './types.ts';

export async function measureMemory(bench: Bench, label?: string): Promise<MemoryPoint> {
  await bench.settled();
  const rss: number[] = [];
  let last;
  for (let i = 0; i < 3; i++) {
    if (i) await sleep(500);
    rss.push(bench.operatorStats()?.rssBytes ?? NaN);
    last = await bench.scrape();
  }
  rss.sort((a, b) => a - b);
  await bench.heapSnapshot(`${label ?? 'memory'}-${bench.readyCount(bench.roles.long.name)}-ready`);
  return {
    readyRequests: bench.readyCount(bench.roles.long.name),
    requests: bench.requests.states.size,
    rssBytes: rss[1]!,
    heapUsedBytes: last!.sum('nodejs_heap_size_used_bytes'),
    heapTotalBytes: last!.sum('nodejs_heap_size_total_bytes'),
    externalBytes: last!.sum('nodejs_external_memory_bytes'),
    at: new Date().toISOString(),
  };
}

/** Measures at `ready` ready requests unless a point is already there. */
export async function memoryPointAt(ctx: ScenarioContext, ready: number): Promise<void> {
  if (ctx.memory.has(ready)) return;
  await ctx.bench.populate(ready);
  const p = await measureMemory(ctx.bench);
  ctx.memory.set(ready, p);
  ctx.bench.log(`  memory: RSS ${mb(p.rssBytes)} with ${p.readyRequests} ready requests in ${NS}`);
}

export async function memory(ctx: ScenarioContext): Promise<ScenarioResult> {
  const started = new Date();
  const points = [...ctx.sizes.memoryPoints].sort((a, b) => a - b);
  for (const n of points) {
    if (!ctx.memory.has(n) && ctx.bench.readyCount(ctx.bench.roles.long.name) > n) {
      ctx.bench.log(`  memory: ${n} was passed before this scenario ran; measuring at the current count instead`);
      continue;
    }
    await memoryPointAt(ctx, n);
  }
  let top = [...ctx.memory.values()].sort((a, b) => a.readyRequests - b.readyRequests).at(-1);
  if (top && top.freshRssBytes === undefined && top.readyRequests > 0) {
    await ctx.bench.restartOperator(ctx.bench.concurrency);
    const fresh = await measureMemory(ctx.bench);
    top = { ...top, freshRssBytes: fresh.rssBytes, freshHeapUsedBytes: fresh.heapUsedBytes };
    ctx.memory.set(top.readyRequests, top);
  }
  const measured = [...ctx.memory.values()].sort((a, b) => a.readyRequests - b.readyRequests);
  const biggest = Math.max(...points);
  const rows = measured.map((p) => [
    p.readyRequests,
    p.requests,
    mb(p.rssBytes),
    mb(p.heapUsedBytes),
    mb(p.heapTotalBytes),
    mb(p.externalBytes),
    p.freshRssBytes !== undefined ? mb(p.freshRssBytes) : '',
    p.freshHeapUsedBytes !== undefined ? mb(p.freshHeapUsedBytes) : '',
  ]);
  const first = measured[0];
  const span = top && first && top.readyRequests > first.readyRequests ? top.readyRequests - first.readyRequests : 0;
  const perRequest = span ? (top!.rssBytes - first!.rssBytes) / span : NaN;
  const perRequestFresh =
    span && top!.freshRssBytes !== undefined ? (top!.freshRssBytes - first!.rssBytes) / span : NaN;
  const goalBytes = 200 * 1048576;
  return {
    name: 'memory',
    parameters: { points, objectsPerRequest: 'the request, its Secret, Role and RoleBinding' },
    startedAt: started.toISOString(),
    wallSeconds: round((Date.now() - started.getTime()) / 1000, 1),
    cpu: {},
    samples: { points: measured },
    summary: {
      rssBytesByReadyRequests: Object.fromEntries(measured.map((p) => [p.readyRequests, p.rssBytes])),
      freshRssBytesAtTop: top?.freshRssBytes,
      rssBytesPerRequest: round(perRequest, 0),
      freshRssBytesPerRequest: round(perRequestFresh, 0),
    },
    targets:
      top && top.readyRequests >= biggest
        ? [
            {
              what: `RSS at ${top.readyRequests} ready requests, long-running operator`,
              goal: `≤ 200 MB at 5,000${biggest < 5000 ? ` (this run: ${biggest}; not judged)` : ''}`,
              value: mb(top.rssBytes),
              met: biggest >= 5000 ? top.rssBytes <= goalBytes : null,
            },
            ...(top.freshRssBytes !== undefined
              ? [
                  {
                    what: `RSS at ${top.readyRequests} ready requests, freshly restarted operator`,
                    goal: `≤ 200 MB at 5,000${biggest < 5000 ? ' (not judged)' : ''}`,
                    value: mb(top.freshRssBytes),
                    met: biggest >= 5000 ? top.freshRssBytes <= goalBytes : null,
                  },
                ]
              : []),
          ]
        : [],
    notes: [
      ...(Number.isFinite(perRequest)
        ? [
            `about ${(perRequest / 1024).toFixed(1)} KiB of RSS per ready request from the first point to the last in the long-running process`,
          ]
        : []),
      ...(Number.isFinite(perRequestFresh)
        ? [`about ${(perRequestFresh / 1024).toFixed(1)} KiB per ready request in a freshly started process`]
        : []),
    ],
    tables: [
      {
        title: 'Memory: operator RSS by ready requests',
        columns: [
          'ready requests',
          'all requests',
          'RSS',
          'V8 heap used',
          'V8 heap total',
          'external',
          'RSS after restart',
          'heap used after restart',
        ],
        rows,
      },
    ],
  };
}
