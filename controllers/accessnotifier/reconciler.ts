// One pass over an AccessNotifier or ClusterAccessNotifier: keep its latest spec for deliveries, queue the
// reminders and ExpiringSoon notifications due now (from the requests in the cache and the time), and write what
// its deliveries look like — backlog, last success, last failure, Ready — with one Event when Ready changes.
// Deliveries themselves run in the hub's queues, outside any reconcile: nothing here waits on a receiver.
import { ConditionType, Reason, type AccessNotifier, type ClusterAccessNotifier } from '../../api/index.ts';
import {
  DONE,
  rfc3339,
  requeueAfter,
  type ConditionInput,
  type ObjectKey,
  type ReconcileContext,
  type Reconciler,
  type Result,
} from '../../lib/runtime/index.ts';
import type { ControllerContext } from '../shared/context.ts';
import { report } from '../shared/report.ts';
import { ACCESS_NOTIFIERS, CLUSTER_ACCESS_NOTIFIERS } from '../shared/resources.ts';
import type { NotificationHub } from './hub.ts';
import type { DeliveryStats } from './delivery.ts';
import { describeNotifier, notifierOf, type AnyNotifier } from './notifier.ts';
import { secretNamespace, secretRefs } from './sender.ts';

/** The longest a notifier goes without a look (its status kept current while a backoff runs, say). */
const MAX_WAIT_MS = 5 * 60_000;

export class AccessNotifierReconciler implements Reconciler {
  constructor(
    private readonly c: ControllerContext,
    private readonly hub: NotificationHub,
    private readonly clusterScoped: boolean,
    private readonly operatorNamespace: string,
  ) {}

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    const obj = this.clusterScoped
      ? this.c.caches.clusterAccessNotifiers.get('', key.name)
      : this.c.caches.accessNotifiers.get(key.namespace, key.name);
    const gone = this.clusterScoped ? key.name : `${key.namespace}/${key.name}`;
    if (!obj || obj.metadata.deletionTimestamp) {
      this.hub.remove(gone);
      return DONE;
    }
    const n: AnyNotifier = this.clusterScoped
      ? notifierOf.cluster(obj as ClusterAccessNotifier)
      : notifierOf.namespaced(obj as AccessNotifier);
    this.hub.update(n);
    const nowMs = ctx.now().getTime();
    const next = this.hub.scan(n, nowMs);

    const ns = secretNamespace(n, this.operatorNamespace);
    const missing = secretRefs(n)
      .filter((s) => !this.c.caches.secrets.get(ns, s.ref.name))
      .map((m) => `Secret ${ns}/${m.ref.name} (${m.what})`);
    const st = this.hub.stats(n);
    const ready = readiness(missing, st);
    const fields: Record<string, unknown> = {
      backlog: st.backlog,
      ...(st.lastSuccessAt ? { lastSuccessTime: rfc3339(st.lastSuccessAt) } : {}),
      ...(st.lastFailureAt ? { lastFailureTime: rfc3339(st.lastFailureAt) } : {}),
      ...(st.lastFailureMessage ? { lastFailureMessage: st.lastFailureMessage.slice(0, 1024) } : {}),
    };
    await report(
      this.c.kube,
      this.clusterScoped ? CLUSTER_ACCESS_NOTIFIERS : ACCESS_NOTIFIERS,
      this.c.events(this.clusterScoped ? 'leasehold-clusteraccessnotifier' : 'leasehold-accessnotifier'),
      obj,
      { conditions: [ready], fields },
      ctx.now(),
      ctx.signal,
    );
    if (ready.status === 'False') ctx.log.debug('notifier not delivering', { notifier: describeNotifier(n) });
    const wait = next === undefined ? MAX_WAIT_MS : Math.min(MAX_WAIT_MS, Math.max(0, next - nowMs));
    return st.backlog || next !== undefined ? requeueAfter(wait) : DONE;
  }
}

/** Ready: False while a Secret it names is missing or its last delivery failed; True otherwise. */
export function readiness(missing: readonly string[], st: DeliveryStats): ConditionInput {
  const waiting = st.backlog ? ` (${st.backlog} notifications waiting)` : '';
  if (missing.length)
    return {
      type: ConditionType.Ready,
      status: 'False',
      reason: Reason.SecretNotFound,
      message: `${missing.join(' and ')} does not exist; nothing can be delivered until it does${waiting}`,
    };
  if (st.consecutiveFailures > 0)
    return {
      type: ConditionType.Ready,
      status: 'False',
      reason: Reason.DeliveryFailing,
      message: `the last delivery failed (${st.consecutiveFailures} attempts in a row): ${st.lastFailureMessage ?? ''}; ${st.backlog} notifications waiting, retried in order with backoff`,
    };
  return {
    type: ConditionType.Ready,
    status: 'True',
    reason: Reason.Delivering,
    message: st.lastSuccessAt
      ? `delivering; the last delivery succeeded at ${rfc3339(st.lastSuccessAt)}`
      : 'ready to deliver; nothing sent yet',
  };
}
