// Prometheus metrics of credential lifecycles, registered on the operator's registry (lib/runtime/metrics.ts):
//   leasehold_lease_expiry_timestamp_seconds{namespace,name}  when each request's current lease runs out unless
//                                                            renewed (the series goes when the request ends);
//   leasehold_lease_renewals_total{outcome}                  success | truncated (max TTL reached) | refused | error;
//   leasehold_credential_rotations_total{reason,outcome}     success | error (an attempt to issue the new one failed);
//   leasehold_lease_revocations_total{reason,outcome}        success | gone (already revoked) | failed (Vault tried
//                                                            and could not: the lease is live) | error; reason
//                                                            orphan: found by the sweep after a crash, unrecorded:
//                                                            given back at once when recording it failed;
//   leasehold_issuance_latency_seconds                       from the approval seen to the credential in its Secret
//                                                            (first issuance only; measured within one process).
// No label carries a lease id or anything secret; request names are the one per-object label, on the gauge only.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type RenewalOutcome = 'success' | 'truncated' | 'refused' | 'error';
export type RotationOutcome = 'success' | 'error';
export type RevocationReason = 'rotation' | 'deletion' | 'revoke-now' | 'expiry' | 'orphan' | 'unrecorded';
export type RevocationOutcome = 'success' | 'gone' | 'failed' | 'error';

export class LeaseMetrics {
  readonly expiry: Gauge<'namespace' | 'name'>;
  readonly renewals: Counter<'outcome'>;
  readonly rotations: Counter<'reason' | 'outcome'>;
  readonly revocations: Counter<'reason' | 'outcome'>;
  readonly issuanceLatency: Histogram;

  constructor(registry: Registry = new Registry()) {
    const registers = [registry];
    this.expiry = new Gauge({
      name: 'leasehold_lease_expiry_timestamp_seconds',
      help: 'When the current lease of a DatabaseAccessRequest runs out unless renewed (Unix time)',
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

  /** The request ended (expired, revoked, deleted): its series goes. */
  forget(namespace: string, name: string): void {
    this.expiry.remove(namespace, name);
  }
}
