// Command-line flags in the kubebuilder style (`--flag=value` or `--flag value`), each with an environment
// variable fallback so a Deployment can configure the operator either way. Precedence: flag, variable,
// default. Parsing is pure (argv, env and a file reader are parameters) so it is unit-tested without a process.
import fs from 'node:fs';
import { LOG_LEVELS, type LogLevel } from '../../lib/runtime/logging.ts';
import { parseBindAddress } from '../../lib/runtime/health.ts';
import { parseDurationMs } from '../../api/duration.ts';

/** A ServiceAccount, as `--operator-service-account=namespace/name` names it. */
export interface ServiceAccountRef {
  namespace: string;
  name: string;
}

export interface Config {
  /**
   * --kubeconfig: one kubeconfig file. Undefined: lib/runtime/kubeconfig.ts looks further, in controller-runtime's
   * order (every file of $KUBECONFIG merged as kubectl merges them, the in-cluster service account, ~/.kube/config).
   */
  kubeconfig: string | undefined;
  clusterName: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  concurrency: number;
  /** Namespace to watch; '' for all. */
  namespace: string;
  logLevel: LogLevel;
  resyncPeriodMs: number;
  gracefulShutdownTimeoutMs: number;
  /** Namespace of the operator's own objects (the Vault issuer-token Secrets). */
  operatorNamespace: string;
  /** The operator's ServiceAccount (`namespace/name` on the command line), for Vault's kubernetes auth; undefined: none. */
  operatorServiceAccount: ServiceAccountRef | undefined;
  /** Vault token role the issuer tokens (which own every issued lease) are created from. */
  vaultIssuerTokenRole: string;
}

export type ParseOutcome =
  { kind: 'config'; config: Config } | { kind: 'help'; text: string } | { kind: 'error'; message: string };

type Kind = 'string' | 'bool' | 'int' | 'duration' | 'bind' | 'level' | 'serviceAccount';

interface Flag {
  name: string;
  env: string;
  /** The variable is read by someone else (the kubeconfig loader), not parsed into the Config. */
  envReadElsewhere?: boolean;
  kind: Kind;
  help: string;
  /** Shown in --help; the real default comes from `defaults()`. */
  defaultText: string;
  key: keyof Config;
}

