// Scenario 6, renewal load: N requests of a role with a short TTL, then watched for a window once all are
// issued. They are approved a couple at a time rather than in one burst: this scenario measures steady
// renewals, not a burst's backlog (1,000 approvals take longer to issue than the first 60 s leases take to fall
// due, and renewals due meanwhile wait behind the issuances in the work queue; the burst scenario measures that).
// Each renewal is seen as a watch event changing status.lease.lastRenewalTime. Reported: renewals per second
// sustained (and what the TTLs make due), renewals per 1-second bucket (peak vs mean: a thundering herd would
// be a tall peak), where in its term each lease was renewed (the operator renews at 2/3 less up to 10 %
// per-request jitter), and lateness: arrival of the renewal minus the moment it fell due by the operator's own
// schedule (controllers/databaseaccessrequest/decide.ts), which grows without bound if renewals can't keep up.
import { DEFAULT_RENEW_FRACTION, renewAtMs } from '../../../controllers/databaseaccessrequest/decide.ts';
import { ms, perSec, ratio } from '../format.ts';
import { DEFAULT_CONCURRENCY, counterDelta } from '../harness.ts';
import type { DarState } from '../harness.ts';
import { histogram, percentile, round, roundSummary, summarize } from '../stats.ts';
import type { ScenarioContext, ScenarioResult } from './types.ts';

interface Renewal {
  name: string;
  /** Epoch ms the watch delivered the renewal. */
  at: number;
  /** Epoch ms it was due by the operator's schedule. */
  dueAt: number;
  /** Where in the previous term it happened (0 = start, 1 = expiry). */
  termFraction: number;
}

