// A list+watch of one kind in one namespace, kept as a map of small per-object states, with waiters that
// resolve at the moment (performance.now()) the first watch event satisfying a predicate arrives. The
// benchmarks time the operator by its effects as any client sees them: watch events, not polling, so no poll
// interval is added to a measured latency.
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { resourcePath } from '../../lib/runtime/kube.ts';
import type { ResourceType } from '../../lib/runtime/types.ts';
import type { BenchKube } from './kube.ts';

interface Waiter<S> {
  pred: (s: S) => boolean;
  resolve: (t: number) => void;
}

export type ChangeListener<S> = (key: string, state: S | undefined, previous: S | undefined, at: number) => void;

export class Tracker<S> {
  readonly states = new Map<string, S>();
  private readonly waiters = new Map<string, Waiter<S>[]>();
  private readonly listeners = new Set<ChangeListener<S>>();
  private resourceVersion = '';
  private abort: AbortController | undefined;
  private stopped = false;
  /** Watch (re)connections, for the record. */
  restarts = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly kube: BenchKube,
    private readonly resource: ResourceType,
    private readonly namespace: string,
    /** The key objects are tracked by (their name, or a label), or undefined to ignore an object. */
    private readonly keyOf: (o: KubernetesObject) => string | undefined,
    private readonly stateOf: (o: KubernetesObject) => S,
    private readonly labelSelector?: string,
  ) {}

  async start(): Promise<void> {
    await this.relist();
    this.watch();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    this.abort = undefined;
  }

  onChange(l: ChangeListener<S>): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Resolves with the time the object's state first satisfies `pred` (now, if it already does). */
  when(key: string, pred: (s: S) => boolean): Promise<number> {
    const s = this.states.get(key);
    if (s !== undefined && pred(s)) return Promise.resolve(performance.now());
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push({ pred, resolve });
      this.waiters.set(key, list);
    });
  }

  count(pred: (s: S) => boolean): number {
    let n = 0;
    for (const s of this.states.values()) if (pred(s)) n++;
    return n;
  }

  private apply(type: string, obj: KubernetesObject, at: number): void {
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (type === 'BOOKMARK') return;
    const key = this.keyOf(obj);
    if (key === undefined) return;
    const previous = this.states.get(key);
    let state: S | undefined;
    if (type === 'DELETED') {
      this.states.delete(key);
    } else {
      state = this.stateOf(obj);
      this.states.set(key, state);
    }
    for (const l of this.listeners) l(key, state, previous, at);
    if (state === undefined) return;
    const list = this.waiters.get(key);
    if (!list) return;
    const left = list.filter((w) => {
      if (!w.pred(state)) return true;
      w.resolve(at);
      return false;
    });
    if (left.length) this.waiters.set(key, left);
    else this.waiters.delete(key);
  }

  private async relist(): Promise<void> {
    const seen = new Set<string>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.kube.request<{
        items?: KubernetesObject[];
        metadata?: { resourceVersion?: string; continue?: string };
      }>('GET', resourcePath(this.resource, this.namespace), {
        query: { limit: 500, continue: cont, labelSelector: this.labelSelector },
        timeoutMs: 120_000,
      });
      const at = performance.now();
      for (const o of page.items ?? []) {
        const k = this.keyOf(o);
        if (k !== undefined) seen.add(k);
        this.apply('ADDED', o, at);
      }
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    for (const k of [...this.states.keys()]) {
      if (!seen.has(k)) {
        const previous = this.states.get(k);
        this.states.delete(k);
        for (const l of this.listeners) l(k, undefined, previous, performance.now());
      }
    }
    this.resourceVersion = rv;
  }

  private watch(): void {
    if (this.stopped) return;
    let expired = false;
    const path = resourcePath(this.resource, this.namespace);
    void new Watch(this.kc)
      .watch(
        path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          labelSelector: this.labelSelector,
          timeoutSeconds: 300,
        },
        (type, obj) => {
          if (type === 'ERROR') {
            if ((obj as { code?: number })?.code === 410) expired = true;
            return;
          }
          this.apply(type, obj as KubernetesObject, performance.now());
        },
        () => {
          if (this.stopped) return;
          this.restarts++;
          // The watch ended: its inactivity timeout (30 s without an event), the server's timeout, or 410 Gone.
          setTimeout(() => {
            if (this.stopped) return;
            if (!expired) return this.watch();
            this.relist().then(
              () => this.watch(),
              () => setTimeout(() => this.watch(), 1000),
            );
          }, 50);
        },
      )
      .then((ac) => {
        if (this.stopped) ac.abort();
        else this.abort = ac;
      });
  }
}
