// The operator a test file runs, replaceable by its tests. Starting one is scripts/stack/operator.ts'
// startOperator, which `npm run demo` uses too.
import type { OperatorProcess } from '../../../scripts/stack/operator.ts';

/**
 * The one operator a test file runs, as a slot whose process a test may replace. AVA gives each test a shallow
 * copy of the before hook's context: an operator a test started by assigning `t.context.operator` would be
 * invisible to the next test, which would then start a second one beside it (two operators issuing for the same
 * roles, each taking the other's in-flight leases for unrecorded ones). The slot object is shared by every copy.
 */
export class OperatorSlot implements OperatorProcess {
  constructor(private proc: OperatorProcess) {}

  /** Stops the current operator (if it still runs) and puts the one `start` returns in its place. */
  async replace(start: () => Promise<OperatorProcess>): Promise<void> {
    await this.proc.stop();
    this.proc = await start();
  }

  get pid() {
    return this.proc.pid;
  }
  get running() {
    return this.proc.running;
  }
  get logFile() {
    return this.proc.logFile;
  }
  get healthUrl() {
    return this.proc.healthUrl;
  }
  get metricsUrl() {
    return this.proc.metricsUrl;
  }
  stop(): Promise<void> {
    return this.proc.stop();
  }
  kill(): Promise<void> {
    return this.proc.kill();
  }
  logs(): string {
    return this.proc.logs();
  }
  tail(lines?: number): string {
    return this.proc.tail(lines);
  }
}
