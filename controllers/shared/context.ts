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
}

export interface ControllerContext {
  kube: KubeClient;
  clusterName: string;
  caches: Caches;
  connections: VaultConnections;
  events(component: string): EventRecorder;
  log: Logger;
}
