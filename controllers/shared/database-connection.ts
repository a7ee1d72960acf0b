// The connection a SecretEngine writes into Vault (`<mount>/config/<name>`), per kind of database: PostgreSQL and
// MySQL/MariaDB take a connection_url with Vault's {{username}}/{{password}} placeholders, Redis takes host, port and
// TLS fields. Pure: the admin login comes in (from the AppBinding's Secret) and goes only into the config.
import {
  DEFAULT_MYSQL_PLUGIN,
  DEFAULT_POSTGRES_PLUGIN,
  DEFAULT_REDIS_PLUGIN,
  parseDurationSeconds,
  type AppBinding,
  type EngineDatabase,
} from '../../api/index.ts';
import { TerminalError } from '../../lib/runtime/index.ts';
import type { ConnectionConfig } from '../../lib/vault/client.ts';
import { appBindingUrl, postgresTarget, vaultConnectionUrl } from './appbinding.ts';

/** Default ports, by kind of database. */
export const DEFAULT_PORTS = { postgres: 5432, mysql: 3306, mariadb: 3306, redis: 6379 } as const;

export interface DatabaseEndpoint {
  host: string;
  port: number;
  /** The URL path without its leading slash (a database name, or Redis's logical database number), decoded. */
  path: string;
  /** Query parameters of the URL, by name. */
  params: Record<string, string>;
  /** The URL's scheme without the colon ("mysql", "rediss", …). */
  scheme: string;
}

/**
 * Where a database AppBinding points: clientConfig.url (a URL, or the Go MySQL driver's form `tcp(host:port)/db`
 * that KubeDB writes for MySQL and MariaDB) or clientConfig.service.
 */
export function databaseEndpoint(ab: AppBinding, defaultPort: number): DatabaseEndpoint {
  const url = appBindingUrl(ab);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : defaultPort,
    path: decodeURIComponent(url.pathname.replace(/^\/+/, '')),
    params: Object.fromEntries(url.searchParams),
    scheme: url.protocol.replace(/:$/, ''),
  };
}

/** The admin login in an AppBinding's (transformed) Secret data; `defaultUser` when it may name none. */
export function adminLogin(
  ab: AppBinding,
  credentials: Record<string, string>,
  defaultUser?: string,
): { username: string; password: string } {
  const username = credentials.username ?? defaultUser;
  const password = credentials.password;
  if (!username || password === undefined) {
    throw new TerminalError(
      'InvalidDatabaseSecret',
      `AppBinding ${ab.metadata.namespace}/${ab.metadata.name}: its Secret must hold ` +
        `${defaultUser ? '' : '"username" and '}"password" key${defaultUser ? '' : 's'} (after secretTransforms)`,
    );
  }
  return { username, password };
}

function decodePem(b64: string | undefined): string | undefined {
  if (!b64) return undefined;
  if (b64.includes('-----BEGIN')) return b64;
  const text = Buffer.from(b64, 'base64').toString('utf8');
  return text.includes('-----BEGIN') ? text : undefined;
}

/** The config Vault's plugin for `database` takes: its connection to the database an AppBinding describes. */
export function vaultConnectionConfig(
  database: EngineDatabase,
  db: AppBinding,
  credentials: Record<string, string>,
): ConnectionConfig {
  const common = {
    allowedRoles: database.config.allowedRoles ?? ['*'],
    verifyConnection: true,
  };
  const pool = (c: { maxOpenConnections?: number; maxIdleConnections?: number; maxConnectionLifetime?: string }) => ({
    maxOpenConnections: c.maxOpenConnections,
    maxIdleConnections: c.maxIdleConnections,
    maxConnectionLifetimeSeconds: c.maxConnectionLifetime ? parseDurationSeconds(c.maxConnectionLifetime) : undefined,
  });
  const ca = decodePem(db.spec.clientConfig.caBundle);
  switch (database.type) {
    case 'postgres': {
      const target = postgresTarget(db, credentials);
      return {
        pluginName: database.config.pluginName ?? DEFAULT_POSTGRES_PLUGIN,
        connectionUrl: vaultConnectionUrl(target),
        username: target.username,
        password: target.password,
        ...common,
        ...pool(database.config),
      };
    }
    case 'mysql':
    case 'mariadb': {
      const ep = databaseEndpoint(db, DEFAULT_PORTS[database.type]);
      const { username, password } = adminLogin(db, credentials);
      const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
      // The Go MySQL driver's DSN; its own parameters (tls=…, and the like) carried over from the AppBinding URL.
      const query = new URLSearchParams(ep.params).toString();
      const parameters: Record<string, string> = {};
      if (ca) parameters.tls_ca = ca;
      return {
        pluginName: database.config.pluginName ?? DEFAULT_MYSQL_PLUGIN,
        connectionUrl: `{{username}}:{{password}}@tcp(${host}:${ep.port})/${query ? `?${query}` : ''}`,
        username,
        password,
        ...(Object.keys(parameters).length ? { parameters } : {}),
        ...common,
        ...pool(database.config),
      };
    }
    case 'redis': {
      const ep = databaseEndpoint(db, DEFAULT_PORTS.redis);
      // Redis's admin may be the `default` user, which a KubeDB Secret often leaves unnamed.
      const { username, password } = adminLogin(db, credentials, 'default');
      const tls = ep.scheme === 'rediss' || !!ca;
      const parameters: Record<string, string | number | boolean> = { host: ep.host, port: ep.port, tls };
      if (tls && db.spec.clientConfig.insecureSkipTLSVerify) parameters.insecure_tls = true;
      if (tls && ca) parameters.ca_cert = ca;
      return {
        pluginName: database.config.pluginName ?? DEFAULT_REDIS_PLUGIN,
        username,
        password,
        parameters,
        ...common,
      };
    }
  }
}
