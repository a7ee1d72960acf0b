// MySQLRole and MariaDBRole (engine.kubevault.com/v1alpha1): Vault database roles issuing MySQL and MariaDB
// logins through Vault's mysql-database-plugin. KubeVault's fields: creationStatements and revocationStatements
// (the plugin has no rollback or renew statements), defaultTTL, maxTTL; a MySQLRole accepts KubeVault's 2021 style
// (vaultRef, path, databaseRef | databaseName) as a PostgresRole does, a MariaDBRole (added to KubeVault later)
// secretEngineRef only. Leasehold's fields are role.ts's, the same on every role kind.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { ENGINE_API_VERSION } from './meta.ts';
import {
  roleAccessProperties,
  roleKind,
  roleSecretEngineRefProperty,
  roleSpecRules,
  roleTtlProperties,
  roleVaultRefProperties,
  statementsSchema,
  type RoleStatus,
} from './role.ts';
import { object, string, type Static } from './schema.ts';

const sql = string({
  description: 'One SQL statement; Vault substitutes {{name}} and {{password}}.',
  minLength: 1,
  maxLength: 16384,
});
const statements = {
  creationStatements: statementsSchema(
    sql,
    "SQL run to create a login, e.g. CREATE USER '{{name}}'@'%' IDENTIFIED BY " +
      "'{{password}}'; GRANT SELECT ON db.* TO '{{name}}'@'%'. At least one.",
    1,
  ),
  revocationStatements: statementsSchema(sql, "SQL run to drop a login. Vault's default: DROP USER '{{name}}'@'%'."),
};

export const mysqlRoleSpecSchema = object({
  description:
    'A Vault database role issuing MySQL logins. Set either secretEngineRef (a SecretEngine with spec.mysql), ' +
    'or vaultRef with path and databaseRef (or databaseName).',
  required: ['creationStatements'],
  properties: {
    ...roleSecretEngineRefProperty,
    ...roleVaultRefProperties,
    ...statements,
    ...roleTtlProperties,
    ...roleAccessProperties,
  },
  rules: roleSpecRules('MySQLRole', 'both'),
});

export const mariadbRoleSpecSchema = object({
  description: 'A Vault database role issuing MariaDB logins, through a SecretEngine with spec.mariadb.',
  required: ['secretEngineRef', 'creationStatements'],
  properties: { ...roleSecretEngineRefProperty, ...statements, ...roleTtlProperties, ...roleAccessProperties },
  rules: roleSpecRules('MariaDBRole', 'secretEngineRef'),
});

export type MySQLRoleSpec = Static<typeof mysqlRoleSpecSchema>;
export type MariaDBRoleSpec = Static<typeof mariadbRoleSpecSchema>;

export interface MySQLRole {
  apiVersion: typeof ENGINE_API_VERSION;
  kind: 'MySQLRole';
  metadata: V1ObjectMeta;
  spec: MySQLRoleSpec;
  status?: RoleStatus;
}

export interface MariaDBRole {
  apiVersion: typeof ENGINE_API_VERSION;
  kind: 'MariaDBRole';
  metadata: V1ObjectMeta;
  spec: MariaDBRoleSpec;
  status?: RoleStatus;
}

export const MYSQL_ROLE = roleKind({
  kind: 'MySQLRole',
  plural: 'mysqlroles',
  description:
    'MySQLRole is a Vault database role: the SQL that creates a short-lived MySQL login, its TTLs, and who may request it.',
  spec: mysqlRoleSpecSchema,
});

export const MARIADB_ROLE = roleKind({
  kind: 'MariaDBRole',
  plural: 'mariadbroles',
  description:
    'MariaDBRole is a Vault database role: the SQL that creates a short-lived MariaDB login, its TTLs, and who may request it.',
  spec: mariadbRoleSpecSchema,
});
