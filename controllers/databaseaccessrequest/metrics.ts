// Prometheus metrics of requests and credential lifecycles, registered on the operator's registry
// (lib/runtime/metrics.ts). What the dashboard (manifests/monitoring/dashboard.json) draws and the alerts
// (manifests/monitoring/prometheusrule.yaml, docs/runbook.md) fire on:
//   leasehold_access_requests{namespace,phase}               requests by status.phase, as this process's passes
//                                                            last left them (the leader's; a standby reports none);
//   leasehold_request_pending_since_timestamp_seconds{namespace,name}
//   leasehold_request_pending_deadline_timestamp_seconds{namespace,name}
//                                                            a request waiting for a decision: since when (its
//                                                            creation), and when it expires undecided (creation +
//                                                            its role's approval.pendingTTL); gone once decided;
//   leasehold_lease_expiry_timestamp_seconds{namespace,name}  when each request's current lease runs out unless
//                                                            renewed (the series goes when the request ends);
//   leasehold_lease_renewal_timestamp_seconds{namespace,name} when that lease is due for renewal (in the past: the
//                                                            renewal is overdue); only for leases the operator
//                                                            keeps alive (not spec.renew false, not refused);
//   leasehold_lease_renewals_total{outcome}                  success | truncated (max TTL reached) | refused | error;
//   leasehold_credential_rotations_total{reason,outcome}     success | error (an attempt to issue the new one failed);
//   leasehold_lease_revocations_total{reason,outcome}        success | gone (already revoked) | failed (Vault tried
//                                                            and could not: the lease is live) | error; reason
//                                                            orphan: found by the sweep after a crash, unrecorded:
//                                                            given back at once when recording it failed;
//   leasehold_issuance_latency_seconds                       from the approval seen to the credential in its Secret
//                                                            (first issuance only; measured within one process).
// No label carries a lease id or anything secret; request names are the one per-object label, on the gauges of
// live leases and pending requests only. Phases are a closed set (api/meta.ts REQUEST_PHASES).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type RenewalOutcome = 'success' | 'truncated' | 'refused' | 'error';
export type RotationOutcome = 'success' | 'error';
export type RevocationReason = 'rotation' | 'deletion' | 'revoke-now' | 'expiry' | 'orphan' | 'unrecorded';
export type RevocationOutcome = 'success' | 'gone' | 'failed' | 'error';

/** What a pass left a request as, for the gauges (`LeaseMetrics.record`). Times in ms since the epoch. */
export interface RequestReport {
  namespace: string;
  name: string;
  /** status.phase (absent before the first status write). */
  phase?: string;
  /** Waiting for a decision: since when, and when it expires undecided. */
  pending?: { sinceMs: number; deadlineMs: number };
  /** The recorded lease: when it runs out (status.lease.expiresAt), and when it is due for renewal if it is kept alive. */
  lease?: { expiresAt?: string; renewalDueMs?: number };
}

export class LeaseMetrics {
  readonly requests: Gauge<'namespace' | 'phase'>;
  readonly pendingSince: Gauge<'namespace' | 'name'>;
  readonly pendingDeadline: Gauge<'namespace' | 'name'>;
  readonly expiry: Gauge<'namespace' | 'name'>;
  readonly renewalDue: Gauge<'namespace' | 'name'>;
  readonly renewals: Counter<'outcome'>;
  readonly rotations: Counter<'reason' | 'outcome'>;
  readonly revocations: Counter<'reason' | 'outcome'>;
  readonly issuanceLatency: Histogram;

  /** Each request's phase as its last pass left it, by "namespace/name". */
  private readonly phases = new Map<string, { namespace: string; phase: string }>();

