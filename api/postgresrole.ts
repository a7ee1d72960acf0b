// PostgresRole (engine.kubevault.com/v1alpha1): a Vault database role, i.e. the SQL that creates (and drops) a
// short-lived PostgreSQL login, and its TTLs. Two styles are accepted, as KubeVault's two API generations
// wrote them: {vaultRef, path, databaseRef | databaseName} (the guide's) and {secretEngineRef} (newer).
// Leasehold adds who may request it and how requests are approved.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { KindDefinition } from './crd.ts';
import {
  celUnchanged,
  DEFAULT_MOUNT_PATH, DNS1123_LABEL, ENGINE_API_VERSION, ENGINE_GROUP, ENGINE_PHASES, ENGINE_VERSION, celDurationAtLeast,
  DEFAULT_RENEW_FRACTION_TEXT, conditionsSchema, durationSchema, localObjectReferenceSchema, mountPathSchema, renewFractionSchema, secretTemplateSchema,
  subjectsSchema,
} from './meta.ts';
import { appReferenceSchema } from './secretengine.ts';
import { array, boolean, describe, enumeration, integer, object, string, type Static } from './schema.ts';

function statements(description: string, minItems = 0) {
  return array(string({ description: 'One SQL statement; Vault substitutes {{name}}, {{password}} and {{expiration}}.', minLength: 1, maxLength: 16384 }), {
    description, ...(minItems ? { minItems } : {}), maxItems: 64,
  });
}

const namespaceOrAll = string({ description: 'A namespace name, or "*" for every namespace.', pattern: `^(\\*|${DNS1123_LABEL.slice(1, -1)})$`, minLength: 1, maxLength: 63 });

export const approvalPolicySchema = object({
  description: 'How requests for this role are approved. Without it, every request waits for a person.',
  properties: {
    pendingTTL: durationSchema('How long a request may wait for a decision before it expires (phase Expired, reason ' +
      'ApprovalTimedOut, nothing issued). Defaults to 24h.'),
    requireReason: boolean({ description: 'Requests must give spec.reason: the API server refuses one without it (and its ' +
      'approval), and the operator issues nothing for it.', default: false }),
    allowSelfApproval: boolean({ description: 'Let the person who created a request approve it (four eyes off: for ' +
      'development namespaces). Cluster administrators (system:masters) may always.', default: false }),
    autoApprove: object({
      description: 'Requests approved by the operator itself (condition reason AutoApproved): those matching every ' +
        'criterion given here.',
      properties: {
        subjects: subjectsSchema('Requests created by one of these users, groups or service accounts.', 0),
        namespaces: array(namespaceOrAll, { description: 'Requests made from one of these namespaces.', maxItems: 64, listType: 'set' }),
        maxTTL: durationSchema('Only requests whose access ends within this: a ttl (the request\'s, else the role\'s ' +
          'defaultTTL) at most this, and spec.renew false.'),
      },
      rules: [{ rule: 'has(self.subjects) || has(self.namespaces)', message: 'autoApprove needs subjects or namespaces: without either it would approve every request' }],
    }),
  },
});
export type ApprovalPolicy = Static<typeof approvalPolicySchema>;

