// 1,000 objects created in a burst against a real apiserver: every one is reconciled, no key is reconciled
// concurrently with itself, and once nothing changes, the only work left is the periodic resync.
import anyTest, { type TestFn } from 'ava';
import { CoreV1Api } from '@kubernetes/client-node';
import { Manager } from '../../lib/runtime/manager.ts';
import { enqueueObject } from '../../lib/runtime/controller.ts';
import { Metrics } from '../../lib/runtime/metrics.ts';
import { DONE } from '../../lib/runtime/types.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { CONFIGMAPS, RecordingReconciler, createNamespace, inParallel, sleep, testLogger } from './runtime-support.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test);

const COUNT = 1000;
const RESYNC_MS = 20_000;
const IDLE_MS = 60_000;

test('1,000 objects created in a burst are each reconciled, never concurrently with themselves, and idleness costs only the resync', async (t) => {
  t.timeout(6 * 60_000);
  const { env } = t.context;
  const ns = 'rt-burst';
  await createNamespace(env.kubeConfig, ns);
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  const metrics = new Metrics({ defaultMetrics: false });
  // A little asynchronous work per pass, so passes of different keys interleave across the four workers.
  const reconciler = new RecordingReconciler(async () => {
    await sleep(1 + Math.floor(Math.random() * 3));
    return DONE;
  });
  const manager = new Manager({
    kubeConfig: env.kubeConfig,
    log: testLogger(),
    metrics,
    namespace: ns,
    resyncPeriodMs: RESYNC_MS,
  });
  const cache = manager.cache(CONFIGMAPS);
  let resyncOffers = 0;
  cache.addHandler({ onResync: () => resyncOffers++ });
  const controller = manager.newController({ name: 'burst', reconciler, concurrency: 4 }).watch(cache, enqueueObject());
  await manager.start();
  try {
    const names = Array.from({ length: COUNT }, (_, i) => `cm-${String(i).padStart(4, '0')}`);
    await inParallel(names, 50, (name) =>
      core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name }, data: { i: name } } }),
    );
    // A second burst of updates lands while the first passes are still running, re-adding keys mid-pass.
    await inParallel(names, 50, (name) =>
      core.patchNamespacedConfigMap({
        namespace: ns,
        name,
        body: [{ op: 'add', path: '/data/touched', value: 'yes' }],
      }),
    );
    await eventually(
      t,
      `all ${COUNT} ConfigMaps to be reconciled`,
      async () => names.every((n) => reconciler.passesOf(`${ns}/${n}`).length > 0),
      120_000,
      500,
    );
    t.deepEqual(reconciler.overlaps, [], 'no key was reconciled while a pass of it was running');

    const quiet = async () => {
      await eventually(
        t,
        'the queue to drain',
        async () => controller.queue.len() === 0 && controller.queue.inFlight() === 0,
        60_000,
        100,
      );
    };
    await quiet();
    const passesBefore = reconciler.passes.length;
    const offersBefore = resyncOffers;
    await sleep(IDLE_MS);
    const offersDuring = resyncOffers - offersBefore;
    await quiet();
    const passesDuring = reconciler.passes.length - passesBefore;
    t.log(
      `idle ${IDLE_MS / 1000}s: ${passesDuring} reconciles, ${offersDuring} resync offers (${offersDuring / (COUNT + 1)} rounds)`,
    );
    t.true(offersDuring >= COUNT, 'at least one resync round ran');
    t.is(passesDuring, offersDuring, 'every idle reconcile was one resync offer, nothing else');
    t.is(controller.queue.delayed(), 0, 'nothing is waiting on a retry or requeue');
    t.deepEqual(reconciler.overlaps, []);
    const writes = await metrics.kubeWrites.get();
    t.deepEqual(
      writes.values.filter((v) => v.value > 0),
      [],
      'the runtime itself wrote nothing',
    );
  } finally {
    await manager.stop();
  }
});
