// Two replicas with leader election against a real apiserver: only the leader reconciles; when the leader is
// killed (no chance to release its Lease) the standby takes over within 20 s; a graceful stop releases it.
import anyTest, { type TestFn } from 'ava';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { createNamespace, sleep } from './runtime-support.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test);

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

interface Report {
  event: string;
  identity: string;
  name?: string;
  at: number;
}

class Replica {
  readonly reports: Report[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  constructor(
    readonly identity: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'runtime-leader.child.ts')], {
      cwd: repoRoot,
      env: { ...process.env, ...env, REPLICA_IDENTITY: identity },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.reports.push(JSON.parse(line) as Report);
      } catch {
        // not one of our reports
      }
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }
  reconciled(name: string, since = 0): boolean {
    return this.reports.some((r) => r.event === 'reconciled' && r.name === name && r.at >= since);
  }
  reconcileCount(): number {
    return this.reports.filter((r) => r.event === 'reconciled').length;
  }
  has(event: string): boolean {
    return this.reports.some((r) => r.event === event);
  }
}

test('only the leader reconciles; a killed leader is replaced within 20 s; a stopped one releases its Lease', async (t) => {
  t.timeout(4 * 60_000);
  const { env } = t.context;
  const ns = 'rt-leader';
  await createNamespace(env.kubeConfig, ns);
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  const leases = env.kubeConfig.makeApiClient(CoordinationV1Api);
  const replicaEnv = {
    REPLICA_KUBECONFIG: env.kubernetes.kubeconfig,
    REPLICA_NAMESPACE: ns,
    REPLICA_LEASE_NAMESPACE: ns,
    REPLICA_LEASE_NAME: 'runtime-test-lock',
  };
  const replicas = [new Replica('replica-a', replicaEnv), new Replica('replica-b', replicaEnv)];
  try {
    await eventually(t, 'both replicas to start', async () => replicas.every((r) => r.has('started')), 60_000);
    const names = ['one', 'two', 'three', 'four', 'five'];
    for (const name of names) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name } } });
    await eventually(
      t,
      'every ConfigMap to be reconciled',
      async () => names.every((n) => replicas.some((r) => r.reconciled(n))),
      60_000,
    );
    await sleep(3_000);
    const active = replicas.filter((r) => r.reconcileCount() > 0);
    t.is(active.length, 1, 'exactly one replica reconciles');
    const leader = active[0]!;
    const standby = replicas.find((r) => r !== leader)!;
    const lease = await leases.readNamespacedLease({ namespace: ns, name: 'runtime-test-lock' });
    t.is(lease.spec?.holderIdentity, leader.identity);

    leader.child.kill('SIGKILL');
    const killedAt = Date.now();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'after-kill' } } });
    await eventually(
      t,
      'the standby to take over and reconcile',
      async () => standby.reconciled('after-kill'),
      30_000,
      100,
    );
    const tookOverIn = standby.reports.find((r) => r.event === 'reconciled' && r.name === 'after-kill')!.at - killedAt;
    t.log(`standby reconciled ${tookOverIn} ms after the leader was killed`);
    t.true(tookOverIn <= 20_000, `took over in ${tookOverIn} ms`);
    t.true(
      names.every((n) => standby.reconciled(n)),
      'the new leader reconciles everything it holds in its cache',
    );

    standby.child.kill('SIGTERM');
    t.is(await standby.exited, 0, 'a graceful stop exits 0');
    const released = await leases.readNamespacedLease({ namespace: ns, name: 'runtime-test-lock' });
    t.falsy(released.spec?.holderIdentity, 'the Lease was released');
  } finally {
    for (const r of replicas) r.child.kill('SIGKILL');
  }
});

test('a leader that cannot renew its Lease within the renew deadline steps down and exits non-zero', async (t) => {
  t.timeout(3 * 60_000);
  const { env } = t.context;
  const ns = 'rt-leader-lost';
  await createNamespace(env.kubeConfig, ns);
  const replica = new Replica('lonely', {
    REPLICA_KUBECONFIG: env.kubernetes.kubeconfig,
    REPLICA_NAMESPACE: ns,
    REPLICA_LEASE_NAMESPACE: ns,
    REPLICA_LEASE_NAME: 'lost-lock',
  });
  try {
    await eventually(t, 'the replica to start', async () => replica.has('started'), 60_000);
    const leases = env.kubeConfig.makeApiClient(CoordinationV1Api);
    await eventually(
      t,
      'the replica to lead',
      async () =>
        (await leases.readNamespacedLease({ namespace: ns, name: 'lost-lock' })).spec?.holderIdentity === 'lonely',
    );

    await env.stopComponent('kube-apiserver');
    const stoppedAt = Date.now();
    const code = await Promise.race([replica.exited, sleep(30_000).then(() => 'still running' as const)]);
    const after = Date.now() - stoppedAt;
    t.is(code, 1, 'exits non-zero so the pod restarts');
    t.true(replica.has('lost'), 'the runtime reported the loss before exiting');
    t.log(`exited ${after} ms after the apiserver went away`);
    t.true(after <= 15_000, 'within renew deadline plus a retry period');
  } finally {
    replica.child.kill('SIGKILL');
    await env.startComponent('kube-apiserver');
  }
});
