// Shared set-up for integration tests: one real stack per test file, always stopped afterwards.
// A missing component fails the run loudly (startEnv throws naming what is missing); nothing is skipped.
import type { ExecutionContext, TestFn } from 'ava';
import { startEnv, type Env, type StackDatabase } from '../../../scripts/stack/env.ts';
import { auditIsClean, auditLeases, describeAudit, type LeaseAudit } from './lease-audit.ts';

export interface StackContext {
  env: Env;
  /** Run (last registered first) before the stack stops: e.g. stopping an operator whose logs live in env.dir. */
  cleanups?: Array<() => Promise<void>>;
}

/** How long the operator gets to settle before the file's lease audit calls a difference a failure. */
const AUDIT_SETTLE_MS = 60_000;

/**
 * Registers before/after hooks that start the stack for this file and stop it when the file is done. Before the
 * stack stops, while the file's operators still run, Vault's database leases are audited against what the
 * requests record (helpers/lease-audit.ts): a lease no request records, a recorded live lease Vault doesn't have,
 * or an ended request whose lease lives fails the file. `withoutLeaseAudit` says why a file has no leases to
 * audit (it writes request statuses by hand, with no operator). `databases` starts MariaDB (it serves the MySQL
 * tests too) and/or Redis beside PostgreSQL: then `t.context.env.mariadb` / `.redis` hold their addresses and admin login.
 */
export function useStack<T extends StackContext>(
  test: TestFn<T>,
  opts: { withoutLeaseAudit?: string; databases?: StackDatabase[] } = {},
): void {
  test.before(async (t) => {
    t.timeout(
      80 * 60_000,
      'starting the local stack (a cold machine builds binaries first; `npm run stack:prepare` does it up front)',
    );
    t.context.env = await startEnv({ log: (l) => t.log(l), databases: opts.databases });
  });
  test.after.always('Vault holds exactly the leases the requests record', async (t) => {
    if (!t.context.env) return;
    if (opts.withoutLeaseAudit) {
      t.log(`no lease audit for this file: ${opts.withoutLeaseAudit}`);
      t.pass();
      return;
    }
    t.timeout(AUDIT_SETTLE_MS + 60_000);
    const deadline = Date.now() + AUDIT_SETTLE_MS;
    let audit: LeaseAudit;
    for (;;) {
      audit = await auditLeases(t.context.env);
      if (auditIsClean(audit) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    t.true(auditIsClean(audit), `lease audit: ${describeAudit(audit)}`);
  });
  test.after.always(async (t) => {
    for (const cleanup of (t.context.cleanups ?? []).reverse())
      await cleanup().catch((err) => t.log(`cleanup failed: ${String(err)}`));
    await t.context.env?.stop();
  });
}

/** Polls until `probe` returns a truthy value; fails the test with `what` after `timeoutMs`. */
export async function eventually<V>(
  t: ExecutionContext<unknown>,
  what: string,
  probe: () => Promise<V | undefined | false | null>,
  timeoutMs = 30_000,
  intervalMs = 250,
): Promise<V> {
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
