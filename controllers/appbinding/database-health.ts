// Which database a database AppBinding describes, and how to check that its admin login works: one row per kind
// (the probe to run and how to read the AppBinding into that probe's target). The kind comes from what uses the
// AppBinding (a SecretEngine's spec.postgres|mysql|mariadb|redis.databaseRef names it), else from its URL's scheme
// (KubeDB's tcp(host:port)/db form is MySQL's), else from its spec.type. Pure, apart from the probes themselves,
// which are injected (the reconciler passes the real ones; unit tests their fakes).
import {
  VAULT_SERVER_CONFIGURATION_KIND,
  engineDatabase,
  type AppBinding,
  type EngineDatabase,
  type SecretEngine,
} from '../../api/index.ts';
import { probeMySQL, type MySQLProbeTarget } from '../../lib/mysql/probe.ts';
import { probePostgres, type PostgresProbeTarget } from '../../lib/postgres/probe.ts';
import type { DatabaseProbeOutcome } from '../../lib/probe/common.ts';
import { probeRedis, type RedisProbeTarget } from '../../lib/redis/probe.ts';
import { postgresTarget } from '../shared/appbinding.ts';
import { DEFAULT_PORTS, adminLogin, databaseEndpoint } from '../shared/database-connection.ts';

export type DatabaseKind = EngineDatabase['type'];
export type TargetKind = 'vault' | DatabaseKind | 'other';

type ProbeOptions = { signal?: AbortSignal };

/** What a check gets: the AppBinding, its admin login (the Secret's data, transformed), the probes, the target's name. */
export interface CheckInput {
  ab: AppBinding;
  credentials: Record<string, string>;
  probes: DatabaseProbes;
  /** How messages start: "MySQL at db.demo:3306". */
  where: string;
  signal?: AbortSignal;
}

/** The login probes, by protocol (MariaDB speaks MySQL's). */
export interface DatabaseProbes {
  postgres(target: PostgresProbeTarget, where: string, opts?: ProbeOptions): Promise<DatabaseProbeOutcome>;
  mysql(target: MySQLProbeTarget, where: string, opts?: ProbeOptions): Promise<DatabaseProbeOutcome>;
  redis(target: RedisProbeTarget, where: string, opts?: ProbeOptions): Promise<DatabaseProbeOutcome>;
}

export const REAL_PROBES: DatabaseProbes = { postgres: probePostgres, mysql: probeMySQL, redis: probeRedis };

interface DatabaseCheck {
  /** How a message names the server: "MySQL at db.demo:3306". */
  label: string;
  /**
   * Logs in with the admin login. Throws a TerminalError when the AppBinding or its Secret can't be read into a
   * target (InvalidAppBinding, InvalidDatabaseSecret).
   */
  probe(input: CheckInput): Promise<DatabaseProbeOutcome>;
}

function pem(b64: string | undefined): string | undefined {
  return b64 ? Buffer.from(b64, 'base64').toString() : undefined;
}

const mysqlCheck = (kind: 'mysql' | 'mariadb', label: string): DatabaseCheck => ({
  label,
  probe({ ab, credentials, probes, where, signal }) {
    const ep = databaseEndpoint(ab, DEFAULT_PORTS[kind]);
    const { username, password } = adminLogin(ab, credentials);
    const cc = ab.spec.clientConfig;
    // The Go MySQL driver's tls=true|skip-verify|preferred|<name> (what Vault's plugin reads too), or a CA given.
    const tlsParam = ep.params.tls?.toLowerCase();
    const tls = (!!tlsParam && tlsParam !== 'false') || !!cc.caBundle;
    return probes.mysql(
      {
        host: ep.host,
        port: ep.port,
        database: ep.path || undefined,
        username,
        password,
        tls,
        insecureSkipTLSVerify: tlsParam === 'skip-verify' || cc.insecureSkipTLSVerify,
        caPem: pem(cc.caBundle),
      },
      where,
      { signal },
    );
  },
});

