// What every reconciler gets: clients, caches, the Vault connections and the cluster name.
import type {
  AccessNotifier,
  AppBinding,
  ClusterAccessNotifier,
  DatabaseAccessRequest,
  EventReason,
  MariaDBRole,
  MySQLRole,
  PostgresRole,
  RedisRole,
  SecretEngine,
} from '../../api/index.ts';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { AuditRecorder, EventRecorder, KubeClient, Logger, WatchCache } from '../../lib/runtime/index.ts';
import type { CachedSecret } from './secret-integrity.ts';
import type { VaultConnections } from './vault-connections.ts';

export interface Caches {
  appBindings: WatchCache<AppBinding>;
  secretEngines: WatchCache<SecretEngine>;
  postgresRoles: WatchCache<PostgresRole>;
  mysqlRoles: WatchCache<MySQLRole>;
  mariadbRoles: WatchCache<MariaDBRole>;
  redisRoles: WatchCache<RedisRole>;
  requests: WatchCache<DatabaseAccessRequest>;
  /** Every Secret, metadata only (no data is cached; for credential Secrets, the verdict on their data). */
  secrets: WatchCache<CachedSecret>;
  /** The Roles that let a request's subjects read its Secret (labelled managed-by Leasehold). */
  grantRoles: WatchCache<Grant>;
  /** Their RoleBindings (same label). */
  grantBindings: WatchCache<Grant>;
  accessNotifiers: WatchCache<AccessNotifier>;
  clusterAccessNotifiers: WatchCache<ClusterAccessNotifier>;
  /** Namespaces, for a ClusterAccessNotifier's namespaceSelector (labels are all that is read). */
  namespaces: WatchCache<KubernetesObject>;
}

/** A Role or RoleBinding as the controllers compare it. */
export type Grant = KubernetesObject & { rules?: unknown; roleRef?: unknown; subjects?: unknown };

export interface ControllerContext {
  kube: KubeClient;
  clusterName: string;
  /** --resync-period in ms (0: no resync): how often a recorded lease is looked up in Vault at most. */
  resyncPeriodMs: number;
  caches: Caches;
  connections: VaultConnections;
  /** The Events recorder of `component` (e.g. leasehold-secretengine): reasons from api/vocabulary.ts only. */
  events(component: string): EventRecorder<EventReason>;
  log: Logger;
  /** The audit stream (lib/runtime/audit.ts): one record per decision, issuance, rotation, revocation, expiry. */
  audit: AuditRecorder;
}