  constructor(registry: Registry = new Registry()) {
    const registers = [registry];
    const phases = this.phases;
    this.requests = new Gauge({
      name: 'leasehold_access_requests',
      help: 'DatabaseAccessRequests by namespace and status.phase, as the leader last saw them',
      labelNames: ['namespace', 'phase'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, { namespace: string; phase: string; n: number }>();
        for (const r of phases.values()) {
          const k = `${r.namespace}/${r.phase}`;
          const c = counts.get(k) ?? { ...r, n: 0 };
          c.n++;
          counts.set(k, c);
        }
        for (const c of counts.values()) this.labels(c.namespace, c.phase).set(c.n);
      },
    });
    this.pendingSince = new Gauge({
      name: 'leasehold_request_pending_since_timestamp_seconds',
      help: 'When a DatabaseAccessRequest still waiting for a decision was created (Unix time)',
      labelNames: ['namespace', 'name'],
      registers,
    });
    this.pendingDeadline = new Gauge({
      name: 'leasehold_request_pending_deadline_timestamp_seconds',
      help: "When a DatabaseAccessRequest waiting for a decision expires undecided: creation + its role's approval.pendingTTL (Unix time)",
      labelNames: ['namespace', 'name'],
      registers,
    });
    this.expiry = new Gauge({
      name: 'leasehold_lease_expiry_timestamp_seconds',
      help: 'When the current lease of a DatabaseAccessRequest runs out unless renewed (Unix time)',
      labelNames: ['namespace', 'name'],
      registers,
    });
    this.renewalDue = new Gauge({
      name: 'leasehold_lease_renewal_timestamp_seconds',
      help: 'When the current lease of a DatabaseAccessRequest is due for renewal (Unix time; past: overdue)',
      labelNames: ['namespace', 'name'],
      registers,
    });
    this.renewals = new Counter({
      name: 'leasehold_lease_renewals_total',
      help: 'Lease renewals, by outcome (truncated: Vault granted less than asked, max TTL near)',
      labelNames: ['outcome'],
      registers,
    });
    this.rotations = new Counter({
      name: 'leasehold_credential_rotations_total',
      help: 'Credential rotations, by reason and outcome',
      labelNames: ['reason', 'outcome'],
      registers,
    });
    this.revocations = new Counter({
      name: 'leasehold_lease_revocations_total',
      help: 'Lease revocations, by reason and outcome',
      labelNames: ['reason', 'outcome'],
      registers,
    });
    this.issuanceLatency = new Histogram({
      name: 'leasehold_issuance_latency_seconds',
      help: 'From the approval of a request seen by the operator to its credential written into the Secret',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
  }

  setExpiry(namespace: string, name: string, expiresAt: string | undefined): void {
    const t = expiresAt ? Date.parse(expiresAt) : NaN;
    if (Number.isFinite(t)) this.expiry.labels(namespace, name).set(t / 1000);
  }

  /**
   * What a pass left the request as: its phase, whether it waits for a decision, its lease's expiry and renewal.
   * A series whose fact no longer holds (decided, no lease, no renewal planned) goes.
   */
  record(r: RequestReport): void {
    const { namespace, name } = r;
    if (r.phase) this.phases.set(`${namespace}/${name}`, { namespace, phase: r.phase });
    if (r.pending && Number.isFinite(r.pending.sinceMs) && Number.isFinite(r.pending.deadlineMs)) {
      this.pendingSince.labels(namespace, name).set(r.pending.sinceMs / 1000);
      this.pendingDeadline.labels(namespace, name).set(r.pending.deadlineMs / 1000);
    } else {
      this.pendingSince.remove(namespace, name);
      this.pendingDeadline.remove(namespace, name);
    }
    if (r.lease?.expiresAt) this.setExpiry(namespace, name, r.lease.expiresAt);
    else this.expiry.remove(namespace, name);
    const due = r.lease?.renewalDueMs;
    if (due !== undefined && Number.isFinite(due)) this.renewalDue.labels(namespace, name).set(due / 1000);
    else this.renewalDue.remove(namespace, name);
  }

  /** The request is gone (deleted): its series go, and it no longer counts in its phase. */
  forget(namespace: string, name: string): void {
    this.phases.delete(`${namespace}/${name}`);
    this.expiry.remove(namespace, name);
    this.renewalDue.remove(namespace, name);
    this.pendingSince.remove(namespace, name);
    this.pendingDeadline.remove(namespace, name);
  }
}
