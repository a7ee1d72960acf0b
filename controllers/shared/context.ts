// What every reconciler gets: clients, caches, the Vault connections and the cluster name.
import type { AppBinding, DatabaseAccessRequest, PostgresRole, SecretEngine } from '../../api/index.ts';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EventRecorder, KubeClient, Logger, WatchCache } from '../../lib/runtime/index.ts';
import type { VaultConnections } from './vault-connections.ts';

export interface Caches {
  appBindings: WatchCache<AppBinding>;
  secretEngines: WatchCache<SecretEngine>;
  postgresRoles: WatchCache<PostgresRole>;
  requests: WatchCache<DatabaseAccessRequest>;
  /** Every Secret, metadata only (no data is cached). */
  secrets: WatchCache<KubernetesObject & { type?: string }>;
  /** The Roles that let a request's subjects read its Secret (labelled managed-by Leasehold). */
  grantRoles: WatchCache<Grant>;
  /** Their RoleBindings (same label). */
  grantBindings: WatchCache<Grant>;
}

/** A Role or RoleBinding as the controllers compare it. */
export type Grant = KubernetesObject & { rules?: unknown; roleRef?: unknown; subjects?: unknown };

export interface ControllerContext {
  kube: KubeClient;
  clusterName: string;
  caches: Caches;
  connections: VaultConnections;
  events(component: string): EventRecorder;
  log: Logger;
}