export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const FLAGS: readonly Flag[] = [
  {
    name: 'kubeconfig',
    env: 'KUBECONFIG',
    envReadElsewhere: true,
    kind: 'string',
    key: 'kubeconfig',
    defaultText: "KUBECONFIG's files merged as kubectl merges them, else in-cluster, else ~/.kube/config",
    help: 'Path to a kubeconfig. Only required if out-of-cluster.',
  },
  {
    name: 'cluster-name',
    env: 'LEASEHOLD_CLUSTER_NAME',
    kind: 'string',
    key: 'clusterName',
    defaultText: '-',
    help: 'Name of this cluster, as recorded in Vault role and credential names.',
  },
  {
    name: 'leader-elect',
    env: 'LEASEHOLD_LEADER_ELECT',
    kind: 'bool',
    key: 'leaderElect',
    defaultText: 'false',
    help: 'Enable leader election, ensuring only one active operator replica.',
  },
  {
    name: 'leader-election-namespace',
    env: 'LEASEHOLD_LEADER_ELECTION_NAMESPACE',
    kind: 'string',
    key: 'leaderElectionNamespace',
    defaultText: "the pod's namespace, else leasehold-system",
    help: 'Namespace of the leader election Lease.',
  },
  {
    name: 'leader-election-id',
    env: 'LEASEHOLD_LEADER_ELECTION_ID',
    kind: 'string',
    key: 'leaderElectionId',
    defaultText: 'leasehold-operator-lock',
    help: 'Name of the leader election Lease.',
  },
  {
    name: 'metrics-bind-address',
    env: 'LEASEHOLD_METRICS_BIND_ADDRESS',
    kind: 'bind',
    key: 'metricsBindAddress',
    defaultText: ':8080',
    help: 'Address the /metrics endpoint binds to; 0 disables it.',
  },
  {
    name: 'health-probe-bind-address',
    env: 'LEASEHOLD_HEALTH_PROBE_BIND_ADDRESS',
    kind: 'bind',
    key: 'healthProbeBindAddress',
    defaultText: ':8081',
    help: 'Address the /healthz and /readyz endpoints bind to; 0 disables them.',
  },
  {
    name: 'concurrency',
    env: 'LEASEHOLD_CONCURRENCY',
    kind: 'int',
    key: 'concurrency',
    defaultText: '4',
    help: 'Objects each controller reconciles in parallel.',
  },
  {
    name: 'namespace',
    env: 'LEASEHOLD_NAMESPACE',
    kind: 'string',
    key: 'namespace',
    defaultText: 'all namespaces',
    help: 'Watch only this namespace.',
  },
  {
    name: 'log-level',
    env: 'LEASEHOLD_LOG_LEVEL',
    kind: 'level',
    key: 'logLevel',
    defaultText: 'info',
    help: `Log level: ${LOG_LEVELS.join(', ')}.`,
  },
  {
    name: 'resync-period',
    env: 'LEASEHOLD_RESYNC_PERIOD',
    kind: 'duration',
    key: 'resyncPeriodMs',
    defaultText: '10m',
    help: 'How often every object is reconciled even if nothing changed (0 disables).',
  },
  {
    name: 'operator-namespace',
    env: 'LEASEHOLD_OPERATOR_NAMESPACE',
    kind: 'string',
    key: 'operatorNamespace',
    defaultText: "the pod's namespace, else leasehold-system",
    help: 'Namespace where the operator keeps its Vault issuer-token Secrets.',
  },
  {
    name: 'operator-service-account',
    env: 'LEASEHOLD_OPERATOR_SERVICE_ACCOUNT',
    kind: 'serviceAccount',
    key: 'operatorServiceAccount',
    defaultText: 'none',
    help: "namespace/name of the operator's ServiceAccount: logs into Vault (kubernetes auth) for AppBindings that name no service account.",
  },
  {
    name: 'vault-issuer-token-role',
    env: 'LEASEHOLD_VAULT_ISSUER_TOKEN_ROLE',
    kind: 'string',
    key: 'vaultIssuerTokenRole',
    defaultText: 'leasehold-issuer',
    help: "Vault token role (orphan, periodic) for the tokens that own issued leases, so credentials outlive the operator's login.",
  },
  {
    name: 'graceful-shutdown-timeout',
    env: 'LEASEHOLD_GRACEFUL_SHUTDOWN_TIMEOUT',
    kind: 'duration',
    key: 'gracefulShutdownTimeoutMs',
    defaultText: '30s',
    help: 'How long in-flight reconciles may finish after SIGTERM.',
  },
];

function defaults(readFile: (path: string) => string | undefined): Config {
  const podNamespace = readFile(SERVICE_ACCOUNT_NAMESPACE_FILE)?.trim();
  return {
    kubeconfig: undefined,
    clusterName: '-',
    leaderElect: false,
    leaderElectionNamespace: podNamespace || 'leasehold-system',
    leaderElectionId: 'leasehold-operator-lock',
    metricsBindAddress: ':8080',
    healthProbeBindAddress: ':8081',
    concurrency: 4,
    namespace: '',
    logLevel: 'info',
    resyncPeriodMs: 10 * 60_000,
    gracefulShutdownTimeoutMs: 30_000,
    operatorNamespace: podNamespace || 'leasehold-system',
    operatorServiceAccount: undefined,
    vaultIssuerTokenRole: 'leasehold-issuer',
  };
}

