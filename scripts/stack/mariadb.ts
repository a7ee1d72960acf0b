// MariaDB from the machine's packages (Debian `mariadb-server`): a throwaway server in the stack's directory,
// listening on 127.0.0.1 only, with one password login, `admin`@`%`, allowed everything (WITH GRANT OPTION: Vault
// creates users through it). It speaks the MySQL protocol, so it is the server of the MySQLRole tests as well as
// the MariaDBRole ones. Started only when asked for (startEnv({ databases: ['mariadb'] })).
//
// Like PostgreSQL it is not run as root: as root, every step runs as the `mysql` system user the package created
// (setpriv execs in place, so the pid we hold is mariadbd's own). The admin user is made by a bootstrap run fed on
// stdin, so its password is never written to a file.
import crypto from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { findExecutable, pathDirs } from './binaries.ts';
import { waitFor } from './http.ts';
import { assertRunning } from './kube.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface MariaDBInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The server's version, e.g. `10.11.14-MariaDB-0+deb12u2`. */
  version: string;
  /** mysql://admin:password@127.0.0.1:port/ (password URL-encoded) */
  url: string;
}

export interface MariaDBServer {
  info: MariaDBInfo;
  process: ManagedProcess;
}

const isRoot = process.getuid?.() === 0;

function asMysqlUser(command: string, args: string[]): [string, string[]] {
  return isRoot
    ? ['setpriv', ['--reuid=mysql', '--regid=mysql', '--init-groups', '--', command, ...args]]
    : [command, args];
}

/** mariadbd and mariadb-install-db, found in `dirs`, or an error that names the package to install. */
export function findMariaDB(
  dirs: Array<string | undefined> = [process.env.LEASEHOLD_MARIADB_BIN_DIR, '/usr/sbin', '/usr/bin', ...pathDirs()],
): { server: string; installDb: string } {
  const server = findExecutable(['mariadbd'], dirs);
  const installDb = findExecutable(['mariadb-install-db'], dirs);
  if (!server || !installDb) {
    throw new Error(
      'MariaDB server binaries not found (looked for mariadbd and mariadb-install-db in $LEASEHOLD_MARIADB_BIN_DIR, ' +
        '/usr/sbin, /usr/bin and PATH); the stack was asked for MariaDB. Install them: apt-get install mariadb-server',
    );
  }
  return { server, installDb };
}

/** Small and unsynced: a test server that starts in well under a second and forgets everything on stop. */
const SERVER_OPTIONS = [
  '--skip-name-resolve',
  '--character-set-server=utf8mb4',
  '--collation-server=utf8mb4_general_ci',
  '--innodb-buffer-pool-size=32M',
  '--innodb-log-file-size=8M',
  '--innodb-flush-log-at-trx-commit=0',
  '--performance-schema=OFF',
  '--max-connections=300',
];

export async function startMariaDB(
  dir: string,
  onCreated: (m: MariaDBServer) => void = () => undefined,
): Promise<MariaDBServer> {
  const bins = findMariaDB();
  const myDir = path.join(dir, 'mariadb');
  const dataDir = path.join(myDir, 'data');
  fs.mkdirSync(myDir, { recursive: true, mode: 0o700 });
  if (isRoot) {
    // mkdtemp dirs are 0700 root: the mysql user must be able to reach its own subdirectory.
    fs.chmodSync(dir, 0o711);
    execFileSync('chown', ['mysql:mysql', myDir]);
  }
  // Asynchronous: the other components start meanwhile (a synchronous exec would stall their start-up checks).
  const run = (what: string, command: string, args: string[], input?: string) =>
    new Promise<void>((resolve, reject) => {
      const [cmd, argv] = asMysqlUser(command, args);
      const child = execFile(cmd, argv, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${what} failed: ${stderr || stdout || err.message}`, { cause: err }));
        else resolve();
      });
      child.stdin?.end(input ?? '');
    });
  // --no-defaults first: /etc/mysql/*.cnf (the packaged service's settings) must not apply to this server.
  await run('mariadb-install-db', bins.installDb, [
    '--no-defaults',
    `--datadir=${dataDir}`,
    '--auth-root-authentication-method=socket',
    '--skip-test-db',
    ...SERVER_OPTIONS,
  ]);
  const password = crypto.randomBytes(18).toString('base64url');
  // Grant tables are off in bootstrap mode until FLUSH PRIVILEGES loads them.
  await run(
    'creating the MariaDB admin user',
    bins.server,
    [
      '--no-defaults',
      '--bootstrap',
      `--datadir=${dataDir}`,
      `--log-error=${path.join(myDir, 'bootstrap.log')}`,
      ...SERVER_OPTIONS,
    ],
    `FLUSH PRIVILEGES;\nCREATE USER 'admin'@'%' IDENTIFIED BY '${password}';\nGRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION;\n`,
  );

  const port = await freePort();
  const [cmd, args] = asMysqlUser(bins.server, [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--socket=${path.join(myDir, 'mysqld.sock')}`,
    `--pid-file=${path.join(myDir, 'mariadbd.pid')}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    ...SERVER_OPTIONS,
  ]);
  const logFile = path.join(dir, 'logs', 'mariadb.log');
  const proc = new ManagedProcess({ name: 'mariadb', command: cmd, args, logFile, stopSignal: 'SIGTERM' });
  const info: MariaDBInfo = {
    host: '127.0.0.1',
    port,
    user: 'admin',
    password,
    version: '',
    url: `mysql://admin:${encodeURIComponent(password)}@127.0.0.1:${port}/`,
  };
  const server = { info, process: proc };
  onCreated(server);
  await startMariaDBProcess(server);
  return server;
}

export async function startMariaDBProcess(server: MariaDBServer): Promise<void> {
  server.process.start();
  const { host, port, user, password } = server.info;
  await waitFor(
    'MariaDB to accept a password login',
    async () => {
      assertRunning(server.process);
      const conn = await mysql.createConnection({ host, port, user, password, connectTimeout: 2000 });
      try {
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
        server.info.version = String(rows[0]?.v ?? '');
        return true;
      } finally {
        await conn.end().catch(() => undefined);
      }
    },
    60_000,
    50,
  );
}
