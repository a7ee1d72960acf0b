// A reconcile that keeps throwing is retried with growing spacing, other keys keep flowing meanwhile, and a
// terminal error waits for the object to change.
import anyTest, { type TestFn } from 'ava';
import { CoreV1Api } from '@kubernetes/client-node';
import { Manager } from '../../lib/runtime/manager.ts';
import { enqueueObject } from '../../lib/runtime/controller.ts';
import { Metrics } from '../../lib/runtime/metrics.ts';
import { DONE, TerminalError } from '../../lib/runtime/types.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { CONFIGMAPS, RecordingReconciler, createNamespace, sleep, testLogger } from './runtime-support.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test);

test('a reconcile that keeps throwing is retried with growing spacing while other keys keep flowing', async (t) => {
  t.timeout(120_000);
  const { env } = t.context;
  const ns = 'rt-backoff';
  await createNamespace(env.kubeConfig, ns);
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  const metrics = new Metrics({ defaultMetrics: false });
  const reconciler = new RecordingReconciler(async (key) => {
    if (key.name === 'broken') throw new Error('the database is unreachable');
    if (key.name === 'invalid') throw new TerminalError('InvalidSpec', 'spec cannot be satisfied');
    return DONE;
  });
  const manager = new Manager({ kubeConfig: env.kubeConfig, log: testLogger(), metrics, namespace: ns });
  manager
    .newController({ name: 'backoff', reconciler, concurrency: 2 })
    .watch(manager.cache(CONFIGMAPS), enqueueObject());
  await manager.start();
  try {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'broken' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'invalid' } } });
    await eventually(t, 'ten failing passes', async () => reconciler.passesOf(`${ns}/broken`).length >= 10, 60_000, 50);

    const healthyAt = Date.now();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'healthy' } } });
    await eventually(t, 'a healthy key to be reconciled during the retries', async () =>
      reconciler.reconciledSince(`${ns}/healthy`, healthyAt),
    );

    const starts = reconciler
      .passesOf(`${ns}/broken`)
      .slice(0, 10)
      .map((p) => p.startedAt);
    const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
    t.log(`gaps between retries (ms): ${gaps.join(', ')}`);
    // Early gaps are a few milliseconds and timer noise on a busy machine (tens of ms) can reorder them; from
    // the sixth on, each one must be longer than the one before, and the spacing must have grown many-fold.
    for (let i = 5; i < gaps.length; i++)
      t.true(gaps[i]! > gaps[i - 1]!, `gap ${i} (${gaps[i]} ms) grew from gap ${i - 1} (${gaps[i - 1]} ms)`);
    t.true(gaps.at(-1)! >= 8 * Math.max(1, gaps[1]!), 'the spacing grew many-fold');

    t.is(reconciler.passesOf(`${ns}/invalid`).length, 1, 'the terminal error was not retried');
    const changedAt = Date.now();
    await core.patchNamespacedConfigMap({
      namespace: ns,
      name: 'invalid',
      body: [{ op: 'add', path: '/metadata/labels', value: { fixed: 'yes' } }],
    });
    await eventually(t, 'a change to wake the terminally failed key', async () =>
      reconciler.reconciledSince(`${ns}/invalid`, changedAt - 50),
    );
    await sleep(1_000);
    t.is(reconciler.passesOf(`${ns}/invalid`).length, 2);

    const errors = await metrics.reconcileErrors.get();
    t.true((errors.values[0]?.value ?? 0) >= 10);
    const terminal = await metrics.terminalReconcileErrors.get();
    t.is(terminal.values[0]?.value, 2);
  } finally {
    await manager.stop();
  }
});
