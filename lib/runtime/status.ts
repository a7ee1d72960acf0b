// Status writes: once per pass at most, only when something changed, as a merge patch on /status carrying
// metadata.resourceVersion so a write based on a stale read fails (409) instead of undoing someone's update.
import type { KubernetesObject } from '@kubernetes/client-node';
import { PatchType, isConflict, type KubeClient } from './kube.ts';
import { RetryableError, type ResourceType } from './types.ts';

export interface StatusResult<T> {
  changed: boolean;
  object: T;
}

export type WithStatus<S> = KubernetesObject & { status?: S };

/**
 * Writes `desired` as the object's status if it differs (deep equality over every field) from `current.status`.
 * Only the difference is sent; fields absent from `desired` are removed. Conflicts become RetryableError.
 * `subresource` is 'status' unless the kind has no status subresource.
 */
export async function patchStatus<S, T extends WithStatus<S>>(
  client: KubeClient,
  resource: ResourceType,
  current: T,
  desired: S,
  opts: { signal?: AbortSignal; subresource?: 'status' | '' } = {},
): Promise<StatusResult<T>> {
  const diff = mergePatchDiff(current.status ?? {}, desired ?? {});
  if (diff === undefined) return { changed: false, object: current };
  const ns = current.metadata?.namespace ?? '';
  const name = current.metadata?.name ?? '';
  const body = { metadata: { resourceVersion: current.metadata?.resourceVersion }, status: diff };
  try {
    const object = await client.patch<T>(resource, ns, name, body, PatchType.merge, {
      signal: opts.signal,
      subresource: opts.subresource ?? 'status',
    });
    return { changed: true, object };
  } catch (err) {
    if (isConflict(err))
      throw new RetryableError('Conflict', `${resource.kind} ${ns}/${name} changed since it was read`, { cause: err });
    throw err;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Structural equality of JSON values; `undefined` members count as absent. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => deepEqual(v, b[i]));
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual(a[k], b[k]));
}

/**
 * The RFC 7386 merge patch that turns `from` into `to`, or undefined if they are equal. Objects are diffed
 * member by member (removed members become null); arrays and scalars are replaced whole.
 */
export function mergePatchDiff(from: unknown, to: unknown): unknown {
  if (isPlainObject(from) && isPlainObject(to)) {
    const patch: Record<string, unknown> = {};
    let changed = false;
    for (const k of Object.keys(from)) {
      if (from[k] !== undefined && (to[k] === undefined || to[k] === null)) {
        patch[k] = null;
        changed = true;
      }
    }
    for (const [k, v] of Object.entries(to)) {
      if (v === undefined || v === null) continue;
      const d = from[k] === undefined ? v : mergePatchDiff(from[k], v);
      if (d !== undefined) {
        patch[k] = d;
        changed = true;
      }
    }
    return changed ? patch : undefined;
  }
  if (deepEqual(from, to)) return undefined;
  return to === undefined ? null : to;
}
