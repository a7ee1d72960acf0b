// The operator as the benchmarks run it: compiled JavaScript on node@24, as the container image runs
// `node dist/lib/main.js`. Running it through tsx (what scripts/stack/operator.ts does for the tests and the
// demo) costs ~60 MB of RSS for the loader and its transpiled sources and seconds of start-up, which would be
// measured as the operator's. `--operator tsx` benchmarks that way instead.
//
// The build goes to a private directory (tsc -p tsconfig.build.json --noCheck: emit only, the type check is
// `npm run lint`'s job), never to dist/, which other work in this tree may be using.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Env } from '../stack/env.ts';
import { FatalStartError, request, waitFor } from '../stack/http.ts';
import { REPO_ROOT, pathWithPlugin } from '../stack/leasehold-setup.ts';
import { startOperator, type OperatorOptions, type OperatorProcess } from '../stack/operator.ts';
import { freePort } from '../stack/ports.ts';
import { ManagedProcess } from '../stack/process.ts';

export type OperatorRuntime = 'compiled' | 'tsx';

function nodeBinary(): string {
  const local = path.join(REPO_ROOT, 'node_modules/.bin/node');
  return fs.existsSync(local) ? local : process.execPath;
}

/** Compiles api/, controllers/ and lib/ into `dir`; resolves with the entry point. */
export function buildOperator(dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const tsc = path.join(REPO_ROOT, 'node_modules/.bin/tsc');
    execFile(nodeBinary(), [tsc, '-p', path.join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', dir, '--noCheck', '--sourceMap', 'false'], {
      cwd: REPO_ROOT, maxBuffer: 16 << 20,
    }, (err, stdout, stderr) => {
      const main = path.join(dir, 'lib/main.js');
      if (err && !fs.existsSync(main)) return reject(new Error(`compiling the operator failed: ${(stdout + stderr).trim().slice(0, 2000)}`));
      // ESM needs the package's "type": "module"; packages resolve through the repository's node_modules.
      fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(dir, 'package.json'));
      fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
      resolve(main);
    });
  });
}

/** Like scripts/stack/operator.ts's startOperator, with `node <main.js>` in place of `node --import tsx lib/main.ts`. */
export async function startCompiledOperator(env: Env, main: string, extraArgs: string[], name: string, opts: OperatorOptions = {}): Promise<OperatorProcess> {
  const [health, metrics] = await Promise.all([freePort(), freePort()]);
  const logFile = path.join(env.dir, 'logs', `${name}-${Date.now()}.log`);
  const proc = new ManagedProcess({
    name,
    command: nodeBinary(),
    args: [
      main,
      `--kubeconfig=${env.kubernetes.kubeconfig}`,
      `--health-probe-bind-address=127.0.0.1:${health}`,
      `--metrics-bind-address=127.0.0.1:${metrics}`,
      '--operator-namespace=leasehold-system',
      `--log-level=${opts.logLevel ?? 'info'}`,
      ...extraArgs,
    ],
    cwd: REPO_ROOT,
    env: { PATH: pathWithPlugin() },
    logFile,
    stopGraceMs: opts.stopGraceMs ?? 35_000,
  });
  proc.start();
  const healthUrl = `http://127.0.0.1:${health}`;
  try {
    await waitFor('the operator to report /readyz', async () => {
      if (!proc.running) throw new FatalStartError(`the operator exited before it was ready:\n${proc.tail(40)}`);
      return (await request({ url: `${healthUrl}/readyz` })).status === 200;
    }, opts.readyTimeoutMs ?? 60_000, 100);
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

/** Starts the operator: a built entry point when there is one, else through tsx. */
export function launchOperator(env: Env, main: string | undefined, args: string[], name: string, opts: OperatorOptions): Promise<OperatorProcess> {
  if (!main) return startOperator(env, args, name, opts);
  return startCompiledOperator(env, main, args, name, opts);
}
