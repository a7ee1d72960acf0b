// The three shapes `kubectl vault credentials` prints a credential Secret in, per database (the request's role kind):
//   env  - shell assignments with the client's variable names: libpq's for PostgreSQL (eval … && psql), MYSQL_PWD
//          and friends for MySQL and MariaDB (… && mysql -u "$MYSQL_USER"), REDISCLI_AUTH for Redis (… && redis-cli
//          --user "$REDIS_USER"); DATABASE_URL (REDIS_URL for Redis) when the Secret has a uri
//   json - every key of the Secret, decoded
//   uri  - a connection URI (the Secret's `uri` key, else built from its parts: postgresql://, mysql://, redis://)
import type { V1Secret } from '@kubernetes/client-node';
import { CommandError } from './errors.ts';
import type { OutputFormat } from './args.ts';

/** The Secret's keys, decoded from base64 (stringData never comes back from the API server). */
export function decodeSecret(secret: V1Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(secret.data ?? {}).sort())
    out[key] = Buffer.from(secret.data![key]!, 'base64').toString('utf8');
  return out;
}

type EnvNames = ReadonlyArray<readonly [key: string, variable: string]>;

/** The database a credential is for, by the kind of role the request names. */
export type Engine = 'postgres' | 'mysql' | 'redis';

export function engineOfRoleKind(kind: string | undefined): Engine {
  return kind === 'MySQLRole' || kind === 'MariaDBRole' ? 'mysql' : kind === 'RedisRole' ? 'redis' : 'postgres';
}

/** Secret key → libpq environment variable. Keys not listed are left out of the env form. */
export const ENV_NAMES: EnvNames = [
  ['host', 'PGHOST'],
  ['port', 'PGPORT'],
  ['dbname', 'PGDATABASE'],
  ['database', 'PGDATABASE'],
  ['username', 'PGUSER'],
  ['password', 'PGPASSWORD'],
  ['sslmode', 'PGSSLMODE'],
  ['uri', 'DATABASE_URL'],
];

/**
 * Secret key → variable for the mysql and mariadb clients: they read MYSQL_HOST, MYSQL_TCP_PORT and MYSQL_PWD
 * themselves; the user and database go on the command line (mysql -u "$MYSQL_USER" "$MYSQL_DATABASE"), under the
 * names the MySQL and MariaDB container images use.
 */
export const MYSQL_ENV_NAMES: EnvNames = [
  ['host', 'MYSQL_HOST'],
  ['port', 'MYSQL_TCP_PORT'],
  ['dbname', 'MYSQL_DATABASE'],
  ['database', 'MYSQL_DATABASE'],
  ['username', 'MYSQL_USER'],
  ['password', 'MYSQL_PWD'],
  ['uri', 'DATABASE_URL'],
];

/** Secret key → variable for redis-cli: it reads REDISCLI_AUTH itself; redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --user "$REDIS_USER". */
export const REDIS_ENV_NAMES: EnvNames = [
  ['host', 'REDIS_HOST'],
  ['port', 'REDIS_PORT'],
  ['database', 'REDIS_DB'],
  ['username', 'REDIS_USER'],
  ['password', 'REDISCLI_AUTH'],
  ['uri', 'REDIS_URL'],
];

const ENV_BY_ENGINE: Record<Engine, EnvNames> = { postgres: ENV_NAMES, mysql: MYSQL_ENV_NAMES, redis: REDIS_ENV_NAMES };

/** POSIX shell quoting: bare when safe, else single quotes. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function envForm(data: Record<string, string>, engine: Engine = 'postgres'): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const [key, variable] of ENV_BY_ENGINE[engine]) {
    const value = data[key];
    if (value === undefined || seen.has(variable)) continue;
    seen.add(variable);
    lines.push(`export ${variable}=${shellQuote(value)}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

export function jsonForm(data: Record<string, string>): string {
  return `${JSON.stringify(data, null, 2)}\n`;
}

export function uriForm(data: Record<string, string>, engine: Engine = 'postgres'): string {
  if (data.uri) return `${data.uri}\n`;
  const { username, password, host } = data;
  if (!username) throw new CommandError('the credential Secret has no username, so no URI can be built');
  if (!host) {
    throw new CommandError(
      'the credential Secret names no host (nor a uri), so no URI can be built: use -o env or -o json, ' +
        "or have the role's secretTemplate add host (or uri)",
    );
  }
  const auth = encodeURIComponent(username) + (password !== undefined ? `:${encodeURIComponent(password)}` : '');
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const port = data.port ? `:${data.port}` : '';
  const db = data.dbname ?? data.database;
  const query = engine === 'postgres' && data.sslmode ? `?sslmode=${encodeURIComponent(data.sslmode)}` : '';
  const scheme = engine === 'postgres' ? 'postgresql' : engine;
  return `${scheme}://${auth}@${hostPart}${port}/${db ? encodeURIComponent(db) : ''}${query}\n`;
}

/** The Secret in `format`, for a credential of `engine` (engineOfRoleKind of the request's spec.roleRef.kind). */
export function formatCredentials(
  data: Record<string, string>,
  format: OutputFormat,
  engine: Engine = 'postgres',
): string {
  if (Object.keys(data).length === 0) throw new CommandError('the credential Secret is empty');
  switch (format) {
    case 'env': {
      const text = envForm(data, engine);
      if (!text)
        throw new CommandError(
          `the credential Secret has none of the keys ${[...new Set(ENV_BY_ENGINE[engine].map(([k]) => k))].join(', ')}: use -o json`,
        );
      return text;
    }
    case 'json':
      return jsonForm(data);
    case 'uri':
      return uriForm(data, engine);
  }
}
