// Leader election on a coordination.k8s.io/v1 Lease, following client-go's tools/leaderelection:
//   - a candidate polls every retryPeriod; it takes the Lease when it is free or when its record has not
//     changed for leaseDuration, measured on the candidate's own clock from when it first saw that record (so
//     clock skew between nodes does not matter);
//   - every write is a PUT with the Lease's resourceVersion: of two candidates, one gets 409 and loses;
//   - the leader renews every retryPeriod; if a renewal round cannot succeed within renewDeadline, the leader
//     steps down at once (onStoppedLeading), before another candidate can take over (renewDeadline + retry
//     period < leaseDuration);
//   - on graceful shutdown the leader releases the Lease (empty holder, 1 s duration), so a successor does not
//     wait out the full lease.
// Times are MicroTime: the apiserver insists on six fractional digits.
import type { KubernetesObject } from '@kubernetes/client-node';
import { systemClock, sleep, type Clock } from './clock.ts';
import { isConflict, isNotFound, type KubeClient } from './kube.ts';
import { describeError, nullLogger, type Logger } from './logging.ts';
import type { Metrics } from './metrics.ts';
import type { ResourceType } from './types.ts';

export const LEASES: ResourceType = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease' };

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

interface CoordinationLease extends KubernetesObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Unique per process: `hostname_uuid` by convention. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: Clock;
  random?: () => number;
  log?: Logger;
  metrics?: Metrics;
  onStartedLeading: () => void;
  /** Called at once when leadership is lost (not after release on graceful stop). */
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
}

/** MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export type ElectionOutcome = 'lost' | 'stopped';

export class LeaderElector {
  private readonly opts: LeaderElectionOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly stopController = new AbortController();
  /** The last record read or written, and when (our clock) it last changed. */
  private observed: LeaseSpec | undefined;
  private observedAt = 0;
  /** The Lease as last written by us, for the renew fast path (no GET). */
  private lastWritten: CoordinationLease | undefined;
  private leading = false;
  private lastLeader: string | undefined;
  private running: Promise<ElectionOutcome> | undefined;

  constructor(opts: LeaderElectionOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.log = (opts.log ?? nullLogger()).child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (!(this.leaseDurationMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryPeriodMs)) {
      throw new Error('leader election needs leaseDuration > renewDeadline > retryPeriod');
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Runs until leadership is lost or stop() is called. */
  run(): Promise<ElectionOutcome> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops campaigning or leading; a leader releases the Lease. Does not call onStoppedLeading. */
  async stop(): Promise<void> {
    this.stopController.abort();
    await this.running;
    if (this.leading) {
      this.leading = false;
      this.setStatus(0);
      await this.release();
    }
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async loop(): Promise<ElectionOutcome> {
    this.setStatus(0);
    this.log.info('waiting to acquire the leader lease');
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew(this.retryPeriodMs * 4)) break;
      // A little jitter keeps candidates from polling in lockstep; small, so takeover stays within
      // leaseDuration + 2 × retryPeriod(+10 %).
      await sleep(this.clock, this.retryPeriodMs * (1 + 0.1 * this.random()), this.stopController.signal);
    }
    if (this.stopped) return 'stopped';
    this.leading = true;
    this.setStatus(1);
    this.log.info('acquired the leader lease');
    this.opts.onStartedLeading();

    while (!this.stopped) {
      await sleep(this.clock, this.retryPeriodMs, this.stopController.signal);
      if (this.stopped) break;
      if (!(await this.renewWithinDeadline())) {
        if (this.stopped) break;
        this.leading = false;
        this.setStatus(0);
        this.log.error('could not renew the leader lease within the renew deadline; stepping down', {
          renewDeadlineMs: this.renewDeadlineMs,
        });
        this.opts.onStoppedLeading();
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** One renewal round: retries every retryPeriod until it succeeds or renewDeadline passes. */
  private async renewWithinDeadline(): Promise<boolean> {
    const deadline = this.clock.now() + this.renewDeadlineMs;
    for (;;) {
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) return false;
      // Race the deadline too: stepping down on time must not depend on the transport honouring its timeout.
      const deadlinePassed = new AbortController();
      const renewed = await Promise.race([
        this.tryAcquireOrRenew(remaining),
        sleep(this.clock, remaining, deadlinePassed.signal).then(() => false),
      ]);
      deadlinePassed.abort();
      if (renewed) return true;
      if (this.stopped) return true; // stop() releases; not a loss
      if (deadline - this.clock.now() <= 0) return false;
      await sleep(
        this.clock,
        Math.min(this.retryPeriodMs, Math.max(0, deadline - this.clock.now())),
        this.stopController.signal,
      );
    }
  }

  private async tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const now = this.clock.now();
    const { client, namespace, name, identity } = this.opts;
    const req = { signal: this.stopController.signal, timeoutMs: Math.max(1, timeoutMs) };
    // Fast path: the leader renews from the Lease it wrote last, saving a GET; any failure takes the slow path.
    if (this.leading && this.lastWritten?.spec) {
      const renewed = this.withSpec(this.lastWritten, { ...this.lastWritten.spec, renewTime: microTime(now) });
      try {
        this.remember(await client.replace<CoordinationLease>(LEASES, namespace, name, renewed, req), now);
        return true;
      } catch (err) {
        this.log.debug('fast-path lease renewal failed; re-reading the lease', { error: describeError(err) });
      }
    }
    let lease: CoordinationLease | undefined;
    try {
      lease = await client.get<CoordinationLease>(LEASES, namespace, name, req);
    } catch (err) {
      if (!isNotFound(err)) {
        this.log.warn('could not read the leader lease', { error: describeError(err) });
        return false;
      }
    }
    if (!lease) {
      const spec: LeaseSpec = {
        holderIdentity: identity,
        leaseDurationSeconds: this.leaseSeconds(),
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: 0,
      };
      try {
        const created = await client.create<CoordinationLease>(
          LEASES,
          namespace,
          { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec },
          req,
        );
        this.remember(created, now);
        return true;
      } catch (err) {
        if (!isConflict(err)) this.log.warn('could not create the leader lease', { error: describeError(err) });
        return false;
      }
    }
    const current = lease.spec ?? {};
    if (!sameRecord(current, this.observed)) {
      this.observed = { ...current };
      this.observedAt = now;
    }
    this.noteLeader(current.holderIdentity ?? '');
    const holder = current.holderIdentity ?? '';
    const durationMs = (current.leaseDurationSeconds ?? this.leaseSeconds()) * 1000;
    if (holder !== '' && holder !== identity && this.observedAt + durationMs > now) return false; // held, not expired
    const ours = holder === identity;
    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseSeconds(),
      acquireTime: ours && current.acquireTime ? current.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: ours ? (current.leaseTransitions ?? 0) : (current.leaseTransitions ?? 0) + 1,
    };
    try {
      this.remember(
        await client.replace<CoordinationLease>(LEASES, namespace, name, this.withSpec(lease, spec), req),
        now,
      );
      return true;
    } catch (err) {
      if (!isConflict(err)) this.log.warn('could not update the leader lease', { error: describeError(err) });
      return false;
    }
  }

  private async release(): Promise<void> {
    if (!this.lastWritten?.spec) return;
    const now = this.clock.now();
    const spec: LeaseSpec = {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: this.lastWritten.spec.leaseTransitions ?? 0,
    };
    try {
      await this.opts.client.replace<CoordinationLease>(
        LEASES,
        this.opts.namespace,
        this.opts.name,
        this.withSpec(this.lastWritten, spec),
        { timeoutMs: 5_000 },
      );
      this.log.info('released the leader lease');
    } catch (err) {
      this.log.warn('could not release the leader lease; a successor will wait for it to expire', {
        error: describeError(err),
      });
    }
  }

  private remember(lease: CoordinationLease, now: number): void {
    this.lastWritten = lease;
    this.observed = { ...(lease.spec ?? {}) };
    this.observedAt = now;
    this.noteLeader(lease.spec?.holderIdentity ?? '');
  }

  private noteLeader(holder: string): void {
    if (holder && holder !== this.lastLeader) {
      this.lastLeader = holder;
      if (holder !== this.opts.identity) this.log.info('new leader observed', { leader: holder });
      this.opts.onNewLeader?.(holder);
    }
  }

  private withSpec(lease: CoordinationLease, spec: LeaseSpec): CoordinationLease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.opts.name,
        namespace: this.opts.namespace,
        resourceVersion: lease.metadata?.resourceVersion,
      },
      spec,
    };
  }

  private leaseSeconds(): number {
    return Math.ceil(this.leaseDurationMs / 1000);
  }

  private setStatus(v: 0 | 1): void {
    this.opts.metrics?.leaderStatus.labels(this.opts.name).set(v);
  }
}

function sameRecord(a: LeaseSpec, b: LeaseSpec | undefined): boolean {
  return (
    b !== undefined &&
    (a.holderIdentity ?? '') === (b.holderIdentity ?? '') &&
    a.renewTime === b.renewTime &&
    a.acquireTime === b.acquireTime &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.leaseTransitions === b.leaseTransitions
  );
}
