// The AppBinding controller's wiring (controller-runtime's SetupWithManager): what wakes an AppBinding.
import type { KubernetesObject } from '@kubernetes/client-node';
import { IN_USE_FINALIZER, engineDatabase } from '../../api/index.ts';
import { enqueueMapped, enqueueObject, hasFinalizer, type Controller } from '../../lib/runtime/index.ts';
import { APPBINDINGS_BY_SECRET, engineRoute, leaseAppBindings, type ObjectRef } from '../shared/dependents.ts';
import { roleCaches } from '../shared/role-kinds.ts';
import { keyOf, nsOf, type SetupContext } from '../shared/setup.ts';
import { AppBindingReconciler } from './reconciler.ts';

export function setupAppBindingController({ ctx, dependencies, newController }: SetupContext): Controller {
  const { caches, clusterName } = ctx;
  const bySecret = (s: KubernetesObject) =>
    caches.appBindings.byIndex(APPBINDINGS_BY_SECRET, `${nsOf(s)}/${s.metadata?.name}`);
  // AppBindings a dependent's change concerns: one being deleted (or whose token Secret is) may be released; one
  // without the in-use finalizer may have just become a Vault that something depends on.
  const waitingAppBindings = (refs: readonly (ObjectRef | undefined)[]) =>
    refs.filter((r): r is ObjectRef => {
      const ab = r && caches.appBindings.get(r.namespace, r.name);
      return (
        !!ab &&
        (!!ab.metadata.deletionTimestamp ||
          !hasFinalizer(ab, IN_USE_FINALIZER) ||
          !!(ab.spec.secret && caches.secrets.get(r!.namespace, ab.spec.secret.name)?.metadata?.deletionTimestamp))
      );
    });

  const controller = newController({ name: 'appbinding', reconciler: new AppBindingReconciler(ctx) })
    .watch(caches.appBindings, enqueueObject())
    .watch(
      caches.secrets,
      enqueueMapped((s) => bySecret(s).map(keyOf)),
    )
    // A token Secret still holding in-use that no AppBinding names any more: any in-use AppBinding of its
    // namespace releases it (AppBindingReconciler.releaseFormerTokenSecrets).
    .watch(
      caches.secrets,
      enqueueMapped((s) =>
        hasFinalizer(s, IN_USE_FINALIZER) && bySecret(s).length === 0
          ? caches.appBindings
              .list()
              .filter((a) => nsOf(a) === nsOf(s) && hasFinalizer(a, IN_USE_FINALIZER))
              .slice(0, 1)
              .map(keyOf)
          : [],
      ),
    )
    .watch(
      caches.requests,
      enqueueMapped((d) => waitingAppBindings(leaseAppBindings(d))),
    )
    .watch(
      caches.secretEngines,
      enqueueMapped((e) => waitingAppBindings([engineRoute(e, clusterName).vaultAppBinding])),
    )
    // The database AppBinding a SecretEngine names: that names its kind of database (a check only if it changed).
    .watch(
      caches.secretEngines,
      enqueueMapped((e) => {
        const db = engineDatabase(e)?.config.databaseRef;
        return db ? [{ namespace: db.namespace ?? nsOf(e), name: db.name }] : [];
      }),
    );
  for (const roles of roleCaches(caches))
    controller.watch(
      roles,
      enqueueMapped((r) => waitingAppBindings([dependencies.appBindingOfRole(r)])),
    );
  return controller;
}
