// Redis 7 from the machine's packages (Debian `redis-server`): a throwaway server in the stack's directory,
// listening on 127.0.0.1 only, with ACLs on: the `default` user is off (a client that doesn't log in is refused)
// and one user, `admin`, may do everything, ACL SETUSER/DELUSER included (Vault creates users through it).
// Nothing is persisted. Started only when asked for (startEnv({ databases: ['redis'] })).
//
// Not run as root: as root it runs as the `redis` system user the package created (setpriv execs in place, so
// the pid we hold is redis-server's own). The ACL file holds the password's SHA-256, never the password.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createClient } from '@redis/client';
import { findExecutable, pathDirs } from './binaries.ts';
import { waitFor } from './http.ts';
import { assertRunning } from './kube.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface RedisInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The server's version, e.g. `7.0.15`. */
  version: string;
  /** redis://admin:password@127.0.0.1:port (password URL-encoded) */
  url: string;
}

export interface RedisServer {
  info: RedisInfo;
  process: ManagedProcess;
}

const isRoot = process.getuid?.() === 0;

/** redis-server (version 7 or later), found in `dirs`, or an error that names the package to install. */
export function findRedis(
  dirs: Array<string | undefined> = [process.env.LEASEHOLD_REDIS_BIN_DIR, '/usr/bin', '/usr/local/bin', ...pathDirs()],
): { server: string; version: string } {
  const server = findExecutable(['redis-server'], dirs);
  if (!server) {
    throw new Error(
      'redis-server not found (looked in $LEASEHOLD_REDIS_BIN_DIR, /usr/bin, /usr/local/bin and PATH); the stack was asked for Redis. ' +
        'Install it: apt-get install redis-server',
    );
  }
  const out = execFileSync(server, ['--version'], { encoding: 'utf8' });
  const version = /v=(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? '';
  if (Number(version.split('.')[0]) < 7) {
    throw new Error(
      `${server} is Redis ${version || `of an unknown version (${out.trim()})`}; the stack needs Redis 7 or later (ACLs). Install it: apt-get install redis-server`,
    );
  }
  return { server, version };
}

export async function startRedis(
  dir: string,
  onCreated: (r: RedisServer) => void = () => undefined,
): Promise<RedisServer> {
  const bin = findRedis();
  const redisDir = path.join(dir, 'redis');
  fs.mkdirSync(redisDir, { recursive: true, mode: 0o700 });
  const password = crypto.randomBytes(18).toString('base64url');
  const aclFile = path.join(redisDir, 'users.acl');
  const hash = crypto.createHash('sha256').update(password).digest('hex');
  fs.writeFileSync(aclFile, `user default off\nuser admin on #${hash} ~* &* +@all\n`, { mode: 0o600 });
  if (isRoot) {
    // mkdtemp dirs are 0700 root: the redis user must be able to reach its own subdirectory.
    fs.chmodSync(dir, 0o711);
    execFileSync('chown', ['-R', 'redis:redis', redisDir]);
  }
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    redisDir,
    '--aclfile',
    aclFile,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];
  const [cmd, argv] = isRoot
    ? ['setpriv', ['--reuid=redis', '--regid=redis', '--init-groups', '--', bin.server, ...args]]
    : [bin.server, args];
  const logFile = path.join(dir, 'logs', 'redis.log');
  const proc = new ManagedProcess({ name: 'redis', command: cmd, args: argv, logFile, stopSignal: 'SIGTERM' });
  const info: RedisInfo = {
    host: '127.0.0.1',
    port,
    user: 'admin',
    password,
    version: bin.version,
    url: `redis://admin:${encodeURIComponent(password)}@127.0.0.1:${port}`,
  };
  const server = { info, process: proc };
  onCreated(server);
  await startRedisProcess(server);
  return server;
}

export async function startRedisProcess(server: RedisServer): Promise<void> {
  server.process.start();
  const { host, port, user, password } = server.info;
  await waitFor(
    'Redis to accept the admin login',
    async () => {
      assertRunning(server.process);
      const client = createClient({
        username: user,
        password,
        socket: { host, port, connectTimeout: 2000, reconnectStrategy: false },
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        if (client.isOpen) client.destroy();
      }
    },
    60_000,
    50,
  );
}
