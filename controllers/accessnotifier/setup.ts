// The notifier controllers' wiring: one controller per kind (AccessNotifier, ClusterAccessNotifier) sharing one
// NotificationHub, which subscribes to the audit stream. A request's change wakes the notifiers (reminders and
// ExpiringSoon are scheduled from requests); a Secret's change wakes the notifiers naming it (and retries a
// waiting delivery at once); a Namespace's change wakes the ClusterAccessNotifiers.
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  enqueueMapped,
  enqueueObject,
  specOrMetadataChanged,
  systemClock,
  type AuditSink,
  type Controller,
  type ObjectKey,
} from '../../lib/runtime/index.ts';
import type { SetupContext } from '../shared/setup.ts';
import { NotificationHub, notifierMetrics } from './hub.ts';
import type { AnyNotifier } from './notifier.ts';
import { AccessNotifierReconciler } from './reconciler.ts';
import { NotificationSender, newNotificationId, secretNamespace, secretRefs } from './sender.ts';

export interface NotifierSetup {
  audit: AuditSink;
  operatorNamespace: string;
}

const keyOfNotifier = (n: AnyNotifier): ObjectKey =>
  n.clusterScoped
    ? { namespace: '', name: n.object.metadata.name ?? '' }
    : { namespace: n.object.metadata.namespace ?? '', name: n.object.metadata.name ?? '' };

export function setupAccessNotifierControllers(
  { ctx, metrics, newController }: SetupContext,
  { audit, operatorNamespace }: NotifierSetup,
): { namespaced: Controller; cluster: Controller; hub: NotificationHub } {
  const { caches } = ctx;
  const sender = new NotificationSender(ctx.kube, { operatorNamespace });
  const controllers: { namespaced?: Controller; cluster?: Controller } = {};
  const hub = new NotificationHub({
    caches,
    send: (n, notification) => sender.send(n, notification),
    clock: systemClock,
    metrics: notifierMetrics(metrics.registry),
    wake: (n) => (n.clusterScoped ? controllers.cluster : controllers.namespaced)?.enqueue(keyOfNotifier(n)),
    newId: newNotificationId,
    log: ctx.log.child({ controller: 'accessnotifier' }),
  });
  audit.subscribe(hub.onRecord);

  const everyNotifier = (filter: (n: AnyNotifier) => boolean) => (clusterScoped: boolean) =>
    hub
      .notifiers()
      .filter((n) => n.clusterScoped === clusterScoped && filter(n))
      .map(keyOfNotifier);
  const naming = (secret: KubernetesObject) => (n: AnyNotifier) =>
    secretNamespace(n, operatorNamespace) === secret.metadata?.namespace &&
    secretRefs(n).some((s) => s.ref.name === secret.metadata?.name);

  const build = (clusterScoped: boolean): Controller => {
    const c = newController({
      name: clusterScoped ? 'clusteraccessnotifier' : 'accessnotifier',
      reconciler: new AccessNotifierReconciler(ctx, hub, clusterScoped, operatorNamespace),
    });
    if (clusterScoped) c.watch(caches.clusterAccessNotifiers, enqueueObject({ predicate: specOrMetadataChanged }));
    else c.watch(caches.accessNotifiers, enqueueObject({ predicate: specOrMetadataChanged }));
    c.watch(
      caches.requests,
      enqueueMapped((r) =>
        everyNotifier((n) => n.clusterScoped || n.object.metadata.namespace === r.metadata?.namespace)(clusterScoped),
      ),
    );
    c.watch(
      caches.secrets,
      enqueueMapped((s) => {
        const ns = everyNotifier(naming(s))(clusterScoped);
        for (const n of hub.notifiers().filter(naming(s))) hub.retryNow(n);
        return ns;
      }),
    );
    if (clusterScoped)
      c.watch(
        caches.namespaces,
        enqueueMapped(() => everyNotifier(() => true)(true)),
      );
    return c;
  };
  const namespaced = (controllers.namespaced = build(false));
  const cluster = (controllers.cluster = build(true));
  return { namespaced, cluster, hub };
}
