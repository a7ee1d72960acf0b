// The operator's controllers, as the entry point (lib/main.ts) registers them. Each controller builds its
// caches and Controller from `deps` and returns a registration; the runtime starts them on the leader.
//
//   const requests = deps.cache<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS);
//   const controller = deps.newController({ name: 'databaseaccessrequest', reconciler })
//     .watch(requests, enqueueObject())
//     .watch(deps.cache(SECRETS, { labelSelector: MANAGED_BY, transform: stripSecretData }), enqueueOwner({ group: GROUP, kind: 'DatabaseAccessRequest' }));
//   return [{ name: 'databaseaccessrequest', controller }];
import type { ControllerDeps, ControllerRegistration } from '../lib/runtime/registration.ts';

export type { ControllerDeps, ControllerRegistration };

export function buildControllers(_deps: ControllerDeps): ControllerRegistration[] {
  return [];
}
