import test from 'ava';
import { FakeClock } from '../../../lib/runtime/clock.ts';
import { WorkQueue } from '../../../lib/runtime/workqueue.ts';

/** Takes the next key without waiting (the queue must already have one ready). */
async function take(q: WorkQueue): Promise<string> {
  const k = await Promise.race([
    q.get(),
    new Promise<string>((_, reject) => setImmediate(() => reject(new Error('queue empty')))),
  ]);
  if (k === undefined) throw new Error('queue shut down');
  return k;
}

test('adding a key many times before it is taken queues it once', async (t) => {
  const q = new WorkQueue({ clock: new FakeClock() });
  for (let i = 0; i < 5; i++) q.add('ns/a');
  q.add('ns/b');
  t.is(q.len(), 2);
  t.is(await take(q), 'ns/a');
  t.is(await take(q), 'ns/b');
  t.is(q.len(), 0);
});

test('adds while a key is processing collapse into exactly one more pass after done', async (t) => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add('k');
  const k = await take(q);
  q.add('k');
  q.add('k');
  q.add('k');
  t.is(q.len(), 0, 'not handed out while still processing');
  q.done(k);
  t.is(q.len(), 1);
  t.is(await take(q), 'k');
  q.done('k');
  t.is(q.len(), 0);
});

test('a key being processed is never handed to a second worker', async (t) => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add('k');
  const first = await take(q);
  const second = q.get(); // a second worker waits
  q.add('k');
  q.add('other');
  t.is(await second, 'other');
  t.true(q.isProcessing('k'));
  q.done(first);
  t.is(await take(q), 'k');
});

test('a waiting worker is woken by an add', async (t) => {
  const q = new WorkQueue({ clock: new FakeClock() });
  const pending = q.get();
  q.add('x');
  t.is(await pending, 'x');
});

test('backoff doubles from 5 ms per failure and is capped at 5 minutes', async (t) => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  const expected = Array.from({ length: 20 }, (_, i) => Math.min(5 * 2 ** i, 5 * 60_000));
  for (const delay of expected) {
    q.addRateLimited('k');
    clock.advance(delay - 1);
    t.is(q.len(), 0, `not ready before ${delay} ms`);
    clock.advance(1);
    t.is(q.len(), 1, `ready after ${delay} ms`);
    q.done(await take(q));
  }
  t.deepEqual(expected.slice(0, 6), [5, 10, 20, 40, 80, 160]);
  t.is(expected.at(-1), 5 * 60_000);
  t.is(q.numRequeues('k'), 20);
});

test('forget resets the backoff to the base delay', (t) => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  for (let i = 0; i < 5; i++) q.addRateLimited('k');
  q.forget('k');
  t.is(q.numRequeues('k'), 0);
  q.cancelDelayed('k');
  q.addRateLimited('k');
  clock.advance(4);
  t.is(q.len(), 0);
  clock.advance(1);
  t.is(q.len(), 1);
});

test('retries across keys share a bucket of 100, refilled at 10 a second: the 101st waits 100 ms, the 110th a second', (t) => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  const delays = Array.from({ length: 110 }, (_, i) => q.addRateLimited(`k${i}`));
  t.true(
    delays.slice(0, 100).every((d) => d === 5),
    "the burst goes at each key's own first backoff",
  );
  t.is(delays[100], 100);
  t.is(delays[109], 1000);
  clock.advance(5);
  t.is(q.len(), 100);
  clock.advance(95);
  t.is(q.len(), 101);
  clock.advance(900);
  t.is(q.len(), 110);
});

test("a retry waits the longer of its key's backoff and the bucket", (t) => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, globalRate: { qps: 1, burst: 1 } });
  t.is(q.addRateLimited('a'), 5, "a token is there: the key's backoff");
  t.is(q.addRateLimited('b'), 1000, 'the bucket is empty: its refill');
  clock.advance(10_000);
  for (let i = 0; i < 15; i++) q.addRateLimited('slow');
  clock.advance(1_000_000);
  t.is(q.addRateLimited('slow'), 5 * 2 ** 15, 'a long backoff outlasts the bucket');
});

test('the bucket refills while nothing fails, up to its burst and no more', (t) => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, globalRate: { qps: 10, burst: 3 } });
  for (let i = 0; i < 3; i++) t.is(q.addRateLimited(`a${i}`), 5);
  t.is(q.addRateLimited('a3'), 100);
  clock.advance(60_000);
  for (let i = 0; i < 3; i++) t.is(q.addRateLimited(`b${i}`), 5, 'a minute refilled the burst');
  t.is(q.addRateLimited('b3'), 100, 'but not beyond it');
});

test('a failure asking for a fixed delay waits exactly that, still counted, still under the bucket', (t) => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, globalRate: { qps: 1, burst: 1 } });
  t.is(q.addRateLimited('poll', { afterMs: 30_000 }), 30_000);
  t.is(q.numRequeues('poll'), 1);
  clock.advance(29_999);
  t.is(q.len(), 0);
  clock.advance(1);
  t.is(q.len(), 1);
  t.is(q.addRateLimited('other', { afterMs: 0 }), 0, 'the bucket refilled during the wait');
  t.is(q.addRateLimited('third', { afterMs: 0 }), 1000, 'and is empty again');
});

test('addAfter keeps the earliest due time for a key', (t) => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.addAfter('k', 10_000);
  q.addAfter('k', 3_000);
  q.addAfter('k', 7_000);
  t.is(q.delayed(), 1);
  clock.advance(2_999);
  t.is(q.len(), 0);
  clock.advance(1);
  t.is(q.len(), 1);
  clock.advance(10_000);
  t.is(q.len(), 1, 'the later times were dropped, not queued again');
});

test('shutdown hands out no more keys, wakes idle workers and ignores adds', async (t) => {
  const idle = new WorkQueue({ clock: new FakeClock() });
  const waiting = idle.get();
  idle.shutDown();
  t.is(await waiting, undefined, 'an idle worker is released');

  const q = new WorkQueue({ clock: new FakeClock() });
  q.add('a');
  q.add('b');
  q.shutDown();
  t.is(await q.get(), undefined, 'queued keys are not handed out');
  q.add('c');
  q.addAfter('d', 10);
  t.is(q.len(), 2, 'nothing new accepted');
  t.is(q.delayed(), 0);
});

test('a shutdown drain resolves once in-flight keys are done, or false at the deadline', async (t) => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.add('a');
  q.add('b');
  const a = await take(q);
  const b = await take(q);
  const drained = q.shutDownWithDrain(1_000);
  q.done(a);
  q.done(b);
  t.true(await drained);

  const q2 = new WorkQueue({ clock });
  q2.add('slow');
  await take(q2);
  const late = q2.shutDownWithDrain(1_000);
  clock.advance(1_000);
  t.false(await late);
});
