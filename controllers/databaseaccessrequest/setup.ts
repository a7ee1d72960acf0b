// The DatabaseAccessRequest controller's wiring (controller-runtime's SetupWithManager): what wakes a request.
import { DATABASE_ACCESS_REQUEST, type DatabaseAccessRequest } from '../../api/index.ts';
import {
  enqueueMapped,
  enqueueObject,
  enqueueOwner,
  specOrMetadataChanged,
  type Controller,
} from '../../lib/runtime/index.ts';
import { REQUESTS_BY_ROLE, REQUESTS_BY_VAULT_APPBINDING, refKey, roleKey } from '../shared/dependents.ts';
import { kindOfRole, roleCaches } from '../shared/role-kinds.ts';
import { keyOf, nsOf, refOf, type SetupContext } from '../shared/setup.ts';
import { DatabaseAccessRequestReconciler } from './reconciler.ts';

const REQUEST_OWNER = { group: DATABASE_ACCESS_REQUEST.group, kind: DATABASE_ACCESS_REQUEST.kind };

/**
 * What people write into status: the Approved/Denied conditions, approvals (status.approvals) and a review
 * (status.review). The only status changes the controller reacts to.
 */
export function decisionChanged(a: DatabaseAccessRequest, b: DatabaseAccessRequest): boolean {
  const decisions = (d: DatabaseAccessRequest) =>
    JSON.stringify([
      (d.status?.conditions ?? []).filter((c) => c.type === 'Approved' || c.type === 'Denied'),
      d.status?.approvals ?? [],
      d.status?.review ?? null,
    ]);
  return decisions(a) !== decisions(b);
}

export function setupDatabaseAccessRequestController({ ctx, metrics, newController }: SetupContext): Controller {
  const { caches } = ctx;
  const controller = newController({
    name: 'databaseaccessrequest',
    reconciler: new DatabaseAccessRequestReconciler(ctx, metrics.registry),
  });
  // Status changes of a role (it became ready) matter to its requests: every change counts. Every role kind alike.
  for (const roles of roleCaches(caches)) {
    controller.watch(
      roles,
      enqueueMapped((r) =>
        caches.requests
          .byIndex(REQUESTS_BY_ROLE, roleKey({ kind: kindOfRole(r), namespace: nsOf(r), name: r.metadata.name ?? '' }))
          .map(keyOf),
      ),
    );
  }
  return (
    controller
      // A decision arrives as a status write by a person: it must wake the controller, unlike our own status writes.
      .watch(
        caches.requests,
        enqueueObject<DatabaseAccessRequest>({
          predicate: (a, b) => specOrMetadataChanged(a, b) || decisionChanged(a, b),
        }),
      )
      // What a request owns: changed or deleted by someone, it is put back at once.
      .watch(caches.secrets, enqueueOwner(REQUEST_OWNER))
      .watch(caches.grantRoles, enqueueOwner(REQUEST_OWNER))
      .watch(caches.grantBindings, enqueueOwner(REQUEST_OWNER))
      // A request being deleted that waits for a way into Vault (its AppBinding's login was fixed, say).
      .watch(
        caches.appBindings,
        enqueueMapped(
          (a) =>
            caches.requests
              .byIndex(REQUESTS_BY_VAULT_APPBINDING, refKey(refOf(a)))
              .filter((d) => d.metadata.deletionTimestamp)
              .map(keyOf),
          { predicate: specOrMetadataChanged },
        ),
      )
  );
}
