import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { FakeClock } from '../../../lib/runtime/clock.ts';
import {
  Controller,
  enqueueMapped,
  enqueueObject,
  enqueueOwner,
  specOrMetadataChanged,
  type EventSource,
} from '../../../lib/runtime/controller.ts';
import {
  DONE,
  RetryableError,
  TerminalError,
  requeueAfter,
  type ObjectKey,
  type Reconciler,
  type Result,
} from '../../../lib/runtime/types.ts';
import type { CacheEventHandler } from '../../../lib/runtime/watch.ts';

/** An event source driven by the test. */
class FakeSource<T> implements EventSource<T> {
  handlers = new Set<CacheEventHandler<T>>();
  synced = Promise.resolve();
  hasSynced() {
    return true;
  }
  addHandler(h: CacheEventHandler<T>) {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }
  add(o: T) {
    this.handlers.forEach((h) => h.onAdd?.(o));
  }
  update(a: T, b: T) {
    this.handlers.forEach((h) => h.onUpdate?.(a, b));
  }
  resync(o: T) {
    this.handlers.forEach((h) => h.onResync?.(o));
  }
}

const obj = (name: string, md: Partial<NonNullable<KubernetesObject['metadata']>> = {}): KubernetesObject => ({
  apiVersion: 'example.com/v1',
  kind: 'Thing',
  metadata: { namespace: 'ns', name, resourceVersion: '1', generation: 1, ...md },
});

/** Lets queued microtasks and immediate callbacks run (workers are promise loops). */
const settle = async (rounds = 5) => {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
};

function recording(
  behaviour: (key: ObjectKey, pass: number) => Promise<Result> | Result,
): Reconciler & { passes: string[] } {
  const passes: string[] = [];
  return {
    passes,
    async reconcile(key) {
      passes.push(key.name);
      return behaviour(key, passes.filter((p) => p === key.name).length);
    },
  };
}

test('a terminal error is not retried, not even by the resync, until the object changes', async (t) => {
  const clock = new FakeClock();
  const source = new FakeSource<KubernetesObject>();
  const r = recording(() => {
    throw new TerminalError('InvalidSpec', 'spec.ttl is negative');
  });
  const c = new Controller({ name: 't', reconciler: r, clock }).watch(source, enqueueObject());
  c.start();
  source.add(obj('a'));
  await settle();
  t.deepEqual(r.passes, ['a']);
  clock.advance(10 * 60_000);
  source.resync(obj('a'));
  await settle();
  t.deepEqual(r.passes, ['a'], 'neither backoff nor resync retried it');
  source.update(obj('a'), obj('a', { generation: 2, resourceVersion: '2' }));
  await settle();
  t.deepEqual(r.passes, ['a', 'a'], 'a spec change woke it');
  c.halt('test over');
});

test('a retryable error is retried with growing backoff; success forgets the failures', async (t) => {
  const clock = new FakeClock();
  const source = new FakeSource<KubernetesObject>();
  const r = recording((_k, pass) => {
    if (pass <= 3) throw new RetryableError('VaultUnavailable', 'connection refused');
    return DONE;
  });
  const c = new Controller({ name: 't', reconciler: r, clock }).watch(source, enqueueObject());
  c.start();
  source.add(obj('a'));
  await settle();
  t.is(r.passes.length, 1);
  clock.advance(4);
  await settle();
  t.is(r.passes.length, 1, 'first retry waits 5 ms');
  clock.advance(1);
  await settle();
  t.is(r.passes.length, 2);
  clock.advance(9);
  await settle();
  t.is(r.passes.length, 2, 'second retry waits 10 ms');
  clock.advance(1);
  await settle();
  t.is(r.passes.length, 3);
  clock.advance(20);
  await settle();
  t.is(r.passes.length, 4);
  t.is(c.queue.numRequeues('ns/a'), 0, 'the success forgot the failures');
  c.halt('test over');
});

test('a retryable error with retryAfterMs is retried after exactly that, pass after pass', async (t) => {
  const clock = new FakeClock();
  const source = new FakeSource<KubernetesObject>();
  const r = recording(() => {
    throw new RetryableError('Unreachable', 'PostgreSQL at db:5432: connection refused', { retryAfterMs: 30_000 });
  });
  const c = new Controller({ name: 't', reconciler: r, clock }).watch(source, enqueueObject());
  c.start();
  source.add(obj('a'));
  await settle();
  for (let pass = 2; pass <= 5; pass++) {
    clock.advance(29_999);
    await settle();
    t.is(r.passes.length, pass - 1, `pass ${pass} not before 30 s`);
    clock.advance(1);
    await settle();
    t.is(r.passes.length, pass, `pass ${pass} at 30 s, not a growing backoff`);
  }
  t.is(c.queue.numRequeues('ns/a'), 5, 'each failure still counts');
  c.halt('test over');
});

