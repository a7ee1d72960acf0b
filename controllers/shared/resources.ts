// The kinds the controllers read and write, as the runtime addresses them.
import {
  ACCESS_NOTIFIER,
  APP_BINDING,
  CLUSTER_ACCESS_NOTIFIER,
  DATABASE_ACCESS_REQUEST,
  MARIADB_ROLE,
  MYSQL_ROLE,
  POSTGRES_ROLE,
  REDIS_ROLE,
  SECRET_ENGINE,
} from '../../api/index.ts';
import type { ResourceType } from '../../lib/runtime/index.ts';

const kind = (d: { group: string; version: string; plural: string; kind: string }): ResourceType => ({
  group: d.group,
  version: d.version,
  plural: d.plural,
  kind: d.kind,
  namespaced: true,
});

export const APP_BINDINGS = kind(APP_BINDING);
export const SECRET_ENGINES = kind(SECRET_ENGINE);
export const POSTGRES_ROLES = kind(POSTGRES_ROLE);
export const MYSQL_ROLES = kind(MYSQL_ROLE);
export const MARIADB_ROLES = kind(MARIADB_ROLE);
export const REDIS_ROLES = kind(REDIS_ROLE);
export const DATABASE_ACCESS_REQUESTS = kind(DATABASE_ACCESS_REQUEST);
export const ACCESS_NOTIFIERS = kind(ACCESS_NOTIFIER);
export const CLUSTER_ACCESS_NOTIFIERS: ResourceType = { ...kind(CLUSTER_ACCESS_NOTIFIER), namespaced: false };
export const NAMESPACES: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
};
export const SECRETS: ResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' };
export const ROLES: ResourceType = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', kind: 'Role' };
export const ROLE_BINDINGS: ResourceType = {
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural: 'rolebindings',
  kind: 'RoleBinding',
};
