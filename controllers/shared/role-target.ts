// Where a PostgresRole lives in Vault: which Vault (AppBinding), which mount, which connection. Both the
// PostgresRole controller (to write the role) and the DatabaseAccessRequest controller (to issue from it) need
// this, from the caches only.
import { DEFAULT_ROLE_PATH, type AppBinding, type PostgresRole, type SecretEngine } from '../../api/index.ts';
import { RetryableError, type WatchCache } from '../../lib/runtime/index.ts';
import { connectionName, defaultMountPath } from './names.ts';

export interface RoleTarget {
  vaultAppBinding: AppBinding;
  mount: string;
  connection: string;
}

export interface RoleCaches {
  appBindings: WatchCache<AppBinding>;
  secretEngines: WatchCache<SecretEngine>;
}

/** Thrown while something the role depends on doesn't exist yet: retried, and re-triggered by its watch. */
export class MissingReference extends RetryableError {
  constructor(message: string) {
    super('ReferenceNotFound', message);
  }
}

export function resolveRoleTarget(role: PostgresRole, caches: RoleCaches, cluster: string): RoleTarget {
  const ns = role.metadata.namespace ?? '';
  const spec = role.spec;
  if (spec.secretEngineRef) {
    const engine = caches.secretEngines.get(ns, spec.secretEngineRef.name);
    if (!engine) throw new MissingReference(`SecretEngine ${ns}/${spec.secretEngineRef.name} named by spec.secretEngineRef does not exist`);
    const abNs = engine.spec.vaultRef.namespace ?? ns;
    const ab = caches.appBindings.get(abNs, engine.spec.vaultRef.name);
    if (!ab) throw new MissingReference(`AppBinding ${abNs}/${engine.spec.vaultRef.name} (Vault of SecretEngine ${ns}/${engine.metadata.name}) does not exist`);
    const db = engine.spec.postgres.databaseRef;
    return {
      vaultAppBinding: ab,
      mount: engine.spec.path ?? defaultMountPath(cluster, ns, engine.metadata.name ?? ''),
      connection: connectionName(cluster, db.namespace ?? ns, db.name),
    };
  }
  if (!spec.vaultRef) throw new MissingReference('the role names neither secretEngineRef nor vaultRef');
  const ab = caches.appBindings.get(ns, spec.vaultRef.name);
  if (!ab) throw new MissingReference(`AppBinding ${ns}/${spec.vaultRef.name} named by spec.vaultRef does not exist`);
  const connection = spec.databaseRef
    ? connectionName(cluster, spec.databaseRef.namespace ?? ns, spec.databaseRef.name)
    : spec.databaseName!;
  return { vaultAppBinding: ab, mount: spec.path ?? DEFAULT_ROLE_PATH, connection };
}
