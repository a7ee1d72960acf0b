// Unit tests: pure logic, fakes allowed, run in parallel.
export default {
  files: ['tests/unit/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '30s',
};
