// Entry point: `npm run operator -- [flags]` from the repo, `node dist/cmd/operator/main.js [flags]` in the container.
// Reads as its steps: parse flags, build the logger, connect, register controllers, run until SIGTERM.
import os from 'node:os';
import { buildControllers } from '../../controllers/index.ts';
import { loadKubeconfig } from '../../lib/runtime/kubeconfig.ts';
import { createLogger, describeError, type Logger } from '../../lib/runtime/logging.ts';
import { Manager } from '../../lib/runtime/manager.ts';
import { Metrics } from '../../lib/runtime/metrics.ts';
import { parseConfig } from './config.ts';

/** Exit codes: 0 clean stop, 1 runtime failure or lost leadership, 2 invalid flags. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** A reconcile bug must not take the operator down: log what escaped, keep serving the other objects. */
function keepRunningOnStrayErrors(log: Logger): void {
  process.on('unhandledRejection', (reason) =>
    log.error('unhandled promise rejection', { error: describeError(reason) }),
  );
  process.on('uncaughtException', (err) => log.error('uncaught exception', { error: describeError(err) }));
}

function exitSoon(code: number): void {
  process.exitCode = code;
  // Give stdout a turn to drain the last log lines, then make sure stray timers cannot keep us alive.
  setTimeout(() => process.exit(code), 100).unref();
  setImmediate(() => process.exit(code));
}

async function main(argv: string[]): Promise<void> {
  const parsed = parseConfig(argv, process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(parsed.text);
    return;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(`leasehold: ${parsed.message}\nRun with --help to list the flags.\n`);
    process.exit(EXIT_USAGE);
  }
  const config = parsed.config;
  const log = createLogger({ level: config.logLevel });
  keepRunningOnStrayErrors(log);

  // The plugin's loader, in controller-runtime's order: --kubeconfig, $KUBECONFIG, in-cluster, ~/.kube/config.
  const { kubeConfig } = loadKubeconfig({ kubeconfig: config.kubeconfig, inClusterFirst: true }, process.env);
  const metrics = new Metrics();
  const manager = new Manager({
    kubeConfig,
    log,
    metrics,
    namespace: config.namespace,
    resyncPeriodMs: config.resyncPeriodMs,
    healthProbeBindAddress: config.healthProbeBindAddress,
    metricsBindAddress: config.metricsBindAddress,
    shutdownTimeoutMs: config.gracefulShutdownTimeoutMs,
    instance: process.env.POD_NAME ?? os.hostname(),
    leaderElection: config.leaderElect
      ? { namespace: config.leaderElectionNamespace, name: config.leaderElectionId }
      : undefined,
    onLeadershipLost: () => {
      log.error('leader election lost; exiting so the pod restarts');
      exitSoon(EXIT_FAILURE);
    },
  });

  const registrations = buildControllers(
    {
      kubeConfig,
      logger: log,
      metrics,
      client: manager.client,
      eventRecorder: (component) => manager.eventRecorder(component),
      cache: (resource, opts) => manager.cache(resource, opts),
      newController: (opts) => manager.newController({ concurrency: config.concurrency, ...opts }),
    },
    {
      clusterName: config.clusterName,
      resyncPeriodMs: config.resyncPeriodMs,
      operatorNamespace: config.operatorNamespace,
      operatorServiceAccount: config.operatorServiceAccount,
      vaultIssuerTokenRole: config.vaultIssuerTokenRole,
    },
  );
  for (const r of registrations) manager.add(r.controller);

  let signals = 0;
  const onSignal = (signal: string) => {
    if (++signals > 1) {
      log.warn('second signal; exiting without waiting', { signal });
      exitSoon(EXIT_FAILURE);
      return;
    }
    log.info('signal received; shutting down', { signal });
    manager.stop().then(
      () => exitSoon(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: describeError(err) });
        exitSoon(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  log.info('starting leasehold', {
    controllers: registrations.map((r) => r.name),
    namespace: config.namespace || '(all)',
    leaderElect: config.leaderElect,
    clusterName: config.clusterName,
    concurrency: config.concurrency,
  });
  await manager.start();
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`leasehold: ${describeError(err)}\n`);
  process.exit(EXIT_FAILURE);
});
