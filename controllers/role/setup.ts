// A role controller's wiring (controller-runtime's SetupWithManager), the same for every role kind: what wakes a
// role, and its index of guide-style roles by the mount they write into. Each kind's setup.ts names its kind.
import type { KubernetesObject } from '@kubernetes/client-node';
import { DEFAULT_MOUNT_PATH, type RoleKind, type SecretEngine } from '../../api/index.ts';
import { enqueueMapped, enqueueObject, type Controller } from '../../lib/runtime/index.ts';
import { POSTGRES_ROLES_BY_DEPENDENCY, roleOfRequest } from '../shared/dependents.ts';
import { ROLE_KIND_INFO } from '../shared/role-kinds.ts';
import { engineMountPath } from '../shared/names.ts';
import { deletingIn, keyOf, nsOf, type SetupContext } from '../shared/setup.ts';
import { RoleReconciler } from './reconciler.ts';

/** Cache index of guide-style roles (vaultRef + path, no secretEngineRef) by `namespace/vaultAppBinding/mount`. */
export const ROLES_BY_MOUNT = 'mount';

export function setupRoleController(kind: RoleKind, { ctx, newController }: SetupContext): Controller {
  const { caches, clusterName } = ctx;
  const info = ROLE_KIND_INFO[kind];
  const roles = info.cache(caches);
  // Guide-style roles (vaultRef + path) by the mount they write into: a SecretEngine enabling it wakes them.
  roles.addIndex(ROLES_BY_MOUNT, (r) =>
    r.spec.vaultRef && !r.spec.secretEngineRef
      ? [`${nsOf(r)}/${r.spec.vaultRef.name}/${r.spec.path ?? DEFAULT_MOUNT_PATH}`]
      : [],
  );
  const rolesDependingOn = (what: string, o: KubernetesObject) =>
    roles.byIndex(POSTGRES_ROLES_BY_DEPENDENCY, `${what}/${nsOf(o)}/${o.metadata?.name}`).map(keyOf);
  // The roles writing into an engine's mount (same Vault AppBinding, same path), whether or not they name it.
  const rolesOnMount = (e: SecretEngine) =>
    roles
      .byIndex(
        ROLES_BY_MOUNT,
        `${e.spec.vaultRef.namespace ?? nsOf(e)}/${e.spec.vaultRef.name}/${engineMountPath(clusterName, e)}`,
      )
      .map(keyOf);
  const deleting = deletingIn(roles);

  return newController({ name: info.controllerName, reconciler: new RoleReconciler(ctx, kind) })
    .watch(roles, enqueueObject())
    .watch(
      caches.secretEngines,
      enqueueMapped((e) => [...rolesDependingOn('SecretEngine', e), ...rolesOnMount(e)]),
    )
    .watch(
      caches.appBindings,
      enqueueMapped((a) => rolesDependingOn('AppBinding', a)),
    )
    .watch(
      caches.requests,
      enqueueMapped((d) => {
        const role = roleOfRequest(d);
        return role.kind === kind ? deleting([role]) : [];
      }),
    );
}
