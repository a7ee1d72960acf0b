// Runs the operator as its own process (as in production) against the test stack. The code lives in
// scripts/stack/operator.ts, which `npm run demo` uses too.
export { startOperator, type OperatorOptions, type OperatorProcess } from '../../../scripts/stack/operator.ts';
