// Runs the operator as its own process (as in production) against the test stack.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../../../scripts/stack/env.ts';
import { freePort } from '../../../scripts/stack/ports.ts';
import { request, waitFor } from '../../../scripts/stack/http.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface OperatorProcess {
  logFile: string;
  metricsUrl: string;
  /** SIGTERM and wait (graceful). */
  stop(): Promise<void>;
  /** SIGKILL and wait (a crash). */
  kill(): Promise<void>;
  logs(): string;
}

export async function startOperator(env: Env, extraArgs: string[] = [], name = 'operator'): Promise<OperatorProcess> {
  const [health, metrics] = await Promise.all([freePort(), freePort()]);
  const logFile = path.join(env.dir, 'logs', `${name}-${Date.now()}.log`);
  const log = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(path.join(repo, 'node_modules/.bin/tsx'), [
    path.join(repo, 'lib/main.ts'),
    `--kubeconfig=${env.kubernetes.kubeconfig}`,
    `--health-probe-bind-address=127.0.0.1:${health}`,
    `--metrics-bind-address=127.0.0.1:${metrics}`,
    '--operator-namespace=leasehold-system',
    '--log-level=debug',
    ...extraArgs,
  ], { cwd: repo, stdio: ['ignore', log, log], env: { ...process.env, PATH: `${path.join(repo, 'node_modules/.bin')}:${process.env.PATH}` } });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  await waitFor('the operator to report /readyz', async () => {
    if (child.exitCode !== null) throw new Error(`the operator exited: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    return (await request({ url: `http://127.0.0.1:${health}/readyz` })).status === 200;
  }, 60_000, 200);
  const end = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
    process.removeListener('exit', killOnExit);
  };
  return {
    logFile,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    logs: () => fs.readFileSync(logFile, 'utf8'),
  };
}
