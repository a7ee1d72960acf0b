// Crash points for fault-injection tests: `LEASEHOLD_FAULT_INJECTION=crash-after-issue` makes the operator die
// (SIGKILL, no cleanup) the first time it reaches that point, exactly as a node failure would;
// `crash-after-issue@3` the third time (with other work in flight). Unset in production; a no-op costing one
// map lookup.
const remaining = new Map<string, number>();
for (const item of (process.env.LEASEHOLD_FAULT_INJECTION ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)) {
  const [name, nth] = item.split('@', 2) as [string, string | undefined];
  remaining.set(name, Math.max(1, Number(nth ?? 1) || 1));
}

export function crashPoint(name: string): void {
  const left = remaining.get(name);
  if (left === undefined) return;
  if (left <= 1) process.kill(process.pid, 'SIGKILL');
  remaining.set(name, left - 1);
}
