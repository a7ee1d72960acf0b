import test from 'ava';
import {
  MAX_CONDITION_MESSAGE,
  conditionsEqual,
  setCondition,
  type Condition,
} from '../../../lib/runtime/conditions.ts';

const t0 = new Date('2026-01-01T10:00:00.123Z');
const t1 = new Date('2026-01-01T11:00:00Z');

test('a new condition gets the current time as its transition time, in seconds precision', (t) => {
  const [c] = setCondition([], { type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting' }, 3, t0);
  t.deepEqual(c, {
    type: 'Ready',
    status: 'False',
    observedGeneration: 3,
    lastTransitionTime: '2026-01-01T10:00:00Z',
    reason: 'Pending',
    message: 'waiting',
  });
});

test('re-asserting the same status keeps lastTransitionTime but updates reason, message and generation', (t) => {
  const before = setCondition([], { type: 'Ready', status: 'False', reason: 'Pending', message: 'a' }, 1, t0);
  const after = setCondition(before, { type: 'Ready', status: 'False', reason: 'StillPending', message: 'b' }, 2, t1);
  t.is(after[0]!.lastTransitionTime, '2026-01-01T10:00:00Z');
  t.is(after[0]!.reason, 'StillPending');
  t.is(after[0]!.message, 'b');
  t.is(after[0]!.observedGeneration, 2);
});

test('a status change moves lastTransitionTime', (t) => {
  const before = setCondition([], { type: 'Ready', status: 'False', reason: 'Pending', message: '' }, 1, t0);
  const after = setCondition(before, { type: 'Ready', status: 'True', reason: 'Issued', message: '' }, 1, t1);
  t.is(after[0]!.lastTransitionTime, '2026-01-01T11:00:00Z');
});

test('setCondition leaves its input untouched and other conditions in place', (t) => {
  const input: Condition[] = [
    { type: 'Approved', status: 'True', lastTransitionTime: '2025-12-31T00:00:00Z', reason: 'Approved', message: '' },
    { type: 'Ready', status: 'False', lastTransitionTime: '2025-12-31T00:00:00Z', reason: 'Pending', message: '' },
  ];
  const copy = structuredClone(input);
  const out = setCondition(input, { type: 'Ready', status: 'True', reason: 'Issued', message: '' }, 1, t1);
  t.deepEqual(input, copy);
  t.deepEqual(
    out.map((c) => c.type),
    ['Approved', 'Ready'],
  );
  t.deepEqual(out[0], input[0]);
});

test('messages longer than 32 KiB are truncated', (t) => {
  const [c] = setCondition(
    [],
    { type: 'Ready', status: 'False', reason: 'Failed', message: 'x'.repeat(100_000) },
    1,
    t0,
  );
  t.is(c!.message.length, MAX_CONDITION_MESSAGE);
});

test('conditionsEqual ignores order but not any field', (t) => {
  const a = setCondition(
    setCondition([], { type: 'A', status: 'True', reason: 'R', message: '' }, 1, t0),
    { type: 'B', status: 'False', reason: 'R', message: '' },
    1,
    t0,
  );
  t.true(conditionsEqual(a, [...a].reverse()));
  t.false(conditionsEqual(a, setCondition(a, { type: 'B', status: 'False', reason: 'R', message: 'changed' }, 1, t0)));
  t.false(conditionsEqual(a, setCondition(a, { type: 'B', status: 'False', reason: 'R', message: '' }, 2, t0)));
  t.true(conditionsEqual(undefined, []));
});

test('token-like text never reaches a condition message', (t) => {
  const [c] = setCondition(
    [],
    {
      type: 'Ready',
      status: 'False',
      reason: 'VaultError',
      message: 'login with hvs.CAESIJx7wXyZabcdefghijklmnopQRSTUVWX refused',
    },
    1,
    t0,
  );
  t.is(c!.message, 'login with [REDACTED] refused');
});
