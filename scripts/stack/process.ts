// Child processes of the local stack. Every process runs in its own process group, is recorded in a
// module-wide registry, and is killed when this Node process exits for any reason we can observe (normal exit,
// uncaught error, SIGINT/SIGTERM/SIGHUP), so no test run leaves an orphan behind.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  logFile: string;
  /** The signal that asks for a clean shutdown (PostgreSQL: SIGINT = "fast" shutdown). */
  stopSignal?: NodeJS.Signals;
  /** How long a clean stop may take before SIGKILL. */
  stopGraceMs?: number;
}

const live = new Set<ManagedProcess>();
const tempDirs = new Set<string>();
let hooksInstalled = false;

// A SIGKILLed Node process runs no exit hook. A tiny detached shell (the reaper) polls this process's pid and,
// once it is gone, kills the recorded process groups and deletes the recorded directories.
const reaperList = path.join(os.tmpdir(), `leasehold-reaper-${process.pid}.list`);
let reaperStarted = false;

function recordForReaper(): void {
  const lines = [...[...live].map((p) => (p.pid ? `pg ${p.pid}` : '')), ...[...tempDirs].map((d) => `dir ${d}`)].filter(
    Boolean,
  );
  fs.writeFileSync(reaperList, lines.join('\n') + '\n');
  if (reaperStarted) return;
  reaperStarted = true;
  const script =
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
    `[ -f "$0" ] && while read -r kind v; do case "$kind" in pg) kill -9 "-$v" 2>/dev/null;; dir) rm -rf -- "$v";; esac; done < "$0"; rm -f -- "$0"`;
  spawn('sh', ['-c', script, reaperList], { detached: true, stdio: 'ignore' }).unref();
}

function killAllNow(): void {
  for (const p of live) p.killGroupNow();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(reaperList, { force: true });
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      // Only act as the default handler would: when the host installed its own handler it owns shutdown.
      if (process.listenerCount(sig) > 1) return;
      killAllNow();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Registers a directory to delete if the process exits before the stack is stopped cleanly. */
export function registerTempDir(dir: string): void {
  installExitHooks();
  tempDirs.add(dir);
  recordForReaper();
}
export function unregisterTempDir(dir: string): void {
  tempDirs.delete(dir);
  recordForReaper();
}

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(readonly spec: ProcessSpec) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    installExitHooks();
    // Components start in parallel; whichever starts first must not depend on another having made logs/.
    fs.mkdirSync(path.dirname(this.spec.logFile), { recursive: true });
    const log = fs.openSync(this.spec.logFile, 'a');
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: { ...process.env, ...this.spec.env },
      stdio: ['ignore', log, log],
      detached: true, // own process group: stop() signals the whole group
    });
    fs.closeSync(log);
    // Don't keep the Node process alive for the child: a test that forgot stop() must still end, and the
    // exit hook then kills the child.
    child.unref();
    this.child = child;
    live.add(this);
    recordForReaper();
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        live.delete(this);
        recordForReaper();
        resolve(code);
      });
      child.once('error', (err) => {
        fs.appendFileSync(this.spec.logFile, `\n[stack] failed to start ${this.spec.name}: ${err.message}\n`);
        live.delete(this);
        resolve(null);
      });
    });
  }

  /** Asks for a clean shutdown, escalating to SIGKILL after `graceMs`. */
  async stop(graceMs = this.spec.stopGraceMs ?? 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.ref(); // keep the event loop alive until the exit is observed
    this.signalGroup(this.spec.stopSignal ?? 'SIGTERM');
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Reap stragglers in the group (a helper the process forked and didn't wait for).
    this.signalGroup('SIGKILL');
  }

  /** Kills the process group without waiting: the crash-like stop used by fault injection and exit hooks. */
  killGroupNow(): void {
    this.signalGroup('SIGKILL');
  }

  async kill(): Promise<void> {
    this.child?.ref();
    this.killGroupNow();
    await this.exited;
  }

  /** Resolves with the exit code once the process has exited. */
  waitForExit(): Promise<number | null> {
    return this.exited;
  }

  /** The last lines of the log, for error messages when a component fails to come up. */
  tail(lines = 30): string {
    try {
      return fs.readFileSync(this.spec.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  private signalGroup(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // the group is already gone
    }
  }
}
