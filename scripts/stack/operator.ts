// Runs the operator as its own process (as in production) against the local stack: `node --import tsx
// cmd/operator/main.ts` (or a compiled entry point, as the benchmarks run it) in its own process group, logging to a
// file under the stack's directory, health and metrics on free ports of 127.0.0.1. Used by `npm run demo`, the
// integration tests and `npm run bench`.
import fs from 'node:fs';
import path from 'node:path';
import type { Env } from './env.ts';
import { FatalStartError, request, waitFor } from './http.ts';
import { REPO_ROOT, pathWithPlugin } from './leasehold-setup.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface OperatorProcess {
  pid: number | undefined;
  logFile: string;
  healthUrl: string;
  metricsUrl: string;
  readonly running: boolean;
  /** SIGTERM and wait (graceful), SIGKILL after the grace period. */
  stop(): Promise<void>;
  /** SIGKILL and wait (a crash). */
  kill(): Promise<void>;
  logs(): string;
  /** The last lines of the log. */
  tail(lines?: number): string;
}

export interface OperatorOptions {
  /** --log-level (default debug: the log is for post-mortems). */
  logLevel?: string;
  /** How long to wait for /readyz (default 60 s). */
  readyTimeoutMs?: number;
  /** How long a graceful stop may take before SIGKILL (default 35 s: the operator's own grace is 30 s). */
  stopGraceMs?: number;
  /** A compiled cmd/operator/main.js to run with plain node (default: cmd/operator/main.ts through tsx). */
  entryPoint?: string;
  /** NODE_OPTIONS for the operator's process (profiling, heap limits). */
  nodeOptions?: string;
}

/** The Node.js to run the operator on: the node@24 dev dependency when installed, else this process's. */
export function nodeBinary(): string {
  const local = path.join(REPO_ROOT, 'node_modules/.bin/node');
  return fs.existsSync(local) ? local : process.execPath;
}

export async function startOperator(
  env: Env,
  extraArgs: string[] = [],
  name = 'operator',
  opts: OperatorOptions = {},
): Promise<OperatorProcess> {
  const [health, metrics] = await Promise.all([freePort(), freePort()]);
  const logFile = path.join(env.dir, 'logs', `${name}-${Date.now()}.log`);
  const proc = new ManagedProcess({
    name,
    command: nodeBinary(),
    args: [
      ...(opts.entryPoint ? [opts.entryPoint] : ['--import', 'tsx', path.join(REPO_ROOT, 'cmd/operator/main.ts')]),
      `--kubeconfig=${env.kubernetes.kubeconfig}`,
      `--health-probe-bind-address=127.0.0.1:${health}`,
      `--metrics-bind-address=127.0.0.1:${metrics}`,
      '--operator-namespace=leasehold-system',
      `--log-level=${opts.logLevel ?? 'debug'}`,
      ...extraArgs,
    ],
    cwd: REPO_ROOT,
    env: { PATH: pathWithPlugin(), ...(opts.nodeOptions ? { NODE_OPTIONS: opts.nodeOptions } : {}) },
    logFile,
    stopGraceMs: opts.stopGraceMs ?? 35_000,
  });
  proc.start();
  const healthUrl = `http://127.0.0.1:${health}`;
  try {
    await waitFor(
      'the operator to report /readyz',
      async () => {
        if (!proc.running) throw new FatalStartError(`the operator exited before it was ready:\n${proc.tail(40)}`);
        return (await request({ url: `${healthUrl}/readyz` })).status === 200;
      },
      opts.readyTimeoutMs ?? 60_000,
      100,
    );
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return {
    get pid() {
      return proc.pid;
    },
    get running() {
      return proc.running;
    },
    logFile,
    healthUrl,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    stop: () => proc.stop(),
    kill: () => proc.kill(),
    logs: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    tail: (lines = 30) => proc.tail(lines),
  };
}
