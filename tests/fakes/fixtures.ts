// The guide's objects (manifests/samples) as literals for unit tests: the Vault AppBinding, the database AppBinding
// and its admin Secret, the SecretEngine and the PostgresRole, in namespace `demo`; and the same for KubeVault's
// MySQL, MariaDB and Redis guides (engineFixtures). Each builder takes overrides.
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  APPCATALOG_API_VERSION,
  ENGINE_API_VERSION,
  VAULT_SERVER_CONFIGURATION_API_VERSION,
  VAULT_SERVER_CONFIGURATION_KIND,
  FINALIZER,
  RequestPhase,
  type AppBinding,
  type DatabaseAccessRequest,
  type DatabaseRole,
  type PostgresRole,
  type SecretEngine,
} from '../../api/index.ts';
import {
  APP_BINDINGS,
  DATABASE_ACCESS_REQUESTS,
  MARIADB_ROLES,
  MYSQL_ROLES,
  POSTGRES_ROLES,
  REDIS_ROLES,
  SECRET_ENGINES,
  SECRETS,
} from '../../controllers/shared/resources.ts';
import type { FakeKube } from './fake-kube.ts';

export const NS = 'demo';

type Secret = KubernetesObject & { type?: string; data?: Record<string, string> };

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The Vault AppBinding `demo/vault` (kubernetes auth, as in the guide). */
export function vaultAppBinding(spec: Partial<AppBinding['spec']> = {}): AppBinding {
  return {
    apiVersion: APPCATALOG_API_VERSION,
    kind: 'AppBinding',
    metadata: { name: 'vault', namespace: NS },
    spec: {
      clientConfig: { url: 'https://vault.demo.svc:8200' },
      parameters: {
        apiVersion: VAULT_SERVER_CONFIGURATION_API_VERSION,
        kind: VAULT_SERVER_CONFIGURATION_KIND,
        path: 'kubernetes',
        vaultRole: 'leasehold-operator',
      },
      ...spec,
    } as AppBinding['spec'],
  };
}

/** The database AppBinding `demo/postgres-app`, whose admin login is the Secret `demo/postgres-user-cred`. */
export function postgresAppBinding(): AppBinding {
  return {
    apiVersion: APPCATALOG_API_VERSION,
    kind: 'AppBinding',
    metadata: { name: 'postgres-app', namespace: NS },
    spec: {
      secret: { name: 'postgres-user-cred' },
      clientConfig: {
        service: { name: 'postgres', scheme: 'postgresql', port: 5432, path: 'postgres', query: 'sslmode=disable' },
        insecureSkipTLSVerify: true,
      },
    } as AppBinding['spec'],
  };
}

export function adminSecret(password = 'root'): Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'postgres-user-cred', namespace: NS },
    data: { username: b64('postgres'), password: b64(password) },
  };
}

/** The SecretEngine `demo/postgresql-engine`, mounted at `my-postgres-se`. */
export function secretEngine(spec: Partial<SecretEngine['spec']> = {}, name = 'postgresql-engine'): SecretEngine {
  return {
    apiVersion: ENGINE_API_VERSION,
    kind: 'SecretEngine',
    metadata: { name, namespace: NS },
    spec: {
      vaultRef: { name: 'vault' },
      path: 'my-postgres-se',
      postgres: {
        databaseRef: { name: 'postgres-app', namespace: NS },
        pluginName: 'postgresql-database-plugin',
        allowedRoles: ['*'],
      },
      ...spec,
    } as SecretEngine['spec'],
  };
}

/** The PostgresRole `demo/psql-role` (guide style: vaultRef + path + databaseRef), 1 h default and 24 h max TTL. */
export function postgresRole(spec: Partial<PostgresRole['spec']> = {}, name = 'psql-role'): PostgresRole {
  return {
    apiVersion: ENGINE_API_VERSION,
    kind: 'PostgresRole',
    metadata: { name, namespace: NS },
    spec: {
      vaultRef: { name: 'vault' },
      path: 'my-postgres-se',
      databaseRef: { name: 'postgres-app', namespace: NS },
      creationStatements: [
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
        'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";',
      ],
      defaultTTL: '1h',
      maxTTL: '24h',
      ...spec,
    } as PostgresRole['spec'],
  };
}

/**
 * A request for `role` that holds a lease issued through the Vault AppBinding `demo/vault` (Approved, finalizer held,
 * status.lease and status.issuance recorded): what PostgresRoles, SecretEngines and AppBindings being deleted wait for.
 */
