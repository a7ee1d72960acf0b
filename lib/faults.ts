// Kept for callers not yet moved: the crash points live in lib/runtime/faults.ts.
export { crashPoint } from './runtime/faults.ts';
