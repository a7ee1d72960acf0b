// PostgreSQL 15 from the machine's packages: a throwaway cluster in the stack's directory, scram password
// auth, listening on 127.0.0.1 only. PostgreSQL refuses to run as root, so as root it runs as the `postgres`
// system user (setpriv execs in place, so the pid we hold is the postmaster's own).
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Binaries } from './binaries.ts';
import { waitFor } from './http.ts';
import { assertRunning } from './kube.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface PostgresInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** postgresql://user:password@host:port/database?sslmode=disable */
  url: string;
}

export interface PostgresServer {
  info: PostgresInfo;
  process: ManagedProcess;
}

const isRoot = process.getuid?.() === 0;

function asPostgresUser(command: string, args: string[]): [string, string[]] {
  return isRoot
    ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args]]
    : [command, args];
}

export async function startPostgres(
  dir: string,
  bins: Binaries,
  onCreated: (p: PostgresServer) => void = () => undefined,
): Promise<PostgresServer> {
  const pgDir = path.join(dir, 'postgres');
  const dataDir = path.join(pgDir, 'data');
  fs.mkdirSync(pgDir, { recursive: true, mode: 0o700 });
  if (isRoot) {
    // mkdtemp dirs are 0700 root: the postgres user must be able to reach its own subdirectory.
    fs.chmodSync(dir, 0o711);
    execFileSync('chown', ['postgres:postgres', pgDir]);
  }
  const password = crypto.randomBytes(18).toString('base64url');
  const pwFile = path.join(pgDir, 'pwfile');
  fs.writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (isRoot) execFileSync('chown', ['postgres:postgres', pwFile]);
  const [initCmd, initArgs] = asPostgresUser(path.join(bins.postgresBinDir, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    'admin',
    `--pwfile=${pwFile}`,
    '-A',
    'scram-sha-256',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
  ]);
  try {
    execFileSync(initCmd, initArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new Error(`initdb failed: ${e.stderr?.toString() ?? String(err)}`, { cause: err });
  }
  fs.rmSync(pwFile);

  const port = await freePort();
  const [cmd, args] = asPostgresUser(path.join(bins.postgresBinDir, 'postgres'), [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-k',
    pgDir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'max_connections=300',
    '-c',
    'log_min_messages=warning',
  ]);
  const logFile = path.join(dir, 'logs', 'postgres.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const proc = new ManagedProcess({ name: 'postgres', command: cmd, args, logFile, stopSignal: 'SIGINT' });
  const info: PostgresInfo = {
    host: '127.0.0.1',
    port,
    user: 'admin',
    password,
    database: 'postgres',
    url: `postgresql://admin:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres?sslmode=disable`,
  };
  const server = { info, process: proc };
  onCreated(server);
  await startPostgresProcess(server);
  return server;
}

export async function startPostgresProcess(server: PostgresServer): Promise<void> {
  server.process.start();
  await waitFor(
    'PostgreSQL to accept a password login',
    async () => {
      assertRunning(server.process);
      const client = new pg.Client({ ...server.info, connectionTimeoutMillis: 2000 });
      try {
        await client.connect();
        await client.query('select 1');
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    60_000,
    100,
  );
}
