// The SecretEngine controller's wiring (controller-runtime's SetupWithManager): what wakes a SecretEngine, and
// its index of engines by mount.
import type { AppBinding, SecretEngine } from '../../api/index.ts';
import { enqueueMapped, enqueueObject, type Controller } from '../../lib/runtime/index.ts';
import { APPBINDINGS_BY_SECRET, SECRET_ENGINES_BY_APPBINDING } from '../shared/dependents.ts';
import { engineMountPath } from '../shared/names.ts';
import { roleCaches } from '../shared/role-kinds.ts';
import { deletingIn, keyOf, nsOf, refOf, type SetupContext } from '../shared/setup.ts';
import { SecretEngineReconciler } from './reconciler.ts';

/** Cache index of SecretEngines by the Vault mount they enable (spec.path or the default). */
const SECRET_ENGINES_BY_MOUNT = 'mount';

export function setupSecretEngineController({ ctx, dependencies, newController }: SetupContext): Controller {
  const { caches, clusterName } = ctx;
  // Tenancy: SecretEngines sharing a mount, so the owner's leasehold.dev/allowed-namespaces wakes the others.
  const mountOf = (e: SecretEngine) => engineMountPath(clusterName, e);
  caches.secretEngines.addIndex(SECRET_ENGINES_BY_MOUNT, (e) => [mountOf(e)]);
  const enginesOfAppBinding = (a: AppBinding) =>
    caches.secretEngines.byIndex(SECRET_ENGINES_BY_APPBINDING, `${nsOf(a)}/${a.metadata.name}`).map(keyOf);
  const deleting = deletingIn(caches.secretEngines);

  const controller = newController({ name: 'secretengine', reconciler: new SecretEngineReconciler(ctx) })
    .watch(caches.secretEngines, enqueueObject())
    .watch(
      caches.secretEngines,
      enqueueMapped((e) =>
        caches.secretEngines
          .byIndex(SECRET_ENGINES_BY_MOUNT, mountOf(e))
          .filter((o) => o.metadata.uid !== e.metadata.uid)
          .map(keyOf),
      ),
    )
    .watch(caches.appBindings, enqueueMapped(enginesOfAppBinding))
    // A rotated admin password: Secret → AppBindings using it → their SecretEngines.
    .watch(
      caches.secrets,
      enqueueMapped((s) =>
        caches.appBindings
          .byIndex(APPBINDINGS_BY_SECRET, `${nsOf(s)}/${s.metadata?.name}`)
          .flatMap(enginesOfAppBinding),
      ),
    )
    // A SecretEngine being deleted waits for the requests whose leases went through it. Most request events
    // find no engine being deleted: they skip working out the request's routes (a few per cent of a grant's CPU).
    .watch(
      caches.requests,
      enqueueMapped((d) =>
        caches.secretEngines.list().some((e) => e.metadata.deletionTimestamp)
          ? deleting(dependencies.enginesOfRequest(d).map(refOf))
          : [],
      ),
    );
  for (const roles of roleCaches(caches))
    controller.watch(
      roles,
      enqueueMapped((r) => deleting(dependencies.enginesOfRole(r).map(refOf))),
    );
  return controller;
}