export function requestHoldingLease(
  leaseId: string,
  opts: { role?: string; mount?: string; connection?: string; name?: string } = {},
): DatabaseAccessRequest {
  return {
    apiVersion: ENGINE_API_VERSION,
    kind: 'DatabaseAccessRequest',
    metadata: { name: opts.name ?? 'postgres-cred-rqst', namespace: NS, finalizers: [FINALIZER] },
    spec: {
      roleRef: { kind: 'PostgresRole', name: opts.role ?? 'psql-role' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: NS }],
    },
    status: {
      phase: RequestPhase.Approved,
      lease: { id: leaseId },
      issuance: {
        vaultAppBinding: { name: 'vault' },
        mount: opts.mount ?? 'my-postgres-se',
        connection: opts.connection ?? 'k8s.test.demo.postgres-app',
      },
    },
  } as unknown as DatabaseAccessRequest;
}

/** A condition of an object's status, by type. */
export function conditionOf(
  obj: { status?: object } | undefined,
  type: string,
): { status: string; reason?: string; message?: string } | undefined {
  return (
    (obj?.status ?? {}) as { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> }
  ).conditions?.find((c) => c.type === type);
}

/** Puts the guide's AppBindings and admin Secret into `kube` (as `kubectl apply` would: not counted as requests). */
export function applyGuideBindings(kube: FakeKube): { vault: AppBinding; database: AppBinding } {
  kube.put(SECRETS, adminSecret());
  return { vault: kube.put(APP_BINDINGS, vaultAppBinding()), database: kube.put(APP_BINDINGS, postgresAppBinding()) };
}

/** One of KubeVault's MySQL, MariaDB and Redis guides, as objects: database AppBinding, its admin Secret, SecretEngine, role. */
export interface EngineFixture {
  /** The role kind, as a request's spec.roleRef.kind names it. */
  kind: 'MySQLRole' | 'MariaDBRole' | 'RedisRole';
  /** The SecretEngine field (and `<type>` of its default mount path). */
  type: 'mysql' | 'mariadb' | 'redis';
  appBinding: AppBinding;
  adminSecret: Secret;
  secretEngine: SecretEngine;
  role: DatabaseRole;
  roleResource: typeof MYSQL_ROLES;
}

/** The guide's objects for `kind` in namespace `demo`; the role's name is `<type>-role`, its engine's `<type>-engine`. */
export function engineFixture(
  kind: EngineFixture['kind'],
  roleSpec: Partial<DatabaseRole['spec']> = {},
): EngineFixture {
  const type = kind === 'MySQLRole' ? 'mysql' : kind === 'MariaDBRole' ? 'mariadb' : 'redis';
  const redis = type === 'redis';
  const appBinding: AppBinding = {
    apiVersion: APPCATALOG_API_VERSION,
    kind: 'AppBinding',
    metadata: { name: type, namespace: NS },
    spec: {
      secret: { name: `${type}-admin` },
      clientConfig: redis
        ? { service: { name: 'redis-standalone', scheme: 'redis', port: 6379 } }
        : { url: `tcp(${type}.${NS}.svc:3306)/app` },
    } as AppBinding['spec'],
  };
  const adminSecret: Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${type}-admin`, namespace: NS },
    data: redis ? { password: b64('redis-admin-pw') } : { username: b64('root'), password: b64('r00t:"pw"') },
  };
  const secretEngine: SecretEngine = {
    apiVersion: ENGINE_API_VERSION,
    kind: 'SecretEngine',
    metadata: { name: `${type}-engine`, namespace: NS },
    spec: {
      vaultRef: { name: 'vault' },
      [type]: {
        databaseRef: { name: type, namespace: NS },
        pluginName: redis ? 'redis-database-plugin' : 'mysql-database-plugin',
      },
    } as unknown as SecretEngine['spec'],
  };
  const role: DatabaseRole = {
    apiVersion: ENGINE_API_VERSION,
    kind,
    metadata: { name: `${type}-role`, namespace: NS },
    spec: {
      secretEngineRef: { name: `${type}-engine` },
      creationStatements: redis
        ? ['["~*", "+@read"]']
        : ["CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';", "GRANT SELECT ON app.* TO '{{name}}'@'%';"],
      defaultTTL: '1h',
      maxTTL: '24h',
      ...roleSpec,
    },
  };
  return {
    kind,
    type,
    appBinding,
    adminSecret,
    secretEngine,
    role,
    roleResource: kind === 'MySQLRole' ? MYSQL_ROLES : kind === 'MariaDBRole' ? MARIADB_ROLES : REDIS_ROLES,
  };
}

/** Puts an engine fixture's objects (and the Vault AppBinding) into `kube`, as `kubectl apply` would. */
export function applyEngineFixture(kube: FakeKube, f: EngineFixture): void {
  kube.put(APP_BINDINGS, vaultAppBinding());
  kube.put(SECRETS, f.adminSecret);
  kube.put(APP_BINDINGS, f.appBinding);
  kube.put(SECRET_ENGINES, f.secretEngine);
  kube.put(f.roleResource, f.role);
}

export {
  APP_BINDINGS,
  DATABASE_ACCESS_REQUESTS,
  MARIADB_ROLES,
  MYSQL_ROLES,
  POSTGRES_ROLES,
  REDIS_ROLES,
  SECRET_ENGINES,
  SECRETS,
};
