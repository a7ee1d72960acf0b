// Access to a request's credential: its spec.subjects may read its Secret, and nothing else.
import type { DatabaseAccessRequest } from '../../api/index.ts';
import {
  RetryableError,
  controllerOwnerRef,
  deepEqual,
  isConflict,
  type KubeClient,
  type ReconcileContext,
  type ResourceType,
  type WatchCache,
} from '../../lib/runtime/index.ts';
import type { Caches, Grant } from '../shared/context.ts';
import { ROLE_BINDINGS, ROLES } from '../shared/resources.ts';
import { credentialLabels } from './credential-secret.ts';

/** A Role or RoleBinding this process created is trusted to exist this long while the cache doesn't show it yet. */
const CREATED_EXPECTATION_MS = 30_000;

/**
 * What this process created and its caches haven't shown yet (controller-runtime's "expectations"): a pass that
 * runs before the watch delivers its own create neither creates it again (a 409 and a GET) nor mistakes it for gone.
 */
export class CreatedGrants {
  private readonly created = new Map<string, number>();

  /** Still waiting for the cache to show `key`: how much longer to trust the create (ms), else undefined. */
  pending(key: string, nowMs: number): number | undefined {
    const at = this.created.get(key);
    if (at === undefined) return undefined;
    const left = at + CREATED_EXPECTATION_MS - nowMs;
    if (left > 0) return left;
    this.created.delete(key);
    return undefined;
  }

  remember(key: string, nowMs: number): void {
    this.created.set(key, nowMs);
  }

  seen(key: string): void {
    this.created.delete(key);
  }
}

export interface GrantDeps {
  kube: KubeClient;
  caches: Pick<Caches, 'grantRoles' | 'grantBindings'>;
  created: CreatedGrants;
}

/**
 * A Role allowing `get` on exactly the credential Secret, bound to spec.subjects; both owned by the request.
 * Compared with the watch caches (ours only, by label), so a pass whose grants are right makes no call; a
 * change or deletion of either wakes the request (its setup.ts) and is put right at once. Returns, when one
 * this process just created isn't in the cache yet, how long until it is looked at again (ms).
 */
export async function ensureGrants(
  deps: GrantDeps,
  dar: DatabaseAccessRequest,
  ctx: ReconcileContext,
): Promise<number | undefined> {
  const ns = dar.metadata.namespace ?? '';
  const secretName = dar.status?.secret?.name;
  if (!secretName) return undefined;
  const metadata = {
    name: secretName,
    namespace: ns,
    labels: credentialLabels(dar),
    ownerReferences: [controllerOwnerRef(dar)],
  };
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata,
    rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get'] }],
  };
  const binding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: secretName },
    subjects: dar.spec.subjects.map((s) =>
      s.kind === 'ServiceAccount'
        ? { kind: 'ServiceAccount', name: s.name, namespace: s.namespace ?? ns }
        : { kind: s.kind, name: s.name, apiGroup: 'rbac.authorization.k8s.io' },
    ),
  };
  const a = await ensure(
    deps,
    { resource: ROLES, cache: deps.caches.grantRoles, desired: role, fields: ['rules'] },
    ctx,
  );
  const b = await ensure(
    deps,
    { resource: ROLE_BINDINGS, cache: deps.caches.grantBindings, desired: binding, fields: ['roleRef', 'subjects'] },
    ctx,
  );
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

interface Desired {
  resource: ResourceType;
  cache: WatchCache<Grant>;
  desired: { metadata: { name: string; namespace: string } } & Record<string, unknown>;
  /** The fields compared with what exists. */
  fields: string[];
}

async function ensure(
  { kube, created }: GrantDeps,
  { resource, cache, desired, fields }: Desired,
  ctx: ReconcileContext,
): Promise<number | undefined> {
  const { name, namespace: ns } = desired.metadata;
  const key = `${resource.plural}/${ns}/${name}`;
  let existing: Grant | undefined = cache.get(ns, name);
  if (existing) {
    created.seen(key);
  } else {
    const waitMs = created.pending(key, ctx.now().getTime());
    if (waitMs !== undefined) return waitMs; // created by this process a moment ago; the cache will show it
    try {
      await kube.create(resource, ns, desired as never, ctx);
      created.remember(key, ctx.now().getTime());
      return undefined;
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    // There already (the cache hadn't caught up, or someone else's object of that name): look at it.
    existing = await kube.tryGet<Grant>(resource, ns, name, ctx);
    if (!existing)
      throw new RetryableError('Conflict', `${resource.kind} ${ns}/${name} was being deleted as it was created`);
  }
  const current = existing as Record<string, unknown>;
  if (!fields.some((f) => !deepEqual(current[f], desired[f]))) return undefined;
  try {
    await kube.replace(
      resource,
      ns,
      name,
      { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion } } as never,
      ctx,
    );
  } catch (err) {
    if (isConflict(err))
      throw new RetryableError('Conflict', `${resource.kind} ${ns}/${name} changed since it was read`, { cause: err });
    throw err;
  }
  return undefined;
}
