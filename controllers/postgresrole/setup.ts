// The PostgresRole controller's wiring (controller-runtime's SetupWithManager): what wakes a PostgresRole, and
// its index of guide-style roles by the mount they write into.
import type { KubernetesObject } from '@kubernetes/client-node';
import { DEFAULT_MOUNT_PATH, type SecretEngine } from '../../api/index.ts';
import { enqueueMapped, enqueueObject, type Controller } from '../../lib/runtime/index.ts';
import { POSTGRES_ROLES_BY_DEPENDENCY, roleOfRequest } from '../shared/dependents.ts';
import { defaultMountPath } from '../shared/names.ts';
import { deletingIn, keyOf, nsOf, type SetupContext } from '../shared/setup.ts';
import { PostgresRoleReconciler } from './reconciler.ts';

/** Cache index of guide-style roles (vaultRef + path, no secretEngineRef) by `namespace/vaultAppBinding/mount`. */
const POSTGRES_ROLES_BY_MOUNT = 'mount';

export function setupPostgresRoleController({ ctx, newController }: SetupContext): Controller {
  const { caches, clusterName } = ctx;
  // Guide-style roles (vaultRef + path) by the mount they write into: a SecretEngine enabling it wakes them.
  caches.postgresRoles.addIndex(POSTGRES_ROLES_BY_MOUNT, (r) =>
    (r.spec.vaultRef && !r.spec.secretEngineRef ? [`${nsOf(r)}/${r.spec.vaultRef.name}/${r.spec.path ?? DEFAULT_MOUNT_PATH}`] : []));
  const rolesDependingOn = (kind: string, o: KubernetesObject) =>
    caches.postgresRoles.byIndex(POSTGRES_ROLES_BY_DEPENDENCY, `${kind}/${nsOf(o)}/${o.metadata?.name}`).map(keyOf);
  // The roles writing into an engine's mount (same Vault AppBinding, same path), whether or not they name it.
  const rolesOnMount = (e: SecretEngine) => caches.postgresRoles
    .byIndex(POSTGRES_ROLES_BY_MOUNT, `${e.spec.vaultRef.namespace ?? nsOf(e)}/${e.spec.vaultRef.name}/${e.spec.path ?? defaultMountPath(clusterName, nsOf(e), e.metadata.name ?? '')}`)
    .map(keyOf);
  const deleting = deletingIn(caches.postgresRoles);

  return newController({ name: 'postgresrole', reconciler: new PostgresRoleReconciler(ctx) })
    .watch(caches.postgresRoles, enqueueObject())
    .watch(caches.secretEngines, enqueueMapped((e) => [...rolesDependingOn('SecretEngine', e), ...rolesOnMount(e)]))
    .watch(caches.appBindings, enqueueMapped((a) => rolesDependingOn('AppBinding', a)))
    .watch(caches.requests, enqueueMapped((d) => deleting([roleOfRequest(d)])));
}
