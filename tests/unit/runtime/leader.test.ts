import test from 'ava';
import { FakeClock } from '../../../lib/runtime/clock.ts';
import { KubeApiError, type KubeClient } from '../../../lib/runtime/kube.ts';
import { LeaderElector, microTime, type LeaseSpec } from '../../../lib/runtime/leader.ts';

/** An in-memory Lease store with resourceVersion preconditions, shared by the candidates of a test. */
class FakeLeases {
  lease: { metadata: { name: string; namespace: string; resourceVersion: string }; spec: LeaseSpec } | undefined;
  private rv = 0;
  down = false;
  writes = 0;
  /** A client for one candidate; once `hung()` is true its requests never answer (a frozen process). */
  client(hung: () => boolean = () => false): KubeClient {
    const check = async () => {
      if (hung()) await new Promise(() => {});
      if (this.down) throw new Error('connect ECONNREFUSED');
    };
    return {
      get: async () => {
        await check();
        if (!this.lease) throw new KubeApiError(404, 'NotFound', 'not found');
        return structuredClone(this.lease);
      },
      create: async (
        _r: unknown,
        _ns: string,
        body: { metadata: { name: string; namespace: string }; spec: LeaseSpec },
      ) => {
        await check();
        this.writes++;
        if (this.lease) throw new KubeApiError(409, 'AlreadyExists', 'exists');
        this.lease = { metadata: { ...body.metadata, resourceVersion: String(++this.rv) }, spec: body.spec };
        return structuredClone(this.lease);
      },
      replace: async (
        _r: unknown,
        _ns: string,
        _n: string,
        body: { metadata: { resourceVersion?: string }; spec: LeaseSpec },
      ) => {
        await check();
        this.writes++;
        if (!this.lease || body.metadata.resourceVersion !== this.lease.metadata.resourceVersion)
          throw new KubeApiError(409, 'Conflict', 'modified');
        this.lease = { metadata: { ...this.lease.metadata, resourceVersion: String(++this.rv) }, spec: body.spec };
        return structuredClone(this.lease);
      },
    } as unknown as KubeClient;
  }
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

/** Moves the fake clock in small steps, letting the election loops run between them. */
async function run(clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += step) {
    clock.advance(step);
    await settle();
  }
}

function candidate(store: FakeLeases, clock: FakeClock, identity: string) {
  const events: string[] = [];
  const state = { frozen: false };
  const elector = new LeaderElector({
    client: store.client(() => state.frozen),
    namespace: 'ns',
    name: 'lock',
    identity,
    clock,
    random: () => 0,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: () => events.push('stopped'),
  });
  return { elector, events, freeze: () => (state.frozen = true) };
}

test('MicroTime has six fractional digits', (t) => {
  t.is(microTime(Date.parse('2026-01-02T03:04:05.678Z')), '2026-01-02T03:04:05.678000Z');
});

test('the first candidate creates the Lease and leads; the second waits', async (t) => {
  const clock = new FakeClock();
  const store = new FakeLeases();
  const a = candidate(store, clock, 'a');
  const b = candidate(store, clock, 'b');
  void a.elector.run();
  await settle();
  void b.elector.run();
  await run(clock, 30_000);
  t.deepEqual(a.events, ['started']);
  t.deepEqual(b.events, []);
  t.is(store.lease?.spec.holderIdentity, 'a');
  t.is(store.lease?.spec.leaseDurationSeconds, 15);
  await a.elector.stop();
  await b.elector.stop();
});

test('when the leader dies, the standby takes over after the lease duration, within 20 s', async (t) => {
  const clock = new FakeClock();
  const store = new FakeLeases();
  const a = candidate(store, clock, 'a');
  void a.elector.run();
  await settle();
  const b = candidate(store, clock, 'b');
  void b.elector.run();
  await run(clock, 10_000);
  // "Kill" a: its requests stop reaching the apiserver and it never releases the Lease.
  a.freeze();
  const frozen = store.lease!.metadata.resourceVersion;
  const killedAt = clock.now();
  let tookOverAt: number | undefined;
  for (let i = 0; i < 250 && tookOverAt === undefined; i++) {
    await run(clock, 100);
    if (b.events.includes('started')) tookOverAt = clock.now();
  }
  t.not(store.lease!.metadata.resourceVersion, frozen);
  t.is(store.lease?.spec.holderIdentity, 'b');
  t.is(store.lease?.spec.leaseTransitions, 1);
  t.truthy(tookOverAt);
  t.true(tookOverAt! - killedAt >= 13_000, 'not before the lease could have expired');
  t.true(tookOverAt! - killedAt <= 20_000, `took over after ${tookOverAt! - killedAt} ms`);
});

test('a leader that cannot renew within the renew deadline steps down before the lease expires', async (t) => {
  const clock = new FakeClock();
  const store = new FakeLeases();
  const a = candidate(store, clock, 'a');
  const outcome = a.elector.run();
  await run(clock, 5_000);
  t.deepEqual(a.events, ['started']);
  store.down = true;
  const downAt = clock.now();
  let steppedDownAt: number | undefined;
  for (let i = 0; i < 200 && steppedDownAt === undefined; i++) {
    await run(clock, 100);
    if (a.events.includes('stopped')) steppedDownAt = clock.now();
  }
  t.is(await outcome, 'lost');
  t.false(a.elector.isLeader());
  t.true(steppedDownAt! - downAt <= 12_000, 'within renew deadline + a retry period');
  t.true(steppedDownAt! - downAt < 15_000, 'before anyone else could take the lease');
});

test('a graceful stop releases the Lease so a successor need not wait', async (t) => {
  const clock = new FakeClock();
  const store = new FakeLeases();
  const a = candidate(store, clock, 'a');
  void a.elector.run();
  await run(clock, 3_000);
  await a.elector.stop();
  t.deepEqual(a.events, ['started'], 'a release is not a loss');
  t.is(store.lease?.spec.holderIdentity, '');
  const b = candidate(store, clock, 'b');
  void b.elector.run();
  await run(clock, 500);
  t.deepEqual(b.events, ['started'], 'taken over at once');
  await b.elector.stop();
});

test('renewals keep acquireTime and do not count as transitions', async (t) => {
  const clock = new FakeClock();
  const store = new FakeLeases();
  const a = candidate(store, clock, 'a');
  void a.elector.run();
  await run(clock, 1_000);
  const acquired = store.lease!.spec.acquireTime;
  const writes = store.writes;
  await run(clock, 20_000);
  t.true(store.writes >= writes + 8, 'renewed about every 2 s');
  t.is(store.lease!.spec.acquireTime, acquired);
  t.is(store.lease!.spec.leaseTransitions, 0);
  t.not(store.lease!.spec.renewTime, acquired);
  await a.elector.stop();
});

test('a leader whose renewals hang steps down at the renew deadline anyway', async (t) => {
  const clock = new FakeClock();
  const store = new FakeLeases();
  const a = candidate(store, clock, 'a');
  const outcome = a.elector.run();
  await run(clock, 3_000);
  a.freeze();
  const frozenAt = clock.now();
  for (let i = 0; i < 200 && !a.events.includes('stopped'); i++) await run(clock, 100);
  t.is(await outcome, 'lost');
  t.true(clock.now() - frozenAt <= 12_100);
});
