// Owner references: what lets garbage collection delete what a resource created, and lets a controller find
// the owner of a changed object (enqueueOwner).
import type { KubernetesObject, V1OwnerReference } from '@kubernetes/client-node';

/**
 * A controller owner reference to `owner` (controller: true, blockOwnerDeletion: true). Throws if the owner
 * lacks apiVersion, kind, name or uid (an object built locally rather than read from the API).
 */
export function controllerOwnerRef(owner: KubernetesObject): V1OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid)
    throw new Error('an owner needs apiVersion, kind, metadata.name and metadata.uid');
  return { apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true };
}

/**
 * Sets `owner` as the controller of `obj` (returns a new metadata.ownerReferences list). A namespaced owner can
 * only own objects in its own namespace, and an object can have only one controller: both are errors here
 * rather than objects the garbage collector later deletes or ignores.
 */
export function withControllerReference(obj: KubernetesObject, owner: KubernetesObject): V1OwnerReference[] {
  const ref = controllerOwnerRef(owner);
  // A cluster-scoped owner (no namespace) may own objects anywhere.
  if (owner.metadata?.namespace && owner.metadata.namespace !== obj.metadata?.namespace) {
    throw new Error(
      `cross-namespace owner references are not allowed (owner in ${owner.metadata?.namespace ?? '(cluster)'}, object in ${obj.metadata?.namespace ?? '(cluster)'})`,
    );
  }
  const refs = [...(obj.metadata?.ownerReferences ?? [])];
  const other = refs.find((r) => r.controller && r.uid !== ref.uid);
  if (other) throw new Error(`already controlled by ${other.kind} ${other.name}`);
  const i = refs.findIndex((r) => r.uid === ref.uid);
  if (i >= 0) refs[i] = ref;
  else refs.push(ref);
  return refs;
}

/** The controller owner reference of `obj`, if any. */
export function controllerOf(obj: KubernetesObject): V1OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}

/** The API group of an apiVersion: '' for core (`v1`), `example.com` for `example.com/v1`. */
export function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

/** Whether `obj` is controlled by an object of `kind` in `group` (any version). */
export function isControlledBy(
  obj: KubernetesObject,
  owner: { group: string; kind: string },
): V1OwnerReference | undefined {
  const ref = controllerOf(obj);
  return ref && ref.kind === owner.kind && groupOf(ref.apiVersion) === owner.group ? ref : undefined;
}
