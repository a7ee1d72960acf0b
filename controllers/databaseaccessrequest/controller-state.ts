// What the parts of the DatabaseAccessRequest controller share: the controller context, metrics, the audited
// Events recorder, approvals, what this process remembers about requests and leases, the per-role gate of
// issuance and sweeps, and the status and Vault helpers every part uses. One per controller; the reconciler
// makes it and hands it to issuance.ts, lease-keeper.ts, ending.ts and the rest.
import type { Registry } from 'prom-client';
import type { AppBinding, DatabaseAccessRequest, PostgresRole } from '../../api/index.ts';
import { KeyedReadWriteLock, RetryableError, type ReconcileContext } from '../../lib/runtime/index.ts';
import type { ControllerContext } from '../shared/context.ts';
import { report } from '../shared/report.ts';
import { DATABASE_ACCESS_REQUESTS } from '../shared/resources.ts';
import type { VaultConnection } from '../shared/vault-connections.ts';
import { RevocationRetries } from './decide.ts';
import { LeaseLiveness, verifyPeriodMs } from './lease-liveness.ts';
import { LeaseMetrics } from './metrics.ts';
// Issue 11 (approval): the operator's part of approval lives in approval.ts; the call sites are marked.
import { Approvals, auditingRecorder } from './approval.ts';

export class RequestControllerState {
  /** Per Vault role (mount/role): issuing calls hold it shared, a sweep alone. */
  readonly roleGate = new KeyedReadWriteLock();
  readonly metrics: LeaseMetrics;
  readonly approvals: Approvals;
  /** uid → when this process first saw the request approved and not yet issued (issuance latency). */
  readonly approvalSeen = new Map<string, number>();
  /** uid → renewals failed in a row (Events on the transitions only). */
  readonly renewalFailures = new Map<string, number>();
  /** Lease id → when this process issued it. */
  readonly issuedHere = new Map<string, number>();
  /** Revocations Vault didn't do, per lease: when to try each again. */
  readonly revocationRetries = new RevocationRetries();
  /** When each request's lease was last known alive in Vault; listings of a role's leases (lease-liveness.ts). */
  readonly liveness: LeaseLiveness;

  /** approval (issue 11): audited Events (decisions, issuance, rotation, revocation) also make a structured log line. */
  readonly events: ReturnType<typeof auditingRecorder>;

  constructor(readonly c: ControllerContext, registry?: Registry) {
    this.metrics = new LeaseMetrics(registry);
    this.liveness = new LeaseLiveness(verifyPeriodMs(c.resyncPeriodMs));
    this.events = auditingRecorder(c.events('leasehold-databaseaccessrequest'), c.log);
    this.approvals = new Approvals(c.kube, this.events); // approval (issue 11)
  }

  cachedRole(dar: DatabaseAccessRequest): PostgresRole | undefined {
    return this.c.caches.postgresRoles.get(dar.spec.roleRef.namespace ?? dar.metadata.namespace ?? '', dar.spec.roleRef.name);
  }

  /** Drops what this process keeps about a request that ended. */
  forget(dar: DatabaseAccessRequest): void {
    this.metrics.forget(dar.metadata.namespace ?? '', dar.metadata.name ?? '');
    this.approvalSeen.delete(dar.metadata.uid ?? '');
    this.renewalFailures.delete(dar.metadata.uid ?? '');
    this.liveness.forget(dar.metadata.uid ?? '');
  }

  /** The Vault connection a recorded lease lives in (from status, so it works after the role is gone). */
  async connectionOf(dar: DatabaseAccessRequest, ctx: ReconcileContext, ref?: { namespace?: string; name: string }): Promise<VaultConnection | undefined> {
    const r = ref ?? dar.status?.issuance?.vaultAppBinding;
    if (!r) return undefined;
    const ab: AppBinding | undefined = this.c.caches.appBindings.get(r.namespace || dar.metadata.namespace || '', r.name);
    return ab ? this.c.connections.forAppBinding(ab, ctx.signal) : undefined;
  }

  async write(dar: DatabaseAccessRequest, ctx: ReconcileContext, update: Parameters<typeof report>[4]): Promise<DatabaseAccessRequest> {
    return report(this.c.kube, DATABASE_ACCESS_REQUESTS, this.events, dar, update, ctx.now(), ctx.signal);
  }

  /** A status write that, on a conflict, reads the request again and retries once. */
  async writeFresh(dar: DatabaseAccessRequest, ctx: ReconcileContext, update: (d: DatabaseAccessRequest) => Parameters<typeof report>[4]): Promise<DatabaseAccessRequest> {
    try {
      return await this.write(dar, ctx, update(dar));
    } catch (err) {
      if (!(err instanceof RetryableError && err.reason === 'Conflict')) throw err;
      const fresh = await this.c.kube.get<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, dar.metadata.namespace ?? '', dar.metadata.name ?? '', ctx);
      return this.write(fresh, ctx, update(fresh));
    }
  }
}
