// The reconcile helpers against a real apiserver, on a small CRD installed here: finalizers, status writes,
// the status-write feedback filter, Events; plus the probe/metrics endpoints and the entry point's flags.
import anyTest, { type TestFn } from 'ava';
import { CoordinationV1Api, CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setCondition, type Condition } from '../../lib/runtime/conditions.ts';
import { enqueueObject } from '../../lib/runtime/controller.ts';
import { KubeEventRecorder } from '../../lib/runtime/events.ts';
import { addFinalizer, removeFinalizer } from '../../lib/runtime/finalizers.ts';
import { KubeClient } from '../../lib/runtime/kube.ts';
import { Manager } from '../../lib/runtime/manager.ts';
import { Metrics } from '../../lib/runtime/metrics.ts';
import { patchStatus } from '../../lib/runtime/status.ts';
import { DONE, RetryableError, type ResourceType } from '../../lib/runtime/types.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { RecordingReconciler, createNamespace, sleep, testLogger } from './runtime-support.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test);

const GROUP = 'runtime-test.leasehold.dev';
const WIDGETS: ResourceType = { group: GROUP, version: 'v1', plural: 'widgets', kind: 'Widget' };
interface WidgetStatus {
  observedGeneration?: number;
  phase?: string;
  conditions?: Condition[];
}
type Widget = KubernetesObject & { spec?: { size?: number }; status?: WidgetStatus };

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const CRDS: ResourceType = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  plural: 'customresourcedefinitions',
  kind: 'CustomResourceDefinition',
  namespaced: false,
};

