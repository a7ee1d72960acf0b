// What a scenario is given and what it returns (one entry of the results JSON's `scenarios`).
import type { Bench, CpuUsage } from '../harness.ts';

export interface Sizes {
  /** Requests approved one at a time (and as many raw Vault reads). */
  latency: number;
  /** Requests approved at once, per --concurrency value. */
  burst: number;
  concurrency: number[];
  /** Ready requests left alone, and for how long. */
  idleRequests: number;
  idleSeconds: number;
  /** Ready requests at which RSS is measured. */
  memoryPoints: number[];
  /** Ready requests when the operator is restarted. */
  restart: number;
  /** Requests with short TTLs, their TTL, and how long renewals are watched once all are issued. */
  renewal: number;
  renewalTtlSeconds: number;
  renewalObserveSeconds: number;
  /** Peer comparison (`--peer`): credentials kept fresh on the renewal role's TTL, and how long they are watched. */
  steadyRequests: number;
  steadySeconds: number;
}

export const FULL: Sizes = {
  latency: 200,
  burst: 500,
  concurrency: [1, 4, 16],
  idleRequests: 1000,
  idleSeconds: 300,
  memoryPoints: [0, 1000, 5000],
  restart: 5000,
  renewal: 1000,
  renewalTtlSeconds: 60,
  renewalObserveSeconds: 180,
  steadyRequests: 1000,
  steadySeconds: 600,
};

/** Small enough to finish in under two minutes on 2 busy cores, where the operator issues ~4 credentials/s. */
export const QUICK: Sizes = {
  latency: 15,
  burst: 20,
  concurrency: [1, 4, 16],
  idleRequests: 80,
  idleSeconds: 10,
  memoryPoints: [0, 80],
  restart: 80,
  renewal: 40,
  renewalTtlSeconds: 12,
  renewalObserveSeconds: 12,
  steadyRequests: 40,
  steadySeconds: 30,
};

/** A goal the benchmarks track, and where this run stands. `met` is null when the run could not tell. */
export interface Target {
  what: string;
  goal: string;
  value: string;
  met: boolean | null;
}

export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}

export interface ScenarioResult {
  name: string;
  parameters: Record<string, unknown>;
  startedAt: string;
  wallSeconds: number;
  /** CPU seconds per component while the scenario measured (not while it set up). */
  cpu: Record<string, CpuUsage>;
  /** Raw samples (milliseconds unless the key says otherwise). */
  samples: Record<string, unknown>;
  summary: Record<string, unknown>;
  targets: Target[];
  notes: string[];
  tables: Table[];
}

export interface ScenarioContext {
  bench: Bench;
  sizes: Sizes;
  /** RSS measurements collected along the way (memory scenario), by ready-request count. */
  memory: Map<number, MemoryPoint>;
  /** Scenarios still to run after this one (a peer's clean-up is only needed when some follow). */
  more?: boolean;
}

export interface MemoryPoint {
  readyRequests: number;
  /** All requests in the namespace (the ready ones and any others, e.g. the renewal role's). */
  requests: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  at: string;
  /** RSS of a freshly started operator with the same requests (after a restart, once every request is reconciled). */
  freshRssBytes?: number;
  freshHeapUsedBytes?: number;
}
