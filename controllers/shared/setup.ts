// What each kind's setup.ts (controller-runtime's SetupWithManager) gets from controllers/index.ts, and the small
// key mappings several of them use. A setup owns its kind's watches, predicates and the cache indexes only it
// queries; the indexes several kinds query are dependents.ts' addDependencyIndexes.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Controller, ControllerOptions, Metrics, ObjectKey } from '../../lib/runtime/index.ts';
import type { ControllerContext } from './context.ts';
import { deletingKeys, type Dependencies, type ObjectRef } from './dependents.ts';

export interface SetupContext {
  /** What every reconciler gets (caches, clients, the Vault connections, the cluster name). */
  ctx: ControllerContext;
  /** The dependency graph over the caches, for watches that wake an object waiting on its dependents. */
  dependencies: Dependencies;
  /** The operator's metrics (a reconciler may register its own in `metrics.registry`). */
  metrics: Metrics;
  /** A controller wired to the shared logger and metrics. */
  newController(opts: Omit<ControllerOptions, 'log' | 'metrics'>): Controller;
}

export const nsOf = (o: KubernetesObject): string => o.metadata?.namespace ?? '';
export const keyOf = (o: KubernetesObject): ObjectKey => ({ namespace: nsOf(o), name: o.metadata?.name ?? '' });
export const refOf = (o: KubernetesObject): ObjectRef => ({ namespace: nsOf(o), name: o.metadata?.name ?? '' });

/** The keys of the objects `refs` names that `cache` holds as being deleted: what a dependent's change may release. */
export const deletingIn =
  <T extends KubernetesObject>(cache: { get(ns: string, name: string): T | undefined }) =>
  (refs: readonly (ObjectRef | undefined)[]): ObjectKey[] =>
    deletingKeys(refs, (n, m) => cache.get(n, m));
