// Where a role (any kind: PostgresRole, MySQLRole, MariaDBRole, RedisRole) lives in Vault: which Vault
// (AppBinding), which mount, which connection. Both the role controller (to write the role) and the DatabaseAccessRequest controller (to issue from it) need
// this, from the caches only. References into other namespaces are checked here (references.ts), so neither
// writes nor issues through another namespace's Vault login or database unless that namespace opted in.
import {
  ConditionType,
  DEFAULT_MOUNT_PATH,
  Reason,
  engineDatabase,
  type AppBinding,
  type DatabaseRole,
  type SecretEngine,
} from '../../api/index.ts';
import { RetryableError, TerminalError, type WatchCache } from '../../lib/runtime/index.ts';
import { connectionName, engineMountPath } from './names.ts';
import {
  ReferenceNotAllowed,
  cacheLookup,
  firstRefusal,
  roleReferences,
  secretEngineReferences,
} from './references.ts';
import { kindOfRole, roleKindInfo } from './role-kinds.ts';

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

/**
 * Why the role may not be used, when a reference of its own (spec.databaseRef, spec.databaseName) or of its
 * SecretEngine (spec.vaultRef, spec.postgres.databaseRef, or the mount, as the engine's status reports) points
 * into a namespace that doesn't admit the role's; undefined otherwise, and when what it names doesn't exist.
 */
export function roleReferenceRefusal(
  role: DatabaseRole,
  caches: RoleCaches,
  cluster: string,
): ReferenceNotAllowed | undefined {
  const lookup = cacheLookup(caches);
  if (role.spec.secretEngineRef) {
    const ns = role.metadata.namespace ?? '';
    const engine = caches.secretEngines.get(ns, role.spec.secretEngineRef.name);
    if (!engine) return undefined;
    const own = firstRefusal(secretEngineReferences(engine), lookup);
    if (own) return own;
    // The mount's owner is known only from Vault: the SecretEngine's controller checks it and reports it.
    const failed = engine.status?.conditions?.find(
      (c) => c.type === ConditionType.Failed && (c.status ?? 'True') === 'True',
    );
    if (failed?.reason === Reason.ReferenceNotAllowed) {
      return new ReferenceNotAllowed(
        `SecretEngine ${ns}/${engine.metadata.name} named by spec.secretEngineRef is refused: ${failed.message ?? ''}`,
        {
          from: { kind: kindOfRole(role), namespace: ns, name: role.metadata.name ?? '' },
          field: 'spec.secretEngineRef',
          to: { kind: 'SecretEngine', namespace: ns, name: engine.metadata.name ?? '' },
          use: 'its mount',
        },
      );
    }
    return undefined;
  }
  return firstRefusal(roleReferences({ ...role, kind: kindOfRole(role) }, cluster), lookup);
}

/**
 * The role's Vault, mount and connection. Throws ReferenceNotAllowed (see roleReferenceRefusal) unless
 * `opts.forCleanup`: deleting the role's own Vault role (named after the role's namespace) is allowed whatever
 * it refers to. Throws MissingReference while something it names doesn't exist.
 */
export function resolveRoleTarget(
  role: DatabaseRole,
  caches: RoleCaches,
  cluster: string,
  opts: { forCleanup?: boolean } = {},
): RoleTarget {
  const ns = role.metadata.namespace ?? '';
  const spec = role.spec;
  if (!opts.forCleanup) {
    const refusal = roleReferenceRefusal(role, caches, cluster);
    if (refusal) throw refusal;
  }
  if (spec.secretEngineRef) {
    const engine = caches.secretEngines.get(ns, spec.secretEngineRef.name);
    if (!engine)
      throw new MissingReference(
        `SecretEngine ${ns}/${spec.secretEngineRef.name} named by spec.secretEngineRef does not exist`,
      );
    const abNs = engine.spec.vaultRef.namespace ?? ns;
    const ab = caches.appBindings.get(abNs, engine.spec.vaultRef.name);
    if (!ab)
      throw new MissingReference(
        `AppBinding ${abNs}/${engine.spec.vaultRef.name} (Vault of SecretEngine ${ns}/${engine.metadata.name}) does not exist`,
      );
    const database = engineDatabase(engine);
    const kind = kindOfRole(role);
    const wanted = roleKindInfo(kind)!.engineType;
    if (database?.type !== wanted) {
      throw new TerminalError(
        Reason.EngineKindMismatch,
        `SecretEngine ${ns}/${engine.metadata.name} named by spec.secretEngineRef ` +
          `connects to ${database ? `a ${database.type} database (spec.${database.type})` : 'no database'}; a ${kind} needs a SecretEngine with spec.${wanted}`,
      );
    }
    const db = database.config.databaseRef;
    return {
      vaultAppBinding: ab,
      mount: engineMountPath(cluster, engine),
      connection: connectionName(cluster, db.namespace ?? ns, db.name),
    };
  }
  if (!spec.vaultRef) throw new MissingReference('the role names neither secretEngineRef nor vaultRef');
  const ab = caches.appBindings.get(ns, spec.vaultRef.name);
  if (!ab) throw new MissingReference(`AppBinding ${ns}/${spec.vaultRef.name} named by spec.vaultRef does not exist`);
  const connection = spec.databaseRef
    ? connectionName(cluster, spec.databaseRef.namespace ?? ns, spec.databaseRef.name)
    : spec.databaseName!;
  return { vaultAppBinding: ab, mount: spec.path ?? DEFAULT_MOUNT_PATH, connection };
}
