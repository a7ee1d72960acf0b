// PostgresRole (engine.kubevault.com/v1alpha1): a Vault database role, i.e. the SQL that creates (and drops) a
// short-lived PostgreSQL login, and its TTLs. Two styles are accepted, as KubeVault's two API generations
// wrote them: {vaultRef, path, databaseRef | databaseName} (the guide's) and {secretEngineRef} (newer).
// Leasehold adds who may request it and how requests are approved (role.ts: the same on every role kind).
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { ENGINE_API_VERSION } from './meta.ts';
import {
  roleAccessProperties,
  roleKind,
  roleSecretEngineRefProperty,
  roleSpecRules,
  roleStatusSchema,
  roleTtlProperties,
  roleVaultRefProperties,
  statementsSchema,
} from './role.ts';
import { object, string, type Static } from './schema.ts';

export { approvalPolicySchema, type ApprovalPolicy } from './role.ts';

const sql = string({
  description: 'One SQL statement; Vault substitutes {{name}}, {{password}} and {{expiration}}.',
  minLength: 1,
  maxLength: 16384,
});

export const postgresRoleSpecSchema = object({
  description:
    'A Vault database role issuing PostgreSQL logins. Set either secretEngineRef, or vaultRef with path ' +
    'and databaseRef (or databaseName).',
  required: ['creationStatements'],
  properties: {
    ...roleSecretEngineRefProperty,
    ...roleVaultRefProperties,
    creationStatements: statementsSchema(sql, 'SQL run to create a login. At least one.', 1),
    revocationStatements: statementsSchema(sql, "SQL run to drop a login. Vault's default drops the role."),
    rollbackStatements: statementsSchema(sql, 'SQL run when creating a login fails halfway.'),
    renewStatements: statementsSchema(sql, 'SQL run when a lease is renewed.'),
    ...roleTtlProperties,
    ...roleAccessProperties,
  },
  rules: roleSpecRules('PostgresRole', 'both'),
});

export const postgresRoleStatusSchema = roleStatusSchema;

export type PostgresRoleSpec = Static<typeof postgresRoleSpecSchema>;
export type PostgresRoleStatus = Static<typeof postgresRoleStatusSchema>;

export interface PostgresRole {
  apiVersion: typeof ENGINE_API_VERSION;
  kind: 'PostgresRole';
  metadata: V1ObjectMeta;
  spec: PostgresRoleSpec;
  status?: PostgresRoleStatus;
}

export const POSTGRES_ROLE = roleKind({
  kind: 'PostgresRole',
  plural: 'postgresroles',
  description:
    'PostgresRole is a Vault database role: the SQL that creates a short-lived PostgreSQL login, its ' +
    'TTLs, and who may request it.',
  spec: postgresRoleSpecSchema,
});
