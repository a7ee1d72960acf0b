// The stack's MariaDB (the MySQL and MariaDB kinds' server) and Redis 7: started on request beside PostgreSQL, not
// as root, with an admin login Vault's own plugins can work through; and the AppBinding login probes of
// lib/mysql/probe.ts and lib/redis/probe.ts against them, each failure with its reason.
import anyTest, { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import mysql from 'mysql2/promise';
import { probeMySQL, type MySQLProbeTarget } from '../../lib/mysql/probe.ts';
import { probeRedis, type RedisProbeTarget } from '../../lib/redis/probe.ts';
import { vaultRequest } from '../../scripts/stack/leasehold-setup.ts';
import { freePort } from '../../scripts/stack/ports.ts';
import { useStack, type StackContext } from './helpers/stack.ts';

const test = anyTest as TestFn<StackContext>;
useStack(test, {
  databases: ['mariadb', 'redis'],
  withoutLeaseAudit: 'no operator runs: the leases here are issued and revoked by hand through Vault in each test',
});

const mariadb = (t: { context: StackContext }): MySQLProbeTarget => {
  const m = t.context.env.mariadb;
  return { host: m.host, port: m.port, username: m.user, password: m.password };
};
const redis = (t: { context: StackContext }): RedisProbeTarget => {
  const r = t.context.env.redis;
  return { host: r.host, port: r.port, username: r.user, password: r.password };
};
const MARIADB = 'MariaDB at 127.0.0.1';
const REDIS = 'Redis at 127.0.0.1';

/** The user a process runs as, from /proc. */
function processUser(pid: number): string {
  const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return execFileSync('getent', ['passwd', uid ?? ''], { encoding: 'utf8' }).split(':')[0]!;
}

test('MariaDB and Redis run beside PostgreSQL, not as root, and say which versions they are', (t) => {
  const { env } = t.context;
  t.deepEqual(env.databases, ['mariadb', 'redis']);
  t.regex(env.mariadb.version, /MariaDB/);
  t.regex(env.redis.version, /^[7-9]\.|^\d{2,}\./, 'Redis 7 or later (ACLs)');
  const mariadbUser = processUser(env.pids.mariadb!);
  const redisUser = processUser(env.pids.redis!);
  if (process.getuid?.() === 0) {
    t.is(mariadbUser, 'mysql');
    t.is(redisUser, 'redis');
  } else {
    t.not(mariadbUser, 'root');
    t.not(redisUser, 'root');
  }
});

test('the MySQL probe: the admin login is ok, with or without a database', async (t) => {
  t.deepEqual(await probeMySQL(mariadb(t), MARIADB), { ok: true });
  t.deepEqual(await probeMySQL({ ...mariadb(t), database: 'mysql' }, MARIADB), { ok: true });
});

test('the MySQL probe: a wrong password is AuthenticationFailed, and the message has no password', async (t) => {
  const wrong = `${mariadb(t).password}-not`;
  const outcome = await probeMySQL({ ...mariadb(t), password: wrong }, MARIADB);
  t.deepEqual(outcome, {
    ok: false,
    reason: 'AuthenticationFailed',
    message: `${MARIADB}: the username or password in the AppBinding's Secret was refused`,
  });
});

test('the MySQL probe: a database that does not exist is DatabaseNotFound', async (t) => {
  const outcome = await probeMySQL({ ...mariadb(t), database: 'no_such_database' }, MARIADB);
  t.deepEqual(outcome, {
    ok: false,
    reason: 'DatabaseNotFound',
    message: `${MARIADB}: the database named in the AppBinding's path does not exist`,
  });
});

test('the MySQL probe: a port nothing listens on is Unreachable', async (t) => {
  const outcome = await probeMySQL({ ...mariadb(t), port: await freePort() }, MARIADB);
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${MARIADB}: connection refused` });
});

test('the MySQL probe: TLS asked of a server without it is TLSError', async (t) => {
  const outcome = await probeMySQL({ ...mariadb(t), tls: true }, MARIADB);
  t.deepEqual(outcome, {
    ok: false,
    reason: 'TLSError',
    message: `${MARIADB}: TLS was asked for but the server does not offer it`,
  });
});

test('the Redis probe: the admin login is ok', async (t) => {
  t.deepEqual(await probeRedis(redis(t), REDIS), { ok: true });
});

test('the Redis probe: a wrong password, or no user (ACLs on: default is off), is AuthenticationFailed', async (t) => {
  const refused = {
    ok: false,
    reason: 'AuthenticationFailed',
    message: `${REDIS}: the username or password in the AppBinding's Secret was refused`,
  };
  t.deepEqual(await probeRedis({ ...redis(t), password: `${redis(t).password}-not` }, REDIS), refused);
  t.deepEqual(await probeRedis({ ...redis(t), username: undefined }, REDIS), refused, 'the default user is off');
});