test('anything thrown, even a non-Error, is retried and never escapes the worker', async (t) => {
  const clock = new FakeClock();
  const source = new FakeSource<KubernetesObject>();
  const r = recording((_k, pass) => {
    if (pass === 1) throw 'a string';
    if (pass === 2) return Promise.reject(new Error('rejected'));
    return undefined as unknown as Result;
  });
  const c = new Controller({ name: 't', reconciler: r, clock }).watch(source, enqueueObject());
  c.start();
  source.add(obj('a'));
  await settle();
  clock.advance(5);
  await settle();
  clock.advance(10);
  await settle();
  t.is(r.passes.length, 3);
  source.add(obj('b'));
  await settle();
  t.is(r.passes.length, 4, 'the worker is still alive');
  c.halt('test over');
});

test('requeueAfter brings the key back after the delay', async (t) => {
  const clock = new FakeClock();
  const source = new FakeSource<KubernetesObject>();
  const r = recording(() => requeueAfter(60_000));
  const c = new Controller({ name: 't', reconciler: r, clock }).watch(source, enqueueObject());
  c.start();
  source.add(obj('a'));
  await settle();
  clock.advance(59_999);
  await settle();
  t.is(r.passes.length, 1);
  clock.advance(1);
  await settle();
  t.is(r.passes.length, 2);
  c.halt('test over');
});

test('with several workers, one key is never reconciled twice at once', async (t) => {
  const source = new FakeSource<KubernetesObject>();
  let running = 0;
  let overlap = false;
  const inFlight = new Set<string>();
  let passes = 0;
  const gates: Array<() => void> = [];
  const r: Reconciler = {
    async reconcile(key) {
      if (inFlight.has(key.name)) overlap = true;
      inFlight.add(key.name);
      running++;
      passes++;
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      inFlight.delete(key.name);
      return DONE;
    },
  };
  const c = new Controller({ name: 't', reconciler: r, concurrency: 4 }).watch(source, enqueueObject());
  c.start();
  source.add(obj('a'));
  await settle();
  for (let i = 2; i < 10; i++) source.update(obj('a'), obj('a', { generation: i, resourceVersion: String(i) }));
  source.add(obj('b'));
  await settle();
  t.is(running, 2, 'a and b run; the extra adds of a wait');
  gates.splice(0).forEach((g) => g());
  await settle();
  t.is(running, 1, 'exactly one more pass of a');
  gates.splice(0).forEach((g) => g());
  await settle();
  t.is(passes, 3);
  t.false(overlap);
  c.halt('test over');
});

test('status-only updates do not trigger work; spec, labels, annotations, finalizers and deletion do', (t) => {
  const base = obj('a');
  const rv = (md: Partial<NonNullable<KubernetesObject['metadata']>>) => obj('a', { resourceVersion: '2', ...md });
  t.false(specOrMetadataChanged(base, rv({})), 'status write: only resourceVersion moved');
  t.true(specOrMetadataChanged(base, rv({ generation: 2 })));
  t.true(specOrMetadataChanged(base, rv({ labels: { a: 'b' } })));
  t.true(specOrMetadataChanged(base, rv({ annotations: { 'leasehold.dev/rotate': 'now' } })));
  t.true(specOrMetadataChanged(base, rv({ finalizers: ['x'] })));
  t.true(specOrMetadataChanged(base, rv({ deletionTimestamp: new Date() })));
  const cm = (v: string): KubernetesObject => ({ metadata: { name: 'c', resourceVersion: v } });
  t.true(specOrMetadataChanged(cm('1'), cm('2')), 'kinds without a generation count every update');
});

test('owned objects enqueue their controller owner; mapped ones their dependents', (t) => {
  const owned: KubernetesObject = {
    metadata: {
      namespace: 'ns',
      name: 'creds',
      ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Thing', name: 'owner', uid: 'u', controller: true }],
    },
  };
  const h = enqueueOwner({ group: 'example.com', kind: 'Thing' });
  t.deepEqual(h.keys({ type: 'add', object: owned }), [{ namespace: 'ns', name: 'owner' }]);
  t.deepEqual(h.keys({ type: 'resync', object: owned }), []);
  t.deepEqual(enqueueOwner({ group: 'other.io', kind: 'Thing' }).keys({ type: 'add', object: owned }), []);

  const m = enqueueMapped<KubernetesObject>((o) => [{ namespace: 'ns', name: `uses-${o.metadata?.name}` }]);
  t.deepEqual(m.keys({ type: 'update', old: obj('x'), object: obj('x', { resourceVersion: '2' }) }), [
    { namespace: 'ns', name: 'uses-x' },
  ]);
});

test('stop drains in-flight reconciles before resolving', async (t) => {
  const source = new FakeSource<KubernetesObject>();
  let finished = false;
  let release!: () => void;
  const r: Reconciler = {
    async reconcile() {
      await new Promise<void>((resolve) => (release = resolve));
      finished = true;
      return DONE;
    },
  };
  const c = new Controller({ name: 't', reconciler: r }).watch(source, enqueueObject());
  c.start();
  source.add(obj('a'));
  await settle();
  const stopped = c.stop(60_000);
  source.add(obj('b'));
  await settle();
  t.false(finished);
  release();
  t.true(await stopped);
  t.true(finished);
  await c.finished();
});
