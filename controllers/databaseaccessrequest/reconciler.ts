// DatabaseAccessRequest: nothing is issued until an Approved condition appears; then a leased credential is
// issued into a Secret owned by the request, readable only by spec.subjects (a Role and RoleBinding), and kept
// alive for as long as the request exists: renewed before it runs out, rotated (a fresh credential in the same
// Secret) when Vault won't renew it any further, and revoked when the request is deleted or revoked. With
// spec.renew false the lease runs out at its TTL instead (phase Expired, credential removed from the Secret).
//
// A pass is observe → plan → execute:
//   observe.ts   reads what the pass decides on (caches; the live Secret or a lease look-up where needed);
//   plan.ts      decides, purely: the steps, the status the pass leaves, its Events, when to run again;
//   execute.ts   runs the steps (issuance.ts: exactly-once issuance; lease-ops.ts: Vault lease operations),
//                writes status once, emits the Events and audit records.
// A renewal's answer can change the plan (renewed, truncated, refused, gone): the pass plans once more with it.
// What differs between databases comes from the role kind's engine (engine.ts, engines/).
import type { Registry } from 'prom-client';
import {
  DONE,
  KeyedReadWriteLock,
  type ObjectKey,
  type ReconcileContext,
  type Reconciler,
  type Result,
} from '../../lib/runtime/index.ts';
import type { ControllerContext } from '../shared/context.ts';
import { Dependencies } from '../shared/dependents.ts';
import { Pass, type RequestEffects } from './execute.ts';
import { LeaseLiveness, verifyPeriodMs } from './lease-liveness.ts';
import { LeaseOps } from './lease-ops.ts';
import { RequestMemory } from './memory.ts';
import { LeaseMetrics } from './metrics.ts';
import { observe } from './observe.ts';
import { plan } from './plan.ts';

export class DatabaseAccessRequestReconciler implements Reconciler {
  readonly metrics: LeaseMetrics;
  private readonly memory: RequestMemory;
  private readonly dependencies: Dependencies;
  private readonly effects: RequestEffects;

  constructor(
    private readonly c: ControllerContext,
    registry?: Registry,
  ) {
    this.metrics = new LeaseMetrics(registry);
    this.memory = new RequestMemory(new LeaseLiveness(verifyPeriodMs(c.resyncPeriodMs)));
    this.dependencies = new Dependencies(c.caches, c.clusterName);
    const events = c.events('leasehold-databaseaccessrequest');
    const leases = new LeaseOps({
      kube: c.kube,
      metrics: this.metrics,
      memory: this.memory,
      roleGate: new KeyedReadWriteLock(),
      emit: (dar, e) => events.event(dar, e.type, e.reason, e.message),
      nowMs: () => Date.now(),
    });
    this.effects = { c, leases, memory: this.memory, metrics: this.metrics, events };
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    const cached = this.c.caches.requests.get(key.namespace, key.name);
    if (!cached) {
      this.metrics.forget(key.namespace, key.name);
      return DONE;
    }
    // The cache may not show this process's own last write yet: then that write is the request as it stands.
    const request = this.memory.freshest(cached);
    const observed = await observe(request, { c: this.c, dependencies: this.dependencies, memory: this.memory }, ctx);
    const pass = new Pass(observed, this.effects, ctx);
    try {
      let p = plan(observed, ctx.now());
      const renewal = await pass.run(p);
      if (p.replan) {
        // A renewal answered: what comes next (renewed, or a rotation) is decided with its answer.
        p = plan({ ...observed, request: pass.current, renewal }, ctx.now());
        await pass.run(p);
      }
    } catch (err) {
      return pass.fail(err);
    }
    return pass.finish();
  }
}