/**
 * Go-style durations for flags: `90s`, `10m`, `1h30m`, `500ms`; a bare `0` is zero. Returns milliseconds. The
 * grammar is api/duration.ts's (the CRDs' durations); only a bare number other than 0, which the API reads as
 * seconds for KubeVault's sake, is refused here: on a command line it is more likely a slip.
 */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  try {
    if (/^\d+$/.test(s)) throw new Error('no unit');
    return Math.round(parseDurationMs(s));
  } catch {
    throw new Error(`invalid duration "${text}" (use e.g. 30s, 10m, 1h30m)`);
  }
}

function convert(flag: Flag, raw: string, source: string): Config[keyof Config] {
  const where = `${source} ${source === 'flag' ? `--${flag.name}` : flag.env}`;
  switch (flag.kind) {
    case 'string':
      return raw;
    case 'bool': {
      const v = raw.toLowerCase();
      if (['true', '1', 'yes', 't'].includes(v)) return true;
      if (['false', '0', 'no', 'f', ''].includes(v)) return false;
      throw new Error(`${where}: "${raw}" is not a boolean (true or false)`);
    }
    case 'int': {
      if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > 1000)
        throw new Error(`${where}: "${raw}" is not a whole number between 1 and 1000`);
      return Number(raw);
    }
    case 'duration':
      try {
        return parseDuration(raw);
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
      }
    case 'bind':
      try {
        parseBindAddress(raw);
        return raw;
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
      }
    case 'level':
      if (!(LOG_LEVELS as readonly string[]).includes(raw))
        throw new Error(`${where}: "${raw}" is not one of ${LOG_LEVELS.join(', ')}`);
      return raw as LogLevel;
    case 'serviceAccount':
      return parseServiceAccount(raw, where);
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `namespace/name` → the ServiceAccount; '' → undefined (none given). Throws naming `where` for anything else. */
function parseServiceAccount(raw: string, where: string): ServiceAccountRef | undefined {
  if (raw.trim() === '') return undefined;
  const parts = raw.trim().split('/');
  const [namespace = '', name = ''] = parts;
  if (parts.length !== 2 || !DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name)) {
    throw new Error(`${where}: "${raw}" is not namespace/name of a ServiceAccount (e.g. leasehold-system/leasehold)`);
  }
  return { namespace, name };
}

function readFileOrUndefined(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Parses flags and environment variables. Never exits: the caller decides what help and errors do. */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string | undefined = readFileOrUndefined,
): ParseOutcome {
  const config = defaults(readFile) as unknown as Record<string, unknown>;
  try {
    for (const flag of FLAGS) {
      const v = flag.envReadElsewhere ? undefined : env[flag.env];
      if (v !== undefined && v !== '') config[flag.key] = convert(flag, v, 'environment variable');
    }
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      if (arg === '--help' || arg === '-h' || arg === '-help') return { kind: 'help', text: usage() };
      const m = /^--?([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
      if (!m) throw new Error(`unexpected argument "${arg}"`);
      const flag = FLAGS.find((f) => f.name === m[1]);
      if (!flag) throw new Error(`unknown flag --${m[1]}`);
      let value = m[2];
      if (value === undefined) {
        if (flag.kind === 'bool')
          value = 'true'; // `--leader-elect` alone turns it on, as in Go's flag package
        else {
          value = argv[++i];
          if (value === undefined) throw new Error(`flag --${flag.name} needs a value`);
        }
      }
      config[flag.key] = convert(flag, value, 'flag');
    }
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
  const c = config as unknown as Config;
  if (c.kubeconfig === '') c.kubeconfig = undefined;
  return { kind: 'config', config: c };
}

export function usage(): string {
  const lines = ['Usage: leasehold [flags]', '', 'Flags (each also read from the environment variable shown):'];
  for (const f of FLAGS) {
    const arg = f.kind === 'bool' ? '' : f.kind === 'duration' ? ' duration' : f.kind === 'int' ? ' int' : ' string';
    lines.push(`  --${f.name}${arg}`, `        ${f.help} (default ${f.defaultText}; env ${f.env})`);
  }
  return `${lines.join('\n')}\n`;
}
