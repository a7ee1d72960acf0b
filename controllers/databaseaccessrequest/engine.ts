// The seam between the request pipeline and the database kinds. The pipeline (observe → plan → execute) never
// knows which database a request is for: the role kind its spec.roleRef names supplies what differs, through a
// DatabaseEngine. A new kind (KubeVault's MySQLRole, MariaDBRole, RedisRole) is one file in engines/ and one
// line in ENGINES, with no edit elsewhere in the pipeline.
import type { AppBinding, DatabaseAccessRequest, DatabaseRole } from '../../api/index.ts';
import type { RoleCaches, RoleTarget } from '../shared/role-target.ts';
import type { ReferenceNotAllowed } from '../shared/references.ts';
import type { Caches } from '../shared/context.ts';
import type { AddressVariables } from './template.ts';
import { mariadb, mysql } from './engines/mysql.ts';
import { postgres } from './engines/postgres.ts';
import { redis } from './engines/redis.ts';

/**
 * What every role kind shares and the pipeline reads: KubeVault's TTL fields plus Leasehold's approval, renewal,
 * tenancy and Secret-layout fields, and `status.vaultRole` (the Vault role the role's controller wrote). Typed
 * from api/role.ts, which defines them once for every kind.
 */
export interface AccessRole {
  metadata: DatabaseRole['metadata'];
  spec: Pick<
    DatabaseRole['spec'],
    'defaultTTL' | 'maxTTL' | 'renewFraction' | 'allowedRequestNamespaces' | 'secretTemplate' | 'approval'
  >;
  status?: Pick<NonNullable<DatabaseRole['status']>, 'phase' | 'vaultRole'>;
}

/** The database's address as a role's database AppBinding gives it. Nothing secret. */
export interface DatabaseAddress {
  host: string;
  port: string;
  /** The database (PostgreSQL, MySQL) or logical database number (Redis) the credential is for. */
  dbname: string;
  /** Connection parameters the AppBinding URL carries (sslmode, tls, …), by name. */
  params: Record<string, string>;
}

/** The variables a secretTemplate may use, as one engine defines them. */
export interface TemplateVariables {
  /** Every variable a template may use → what it holds (the list in error messages and docs). */
  readonly known: Readonly<Record<string, string>>;
  /** The address variables: values, and why the others have none. */
  address(address: DatabaseAddress | undefined, whyNone: string): AddressVariables;
  /** The credential variables (the escaped forms of username and password a URI or config file needs). */
  credential(cred: { username: string; password: string }): Record<string, string>;
  /**
   * Keys every credential Secret of this engine has besides username and password (host, port, uri, …): templates
   * over the variables that have a value here. The role's and the request's secretTemplate override them key by key.
   */
  defaults?(address: AddressVariables): Record<string, string>;
}

export interface DatabaseEngine {
  /** KubeVault's kind, as spec.roleRef.kind names it (e.g. PostgresRole). */
  readonly roleKind: string;
  /** The role, from the watch caches. */
  role(caches: Caches, namespace: string, name: string): AccessRole | undefined;
  /** The role's Vault, mount and connection (throws MissingReference, ReferenceNotAllowed: shared/role-target.ts). */
  target(role: AccessRole, caches: RoleCaches, cluster: string): RoleTarget;
  /** Why the role's references into other namespaces are refused now, if they are. */
  referenceRefusal(role: AccessRole, caches: RoleCaches, cluster: string): ReferenceNotAllowed | undefined;
  /** The database AppBinding behind the role (for the address variables), or why there is none. */
  databaseAppBinding(role: AccessRole, caches: RoleCaches): { appBinding?: AppBinding; why: string };
  /** The address a database AppBinding gives (throws for a malformed one). */
  address(appBinding: AppBinding): DatabaseAddress;
  readonly variables: TemplateVariables;
}

/** The engines, by role kind. */
export const ENGINES: Readonly<Record<string, DatabaseEngine>> = {
  [postgres.roleKind]: postgres,
  [mysql.roleKind]: mysql,
  [mariadb.roleKind]: mariadb,
  [redis.roleKind]: redis,
};

/** The engine of a request's role (spec.roleRef.kind; PostgresRole when absent), or undefined for a kind Leasehold doesn't serve. */
export function engineOf(dar: DatabaseAccessRequest): DatabaseEngine | undefined {
  return ENGINES[dar.spec.roleRef.kind ?? postgres.roleKind];
}
