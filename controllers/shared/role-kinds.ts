// The role kinds, in one table: which SecretEngine configuration each issues through, its resource, its cache.
// Everything that treats roles alike (the role controller, the request pipeline's engines, the dependency graph)
// reads this table instead of naming a kind.
import { ROLE_KINDS, type DatabaseRole, type EngineType, type RoleKind } from '../../api/index.ts';
import type { ResourceType, WatchCache } from '../../lib/runtime/index.ts';
import type { Caches } from './context.ts';
import { MARIADB_ROLES, MYSQL_ROLES, POSTGRES_ROLES, REDIS_ROLES } from './resources.ts';

export interface RoleKindInfo {
  kind: RoleKind;
  /** The SecretEngine configuration (spec.<engineType>) a role of this kind issues through. */
  engineType: EngineType;
  resource: ResourceType;
  /** The controller's name (metrics, logs) and its Events' component. */
  controllerName: string;
  cache(caches: Caches): WatchCache<DatabaseRole>;
}

export const ROLE_KIND_INFO: Readonly<Record<RoleKind, RoleKindInfo>> = {
  PostgresRole: {
    kind: 'PostgresRole',
    engineType: 'postgres',
    resource: POSTGRES_ROLES,
    controllerName: 'postgresrole',
    cache: (c) => c.postgresRoles as WatchCache<DatabaseRole>,
  },
  MySQLRole: {
    kind: 'MySQLRole',
    engineType: 'mysql',
    resource: MYSQL_ROLES,
    controllerName: 'mysqlrole',
    cache: (c) => c.mysqlRoles as WatchCache<DatabaseRole>,
  },
  MariaDBRole: {
    kind: 'MariaDBRole',
    engineType: 'mariadb',
    resource: MARIADB_ROLES,
    controllerName: 'mariadbrole',
    cache: (c) => c.mariadbRoles as WatchCache<DatabaseRole>,
  },
  RedisRole: {
    kind: 'RedisRole',
    engineType: 'redis',
    resource: REDIS_ROLES,
    controllerName: 'redisrole',
    cache: (c) => c.redisRoles as WatchCache<DatabaseRole>,
  },
};

export function roleKindInfo(kind: string | undefined): RoleKindInfo | undefined {
  return (ROLE_KIND_INFO as Record<string, RoleKindInfo>)[kind ?? 'PostgresRole'];
}

/** The role caches, one per kind. */
export function roleCaches(caches: Caches): WatchCache<DatabaseRole>[] {
  return ROLE_KINDS.map((k) => ROLE_KIND_INFO[k].cache(caches));
}

/** The role kind of an object read from a cache (its `kind`; PostgresRole when a fixture left it out). */
export function kindOfRole(role: Pick<DatabaseRole, 'kind'>): RoleKind {
  return roleKindInfo(role.kind)?.kind ?? 'PostgresRole';
}
