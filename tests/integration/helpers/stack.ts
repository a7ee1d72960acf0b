// Shared set-up for integration tests: one real stack per test file, always stopped afterwards.
// A missing component fails the run loudly (startEnv throws naming what is missing); nothing is skipped.
import type { ExecutionContext, TestFn } from 'ava';
import { startEnv, type Env } from '../../../scripts/stack/env.ts';

export interface StackContext {
  env: Env;
  /** Run (last registered first) before the stack stops: e.g. stopping an operator whose logs live in env.dir. */
  cleanups?: Array<() => Promise<void>>;
}

/** Registers before/after hooks that start the stack for this file and stop it when the file is done. */
export function useStack<T extends StackContext>(test: TestFn<T>): void {
  test.before(async (t) => {
    t.timeout(80 * 60_000, 'starting the local stack (a cold machine builds binaries first; `npm run stack:prepare` does it up front)');
    t.context.env = await startEnv({ log: (l) => t.log(l) });
  });
  test.after.always(async (t) => {
    for (const cleanup of (t.context.cleanups ?? []).reverse()) await cleanup().catch((err) => t.log(`cleanup failed: ${String(err)}`));
    await t.context.env?.stop();
  });
}

/** Polls until `probe` returns a truthy value; fails the test with `what` after `timeoutMs`. */
export async function eventually<V>(t: ExecutionContext<unknown>, what: string, probe: () => Promise<V | undefined | false | null>, timeoutMs = 30_000, intervalMs = 250): Promise<V> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      t.fail(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