export const postgresRoleSpecSchema = object({
  description: 'A Vault database role issuing PostgreSQL logins. Set either secretEngineRef, or vaultRef with path ' +
    'and databaseRef (or databaseName).',
  required: ['creationStatements'],
  properties: {
    secretEngineRef: describe(localObjectReferenceSchema, 'The SecretEngine, in this namespace, whose mount and ' +
      'database the role uses. Whether it exists is checked by the controller, not here.'),
    vaultRef: describe(localObjectReferenceSchema, 'KubeVault 2021 style: the Vault server\'s AppBinding, in this ' +
      'namespace. Whether it exists is checked by the controller, not here.'),
    path: mountPathSchema(`KubeVault 2021 style: mount path of the database secrets engine. Defaults to "${DEFAULT_MOUNT_PATH}".`),
    databaseRef: describe(appReferenceSchema, 'KubeVault 2021 style: the database\'s AppBinding; the Vault ' +
      'connection is named k8s.<cluster>.<namespace>.<name> after it.'),
    databaseName: string({ description: 'KubeVault 2021 style: the Vault connection name, when there is no databaseRef.', pattern: '^[A-Za-z0-9_.-]+$', minLength: 1, maxLength: 253 }),
    creationStatements: statements('SQL run to create a login. At least one.', 1),
    revocationStatements: statements('SQL run to drop a login. Vault\'s default drops the role.'),
    rollbackStatements: statements('SQL run when creating a login fails halfway.'),
    renewStatements: statements('SQL run when a lease is renewed.'),
    defaultTTL: durationSchema('Lease TTL when a request asks for none.'),
    maxTTL: durationSchema('Longest a lease can last, renewals included; at least defaultTTL.'),
    allowedRequestNamespaces: array(namespaceOrAll, {
      description: 'Namespaces, besides the role\'s own, whose DatabaseAccessRequests may use this role ("*": any).',
      maxItems: 64, listType: 'set',
    }),
    secretTemplate: secretTemplateSchema('Layout of the credential Secret for requests of this role.'),
    renewFraction: renewFractionSchema(`When leases of this role are renewed. Defaults to ${DEFAULT_RENEW_FRACTION_TEXT} (two thirds).`),
    approval: approvalPolicySchema,
  },
  rules: [
    { rule: 'has(self.secretEngineRef) != has(self.vaultRef)', message: 'set exactly one of secretEngineRef and vaultRef' },
    {
      rule: '!has(self.secretEngineRef) || (!has(self.path) && !has(self.databaseRef) && !has(self.databaseName))',
      message: 'path, databaseRef and databaseName go with vaultRef; with secretEngineRef the SecretEngine supplies them',
    },
    { rule: '!has(self.vaultRef) || has(self.databaseRef) != has(self.databaseName)', message: 'with vaultRef, set exactly one of databaseRef and databaseName' },
    { rule: celDurationAtLeast('self', 'defaultTTL', 'maxTTL'), fieldPath: '.maxTTL', message: 'maxTTL must be at least defaultTTL' },
    ...(['secretEngineRef', 'vaultRef', 'path', 'databaseRef', 'databaseName'] as const).map((field) => ({
      rule: celUnchanged(field), fieldPath: `.${field}`,
      message: `${field} is immutable: leases issued through the role would be revoked against another Vault, mount or database; create another PostgresRole instead`,
    })),
  ],
});

export const postgresRoleStatusSchema = object({
  description: 'What the controller last did with the role.',
  properties: {
    phase: enumeration(ENGINE_PHASES, { description: 'Processing, Success or Failed.' }),
    observedGeneration: integer({ description: 'The metadata.generation this status describes.', format: 'int64', minimum: 0 }),
    conditions: conditionsSchema('Ready/Available: the role exists in Vault. Failed: what went wrong.'),
    vaultRole: string({ description: 'Name of the role in Vault: k8s.<cluster>.<namespace>.<name>.', maxLength: 512 }),
    path: string({ description: 'Mount path of the secrets engine holding the role.', maxLength: 255 }),
  },
});

export type PostgresRoleSpec = Static<typeof postgresRoleSpecSchema>;
export type PostgresRoleStatus = Static<typeof postgresRoleStatusSchema>;

export interface PostgresRole {
  apiVersion: typeof ENGINE_API_VERSION;
  kind: 'PostgresRole';
  metadata: V1ObjectMeta;
  spec: PostgresRoleSpec;
  status?: PostgresRoleStatus;
}

export const POSTGRES_ROLE = {
  group: ENGINE_GROUP,
  version: ENGINE_VERSION,
  kind: 'PostgresRole',
  listKind: 'PostgresRoleList',
  plural: 'postgresroles',
  singular: 'postgresrole',
  namespaced: true,
  shortNames: [],
  categories: ['vault', 'appscode', 'all', 'leasehold'],
  description: 'PostgresRole is a Vault database role: the SQL that creates a short-lived PostgreSQL login, its ' +
    'TTLs, and who may request it.',
  spec: postgresRoleSpecSchema,
  specRequired: true,
  status: postgresRoleStatusSchema,
  rules: [],
  printerColumns: [
    { name: 'Status', type: 'string', jsonPath: '.status.phase', description: 'Processing, Success or Failed.' },
    { name: 'Vault Role', type: 'string', jsonPath: '.status.vaultRole', description: 'Name of the role in Vault.' },
    { name: 'Path', type: 'string', jsonPath: '.status.path', description: 'Mount path of the secrets engine.' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
  ],
} as const satisfies KindDefinition;
