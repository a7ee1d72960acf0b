import test from 'ava';
import {
  DURATION_PATTERN,
  DurationError,
  formatDuration,
  formatDurationNs,
  isDuration,
  parseDurationMs,
  parseDurationNs,
  parseDurationSeconds,
} from '../../../api/duration.ts';

test('Go durations parse to the seconds Go would compute', (t) => {
  const cases: Array<[string, number]> = [
    ['1h', 3600],
    ['90m', 5400],
    ['1h30m', 5400],
    ['1.5h', 5400],
    ['24h', 86_400],
    ['300ms', 0.3],
    ['1m30s', 90],
    ['2h45m10s', 9910],
    ['.5s', 0.5],
    ['1.s', 1],
    ['0s', 0],
    ['0', 0],
    ['1h0m0s', 3600],
    ['1500us', 0.0015],
    ['1500µs', 0.0015],
    ['1500μs', 0.0015],
    ['10ns', 1e-8],
    ['1h1h', 7200],
  ];
  for (const [input, seconds] of cases) t.is(parseDurationSeconds(input), seconds, input);
});

test('a bare whole number is seconds, as Vault reads TTLs', (t) => {
  t.is(parseDurationSeconds('3600'), 3600);
  t.is(parseDurationMs('90'), 90_000);
  t.is(parseDurationNs('1'), 1_000_000_000n);
});

test('fractions below a nanosecond are dropped, as in Go', (t) => {
  t.is(parseDurationNs('1.0000000009s'), 1_000_000_000n);
  t.is(parseDurationNs('0.1ns'), 0n);
});

test('malformed durations are refused with the offending input in the message', (t) => {
  for (const bad of [
    'h',
    '1 h',
    '1hour',
    '-1h',
    '+1h',
    '1.5',
    '1d',
    '1h-5m',
    '.h',
    '1..5h',
    'abc',
    '1h ',
    ' 1h',
    '1e3s',
  ]) {
    const err = t.throws(() => parseDurationNs(bad), { instanceOf: DurationError }, bad);
    t.true(err.message.includes(JSON.stringify(bad)), err.message);
    t.false(isDuration(bad), bad);
  }
  t.throws(() => parseDurationNs(''), { message: /empty/ });
});

test('durations Go cannot represent (over ~292 years) are refused', (t) => {
  t.throws(() => parseDurationNs('2562048h'), { message: /too large/ });
  t.throws(() => parseDurationNs('9999999999999999999'), { message: /too large/ });
  t.is(parseDurationNs('2562047h'), 2_562_047n * 3_600_000_000_000n);
});

test('the schema pattern admits exactly what the parser admits', (t) => {
  const pattern = new RegExp(DURATION_PATTERN, 'u');
  const corpus = [
    '1h',
    '90m',
    '1h30m',
    '1.5h',
    '300ms',
    '3600',
    '0',
    '0s',
    '.5s',
    '1.s',
    '1µs',
    '1μs',
    '1us',
    '5ns',
    '1h1m1s1ms',
    '',
    'h',
    '.h',
    '-1h',
    '1 h',
    '1hour',
    '1d',
    '1.5',
    '1e3s',
    'ms',
    '1ms5',
    '1h ',
    '1..5h',
    '1.5.5h',
  ];
  for (const s of corpus) t.is(pattern.test(s), isDuration(s), JSON.stringify(s));
});

test('seconds format the way Go prints a time.Duration', (t) => {
  const cases: Array<[number, string]> = [
    [3600, '1h0m0s'],
    [5400, '1h30m0s'],
    [90, '1m30s'],
    [60, '1m0s'],
    [59, '59s'],
    [0, '0s'],
    [1.5, '1.5s'],
    [0.3, '300ms'],
    [0.0012, '1.2ms'],
    [0.000001, '1µs'],
    [86_400, '24h0m0s'],
    [3661.25, '1h1m1.25s'],
    [-90, '-1m30s'],
  ];
  for (const [seconds, text] of cases) t.is(formatDuration(seconds), text, String(seconds));
  t.is(formatDurationNs(5n), '5ns');
  t.throws(() => formatDuration(Number.NaN), { instanceOf: RangeError });
});

test('formatting then parsing gives the same duration back', (t) => {
  for (const seconds of [1, 59, 61, 3599, 3600, 3601, 86_399, 90_061.5, 0.25]) {
    t.is(parseDurationSeconds(formatDuration(seconds)), seconds);
  }
});