/** One row per kind of database: its name in messages and how it is checked. */
export const DATABASE_CHECKS: Record<DatabaseKind, DatabaseCheck> = {
  postgres: {
    label: 'PostgreSQL',
    probe({ ab, credentials, probes, where, signal }) {
      const t = postgresTarget(ab, credentials);
      const cc = ab.spec.clientConfig;
      return probes.postgres(
        {
          ...t,
          sslmode: new URLSearchParams(t.query).get('sslmode') ?? undefined,
          insecureSkipTLSVerify: cc.insecureSkipTLSVerify,
          caPem: pem(cc.caBundle),
        },
        where,
        { signal },
      );
    },
  },
  mysql: mysqlCheck('mysql', 'MySQL'),
  mariadb: mysqlCheck('mariadb', 'MariaDB'),
  redis: {
    label: 'Redis',
    probe({ ab, credentials, probes, where, signal }) {
      const ep = databaseEndpoint(ab, DEFAULT_PORTS.redis);
      // KubeDB's Redis Secret often names no user: the `default` one.
      const { username, password } = adminLogin(ab, credentials, 'default');
      const cc = ab.spec.clientConfig;
      const db = /^\d+$/.test(ep.path) ? Number(ep.path) : undefined;
      return probes.redis(
        {
          host: ep.host,
          port: ep.port,
          database: db,
          username,
          password,
          tls: ep.scheme === 'rediss' || !!cc.caBundle,
          insecureSkipTLSVerify: cc.insecureSkipTLSVerify,
          caPem: pem(cc.caBundle),
          serverName: cc.serverName,
        },
        where,
        { signal },
      );
    },
  },
};

const BY_SCHEME = new Map<string, DatabaseKind>([
  ['postgres', 'postgres'],
  ['postgresql', 'postgres'],
  ['mysql', 'mysql'],
  ['mariadb', 'mariadb'],
  ['redis', 'redis'],
  ['rediss', 'redis'],
]);

function isEngineDatabase(e: SecretEngine, ab: AppBinding): EngineDatabase | undefined {
  const db = engineDatabase(e);
  const ref = db?.config.databaseRef;
  const ns = ab.metadata.namespace ?? '';
  return ref && ref.name === ab.metadata.name && (ref.namespace ?? e.metadata?.namespace ?? '') === ns ? db : undefined;
}

/**
 * What an AppBinding points at: a Vault, a kind of database, or something else. `engines`: SecretEngines that may
 * use it (those naming it as their database decide); extra ones are ignored.
 */
export function targetKind(ab: AppBinding, engines: readonly SecretEngine[] = []): TargetKind {
  if (ab.spec.parameters?.kind === VAULT_SERVER_CONFIGURATION_KIND) return 'vault';
  for (const e of engines) {
    const db = isEngineDatabase(e, ab);
    if (db) return db.type;
  }
  return byAddressOrType(ab);
}

/** The kind an AppBinding's URL scheme (or KubeDB's tcp() form) says, else its spec.type. */
function byAddressOrType(ab: AppBinding): TargetKind {
  const cc = ab.spec.clientConfig;
  if (cc.url && /^tcp\(/i.test(cc.url)) return 'mysql';
  const scheme = (cc.url ? cc.url.split(':')[0] : cc.service?.scheme)?.toLowerCase() ?? '';
  const kind = BY_SCHEME.get(scheme);
  if (kind) return kind;
  const type = ab.spec.type?.toLowerCase() ?? '';
  return (['postgres', 'mariadb', 'mysql', 'redis', 'vault'] as const).find((kind) => type.includes(kind)) ?? 'other';
}

export function isDatabase(kind: TargetKind): kind is DatabaseKind {
  return kind !== 'vault' && kind !== 'other';
}

/** "MySQL at db.demo:3306" (never the login), or "MySQL at an invalid address". */
export function describeTarget(kind: DatabaseKind, ab: AppBinding): string {
  try {
    const ep = databaseEndpoint(ab, DEFAULT_PORTS[kind]);
    return `${DATABASE_CHECKS[kind].label} at ${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`;
  } catch {
    return `${DATABASE_CHECKS[kind].label} at an invalid address`;
  }
}
