// Access to a request's credential: its spec.subjects may read its Secret, and nothing else.
import type { DatabaseAccessRequest } from '../../api/index.ts';
import { RetryableError, controllerOwnerRef, deepEqual, isConflict, type KubeClient, type ReconcileContext, type ResourceType, type WatchCache } from '../../lib/runtime/index.ts';
import type { Caches, Grant } from '../shared/context.ts';
import { ROLE_BINDINGS, ROLES } from '../shared/resources.ts';
import { credentialLabels } from './credential-secret.ts';

/**
 * A Role allowing `get` on exactly the credential Secret, bound to spec.subjects; both owned by the request.
 * Compared with the watch caches (ours only, by label), so a pass whose grants are right makes no call; a
 * change or deletion of either wakes the request (controllers/index.ts) and is put right at once.
 */
export async function ensureGrants(kube: KubeClient, caches: Pick<Caches, 'grantRoles' | 'grantBindings'>, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<void> {
  const ns = dar.metadata.namespace ?? '';
  const secretName = dar.status?.secret?.name;
  if (!secretName) return;
  const metadata = { name: secretName, namespace: ns, labels: credentialLabels(dar), ownerReferences: [controllerOwnerRef(dar)] };
  const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get'] }] };
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: secretName },
    subjects: dar.spec.subjects.map((s) => s.kind === 'ServiceAccount'
      ? { kind: 'ServiceAccount', name: s.name, namespace: s.namespace ?? ns }
      : { kind: s.kind, name: s.name, apiGroup: 'rbac.authorization.k8s.io' }),
  };
  await ensure(kube, ROLES, caches.grantRoles, role, ['rules'], ctx);
  await ensure(kube, ROLE_BINDINGS, caches.grantBindings, binding, ['roleRef', 'subjects'], ctx);
}

async function ensure(kube: KubeClient, resource: ResourceType, cache: WatchCache<Grant>, desired: { metadata: { name: string; namespace: string } } & Record<string, unknown>,
  fields: string[], ctx: ReconcileContext): Promise<void> {
  const { name, namespace: ns } = desired.metadata;
  let existing: Grant | undefined = cache.get(ns, name);
  if (!existing) {
    try {
      await kube.create(resource, ns, desired as never, ctx);
      return;
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    // There already (the cache hadn't caught up, or someone else's object of that name): look at it.
    existing = await kube.tryGet<Grant>(resource, ns, name, ctx);
    if (!existing) throw new RetryableError('Conflict', `${resource.kind} ${ns}/${name} was being deleted as it was created`);
  }
  const current = existing as Record<string, unknown>;
  if (!fields.some((f) => !deepEqual(current[f], desired[f]))) return;
  try {
    await kube.replace(resource, ns, name, { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion } } as never, ctx);
  } catch (err) {
    if (isConflict(err)) throw new RetryableError('Conflict', `${resource.kind} ${ns}/${name} changed since it was read`, { cause: err });
    throw err;
  }
}

