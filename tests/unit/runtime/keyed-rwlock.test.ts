import test from 'ava';
import { KeyedReadWriteLock } from '../../../lib/runtime/keyed-rwlock.ts';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
const tick = () => new Promise((r) => setImmediate(r));

test('shared holders of a key run together; an exclusive one waits for them and runs alone', async (t) => {
  const lock = new KeyedReadWriteLock();
  const log: string[] = [];
  const a = deferred();
  const b = deferred();
  const r1 = lock.shared('k', async () => {
    log.push('r1 start');
    await a.promise;
    log.push('r1 end');
  });
  const r2 = lock.shared('k', async () => {
    log.push('r2 start');
    await b.promise;
    log.push('r2 end');
  });
  const w = lock.exclusive('k', async () => {
    log.push('w');
  });
  const r3 = lock.shared('k', async () => {
    log.push('r3');
  });
  await tick();
  t.deepEqual(log, ['r1 start', 'r2 start'], 'both shared holders started; the exclusive and the later shared wait');
  a.resolve();
  await tick();
  t.deepEqual(log, ['r1 start', 'r2 start', 'r1 end'], 'one shared holder still runs: the exclusive waits');
  b.resolve();
  await Promise.all([r1, r2, w, r3]);
  t.deepEqual(
    log,
    ['r1 start', 'r2 start', 'r1 end', 'r2 end', 'w', 'r3'],
    'shared arriving after an exclusive waiter runs after it',
  );
  t.is(lock.size, 0, 'idle keys are dropped');
});

test('different keys do not wait for each other, and a failing holder releases its key', async (t) => {
  const lock = new KeyedReadWriteLock();
  const held = deferred();
  const x = lock.exclusive('x', () => held.promise);
  let ranY = false;
  await lock.exclusive('y', async () => {
    ranY = true;
  });
  t.true(ranY);
  held.resolve();
  await x;
  await t.throwsAsync(
    lock.exclusive('x', async () => {
      throw new Error('boom');
    }),
    { message: 'boom' },
  );
  t.is(await lock.shared('x', async () => 42), 42);
  t.is(lock.size, 0);
});
