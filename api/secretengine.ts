// SecretEngine (engine.kubevault.com/v1alpha1): a Vault database secrets engine mounted at a path and
// connected to one PostgreSQL database. Leasehold supports the postgres configuration only; KubeVault's other
// engines (aws, gcp, kv, ...) are refused by the schema rather than accepted and ignored.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { KindDefinition } from './crd.ts';
import {
  celUnchanged,
  ENGINE_API_VERSION, ENGINE_GROUP, ENGINE_PHASES, ENGINE_VERSION, celDurationAtLeast, conditionsSchema,
  durationSchema, mountPathSchema, namespaceNameSchema, objectNameSchema,
} from './meta.ts';
import { array, describe, enumeration, integer, object, string, type Static } from './schema.ts';

export const DEFAULT_POSTGRES_PLUGIN = 'postgresql-database-plugin';

/** A reference to an AppBinding (kmodules AppReference). */
export const appReferenceSchema = object({
  description: 'A reference to an AppBinding.',
  required: ['name'],
  properties: {
    name: objectNameSchema('Name of the AppBinding.'),
    namespace: namespaceNameSchema('Namespace of the AppBinding. Defaults to the namespace of the referring object.'),
    parameters: object({
      description: 'Extra parameters for this use of the AppBinding (KubeVault). Accepted; not used by Leasehold.',
      properties: {},
      preserveUnknownFields: true,
    }),
  },
});
export type AppReference = Static<typeof appReferenceSchema>;

export const postgresConfigurationSchema = object({
  description: 'The PostgreSQL connection Vault manages (database/config/<name>).',
  required: ['databaseRef'],
  properties: {
    databaseRef: describe(appReferenceSchema, 'The database\'s AppBinding: its address, and the Secret with the ' +
      'admin username and password Vault connects with. Whether it exists is checked by the controller, not here.'),
    pluginName: string({
      description: `Vault database plugin. Defaults to ${DEFAULT_POSTGRES_PLUGIN}.`,
      pattern: '^[A-Za-z0-9_.-]+$', minLength: 1, maxLength: 128, default: DEFAULT_POSTGRES_PLUGIN,
    }),
    allowedRoles: array(string({ description: 'A Vault role name or glob.', minLength: 1, maxLength: 256 }), {
      description: 'Vault roles allowed to use this connection. Defaults to ["*"]; an empty list would allow none.',
      minItems: 1, maxItems: 64, default: ['*'],
    }),
    maxOpenConnections: integer({ description: 'Most connections Vault opens to the database (0: Vault\'s default).', format: 'int64', minimum: 0 }),
    maxIdleConnections: integer({ description: 'Most idle connections Vault keeps (0: same as maxOpenConnections; -1: none).', format: 'int64', minimum: -1 }),
    maxConnectionLifetime: durationSchema('Longest Vault keeps a connection open.'),
  },
});
export type PostgresConfiguration = Static<typeof postgresConfigurationSchema>;

export const secretEngineSpecSchema = object({
  description: 'A Vault database secrets engine to mount and connect to PostgreSQL.',
  required: ['vaultRef', 'postgres'],
  properties: {
    vaultRef: object({
      description: 'The Vault server\'s AppBinding. Whether it exists is checked by the controller, not here.',
      required: ['name'],
      properties: {
        name: objectNameSchema('Name of the AppBinding.'),
        namespace: namespaceNameSchema('Namespace of the AppBinding. Defaults to the SecretEngine\'s namespace.'),
      },
    }),
    path: mountPathSchema('Where the engine is mounted in Vault. Defaults to k8s.<cluster>.postgres.<namespace>.<name> ' +
      '(reported in status.path). Can\'t change later: moving a mount revokes every lease under it.'),
    postgres: postgresConfigurationSchema,
    defaultLeaseTTL: durationSchema('Default lease TTL of the mount.'),
    maxLeaseTTL: durationSchema('Maximum lease TTL of the mount; at least defaultLeaseTTL.'),
  },
  rules: [
    { rule: celDurationAtLeast('self', 'defaultLeaseTTL', 'maxLeaseTTL'), fieldPath: '.maxLeaseTTL', message: 'maxLeaseTTL must be at least defaultLeaseTTL' },
    {
      // On the parent: a rule on path itself wouldn't run when path is added or removed, which moves it too.
      rule: 'has(self.path) == has(oldSelf.path) && (!has(self.path) || self.path == oldSelf.path)',
      fieldPath: '.path',
      message: 'path is immutable: moving the mount would revoke every lease under it; create another SecretEngine instead',
    },
    {
      rule: celUnchanged('vaultRef'), fieldPath: '.vaultRef',
      message: 'vaultRef is immutable: the leases under the mount are revoked through this Vault; create another SecretEngine instead',
    },
    {
      rule: celUnchanged('postgres.databaseRef'), fieldPath: '.postgres.databaseRef',
      message: 'postgres.databaseRef is immutable: the connection it names revokes the leases issued through it; create another SecretEngine instead',
    },
  ],
});

export const secretEngineStatusSchema = object({
  description: 'What the controller last did with the engine.',
  properties: {
    phase: enumeration(ENGINE_PHASES, { description: 'Processing, Success or Failed.' }),
    observedGeneration: integer({ description: 'The metadata.generation this status describes.', format: 'int64', minimum: 0 }),
    conditions: conditionsSchema('Ready/Available: mounted and connected. Failed: what went wrong.'),
    path: string({ description: 'Where the engine is mounted in Vault.', maxLength: 255 }),
  },
});

export type SecretEngineSpec = Static<typeof secretEngineSpecSchema>;
export type SecretEngineStatus = Static<typeof secretEngineStatusSchema>;

export interface SecretEngine {
  apiVersion: typeof ENGINE_API_VERSION;
  kind: 'SecretEngine';
  metadata: V1ObjectMeta;
  spec: SecretEngineSpec;
  status?: SecretEngineStatus;
}

export const SECRET_ENGINE = {
  group: ENGINE_GROUP,
  version: ENGINE_VERSION,
  kind: 'SecretEngine',
  listKind: 'SecretEngineList',
  plural: 'secretengines',
  singular: 'secretengine',
  namespaced: true,
  shortNames: [],
  categories: ['vault', 'appscode', 'all', 'leasehold'],
  description: 'SecretEngine mounts a Vault database secrets engine and connects it to a PostgreSQL database.',
  spec: secretEngineSpecSchema,
  specRequired: true,
  status: secretEngineStatusSchema,
  rules: [],
  printerColumns: [
    { name: 'Status', type: 'string', jsonPath: '.status.phase', description: 'Processing, Success or Failed.' },
    { name: 'Path', type: 'string', jsonPath: '.status.path', description: 'Mount path in Vault.' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
  ],
} as const satisfies KindDefinition;