test.before(async (t) => {
  // Plain JSON through our own client: the generated model would drop `x-kubernetes-preserve-unknown-fields`.
  await new KubeClient(t.context.env.kubeConfig).create(CRDS, '', {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `widgets.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
        },
      ],
    },
  } as KubernetesObject);
  const client = new KubeClient(t.context.env.kubeConfig);
  await eventually(t, 'the Widget CRD to be served', async () => {
    await client.list(WIDGETS, { namespace: 'default', limit: 1 });
    return true;
  });
});

async function newWidget(client: KubeClient, ns: string, name: string): Promise<Widget> {
  return client.create<Widget>(WIDGETS, ns, {
    apiVersion: `${GROUP}/v1`,
    kind: 'Widget',
    metadata: { name, namespace: ns },
    spec: { size: 1 },
  });
}

async function writesOf(metrics: Metrics, verb: string, resource: string): Promise<number> {
  return (
    (await metrics.kubeWrites.get()).values.find((v) => v.labels.verb === verb && v.labels.resource === resource)
      ?.value ?? 0
  );
}

test('finalizers are added and removed once, report whether they changed anything, and refuse stale lists', async (t) => {
  const ns = 'rt-finalizers';
  await createNamespace(t.context.env.kubeConfig, ns);
  const metrics = new Metrics({ defaultMetrics: false });
  const client = new KubeClient(t.context.env.kubeConfig, { metrics });
  const fresh = await newWidget(client, ns, 'w');

  const added = await addFinalizer(client, WIDGETS, fresh, 'leasehold.dev/cleanup');
  t.true(added.changed);
  t.deepEqual(added.object.metadata?.finalizers, ['leasehold.dev/cleanup']);
  t.false((await addFinalizer(client, WIDGETS, added.object, 'leasehold.dev/cleanup')).changed);

  // A writer holding the object from before the first finalizer must not overwrite the list.
  const stale = await t.throwsAsync(addFinalizer(client, WIDGETS, fresh, 'other.io/hold'));
  t.true(stale instanceof RetryableError && stale.reason === 'Conflict', String(stale));
  const withOther = await addFinalizer(client, WIDGETS, added.object, 'other.io/hold');
  t.true(withOther.changed);
  const staleList = await t.throwsAsync(addFinalizer(client, WIDGETS, added.object, 'third.io/x'));
  t.true(staleList instanceof RetryableError && staleList.reason === 'Conflict', String(staleList));

  const removed = await removeFinalizer(client, WIDGETS, withOther.object, 'leasehold.dev/cleanup');
  t.true(removed.changed);
  t.deepEqual(removed.object.metadata?.finalizers, ['other.io/hold']);
  t.false((await removeFinalizer(client, WIDGETS, removed.object, 'leasehold.dev/cleanup')).changed);
  t.is(
    await writesOf(metrics, 'patch', 'widgets'),
    5,
    'three changes and two refused attempts; the no-op calls sent nothing',
  );
});

test('status is written only when it changed, exactly as desired, with optimistic concurrency', async (t) => {
  const ns = 'rt-status';
  await createNamespace(t.context.env.kubeConfig, ns);
  const metrics = new Metrics({ defaultMetrics: false });
  const client = new KubeClient(t.context.env.kubeConfig, { metrics });
  const w = await newWidget(client, ns, 'w');
  const now = new Date('2026-01-01T00:00:00Z');
  const desired: WidgetStatus = {
    observedGeneration: 1,
    phase: 'Pending',
    conditions: setCondition([], { type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting' }, 1, now),
  };

  const first = await patchStatus(client, WIDGETS, w, desired);
  t.true(first.changed);
  t.deepEqual(first.object.status, desired);
  const again = await patchStatus(client, WIDGETS, first.object, structuredClone(desired));
  t.false(again.changed);
  t.is(await writesOf(metrics, 'patch', 'widgets'), 1, 'an unchanged status is not written');

  const { phase: _dropped, ...withoutPhase } = desired;
  const second = await patchStatus<WidgetStatus, Widget>(client, WIDGETS, first.object, withoutPhase);
  t.true(second.changed);
  t.deepEqual((await client.get<Widget>(WIDGETS, ns, 'w')).status, withoutPhase, 'fields left out are removed');

  const conflict = await t.throwsAsync(
    patchStatus<WidgetStatus, Widget>(client, WIDGETS, first.object, { ...desired, phase: 'Stale' }),
  );
  t.true(conflict instanceof RetryableError && conflict.reason === 'Conflict', String(conflict));
});

test("a controller's own status writes do not trigger another pass; spec and annotation changes do", async (t) => {
  const ns = 'rt-feedback';
  await createNamespace(t.context.env.kubeConfig, ns);
  const metrics = new Metrics({ defaultMetrics: false });
  const manager = new Manager({ kubeConfig: t.context.env.kubeConfig, log: testLogger(), metrics, namespace: ns });
  const widgets = manager.cache<Widget>(WIDGETS);
  const reconciler = new RecordingReconciler(async (key, ctx) => {
    const w = widgets.get(key.namespace, key.name);
    if (!w) return DONE;
    const generation = w.metadata?.generation ?? 0;
    const conditions = setCondition(
      w.status?.conditions,
      { type: 'Ready', status: 'True', reason: 'Reconciled', message: `size ${w.spec?.size}` },
      generation,
      ctx.now(),
    );
    await patchStatus<WidgetStatus, Widget>(manager.client, WIDGETS, w, { observedGeneration: generation, conditions });
    return DONE;
  });
  manager.newController({ name: 'feedback', reconciler }).watch(widgets, enqueueObject());
  await manager.start();
  try {
    const client = manager.client;
    await newWidget(client, ns, 'w');
    const passes = () => reconciler.passesOf(`${ns}/w`).length;
    await eventually(
      t,
      'the status to be written',
      async () => (await client.get<Widget>(WIDGETS, ns, 'w')).status?.observedGeneration === 1,
    );
    await sleep(2_000);
    t.is(passes(), 1, 'the status write did not come back as work');

    await client.patch(
      WIDGETS,
      ns,
      'w',
      { metadata: { annotations: { 'leasehold.dev/rotate': 'now' } } },
      'application/merge-patch+json',
    );
    await eventually(t, 'an annotation change to trigger a pass', async () => passes() === 2);
    await client.patch(WIDGETS, ns, 'w', { spec: { size: 2 } }, 'application/merge-patch+json');
    await eventually(
      t,
      'a spec change to trigger a pass',
      async () => (await client.get<Widget>(WIDGETS, ns, 'w')).status?.observedGeneration === 2,
    );
    await sleep(2_000);
    t.is(passes(), 3);
    t.is(
      await writesOf(metrics, 'patch', 'widgets'),
      4,
      'two status writes, plus the two changes the test made; the annotation-only pass wrote nothing',
    );
  } finally {
    await manager.stop();
  }
});

test('repeated Events are recorded once, and recording never throws', async (t) => {
  const ns = 'rt-events';
  await createNamespace(t.context.env.kubeConfig, ns);
  const client = new KubeClient(t.context.env.kubeConfig);
  const w = await newWidget(client, ns, 'w');
  const recorder = new KubeEventRecorder(client, { component: 'leasehold-test' });
  for (let i = 0; i < 5; i++) recorder.event(w, 'Normal', 'Issued', 'credential issued');
  recorder.event(w, 'Warning', 'RevokeFailed', 'Vault refused: hvs.AAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  recorder.event({ ...w, metadata: { ...w.metadata, namespace: 'no-such-namespace' } }, 'Normal', 'Issued', 'x');
  await recorder.flush();
  const core = t.context.env.kubeConfig.makeApiClient(CoreV1Api);
  const events = (await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=w' })).items;
  t.is(events.length, 2);
  const issued = events.find((e) => e.reason === 'Issued');
  t.is(issued?.count, 1);
  t.is(issued?.involvedObject.kind, 'Widget');
  t.is(issued?.involvedObject.uid, w.metadata?.uid);
  const warning = events.find((e) => e.reason === 'RevokeFailed');
  t.is(warning?.type, 'Warning');
  t.false(warning?.message?.includes('hvs.') ?? true, 'token-like text is masked in Events too');
});

test('readiness waits for caches; probes and metrics are served on their own addresses', async (t) => {
  const metrics = new Metrics({ defaultMetrics: false });
  const missing: ResourceType = { group: GROUP, version: 'v1', plural: 'nothings', kind: 'Nothing' };
  const stuck = new Manager({
    kubeConfig: t.context.env.kubeConfig,
    log: testLogger(),
    metrics,
    healthProbeBindAddress: '127.0.0.1:0',
  });
  stuck.cache(missing);
  const starting = stuck.start();
  await eventually(t, 'the probe endpoint to listen', async () => stuck.healthPort());
  const base = `http://127.0.0.1:${stuck.healthPort()}`;
  t.is((await fetch(`${base}/healthz`)).status, 200);
  const notReady = await fetch(`${base}/readyz`);
  t.is(notReady.status, 503);
  t.regex(await notReady.text(), /not synced: nothings/);
  await stuck.stop();
  await starting;

  const ns = 'rt-endpoints';
  await createNamespace(t.context.env.kubeConfig, ns);
  const m2 = new Metrics();
  const manager = new Manager({
    kubeConfig: t.context.env.kubeConfig,
    log: testLogger(),
    metrics: m2,
    namespace: ns,
    healthProbeBindAddress: '127.0.0.1:0',
    metricsBindAddress: '127.0.0.1:0',
  });
  manager
    .newController({ name: 'endpoints', reconciler: new RecordingReconciler() })
    .watch(manager.cache<Widget>(WIDGETS), enqueueObject());
  await manager.start();
  try {
    t.not(manager.healthPort(), manager.metricsPort());
    t.is((await fetch(`http://127.0.0.1:${manager.healthPort()}/readyz`)).status, 200);
    await newWidget(manager.client, ns, 'w');
    await eventually(t, 'the reconcile to show in /metrics', async () => {
      const body = await (await fetch(`http://127.0.0.1:${manager.metricsPort()}/metrics`)).text();
      return body.includes('controller_runtime_reconcile_total{controller="endpoints",result="success"} 1') && body;
    });
    const body = await (await fetch(`http://127.0.0.1:${manager.metricsPort()}/metrics`)).text();
    for (const name of [
      'workqueue_depth{name="endpoints"}',
      'workqueue_adds_total{name="endpoints"}',
      'controller_runtime_reconcile_time_seconds_bucket',
      'process_resident_memory_bytes',
      'kube_writes_total',
      'vault_requests_total',
    ]) {
      t.true(body.includes(name), name);
    }
    t.is(
      (await fetch(`http://127.0.0.1:${manager.healthPort()}/metrics`)).status,
      404,
      'metrics are not on the probe port',
    );
  } finally {
    await manager.stop();
  }
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

function runOperator(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cmd/operator/main.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

test('the entry point: --help exits 0, bad flags exit 2, SIGTERM exits 0 and releases the Lease', async (t) => {
  t.timeout(120_000);
  const help = runOperator(['--help']);
  t.is(await help.exited, 0);
  t.regex(help.output().stdout, /--leader-elect/);

  const bad = runOperator(['--concurrency=lots']);
  t.is(await bad.exited, 2);
  t.regex(bad.output().stderr, /--concurrency.*"lots"/);

  const ns = 'rt-main';
  await createNamespace(t.context.env.kubeConfig, ns);
  // The operator's caches (and so its readiness and its campaign for the Lease) wait for its CRDs.
  const { env } = t.context;
  execFileSync(
    env.kubernetes.kubectl,
    [`--kubeconfig=${env.kubernetes.kubeconfig}`, 'apply', '-f', path.join(repoRoot, 'manifests/crds')],
    { stdio: 'ignore' },
  );
  execFileSync(
    env.kubernetes.kubectl,
    [
      `--kubeconfig=${env.kubernetes.kubeconfig}`,
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd',
      '--all',
    ],
    { stdio: 'ignore' },
  );
  const healthPort = await freePort();
  const op = runOperator(
    [
      '--leader-elect',
      `--leader-election-namespace=${ns}`,
      '--leader-election-id=main-test',
      `--health-probe-bind-address=127.0.0.1:${healthPort}`,
      '--metrics-bind-address=0',
    ],
    {
      KUBECONFIG: t.context.env.kubernetes.kubeconfig,
      LEASEHOLD_NAMESPACE: ns,
    },
  );
  try {
    const leases = t.context.env.kubeConfig.makeApiClient(CoordinationV1Api);
    await eventually(
      t,
      'the operator to take the Lease',
      async () => (await leases.readNamespacedLease({ namespace: ns, name: 'main-test' })).spec?.holderIdentity,
      60_000,
    );
    await eventually(
      t,
      'the operator to be ready',
      async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200,
    );
    op.child.kill('SIGTERM');
    t.is(await op.exited, 0);
    t.falsy(
      (await leases.readNamespacedLease({ namespace: ns, name: 'main-test' })).spec?.holderIdentity,
      'released on the way out',
    );
    const lines = op
      .output()
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { message: string; level: string });
    t.true(
      lines.some((l) => l.message === 'starting leasehold'),
      'JSON logs on stdout',
    );
  } finally {
    op.child.kill('SIGKILL');
  }
});
