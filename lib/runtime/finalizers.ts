// Finalizers, added before the first external side effect and removed last. Writes are JSON patches guarded by
// a `test` op, so a concurrent change to the finalizer list (another controller adding its own) fails the
// write instead of being overwritten; the failure surfaces as a retryable conflict.
import type { KubernetesObject } from '@kubernetes/client-node';
import { KubeApiError, PatchType, isNotFound, type KubeClient } from './kube.ts';
import { RetryableError, type ResourceType } from './types.ts';

export interface FinalizerResult<T> {
  /** Whether a write was made. */
  changed: boolean;
  /** The object after the write (or as given, when nothing changed). */
  object: T;
}

export function hasFinalizer(obj: KubernetesObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

/** Adds `finalizer` unless present. */
export async function addFinalizer<T extends KubernetesObject>(
  client: KubeClient,
  resource: ResourceType,
  obj: T,
  finalizer: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FinalizerResult<T>> {
  if (hasFinalizer(obj, finalizer)) return { changed: false, object: obj };
  const current = obj.metadata?.finalizers;
  const ops =
    current && current.length > 0
      ? [
          { op: 'test', path: '/metadata/finalizers', value: current },
          { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
        ]
      : // No list yet: `add` would replace one created meanwhile, so pin the whole object's version instead.
        [
          { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata?.resourceVersion },
          { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
        ];
  const object = await patchFinalizers<T>(client, resource, obj, ops, opts.signal);
  return { changed: true, object: object ?? obj };
}

/** Removes `finalizer` if present. An object already gone counts as unchanged. */
export async function removeFinalizer<T extends KubernetesObject>(
  client: KubeClient,
  resource: ResourceType,
  obj: T,
  finalizer: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FinalizerResult<T>> {
  const i = obj.metadata?.finalizers?.indexOf(finalizer) ?? -1;
  if (i < 0) return { changed: false, object: obj };
  const ops = [
    { op: 'test', path: `/metadata/finalizers/${i}`, value: finalizer },
    { op: 'remove', path: `/metadata/finalizers/${i}` },
  ];
  const object = await patchFinalizers<T>(client, resource, obj, ops, opts.signal);
  return object ? { changed: true, object } : { changed: false, object: obj };
}

async function patchFinalizers<T extends KubernetesObject>(
  client: KubeClient,
  resource: ResourceType,
  obj: T,
  ops: unknown[],
  signal?: AbortSignal,
): Promise<T | undefined> {
  const ns = obj.metadata?.namespace ?? '';
  const name = obj.metadata?.name ?? '';
  try {
    return await client.patch<T>(resource, ns, name, ops, PatchType.json, { signal });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    if (isPatchConflict(err))
      throw new RetryableError('Conflict', `the finalizers of ${resource.kind} ${ns}/${name} changed meanwhile`, {
        cause: err,
      });
    throw err;
  }
}

/**
 * A failed `test` op comes back as 422 Invalid with a generic message. Our patches are otherwise well-formed,
 * so a 422 means the object changed under us (as does a `remove` at an index that moved): a conflict.
 */
function isPatchConflict(err: unknown): boolean {
  return err instanceof KubeApiError && (err.statusCode === 409 || err.statusCode === 422);
}
