// The local stack: a real Kubernetes control plane, a real Vault/OpenBao and a real PostgreSQL on 127.0.0.1,
// inside one temporary directory, and on request MariaDB (it serves MySQL's protocol too) and Redis 7 beside them.
// Used by the integration tests, the demo and the benchmarks.
//
//   const env = await startEnv({ databases: ['mariadb', 'redis'] });  …  env.mariadb.url  …  await env.stop();
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveBinaries, type Binaries } from './binaries.ts';
import {
  startApiserver,
  startControlPlane,
  startControllerManager,
  startEtcd,
  TEST_USERS,
  type KubeControlPlane,
  type TestUser,
} from './kube.ts';
import { findMariaDB, startMariaDB, startMariaDBProcess, type MariaDBInfo, type MariaDBServer } from './mariadb.ts';
import { createPki } from './pki.ts';
import { startPostgres, startPostgresProcess, type PostgresInfo, type PostgresServer } from './postgres.ts';
import { registerTempDir, unregisterTempDir, type ManagedProcess } from './process.ts';
import { findRedis, startRedis, startRedisProcess, type RedisInfo, type RedisServer } from './redis.ts';
import { restartVaultProcess, startVault, vaultApi, type VaultServer } from './vault.ts';

/** Components that fault-injection tests can stop and start again with their state kept. `openbao` and
 * `vault` name the same component: whichever server the stack runs. */
export type Component =
  'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'openbao' | 'vault' | 'postgres' | StackDatabase;

/** The databases the stack starts only when asked (PostgreSQL always runs). `mariadb` serves the MySQL tests too. */
export type StackDatabase = 'mariadb' | 'redis';
export const STACK_DATABASES: readonly StackDatabase[] = ['mariadb', 'redis'];

/** Everything a client needs to reach the stack; serialisable (written by `npm run env:up -- --json-out`). */
export interface EnvInfo {
  dir: string;
  kubernetes: {
    server: string;
    /** etcd's client URL (plain HTTP, no auth): tests use its gRPC gateway, e.g. to compact and force 410 Gone. */
    etcdEndpoint: string;
    caFile: string;
    /** Admin (system:masters) kubeconfig file. */
    kubeconfig: string;
    /** The kubectl binary to drive (the machine's, or one the stack built). */
    kubectl: string;
    /** Non-admin users, authenticated by static tokens, with no permissions until a test grants some. */
    users: Record<TestUser, { kubeconfig: string; token: string }>;
  };
  vault: {
    addr: string;
    flavor: 'openbao' | 'vault';
    rootToken: string;
    caCert: string;
    caFile: string;
    /** Mount path of the kubernetes auth method configured against this kube-apiserver. */
    kubernetesAuthPath: string;
  };
  postgres: PostgresInfo;
  /** The databases started beside PostgreSQL (StartEnvOptions.databases). */
  databases: StackDatabase[];
  /** Present when `databases` has 'mariadb': user admin, allowed everything with grant option; no database made. */
  mariadb?: MariaDBInfo;
  /** Present when `databases` has 'redis': ACLs on, `default` user off, user admin allowed everything. */
  redis?: RedisInfo;
  pids: Record<string, number | undefined>;
}

export interface Env extends EnvInfo {
  /** The MariaDB server; reading it on a stack started without 'mariadb' throws, saying how to ask for it. */
  mariadb: MariaDBInfo;
  /** The Redis server; reading it on a stack started without 'redis' throws, saying how to ask for it. */
  redis: RedisInfo;
  /** A ready client configuration for the admin user. */
  kubeConfig: KubeConfig;
  /** The first non-admin user's kubeconfig file (alice). */
  nonAdminKubeconfig: string;
  kubeConfigFor(user: TestUser): KubeConfig;
  /** Crash-stops a component (SIGKILL: no clean shutdown), keeping its data and port. */
  kill(component: Component): Promise<void>;
  /** Cleanly stops a component, keeping its data and port. */
  stopComponent(component: Component): Promise<void>;
  startComponent(component: Component): Promise<void>;
  /** stopComponent + startComponent; Vault/OpenBao comes back unsealed. */
  restart(component: Component): Promise<void>;
  /** Stops every process and deletes the temporary directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartEnvOptions {
  log?: (line: string) => void;
  /** Keep the temporary directory after stop() (for post-mortems). */
  keepDir?: boolean;
  /** Databases to start beside PostgreSQL; none by default. A missing server binary fails the start, naming its package. */
  databases?: readonly StackDatabase[];
}