test('the Redis probe: a database number the server does not have is DatabaseNotFound', async (t) => {
  const outcome = await probeRedis({ ...redis(t), database: 999 }, REDIS);
  t.deepEqual(outcome, {
    ok: false,
    reason: 'DatabaseNotFound',
    message: `${REDIS}: the database number in the AppBinding's path does not exist on this server`,
  });
});

test('the Redis probe: a port nothing listens on is Unreachable', async (t) => {
  const outcome = await probeRedis({ ...redis(t), port: await freePort() }, REDIS);
  t.deepEqual(outcome, { ok: false, reason: 'Unreachable', message: `${REDIS}: connection refused` });
});

test("Vault's mysql-database-plugin issues a MariaDB login through the admin, refused once its lease is revoked", async (t) => {
  const { env } = t.context;
  await vaultRequest(env, 'POST', 'sys/mounts/stack-mysql', { type: 'database' });
  await vaultRequest(env, 'POST', 'stack-mysql/config/mariadb', {
    plugin_name: 'mysql-database-plugin',
    allowed_roles: ['reader'],
    connection_url: `{{username}}:{{password}}@tcp(127.0.0.1:${env.mariadb.port})/`,
    username: env.mariadb.user,
    password: env.mariadb.password,
  });
  await vaultRequest(env, 'POST', 'stack-mysql/roles/reader', {
    db_name: 'mariadb',
    default_ttl: '10m',
    max_ttl: '1h',
    creation_statements: [
      `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';`,
      `GRANT SELECT ON mysql.* TO '{{name}}'@'%';`,
    ],
  });
  const creds = (await vaultRequest(env, 'GET', 'stack-mysql/creds/reader')).body as {
    lease_id: string;
    data: { username: string; password: string };
  };
  const login = { ...mariadb(t), username: creds.data.username, password: creds.data.password };
  t.deepEqual(await probeMySQL({ ...login, database: 'mysql' }, MARIADB), { ok: true });
  const conn = await mysql.createConnection({
    host: login.host,
    port: login.port,
    user: login.username,
    password: login.password,
  });
  try {
    await t.throwsAsync(
      () => conn.query('CREATE DATABASE not_allowed'),
      { message: /denied/i },
      'the statements granted SELECT only',
    );
  } finally {
    await conn.end();
  }
  await vaultRequest(env, 'PUT', 'sys/leases/revoke', { lease_id: creds.lease_id });
  t.like(await probeMySQL(login, MARIADB), { ok: false, reason: 'AuthenticationFailed' });
});

test("Vault's redis-database-plugin issues a Redis login through the admin, refused once its lease is revoked", async (t) => {
  const { env } = t.context;
  await vaultRequest(env, 'POST', 'sys/mounts/stack-redis', { type: 'database' });
  await vaultRequest(env, 'POST', 'stack-redis/config/redis', {
    plugin_name: 'redis-database-plugin',
    allowed_roles: ['reader'],
    host: env.redis.host,
    port: env.redis.port,
    username: env.redis.user,
    password: env.redis.password,
  });
  await vaultRequest(env, 'POST', 'stack-redis/roles/reader', {
    db_name: 'redis',
    default_ttl: '10m',
    max_ttl: '1h',
    creation_statements: ['["~*", "+@read", "+ping"]'],
  });
  const creds = (await vaultRequest(env, 'GET', 'stack-redis/creds/reader')).body as {
    lease_id: string;
    data: { username: string; password: string };
  };
  const login = { ...redis(t), username: creds.data.username, password: creds.data.password };
  t.deepEqual(await probeRedis(login, REDIS), { ok: true });
  await vaultRequest(env, 'PUT', 'sys/leases/revoke', { lease_id: creds.lease_id });
  t.like(await probeRedis(login, REDIS), { ok: false, reason: 'AuthenticationFailed' });
});

test('MariaDB and Redis restarted by fault injection come back on the same port with the same admin login', async (t) => {
  const { env } = t.context;
  const ports = [env.mariadb.port, env.redis.port];
  await env.restart('mariadb');
  await env.restart('redis');
  t.deepEqual([env.mariadb.port, env.redis.port], ports);
  t.deepEqual(await probeMySQL(mariadb(t), MARIADB), { ok: true });
  t.deepEqual(await probeRedis(redis(t), REDIS), { ok: true });
  await env.kill('redis');
  t.like(await probeRedis(redis(t), REDIS), { ok: false, reason: 'Unreachable' });
  await env.startComponent('redis');
  t.deepEqual(await probeRedis(redis(t), REDIS), { ok: true });
});
