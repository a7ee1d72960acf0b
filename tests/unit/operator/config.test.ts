import test from 'ava';
import { parseConfig, parseDuration, usage, type Config } from '../../../cmd/operator/config.ts';

const noFile = () => undefined;

function config(
  argv: string[],
  env: Record<string, string> = {},
  readFile: (p: string) => string | undefined = noFile,
): Config {
  const r = parseConfig(argv, env, readFile);
  if (r.kind !== 'config') throw new Error(`expected a config, got ${r.kind}: ${'message' in r ? r.message : ''}`);
  return r.config;
}

test('defaults follow the kubebuilder scaffold', (t) => {
  t.like(config([]), {
    kubeconfig: undefined,
    clusterName: '-',
    leaderElect: false,
    leaderElectionNamespace: 'leasehold-system',
    leaderElectionId: 'leasehold-operator-lock',
    metricsBindAddress: ':8080',
    healthProbeBindAddress: ':8081',
    concurrency: 4,
    namespace: '',
    logLevel: 'info',
    resyncPeriodMs: 600_000,
    gracefulShutdownTimeoutMs: 30_000,
  });
});

test("the leader election namespace defaults to the pod's namespace", (t) => {
  t.is(config([], {}, () => 'operators\n').leaderElectionNamespace, 'operators');
});

test('flags take both --flag=value and --flag value forms, and beat environment variables', (t) => {
  const c = config(
    [
      '--kubeconfig=/tmp/kc',
      '--concurrency',
      '8',
      '--namespace=team-a',
      '--leader-elect',
      '--resync-period=1h30m',
      '--log-level',
      'debug',
    ],
    { LEASEHOLD_CONCURRENCY: '2', LEASEHOLD_NAMESPACE: 'other', KUBECONFIG: '/env/kc' },
  );
  t.is(c.kubeconfig, '/tmp/kc');
  t.is(c.concurrency, 8);
  t.is(c.namespace, 'team-a');
  t.true(c.leaderElect);
  t.is(c.resyncPeriodMs, 90 * 60_000);
  t.is(c.logLevel, 'debug');
});

test('environment variables fill in what flags leave out', (t) => {
  const c = config(['--leader-elect=false'], {
    LEASEHOLD_CLUSTER_NAME: 'prod-eu',
    LEASEHOLD_LEADER_ELECT: 'true',
    LEASEHOLD_METRICS_BIND_ADDRESS: '0',
    LEASEHOLD_HEALTH_PROBE_BIND_ADDRESS: '127.0.0.1:9440',
    LEASEHOLD_RESYNC_PERIOD: '30s',
  });
  t.is(c.clusterName, 'prod-eu');
  t.false(c.leaderElect, 'the flag wins');
  t.is(c.metricsBindAddress, '0');
  t.is(c.healthProbeBindAddress, '127.0.0.1:9440');
  t.is(c.resyncPeriodMs, 30_000);
});

test('KUBECONFIG is left to the kubeconfig loader, which merges its files as kubectl does; --kubeconfig names one file', (t) => {
  t.is(config([], { KUBECONFIG: '/env/a:/env/b' }).kubeconfig, undefined);
  t.is(config(['--kubeconfig=/tmp/kc'], { KUBECONFIG: '/env/a:/env/b' }).kubeconfig, '/tmp/kc');
  t.regex(usage(), /--kubeconfig string\n.*env KUBECONFIG/);
});

test("the operator's ServiceAccount is parsed once, from namespace/name; none given is undefined", (t) => {
  t.is(config([]).operatorServiceAccount, undefined);
  t.deepEqual(config(['--operator-service-account=leasehold-system/leasehold']).operatorServiceAccount, {
    namespace: 'leasehold-system',
    name: 'leasehold',
  });
  t.deepEqual(config([], { LEASEHOLD_OPERATOR_SERVICE_ACCOUNT: 'ops/vault.login' }).operatorServiceAccount, {
    namespace: 'ops',
    name: 'vault.login',
  });
});

test('invalid input is an error naming the flag or variable', (t) => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--concurrency=zero'], {}, /--concurrency.*"zero"/],
    [['--concurrency=0'], {}, /--concurrency/],
    [['--bogus'], {}, /unknown flag --bogus/],
    [['--log-level=loud'], {}, /--log-level.*"loud"/],
    [['--resync-period=10 minutes'], {}, /--resync-period.*invalid duration/],
    [['--metrics-bind-address=localhost:http'], {}, /--metrics-bind-address/],
    [['--namespace'], {}, /--namespace needs a value/],
    [['stray'], {}, /unexpected argument "stray"/],
    [[], { LEASEHOLD_LEADER_ELECT: 'maybe' }, /LEASEHOLD_LEADER_ELECT.*not a boolean/],
    [
      ['--operator-service-account=leasehold'],
      {},
      /--operator-service-account: "leasehold" is not namespace\/name of a ServiceAccount/,
    ],
    [['--operator-service-account=a/b/c'], {}, /--operator-service-account.*not namespace\/name/],
    [[], { LEASEHOLD_OPERATOR_SERVICE_ACCOUNT: 'Ops/x' }, /LEASEHOLD_OPERATOR_SERVICE_ACCOUNT.*not namespace\/name/],
  ];
  for (const [argv, env, message] of cases) {
    const r = parseConfig(argv, env, noFile);
    t.is(r.kind, 'error', argv.join(' '));
    if (r.kind === 'error') t.regex(r.message, message);
  }
});

test('--help lists every flag with its environment variable', (t) => {
  const r = parseConfig(['--namespace=x', '--help'], {}, noFile);
  t.is(r.kind, 'help');
  for (const f of [
    '--kubeconfig',
    '--cluster-name',
    '--leader-elect',
    '--leader-election-namespace',
    '--leader-election-id',
    '--metrics-bind-address',
    '--health-probe-bind-address',
    '--concurrency',
    '--namespace',
    '--log-level',
    '--resync-period',
  ]) {
    t.true(usage().includes(f), f);
  }
  t.true(usage().includes('LEASEHOLD_LEADER_ELECT'));
});

test('durations use Go syntax', (t) => {
  t.is(parseDuration('0'), 0);
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('1h2m3s'), 3_723_000);
  t.is(parseDuration('1.5s'), 1500);
  t.throws(() => parseDuration('10'));
  t.throws(() => parseDuration(''));
});