interface StartedDatabases {
  mariadb?: MariaDBServer;
  redis?: RedisServer;
}

export async function startEnv(opts: StartEnvOptions = {}): Promise<Env> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`[stack] ${l}\n`));
  const startedAtMs = Date.now();
  const databases = [...new Set(opts.databases ?? [])];
  for (const d of databases)
    if (!STACK_DATABASES.includes(d))
      throw new Error(`startEnv: unknown database ${String(d)} (known: ${STACK_DATABASES.join(', ')})`);
  // Before anything starts: a missing server fails at once, naming its Debian package.
  if (databases.includes('mariadb')) findMariaDB();
  if (databases.includes('redis')) findRedis();
  const bins = await resolveBinaries(log);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-stack-'));
  registerTempDir(dir);
  // Components start in parallel; if one fails, whatever the others already started must still be stopped.
  const started: { plane?: KubeControlPlane; vault?: VaultServer; postgres?: PostgresServer } & StartedDatabases = {};
  const stopAll = async () => {
    await Promise.all([
      started.vault?.process.stop(),
      started.postgres?.process.stop(),
      started.plane?.controllerManager.stop(),
      started.mariadb?.process.stop(),
      started.redis?.process.stop(),
    ]);
    await started.plane?.apiserver.stop();
    await started.plane?.etcd.stop();
  };
  try {
    const pki = createPki(path.join(dir, 'pki'));
    const results = await Promise.allSettled([
      startControlPlane(dir, bins, pki, (p) => (started.plane = p)),
      startVault(dir, bins, pki, (v) => (started.vault = v)),
      startPostgres(dir, bins, (p) => (started.postgres = p)),
      ...databases.map((d) =>
        timed(d, log, () =>
          d === 'mariadb'
            ? startMariaDB(dir, (m) => (started.mariadb = m))
            : startRedis(dir, (r) => (started.redis = r)),
        ),
      ),
    ]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw failed[0]!.reason;
    const plane = started.plane!;
    const vault = started.vault!;
    const postgres = started.postgres!;
    const kubeConfig = loadKubeConfig(plane.admin.kubeconfig);
    await configureKubernetesAuth(kubeConfig, vault, plane.server, fs.readFileSync(pki.caCert, 'utf8'));
    const env = makeEnv(
      dir,
      bins,
      plane,
      vault,
      postgres,
      { mariadb: started.mariadb, redis: started.redis },
      databases,
      pki.caCert,
      kubeConfig,
      stopAll,
      opts,
    );
    log(`stack ready in ${((Date.now() - startedAtMs) / 1000).toFixed(1)}s (${bins.vaultFlavor}, ${dir})`);
    return env;
  } catch (err) {
    await stopAll().catch(() => undefined);
    if (!opts.keepDir) {
      fs.rmSync(dir, { recursive: true, force: true });
      unregisterTempDir(dir);
    }
    throw err;
  }
}

