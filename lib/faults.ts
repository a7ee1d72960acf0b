// Crash points for fault-injection tests: `LEASEHOLD_FAULT_INJECTION=crash-after-issue` makes the operator die
// (SIGKILL, no cleanup) the first time it reaches that point, exactly as a node failure would. Unset in
// production; a no-op costing one string lookup.
const enabled = new Set((process.env.LEASEHOLD_FAULT_INJECTION ?? '').split(',').map((s) => s.trim()).filter(Boolean));

export function crashPoint(name: string): void {
  if (enabled.has(name)) process.kill(process.pid, 'SIGKILL');
}
