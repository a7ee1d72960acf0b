// Durations as KubeVault's manifests write them: Go's time.ParseDuration syntax ("1h", "90m", "1h30m", "1.5h",
// "300ms") or a bare whole number of seconds ("3600"), which is what Vault itself accepts for TTLs
// (parseutil.ParseDurationSecond). The schema pattern, the CEL helper and the parser below accept the same
// language, so what the API server admits is exactly what controllers can read.
//
// Negative durations are refused everywhere: no field of ours has a use for them.

const NS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** Go's time.Duration is an int64 of nanoseconds: larger values overflow (Go and CEL both refuse them). */
const MAX_NS = (1n << 63n) - 1n;

/** The schema pattern for duration fields (RE2 syntax, as the API server evaluates it). */
export const DURATION_PATTERN = '^([0-9]+|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$';

/** Bare whole seconds: the form Go rejects but Vault (and KubeVault's docs) accept. */
const SECONDS_ONLY = /^[0-9]+$/;
const ELEMENT = /([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)/y;

export class DurationError extends Error {
  constructor(input: string, why: string) {
    super(`invalid duration ${JSON.stringify(input.length > 64 ? `${input.slice(0, 64)}…` : input)}: ${why}`);
    this.name = 'DurationError';
  }
}

/** Parses a duration to whole nanoseconds, as Go does (fractions below a nanosecond are dropped). */
export function parseDurationNs(input: string): bigint {
  if (input === '') throw new DurationError(input, 'empty');
  if (input.startsWith('-') || input.startsWith('+')) throw new DurationError(input, 'a sign is not allowed');
  let total: bigint;
  if (SECONDS_ONLY.test(input)) {
    total = BigInt(input) * NS_PER_UNIT.s!;
  } else {
    total = 0n;
    ELEMENT.lastIndex = 0;
    let at = 0;
    while (at < input.length) {
      ELEMENT.lastIndex = at;
      const m = ELEMENT.exec(input);
      const [whole = '', frac, unit = ''] = m ? m.slice(1) : [];
      if (!m || (whole === '' && !frac))
        throw new DurationError(input, 'expected a number followed by a unit (ns, us, ms, s, m, h)');
      const perUnit = NS_PER_UNIT[unit]!;
      total += BigInt(whole || '0') * perUnit;
      if (frac) total += (BigInt(frac) * perUnit) / 10n ** BigInt(frac.length);
      at = ELEMENT.lastIndex;
    }
  }
  if (total > MAX_NS) throw new DurationError(input, 'too large');
  return total;
}

/** Seconds, possibly fractional ("1.5s" → 1.5). Vault TTLs are whole seconds: callers round as they need. */
export function parseDurationSeconds(input: string): number {
  return Number(parseDurationNs(input)) / 1e9;
}

/** Milliseconds, possibly fractional ("1500us" → 1.5): the unit timers and requeue delays use. */
export function parseDurationMs(input: string): number {
  return Number(parseDurationNs(input)) / 1e6;
}

export function isDuration(input: string): boolean {
  try {
    parseDurationNs(input);
    return true;
  } catch {
    return false;
  }
}

/**
 * Formats a number of seconds the way Go's time.Duration.String does: "1h0m0s", "1m30s", "1.5s", "300ms",
 * "0s". This is the form KubeVault writes to status.lease.duration.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) throw new RangeError(`cannot format ${seconds} seconds as a duration`);
  return formatDurationNs(BigInt(Math.round(seconds * 1e9)));
}

/** Go's time.Duration.String for a count of nanoseconds. */
export function formatDurationNs(ns: bigint): string {
  const negative = ns < 0n;
  let u = negative ? -ns : ns;
  let out: string;
  if (u < NS_PER_UNIT.s!) {
    // Below a second Go switches to the largest unit that keeps an integer part: 1.2ms, 300µs, 5ns.
    if (u === 0n) return '0s';
    if (u < 1_000n) out = `${u}ns`;
    else if (u < 1_000_000n) out = `${withFraction(u, 3)}µs`;
    else out = `${withFraction(u, 6)}ms`;
  } else {
    const secondsPart = withFraction(u % 60_000_000_000n, 9);
    u /= 60_000_000_000n; // whole minutes
    out = `${secondsPart}s`;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n; // whole hours
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return negative ? `-${out}` : out;
}

/** `v / 10^prec` in decimal, without trailing zeros (and without the point when the fraction is zero). */
function withFraction(v: bigint, prec: number): string {
  const scale = 10n ** BigInt(prec);
  const whole = v / scale;
  const frac = (v % scale).toString().padStart(prec, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/**
 * A CEL expression converting the duration string `expr` (already matching DURATION_PATTERN) to a CEL
 * duration. CEL's duration() follows Go's ParseDuration, which doesn't know bare seconds, hence the suffix.
 */
export function celDuration(expr: string): string {
  return `(${expr}.matches('^[0-9]+$') ? duration(${expr} + 's') : duration(${expr}))`;
}