/** Logs how long a database took to start (they start in parallel with the rest: this is their own time). */
async function timed<T>(name: string, log: (line: string) => void, start: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const v = await start();
  log(`${name} ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  return v;
}

function loadKubeConfig(file: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/** Enables the kubernetes auth method with a token-reviewer service account bound to system:auth-delegator. */
async function configureKubernetesAuth(kc: KubeConfig, vault: VaultServer, server: string, ca: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const namespace = 'vault-system';
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'vault-token-reviewer' } } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: 'vault-token-reviewer' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'vault-token-reviewer', namespace }],
    },
  });
  const tr = await core.createNamespacedServiceAccountToken({
    name: 'vault-token-reviewer',
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 30 * 24 * 3600 } },
  });
  await vaultApi(vault, 'POST', 'sys/auth/kubernetes', { type: 'kubernetes' });
  await vaultApi(vault, 'POST', 'auth/kubernetes/config', {
    kubernetes_host: server,
    kubernetes_ca_cert: ca,
    token_reviewer_jwt: tr.status!.token,
    disable_local_ca_jwt: true,
  });
}

function makeEnv(
  dir: string,
  bins: Binaries,
  plane: KubeControlPlane,
  vault: VaultServer,
  postgres: PostgresServer,
  dbs: StartedDatabases,
  databases: StackDatabase[],
  caFile: string,
  kubeConfig: KubeConfig,
  stopAll: () => Promise<void>,
  opts: StartEnvOptions,
): Env {
  const ca = fs.readFileSync(caFile, 'utf8');
  const db = <K extends StackDatabase>(name: K): NonNullable<StartedDatabases[K]> => {
    const server = dbs[name];
    if (!server)
      throw new Error(
        `this stack was started without ${name}: ask for it with startEnv({ databases: ['${name}'] }) (tests: useStack(test, { databases: ['${name}'] }))`,
      );
    return server as NonNullable<StartedDatabases[K]>;
  };
  const processOf = (c: Component): ManagedProcess => {
    switch (c) {
      case 'etcd':
        return plane.etcd;
      case 'kube-apiserver':
        return plane.apiserver;
      case 'kube-controller-manager':
        return plane.controllerManager;
      case 'openbao':
      case 'vault':
        return vault.process;
      case 'postgres':
        return postgres.process;
      case 'mariadb':
      case 'redis':
        return db(c).process;
    }
  };
  const startComponent = async (c: Component) => {
    switch (c) {
      case 'etcd':
        return startEtcd(plane);
      case 'kube-apiserver':
        return startApiserver(plane, ca);
      case 'kube-controller-manager':
        return startControllerManager(plane);
      case 'openbao':
      case 'vault':
        return restartVaultProcess(vault);
      case 'postgres':
        return startPostgresProcess(postgres);
      case 'mariadb':
        return startMariaDBProcess(db('mariadb'));
      case 'redis':
        return startRedisProcess(db('redis'));
    }
  };
  let stopped = false;
  const users = Object.fromEntries(
    TEST_USERS.map((u) => [u, { kubeconfig: plane.users[u].kubeconfig, token: plane.users[u].token }]),
  ) as EnvInfo['kubernetes']['users'];
  const env: Env = {
    dir,
    kubernetes: {
      server: plane.server,
      etcdEndpoint: plane.etcdEndpoint,
      caFile,
      kubeconfig: plane.admin.kubeconfig,
      kubectl: bins.kubectl,
      users,
    },
    vault: {
      addr: vault.addr,
      flavor: bins.vaultFlavor,
      rootToken: vault.rootToken,
      caCert: vault.caCert,
      caFile,
      kubernetesAuthPath: 'kubernetes',
    },
    postgres: postgres.info,
    databases,
    get mariadb() {
      return db('mariadb').info;
    },
    get redis() {
      return db('redis').info;
    },
    get pids() {
      return {
        etcd: plane.etcd.pid,
        'kube-apiserver': plane.apiserver.pid,
        'kube-controller-manager': plane.controllerManager.pid,
        [bins.vaultFlavor]: vault.process.pid,
        postgres: postgres.process.pid,
        ...Object.fromEntries(databases.map((d) => [d, db(d).process.pid])),
      };
    },
    kubeConfig,
    nonAdminKubeconfig: users.alice.kubeconfig,
    kubeConfigFor: (user) => loadKubeConfig(users[user].kubeconfig),
    kill: async (c) => processOf(c).kill(),
    stopComponent: async (c) => processOf(c).stop(),
    startComponent,
    restart: async (c) => {
      await processOf(c).stop();
      await startComponent(c);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopAll();
      if (!opts.keepDir) fs.rmSync(dir, { recursive: true, force: true });
      unregisterTempDir(dir);
    },
  };
  return env;
}

/** The serialisable part of an Env. */
export function envInfo(env: Env): EnvInfo {
  return {
    dir: env.dir,
    kubernetes: env.kubernetes,
    vault: env.vault,
    postgres: env.postgres,
    databases: env.databases,
    ...(env.databases.includes('mariadb') ? { mariadb: env.mariadb } : {}),
    ...(env.databases.includes('redis') ? { redis: env.redis } : {}),
    pids: env.pids,
  };
}
