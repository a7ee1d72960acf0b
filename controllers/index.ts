// The operator's controllers, as the entry point (cmd/operator/main.ts) registers them. This file builds what they
// share (the watch caches and their shared indexes, the Vault connections, the reconcilers' context); each kind's
// setup.ts (controller-runtime's SetupWithManager) adds its own watches, predicates and indexes.
import {
  Labels,
  MANAGED_BY,
  type AccessNotifier,
  type AppBinding,
  type ClusterAccessNotifier,
  type DatabaseAccessRequest,
  type MariaDBRole,
  type MySQLRole,
  type PostgresRole,
  type RedisRole,
  type SecretEngine,
} from '../api/index.ts';
import type { KubernetesObject } from '@kubernetes/client-node';
import { AuditSink, type ObjectKey } from '../lib/runtime/index.ts';
import type { ControllerDeps, ControllerRegistration } from '../lib/runtime/registration.ts';
import { setupAccessNotifierControllers } from './accessnotifier/setup.ts';
import { setupAppBindingController } from './appbinding/setup.ts';
import { setupDatabaseAccessRequestController } from './databaseaccessrequest/setup.ts';
import { setupMariaDBRoleController } from './mariadbrole/setup.ts';
import { setupMySQLRoleController } from './mysqlrole/setup.ts';
import { setupPostgresRoleController } from './postgresrole/setup.ts';
import { setupRedisRoleController } from './redisrole/setup.ts';
import { setupSecretEngineController } from './secretengine/setup.ts';
import type { Caches, ControllerContext, Grant } from './shared/context.ts';
import { Dependencies, addDependencyIndexes } from './shared/dependents.ts';
import {
  ACCESS_NOTIFIERS,
  APP_BINDINGS,
  CLUSTER_ACCESS_NOTIFIERS,
  DATABASE_ACCESS_REQUESTS,
  MARIADB_ROLES,
  MYSQL_ROLES,
  POSTGRES_ROLES,
  REDIS_ROLES,
  ROLE_BINDINGS,
  ROLES,
  NAMESPACES,
  SECRET_ENGINES,
  SECRETS,
} from './shared/resources.ts';
import { secretCacheTransform, type CachedSecret } from './shared/secret-integrity.ts';
import type { SetupContext } from './shared/setup.ts';
import { VaultConnections } from './shared/vault-connections.ts';

export type { ControllerDeps, ControllerRegistration };

/** The operator's settings the controllers use, parsed once by the entry point (cmd/operator/config.ts). */
export interface ControllerSettings {
  /** --cluster-name: recorded in Vault role, mount and credential names. */
  clusterName: string;
  /** --resync-period in ms (0: no resync). */
  resyncPeriodMs: number;
  /** Namespace of the operator's own objects (the Vault issuer-token Secrets). */
  operatorNamespace: string;
  /** The operator's ServiceAccount, for Vault's kubernetes auth when an AppBinding names none; undefined: none. */
  operatorServiceAccount: { namespace: string; name: string } | undefined;
  /** Vault token role the issuer tokens (which own every issued lease) are created from. */
  vaultIssuerTokenRole: string;
  /** Where audit records go; a new AuditSink on stdout when absent. */
  audit?: AuditSink;
}

const OURS = `${Labels.managedBy}=${MANAGED_BY}`;

export function buildControllers(deps: ControllerDeps, settings: ControllerSettings): ControllerRegistration[] {
  const caches: Caches = {
    appBindings: deps.cache<AppBinding>(APP_BINDINGS),
    secretEngines: deps.cache<SecretEngine>(SECRET_ENGINES),
    postgresRoles: deps.cache<PostgresRole>(POSTGRES_ROLES),
    mysqlRoles: deps.cache<MySQLRole>(MYSQL_ROLES),
    mariadbRoles: deps.cache<MariaDBRole>(MARIADB_ROLES),
    redisRoles: deps.cache<RedisRole>(REDIS_ROLES),
    requests: deps.cache<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS),
    // Metadata only: the data of no Secret is ever kept in memory (for credential Secrets, a verdict on it).
    secrets: deps.cache<CachedSecret>(SECRETS, { transform: secretCacheTransform }),
    // Only the Roles and RoleBindings Leasehold made (a label selector), to compare without reading them.
    grantRoles: deps.cache<Grant>(ROLES, { labelSelector: OURS }),
    grantBindings: deps.cache<Grant>(ROLE_BINDINGS, { labelSelector: OURS }),
    accessNotifiers: deps.cache<AccessNotifier>(ACCESS_NOTIFIERS),
    clusterAccessNotifiers: deps.cache<ClusterAccessNotifier>(CLUSTER_ACCESS_NOTIFIERS),
    namespaces: deps.cache<KubernetesObject>(NAMESPACES),
  };
  // Who depends on what: the reverse references several kinds query, kept as cache indexes.
  addDependencyIndexes(caches, settings.clusterName);

  // An issuer token replaced or lost (revoked in Vault, say): its AppBinding says so at once (LeaseOwnership).
  let wakeAppBinding: (key: ObjectKey) => void = () => undefined;
  const connections = new VaultConnections(
    deps.client,
    {
      operatorNamespace: settings.operatorNamespace,
      operatorServiceAccount: settings.operatorServiceAccount,
      issuerTokenRole: settings.vaultIssuerTokenRole,
      tokenAudiences: [],
      onIssuerChanged: (ab) => wakeAppBinding(ab),
    },
    (operation, outcome) => deps.metrics.vaultRequests.labels(operation, outcome).inc(),
    (namespace, name) => caches.secrets.get(namespace, name),
  );
  const recorders = new Map<string, ReturnType<ControllerDeps['eventRecorder']>>();
  const audit = settings.audit ?? new AuditSink();
  const ctx: ControllerContext = {
    kube: deps.client,
    clusterName: settings.clusterName,
    resyncPeriodMs: settings.resyncPeriodMs,
    caches,
    connections,
    log: deps.logger,
    audit,
    events: (component) => {
      let r = recorders.get(component);
      if (!r) recorders.set(component, (r = deps.eventRecorder(component)));
      return r;
    },
  };

  // Deletion order (dependents.ts): an object being deleted waits for what depends on it; their changes wake it.
  const setup: SetupContext = {
    ctx,
    metrics: deps.metrics,
    newController: deps.newController,
    dependencies: new Dependencies(caches, settings.clusterName),
  };
  const appBindings = setupAppBindingController(setup);
  wakeAppBinding = (k) => appBindings.enqueue(k);
  const notifiers = setupAccessNotifierControllers(setup, { audit, operatorNamespace: settings.operatorNamespace });
  return [
    { name: 'appbinding', controller: appBindings },
    { name: 'secretengine', controller: setupSecretEngineController(setup) },
    { name: 'postgresrole', controller: setupPostgresRoleController(setup) },
    { name: 'mysqlrole', controller: setupMySQLRoleController(setup) },
    { name: 'mariadbrole', controller: setupMariaDBRoleController(setup) },
    { name: 'redisrole', controller: setupRedisRoleController(setup) },
    { name: 'databaseaccessrequest', controller: setupDatabaseAccessRequestController(setup) },
    { name: 'accessnotifier', controller: notifiers.namespaced },
    { name: 'clusteraccessnotifier', controller: notifiers.cluster },
  ];
}
