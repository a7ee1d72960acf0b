// Watch caches against a real kube-apiserver: they survive an apiserver restart, and a watch that comes back
// to a compacted history (410 Gone) relists and reconciles what changed while it was away, deletions included.
import anyTest, { type TestFn } from 'ava';
import { CoreV1Api } from '@kubernetes/client-node';
import { Manager } from '../../lib/runtime/manager.ts';
import { enqueueObject } from '../../lib/runtime/controller.ts';
import { Metrics } from '../../lib/runtime/metrics.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import {
  CONFIGMAPS,
  CuttableProxy,
  RecordingReconciler,
  compactEtcd,
  createNamespace,
  kubeConfigVia,
  testLogger,
} from './runtime-support.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test);

test('after kube-apiserver restarts under a running controller, a change made after the restart is reconciled within 10 s', async (t) => {
  t.timeout(180_000);
  const { env } = t.context;
  const ns = 'rt-restart';
  await createNamespace(env.kubeConfig, ns);
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  const reconciler = new RecordingReconciler();
  const manager = new Manager({
    kubeConfig: env.kubeConfig,
    log: testLogger(),
    metrics: new Metrics({ defaultMetrics: false }),
    namespace: ns,
  });
  manager.newController({ name: 'restart', reconciler }).watch(manager.cache(CONFIGMAPS), enqueueObject());
  await manager.start();
  try {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'before' }, data: { v: '1' } } });
    await eventually(
      t,
      'the first ConfigMap to be reconciled',
      async () => reconciler.passesOf(`${ns}/before`).length > 0,
    );

    await env.restart('kube-apiserver');

    // The apiserver may still be finishing its start-up; the clock starts when the accepted write was sent
    // (its watch event can arrive before the response to the create).
    const changedAt = await eventually(
      t,
      'the apiserver to accept a write',
      async () => {
        const sentAt = Date.now();
        await core.createNamespacedConfigMap({
          namespace: ns,
          body: { metadata: { name: 'after' }, data: { v: '1' } },
        });
        return sentAt;
      },
      60_000,
    );
    await eventually(
      t,
      'the post-restart ConfigMap to be reconciled',
      async () => reconciler.reconciledSince(`${ns}/after`, changedAt),
      10_000,
      100,
    );
    t.true(Date.now() - changedAt <= 10_000);

    const updatedAt = Date.now();
    await core.patchNamespacedConfigMap({
      namespace: ns,
      name: 'before',
      body: [{ op: 'replace', path: '/data/v', value: '2' }],
    });
    await eventually(
      t,
      'an update after the restart to be reconciled',
      async () => reconciler.reconciledSince(`${ns}/before`, updatedAt),
      10_000,
      100,
    );
  } finally {
    await manager.stop();
  }
});

test('a watch that gets 410 Gone relists and reconciles what changed while it was away, deletions included', async (t) => {
  t.timeout(180_000);
  const { env } = t.context;
  const ns = 'rt-gone';
  await createNamespace(env.kubeConfig, ns);
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  for (const name of ['kept', 'changed', 'deleted']) {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name }, data: { v: '1' } } });
  }

  // The operator reaches the apiserver through a proxy we can cut, so it misses the changes below.
  const target = new URL(env.kubernetes.server);
  const proxy = new CuttableProxy({ host: target.hostname, port: Number(target.port) });
  await proxy.start();
  const metrics = new Metrics({ defaultMetrics: false });
  const reconciler = new RecordingReconciler();
  const manager = new Manager({
    kubeConfig: kubeConfigVia(env.kubeConfig, proxy.url()),
    log: testLogger(),
    metrics,
    namespace: ns,
  });
  const cache = manager.cache(CONFIGMAPS);
  manager.newController({ name: 'gone', reconciler }).watch(cache, enqueueObject());
  await manager.start();
  try {
    await eventually(t, 'the initial objects to be reconciled', async () =>
      ['kept', 'changed', 'deleted'].every((n) => reconciler.passesOf(`${ns}/${n}`).length > 0),
    );

    await proxy.cut();
    const awayAt = Date.now();
    await core.patchNamespacedConfigMap({
      namespace: ns,
      name: 'changed',
      body: [{ op: 'replace', path: '/data/v', value: '2' }],
    });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'deleted' });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'created' }, data: { v: '1' } } });
    // Make the old resourceVersion unservable: compact etcd's history, and restart the apiserver so its watch
    // cache starts after our last-seen version too.
    await compactEtcd(env.kubernetes.etcdEndpoint);
    await env.restart('kube-apiserver');
    await eventually(
      t,
      'the apiserver to serve again',
      async () => (await core.readNamespacedConfigMap({ namespace: ns, name: 'created' })).metadata?.name,
      60_000,
    );
    await proxy.restore();

    await eventually(
      t,
      'the changes made while away to be reconciled',
      async () => ['changed', 'deleted', 'created'].every((n) => reconciler.reconciledSince(`${ns}/${n}`, awayAt)),
      30_000,
      100,
    );
    t.is(cache.get(ns, 'deleted'), undefined, 'the vanished object left the cache');
    t.is(cache.get(ns, 'changed')?.metadata?.resourceVersion !== undefined, true);
    t.is((cache.get(ns, 'changed') as { data?: Record<string, string> }).data?.v, '2');
    t.truthy(cache.get(ns, 'created'));
    t.false(reconciler.reconciledSince(`${ns}/kept`, awayAt), 'an unchanged object is not reconciled again');
    const restarts = await metrics.registry.getSingleMetric('leasehold_watch_restarts_total')!.get();
    t.true(
      restarts.values.some((v) => v.labels.reason === 'gone' && v.value > 0),
      'the watch reported 410 Gone and relisted',
    );
  } finally {
    await manager.stop();
    await proxy.cut();
  }
});