export async function renewal({ bench, sizes }: ScenarioContext): Promise<ScenarioResult> {
  const n = sizes.renewal;
  const role = bench.roles.short;
  const ttl = sizes.renewalTtlSeconds;
  const renewals: Renewal[] = [];
  const stop = bench.requests.onChange((name, state, prev) => {
    if (
      !state ||
      !prev ||
      state.role !== role.name ||
      !prev.ready ||
      !state.lastRenewalTime ||
      state.lastRenewalTime === prev.lastRenewalTime
    )
      return;
    if (state.leaseId !== prev.leaseId) return; // a rotation, not a renewal
    const at = Date.now();
    const from = Date.parse(prev.lastRenewalTime ?? prev.issuedAt ?? '');
    const expires = Date.parse(prev.expiresAt ?? '');
    if (!Number.isFinite(from) || !Number.isFinite(expires)) return;
    const term = Math.max(1, (expires - from) / 1000);
    renewals.push({
      name,
      at,
      dueAt: renewAtMs(from, term, DEFAULT_RENEW_FRACTION, prev.uid),
      termFraction: (at - from) / (expires - from),
    });
  });
  try {
    await bench.ensureConcurrency(DEFAULT_CONCURRENCY);
    const names = Array.from({ length: n }, (_, i) => `renew-${i}`);
    const t0 = performance.now();
    await bench.createWaiting(names, role.name);
    await bench.approvePaced(names, 2, 1_800_000);
    bench.log(
      `  renewal: ${n} requests with ${ttl} s leases issued in ${((performance.now() - t0) / 1000).toFixed(1)} s; watching for ${sizes.renewalObserveSeconds} s`,
    );

    const started = new Date();
    const before = await bench.scrape();
    const cpu0 = bench.cpuSnapshot();
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, sizes.renewalObserveSeconds * 1000));
    const w1 = Date.now();
    const after = await bench.scrape();
    const cpu = bench.cpuUsage(cpu0);
    const inWindow = renewals.filter((r) => r.at >= w0 && r.at < w1);
    const seconds = (w1 - w0) / 1000;
    const perBucket = histogram(
      inWindow.map((r) => r.at),
      w0,
      w1,
      1000,
    );
    const buckets = summarize(perBucket);
    const lateness = summarize(inWindow.map((r) => r.at - r.dueAt));
    const where = summarize(inWindow.map((r) => r.termFraction));
    const outcomes = counterDelta(before, after, 'leasehold_lease_renewals_total');
    const rotations = counterDelta(before, after, 'leasehold_credential_rotations_total');
    const vault = counterDelta(before, after, 'vault_requests_total');
    const writes = counterDelta(before, after, 'kube_writes_total');
    // What the TTLs make due: each request renews about every ttl × (2/3 − jitter), jitter uniform in [0, 0.1).
    const renewalInterval = ttl * (DEFAULT_RENEW_FRACTION - 0.05);
    const expected = n / renewalInterval;
    const rate = inWindow.length / seconds;
    const peakToMean = buckets.max / buckets.mean;
    const states = [...bench.requests.states.values()].filter((s: DarState) => s.role === role.name);
    // Rates and the spread need a few rounds of renewals: requests approved within seconds of each other renew
    // together in their first term and drift apart from then on (each renews at its own fraction of the term).
    const judged = sizes.renewalObserveSeconds >= 3 * renewalInterval;
    const notJudged = judged
      ? []
      : [
          `the window (${sizes.renewalObserveSeconds} s) is under 3 renewal intervals (${renewalInterval.toFixed(0)} s each): rates and spread are indicative only, not judged`,
        ];
    return {
      name: 'renewal',
      parameters: {
        requests: n,
        ttlSeconds: ttl,
        observeSeconds: sizes.renewalObserveSeconds,
        renewFraction: DEFAULT_RENEW_FRACTION,
        maxJitter: 0.1,
        approvalsOutstanding: 2,
      },
      startedAt: started.toISOString(),
      wallSeconds: round(seconds, 1),
      cpu: { window: cpu },
      samples: {
        renewalsPerSecond: perBucket,
        latenessMs: inWindow.map((r) => r.at - r.dueAt),
        termFraction: inWindow.map((r) => round(r.termFraction, 4)),
      },
      summary: {
        renewals: inWindow.length,
        renewalsPerSecond: round(rate, 2),
        expectedPerSecond: round(expected, 2),
        perSecondBuckets: roundSummary(buckets),
        peakToMean: round(peakToMean, 2),
        latenessMs: roundSummary(lateness),
        renewedAtTermFraction: roundSummary(where),
        renewalOutcomes: outcomes,
        rotations,
        vaultCallsByLabel: vault,
        kubeWritesByLabel: writes,
        stillReadyAtEnd: states.filter((s) => s.ready).length,
      },
      targets: [
        {
          what: `renewals keep up (${n} leases of ${ttl} s)`,
          goal: `≈ ${perSec(expected)} due; lateness p99 well under the ${(ttl / 3).toFixed(0)} s left in a term`,
          value: `${perSec(rate)}; lateness p99 ${ms(lateness.p99)}`,
          met: judged ? rate >= 0.9 * expected && lateness.p99 < (ttl * 1000) / 3 : null,
        },
        {
          what: 'no thundering herd',
          goal: 'peak 1-s bucket ≤ 3× mean',
          value: `peak ${buckets.max}/s, mean ${buckets.mean.toFixed(1)}/s (${ratio(peakToMean)})`,
          met: judged ? peakToMean <= 3 : null,
        },
      ],
      notes: notJudged,
      tables: [
        {
          title: `Renewal: ${n} requests with ${ttl} s leases, watched for ${sizes.renewalObserveSeconds} s`,
          columns: [
            'renewals',
            'renewals/s',
            'due/s',
            'per-s p50',
            'per-s max',
            'lateness p50',
            'p99',
            'renewed at term p5–p95',
          ],
          rows: [
            [
              inWindow.length,
              perSec(rate),
              perSec(expected),
              buckets.p50,
              buckets.max,
              ms(lateness.p50),
              ms(lateness.p99),
              `${(
                100 *
                percentile(
                  inWindow.map((r) => r.termFraction),
                  5,
                )
              ).toFixed(0)}–${(
                100 *
                percentile(
                  inWindow.map((r) => r.termFraction),
                  95,
                )
              ).toFixed(0)} %`,
            ],
          ],
        },
      ],
    };
  } finally {
    stop();
  }
}
