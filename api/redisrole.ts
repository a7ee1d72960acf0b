// RedisRole (engine.kubevault.com/v1alpha1): a Vault database role issuing Redis ACL users through Vault's
// redis-database-plugin. KubeVault's fields: creationStatements (each a JSON list of ACL rules, e.g.
// '["~*", "+@read"]'), revocationStatements, defaultTTL, maxTTL, secretEngineRef. Leasehold's fields are
// role.ts's, the same on every role kind.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { ENGINE_API_VERSION } from './meta.ts';
import {
  roleAccessProperties,
  roleKind,
  roleSecretEngineRefProperty,
  roleSpecRules,
  roleTtlProperties,
  statementsSchema,
  type RoleStatus,
} from './role.ts';
import { object, string, type Static } from './schema.ts';

const aclRules = string({
  description:
    'A JSON list of Redis ACL rules for the user, as Vault\'s redis-database-plugin takes it, e.g. \'["~*", "+@read"]\'.',
  minLength: 2,
  maxLength: 16384,
  rules: [
    {
      rule: "self.trim().startsWith('[') && self.trim().endsWith(']')",
      message: 'must be a JSON list of ACL rules, e.g. ["~*", "+@read"]',
    },
  ],
});

export const redisRoleSpecSchema = object({
  description: 'A Vault database role issuing Redis ACL users, through a SecretEngine with spec.redis.',
  required: ['secretEngineRef', 'creationStatements'],
  properties: {
    ...roleSecretEngineRefProperty,
    creationStatements: statementsSchema(
      aclRules,
      'The ACL rules a new user gets, passed to Vault as written. At least one.',
      1,
    ),
    revocationStatements: statementsSchema(
      string({ description: 'One revocation statement, passed to Vault as written.', maxLength: 16384 }),
      "Statements run to remove a user; without them Vault's plugin deletes the ACL user.",
    ),
    ...roleTtlProperties,
    ...roleAccessProperties,
  },
  rules: roleSpecRules('RedisRole', 'secretEngineRef'),
});

export type RedisRoleSpec = Static<typeof redisRoleSpecSchema>;

export interface RedisRole {
  apiVersion: typeof ENGINE_API_VERSION;
  kind: 'RedisRole';
  metadata: V1ObjectMeta;
  spec: RedisRoleSpec;
  status?: RoleStatus;
}

export const REDIS_ROLE = roleKind({
  kind: 'RedisRole',
  plural: 'redisroles',
  description:
    'RedisRole is a Vault database role: the ACL rules of a short-lived Redis user, its TTLs, and who may request it.',
  spec: redisRoleSpecSchema,
});
