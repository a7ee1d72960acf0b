// Integration tests: each file starts the real local stack (kube-apiserver, etcd, kube-controller-manager,
// Vault/OpenBao, PostgreSQL) through tests/integration/helpers. Files run one at a time: two cores can't host
// several stacks at once without starving them.
export default {
  files: ['tests/integration/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  concurrency: 1,
  serial: true,
  timeout: '5m',
};
