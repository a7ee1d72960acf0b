// A watch cache fed by a FakeKube instead of a list/watch loop: the real WatchCache (its store, indexes and event
// handlers), told of every change FakeKube makes as it makes it, so a reconciler reads its own writes from the cache
// the way it would shortly after them with an informer. Objects go through the same transform as in the operator
// (stripManagedFields by default; pass secretCacheTransform for Secrets so no Secret data is cached), and a label
// selector or namespace narrows what is kept. FakeKube.pauseWatch() leaves the cache stale until resumeWatch().
import type { KubernetesObject } from '@kubernetes/client-node';
import type { CacheOptions } from '../../lib/runtime/manager.ts';
import type { ResourceType } from '../../lib/runtime/types.ts';
import { WatchCache, stripManagedFields, type CacheHealth } from '../../lib/runtime/watch.ts';
import { parseSelector, type FakeKube, type WatchEventType } from './fake-kube.ts';

/**
 * The WatchCache members that apply one watch event to the store (private there: its list/watch loop is their only
 * caller). The one place the fake reaches into the real cache; a rename there fails the fakes' own tests at once.
 */
interface StoreWriter<T> {
  upsert(obj: T): void;
  remove(obj: T): void;
}

export class FakeWatchCache<T extends KubernetesObject = KubernetesObject> extends WatchCache<T> {
  /** Already synced: FakeKube's objects are in the store from the start. */
  override readonly synced: Promise<void> = Promise.resolve();
  private readonly unwatch: () => void;

  constructor(kube: FakeKube, resource: ResourceType, opts: CacheOptions<T> = {}) {
    super({ kubeConfig: kube.kubeConfig, client: kube, resource, ...opts });
    const transform = opts.transform ?? ((o: KubernetesObject) => stripManagedFields(o) as T);
    const selected = parseSelector(opts.labelSelector ?? '');
    const namespace = resource.namespaced === false ? '' : (opts.namespace ?? '');
    const store = this as unknown as StoreWriter<T>;
    const sameKind = (r: ResourceType) => r.group === resource.group && r.plural === resource.plural;
    const apply = (type: WatchEventType, obj: KubernetesObject) => {
      if (namespace && obj.metadata?.namespace !== namespace) return;
      const kept = this.get(obj.metadata?.namespace ?? '', obj.metadata?.name ?? '');
      if (type === 'DELETED' || !selected(obj.metadata?.labels ?? {})) {
        if (kept) store.remove(transform(obj));
        return;
      }
      store.upsert(transform(obj));
    };
    for (const obj of kube.objects(resource)) apply('ADDED', obj);
    this.unwatch = kube.onChange((r, type, obj) => {
      if (sameKind(r)) apply(type, obj);
    });
  }

  override hasSynced(): boolean {
    return true;
  }

  override health(): CacheHealth {
    return { synced: true, watching: true, lastActivityAt: undefined, restarts: 0 };
  }

  /** Nothing to start: FakeKube feeds the cache from construction. */
  override start(): void {}

  /** Stops following FakeKube; the store keeps its contents. */
  override async stop(): Promise<void> {
    this.unwatch();
  }
}
