// One operator replica for the leader-election test (runtime-leader.test.ts): a Manager with leader election
// and a ConfigMap controller that reports each pass on stdout as a JSON line. Not a test file itself.
import { KubeConfig } from '@kubernetes/client-node';
import { Manager } from '../../lib/runtime/manager.ts';
import { enqueueObject } from '../../lib/runtime/controller.ts';
import { createLogger } from '../../lib/runtime/logging.ts';
import { DONE } from '../../lib/runtime/types.ts';
import { CONFIGMAPS } from './runtime-support.ts';

const need = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const identity = need('REPLICA_IDENTITY');
const report = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...event, identity, at: Date.now() })}\n`);

const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(need('REPLICA_KUBECONFIG'));
const manager = new Manager({
  kubeConfig,
  log: createLogger({ level: 'info', stream: process.stderr }),
  namespace: need('REPLICA_NAMESPACE'),
  leaderElection: { namespace: need('REPLICA_LEASE_NAMESPACE'), name: need('REPLICA_LEASE_NAME'), identity },
  onLeadershipLost: () => {
    report({ event: 'lost' });
    process.exit(1);
  },
});
manager
  .newController({
    name: 'leader-test',
    reconciler: {
      async reconcile(key) {
        report({ event: 'reconciled', name: key.name });
        return DONE;
      },
    },
  })
  .watch(manager.cache(CONFIGMAPS), enqueueObject());
process.on('SIGTERM', () => {
  manager.stop().then(
    () => {
      report({ event: 'stopped' });
      process.exit(0);
    },
    () => process.exit(1),
  );
});
await manager.start();
report({ event: 'started' });
