// What `npm run demo -- --engine <name>` changes per database: the guide's samples for that engine, the stack's
// server it runs against, the data the issued login reads, and that login proved with the engine's own client
// (psql's library for PostgreSQL; the `mariadb` and `redis-cli` command-line clients for the others).
import { execFile } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import type { Env, StackDatabase } from './stack/env.ts';
import { SAMPLES_DIR, sampleDocs } from './stack/leasehold-setup.ts';

export type EngineName = 'postgres' | 'mysql' | 'mariadb' | 'redis';
export const ENGINE_NAMES: readonly EngineName[] = ['postgres', 'mysql', 'mariadb', 'redis'];

export interface Login {
  username: string;
  password: string;
}

export interface EngineDemo {
  /** The database's name for people: "PostgreSQL". */
  title: string;
  /** The stack's servers beyond PostgreSQL this engine needs. */
  databases: StackDatabase[];
  /** The guide's sample files (manifests/samples/): database AppBinding (and admin Secret), SecretEngine, role, request. */
  samples: { app: string; engine: string; role: string; request: string };
  appBinding: string;
  secretEngine: string;
  roleKind: string;
  rolePlural: string;
  role: string;
  request: string;
  /** Puts the data the issued login reads into the stack's server; says what it put there (with the version). */
  seed(e: Env): Promise<string>;
  /** The app sample (AppBinding and admin Secret) with its address and login pointed at the stack's server. */
  appManifest(e: Env): string;
  /** Reads as the issued login and tries a write; throws unless the read works and the write is refused. */
  use(e: Env, l: Login): Promise<[line: string, details: string]>;
  /** What the server says to the login now: '' if it was let in. */
  refusal(e: Env, l: Login): Promise<string>;
  /** Shell lines for --keep: log in with `kubectl vault credentials`. */
  keepHelp(e: Env): string;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        resolve({ code: 127, stdout: '', stderr: `${cmd} is not installed` });
      else resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
/** The client's error line (`ERROR 1142 (42000): …`), or else its first line. */
const firstLine = (s: string) => {
  const lines = s.trim().split('\n');
  return lines.find((l) => /^(ERROR|NOPERM|WRONGPASS|AUTH failed|\(error\))/.test(l)) ?? lines[0] ?? '';
};

/** A sample's documents with the AppBinding's clientConfig and the Secret's login replaced. */
function pointed(file: string, clientConfig: object, login: Login): string {
  return sampleDocs(file)
    .map((d) => {
      const doc = d as { kind?: string; spec?: Record<string, unknown>; data?: Record<string, string> };
      if (doc.kind === 'AppBinding') doc.spec = { ...doc.spec, clientConfig };
      if (doc.kind === 'Secret') doc.data = { username: b64(login.username), password: b64(login.password) };
      return YAML.stringify(doc);
    })
    .join('---\n');
}

// ---- PostgreSQL --------------------------------------------------------------------------------------------------

async function pgLogin(e: Env, l: Login, sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({
    host: e.postgres.host,
    port: e.postgres.port,
    database: e.postgres.database,
    user: l.username,
    password: l.password,
    connectionTimeoutMillis: 10_000,
  });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

const postgres: EngineDemo = {
  title: 'PostgreSQL',
  databases: [],
  samples: {
    app: '20-postgres-app.yaml',
    engine: '30-postgres-secret-engine.yaml',
    role: '40-postgres-role.yaml',
    request: '50-postgres-access-request.yaml',
  },
  appBinding: 'postgres-app',
  secretEngine: 'postgresql-engine',
  roleKind: 'PostgresRole',
  rolePlural: 'postgresroles',
  role: 'psql-role',
  request: 'postgres-cred-rqst',
  async seed(e) {
    const admin = new pg.Client({ connectionString: e.postgres.url });
    await admin.connect();
    try {
      const v = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v.split(
        ' ',
      )[0]!;
      // Something for the issued login to read: the guide's role grants SELECT on every table in public.
      await admin.query(
        "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'apple'), (2, 'pear'), (3, 'plum')",
      );
      return `postgresql ${v} with table items`;
    } finally {
      await admin.end();
    }
  },
  // guideManifests() already holds it, pointed at the stack.
  appManifest: () => '',
  async use(e, l) {
    const r = await pgLogin(
      e,
      l,
      "SELECT current_user AS who, count(*)::int AS n, string_agg(name, ', ' ORDER BY id) AS names FROM items",
    );
    const row = r.rows[0] as { who: string; n: number; names: string };
    if (row.who !== l.username) throw new Error(`logged in as ${row.who}, expected ${l.username}`);
    let write = 'unexpectedly allowed';
    try {
      await pgLogin(e, l, "INSERT INTO items VALUES (4, 'fig')");
    } catch (err) {
      write = `refused (${errorText(err)})`;
    }
    if (!write.startsWith('refused')) throw new Error('the read-only login could write to items');
    return [
      `logged into PostgreSQL as ${l.username} (read-only, as the PostgresRole grants):`,
      `SELECT count(*) FROM items   →  ${row.n} (${row.names})\nINSERT INTO items …           →  ${write}`,
    ];
  },
  async refusal(e, l) {
    try {
      await pgLogin(e, l, 'SELECT 1');
      return '';
    } catch (err) {
      return errorText(err);
    }
  },
  keepHelp: (e) => `export PGHOST=${e.postgres.host} PGPORT=${e.postgres.port} PGDATABASE=${e.postgres.database}
  eval "$(kubectl vault credentials databaseaccessrequest postgres-cred-rqst -n demo)" && psql -c 'SELECT current_user, * FROM items'`,
};

// ---- MySQL and MariaDB (the stack's MariaDB serves both) ----------------------------------------------------------

function mariadbCli(e: Env, l: Login, sql: string): Promise<Run> {
  return run(
    'mariadb',
    ['-h', e.mariadb.host, '-P', String(e.mariadb.port), '-u', l.username, '--batch', '--skip-column-names', '-e', sql],
    { MYSQL_PWD: l.password },
  );
}

function mysqlLike(kind: 'mysql' | 'mariadb'): EngineDemo {
  const title = kind === 'mysql' ? 'MySQL' : 'MariaDB';
  const n = kind === 'mysql' ? 1 : 2;
  const role = `${kind}-role`;
  const request = `${kind}-cred-rqst`;
  const roleKind = kind === 'mysql' ? 'MySQLRole' : 'MariaDBRole';
  return {
    title,
    databases: ['mariadb'],
    samples: {
      app: `2${n}-${kind}-app.yaml`,
      engine: `3${n}-${kind}-secret-engine.yaml`,
      role: `4${n}-${kind}-role.yaml`,
      request: `5${n}-${kind}-access-request.yaml`,
    },
    appBinding: `${kind}-app`,
    secretEngine: `${kind}-engine`,
    roleKind,
    rolePlural: `${kind}roles`,
    role,
    request,
    async seed(e) {
      const admin = { username: e.mariadb.user, password: e.mariadb.password };
      const r = await mariadbCli(
        e,
        admin,
        "CREATE DATABASE app; CREATE TABLE app.items (id int PRIMARY KEY, name text); INSERT INTO app.items VALUES (1, 'apple'), (2, 'pear'), (3, 'plum');",
      );
      if (r.code !== 0) throw new Error(`mariadb: ${r.stderr.trim()}`);
      return `mariadb ${e.mariadb.version.split('-')[0]} (serving ${title}) with table app.items`;
    },
    appManifest: (e) =>
      pointed(
        `2${n}-${kind}-app.yaml`,
        { url: `tcp(${e.mariadb.host}:${e.mariadb.port})/` },
        { username: e.mariadb.user, password: e.mariadb.password },
      ),
    async use(e, l) {
      const read = await mariadbCli(
        e,
        l,
        "SELECT CURRENT_USER(), count(*), group_concat(name ORDER BY id SEPARATOR ', ') FROM app.items",
      );
      if (read.code !== 0) throw new Error(`mariadb as ${l.username}: ${read.stderr.trim()}`);
      const [who, count, names] = read.stdout.trim().split('\t');
      if (!who?.startsWith(`${l.username}@`)) throw new Error(`logged in as ${who}, expected ${l.username}`);
      const write = await mariadbCli(e, l, "INSERT INTO app.items VALUES (4, 'fig')");
      if (write.code === 0) throw new Error('the read-only login could write to app.items');
      return [
        `logged into ${title} with the mariadb client as ${l.username} (read-only, as the ${roleKind} grants):`,
        `$ MYSQL_PWD=… mariadb -u ${l.username} -e 'SELECT count(*) FROM app.items'  →  ${count} (${names})\n` +
          `$ MYSQL_PWD=… mariadb -u ${l.username} -e 'INSERT INTO app.items …'          →  refused (${firstLine(write.stderr)})`,
      ];
    },
    async refusal(e, l) {
      const r = await mariadbCli(e, l, 'SELECT 1');
      return r.code === 0 ? '' : firstLine(r.stderr);
    },
    keepHelp: () =>
      `eval "$(kubectl vault credentials databaseaccessrequest ${request} -n demo)" && mariadb -e 'SELECT CURRENT_USER(), count(*) FROM app.items'`,
  };
}

// ---- Redis -------------------------------------------------------------------------------------------------------

function redisCli(e: Env, l: Login, ...command: string[]): Promise<Run> {
  return run(
    'redis-cli',
    ['-h', e.redis.host, '-p', String(e.redis.port), '--user', l.username, '--no-auth-warning', ...command],
    { REDISCLI_AUTH: l.password },
  );
}

/** redis-cli's answer, error replies included (it may exit 0 on them). */
const answer = (r: Run) => (r.stdout + r.stderr).trim();
const isError = (r: Run) => r.code !== 0 || /^(ERR|NOPERM|WRONGPASS|NOAUTH)\b/m.test(answer(r));

const redis: EngineDemo = {
  title: 'Redis',
  databases: ['redis'],
  samples: {
    app: '23-redis-app.yaml',
    engine: '33-redis-secret-engine.yaml',
    role: '43-redis-role.yaml',
    request: '53-redis-access-request.yaml',
  },
  appBinding: 'redis-standalone',
  secretEngine: 'redis-secret-engine',
  roleKind: 'RedisRole',
  rolePlural: 'redisroles',
  role: 'read-only-role',
  request: 'redis-cred-rqst',
  async seed(e) {
    const r = await redisCli(
      e,
      { username: e.redis.user, password: e.redis.password },
      'RPUSH',
      'items',
      'apple',
      'pear',
      'plum',
    );
    if (isError(r)) throw new Error(`redis-cli: ${answer(r)}`);
    return `redis ${e.redis.version} with list items`;
  },
  appManifest: (e) =>
    pointed(
      '23-redis-app.yaml',
      { url: `redis://${e.redis.host}:${e.redis.port}` },
      { username: e.redis.user, password: e.redis.password },
    ),
  async use(e, l) {
    const read = await redisCli(e, l, 'LRANGE', 'items', '0', '-1');
    if (isError(read)) throw new Error(`redis-cli as ${l.username}: ${answer(read)}`);
    const write = await redisCli(e, l, 'RPUSH', 'items', 'fig');
    if (!isError(write)) throw new Error('the read-only login could write to items');
    return [
      `logged into Redis with redis-cli as ${l.username} (read-only, as the RedisRole's ACL rules allow):`,
      `$ REDISCLI_AUTH=… redis-cli --user ${l.username} LRANGE items 0 -1   →  ${read.stdout.trim().split('\n').join(', ')}\n` +
        `$ REDISCLI_AUTH=… redis-cli --user ${l.username} RPUSH items fig     →  refused (${firstLine(answer(write))})`,
    ];
  },
  async refusal(e, l) {
    const r = await redisCli(e, l, 'PING');
    return isError(r) ? firstLine(answer(r)) : '';
  },
  keepHelp: () =>
    'eval "$(kubectl vault credentials databaseaccessrequest redis-cred-rqst -n demo)" && redis-cli --user "$REDIS_USER" LRANGE items 0 -1',
};

export const ENGINE_DEMOS: Record<EngineName, EngineDemo> = {
  postgres,
  mysql: mysqlLike('mysql'),
  mariadb: mysqlLike('mariadb'),
  redis,
};

export const samplePath = (file: string): string => path.join(SAMPLES_DIR, file);
