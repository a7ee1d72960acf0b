// SecretEngine (engine.kubevault.com/v1alpha1): a Vault database secrets engine mounted at a path and
// connected to one database: exactly one of KubeVault's postgres, mysql, mariadb and redis configurations.
// KubeVault's other engines (aws, gcp, kv, mongodb, elasticsearch, ...) are refused by the schema rather than
// accepted and ignored.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { KindDefinition } from './crd.ts';
import {
  ENGINE_API_VERSION,
  ENGINE_GROUP,
  ENGINE_PHASES,
  ENGINE_VERSION,
  celDurationAtLeast,
  celUnchanged,
  conditionsSchema,
  durationSchema,
  mountPathSchema,
  namespaceNameSchema,
  objectNameSchema,
} from './meta.ts';
import { array, describe, enumeration, integer, object, string, type Static } from './schema.ts';

export const DEFAULT_POSTGRES_PLUGIN = 'postgresql-database-plugin';
export const DEFAULT_MYSQL_PLUGIN = 'mysql-database-plugin';
export const DEFAULT_REDIS_PLUGIN = 'redis-database-plugin';

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

function pluginNameSchema(database: string, plugin: string) {
  return string({
    description: `Vault database plugin${database}. Defaults to ${plugin}.`,
    pattern: '^[A-Za-z0-9_.-]+$',
    minLength: 1,
    maxLength: 128,
    default: plugin,
  });
}

const allowedRolesSchema = array(string({ description: 'A Vault role name or glob.', minLength: 1, maxLength: 256 }), {
  description: 'Vault roles allowed to use this connection. Defaults to ["*"]; an empty list would allow none.',
  minItems: 1,
  maxItems: 64,
  default: ['*'],
});

const poolProperties = {
  maxOpenConnections: integer({
    description: "Most connections Vault opens to the database (0: Vault's default).",
    format: 'int64',
    minimum: 0,
  }),
  maxIdleConnections: integer({
    description: 'Most idle connections Vault keeps (0: same as maxOpenConnections; -1: none).',
    format: 'int64',
    minimum: -1,
  }),
  maxConnectionLifetime: durationSchema('Longest Vault keeps a connection open.'),
};

const databaseRefSchema = describe(
  appReferenceSchema,
  "The database's AppBinding: its address, and the Secret with the " +
    'admin username and password Vault connects with. Whether it exists is checked by the controller, not here.',
);

export const postgresConfigurationSchema = object({
  description: 'The PostgreSQL connection Vault manages (database/config/<name>).',
  required: ['databaseRef'],
  properties: {
    databaseRef: databaseRefSchema,
    pluginName: pluginNameSchema('', DEFAULT_POSTGRES_PLUGIN),
    allowedRoles: allowedRolesSchema,
    ...poolProperties,
  },
});
export type PostgresConfiguration = Static<typeof postgresConfigurationSchema>;

function mysqlFamilyConfigurationSchema(database: string) {
  return object({
    description:
      `The ${database} connection Vault manages (database/config/<name>) with its MySQL plugin: Vault connects ` +
      "to {{username}}:{{password}}@tcp(host:port)/ with the AppBinding's address and admin login.",
    required: ['databaseRef'],
    properties: {
      databaseRef: databaseRefSchema,
      pluginName: pluginNameSchema(
        ' (mysql-database-plugin, or mysql-aurora-database-plugin, mysql-rds-database-plugin, ' +
          'mysql-legacy-database-plugin for the 16-character user names of MySQL before 5.7)',
        DEFAULT_MYSQL_PLUGIN,
      ),
      allowedRoles: allowedRolesSchema,
      ...poolProperties,
    },
  });
}

export const mysqlConfigurationSchema = mysqlFamilyConfigurationSchema('MySQL');
export const mariadbConfigurationSchema = mysqlFamilyConfigurationSchema('MariaDB');
/** MySQL's and MariaDB's configuration (the same fields). */
export type MySQLConfiguration = Static<typeof mysqlConfigurationSchema>;

export const redisConfigurationSchema = object({
  description:
    'The Redis connection Vault manages (database/config/<name>) with its Redis plugin: host, port and TLS ' +
    'from the AppBinding (a rediss:// URL, or a caBundle, turns TLS on), the admin ACL user from its Secret.',
  required: ['databaseRef'],
  properties: {
    databaseRef: databaseRefSchema,
    pluginName: pluginNameSchema('', DEFAULT_REDIS_PLUGIN),
    allowedRoles: allowedRolesSchema,
  },
});
export type RedisConfiguration = Static<typeof redisConfigurationSchema>;

/** The SecretEngine's database kinds, in KubeVault's spelling (its fields, and the `<type>` of its default mount path). */
export const ENGINE_TYPES = ['postgres', 'mysql', 'mariadb', 'redis'] as const;
export type EngineType = (typeof ENGINE_TYPES)[number];

export const secretEngineSpecSchema = object({
  description:
    'A Vault database secrets engine to mount and connect to a database: set exactly one of postgres, ' +
    'mysql, mariadb and redis.',
  required: ['vaultRef'],
  properties: {
    vaultRef: object({
      description: "The Vault server's AppBinding. Whether it exists is checked by the controller, not here.",
      required: ['name'],
      properties: {
        name: objectNameSchema('Name of the AppBinding.'),
        namespace: namespaceNameSchema("Namespace of the AppBinding. Defaults to the SecretEngine's namespace."),
      },
    }),
    path: mountPathSchema(
      'Where the engine is mounted in Vault. Defaults to k8s.<cluster>.<type>.<namespace>.<name>, ' +
        "<type> being postgres, mysql, mariadb or redis (reported in status.path). Can't change later: moving a mount " +
        'revokes every lease under it.',
    ),
    postgres: postgresConfigurationSchema,
    mysql: mysqlConfigurationSchema,
    mariadb: mariadbConfigurationSchema,
    redis: redisConfigurationSchema,
    defaultLeaseTTL: durationSchema('Default lease TTL of the mount.'),
    maxLeaseTTL: durationSchema('Maximum lease TTL of the mount; at least defaultLeaseTTL.'),
  },
  rules: [
    {
      rule: `[${ENGINE_TYPES.map((t) => `has(self.${t})`).join(', ')}].filter(x, x).size() == 1`,
      message: `set exactly one of ${ENGINE_TYPES.join(', ')} (the database the engine connects to; KubeVault's other engines are not served by Leasehold)`,
    },
    {
      rule: celDurationAtLeast('self', 'defaultLeaseTTL', 'maxLeaseTTL'),
      fieldPath: '.maxLeaseTTL',
      message: 'maxLeaseTTL must be at least defaultLeaseTTL',
    },
    {
      // On the parent: a rule on path itself wouldn't run when path is added or removed, which moves it too.
      rule: 'has(self.path) == has(oldSelf.path) && (!has(self.path) || self.path == oldSelf.path)',
      fieldPath: '.path',
      message:
        'path is immutable: moving the mount would revoke every lease under it; create another SecretEngine instead',
    },
    {
      rule: celUnchanged('vaultRef'),
      fieldPath: '.vaultRef',
      message:
        'vaultRef is immutable: the leases under the mount are revoked through this Vault; create another SecretEngine instead',
    },
    ...ENGINE_TYPES.map((t) => ({
      rule: `has(self.${t}) == has(oldSelf.${t}) && (!has(self.${t}) || self.${t}.databaseRef == oldSelf.${t}.databaseRef)`,
      fieldPath: `.${t}.databaseRef`,
      message: `${t}.databaseRef is immutable, and so is the kind of database: the connection it names revokes the leases issued through it; create another SecretEngine instead`,
    })),
  ],
});

export const secretEngineStatusSchema = object({
  description: 'What the controller last did with the engine.',
  properties: {
    phase: enumeration(ENGINE_PHASES, { description: 'Processing, Success or Failed.' }),
    observedGeneration: integer({
      description: 'The metadata.generation this status describes.',
      format: 'int64',
      minimum: 0,
    }),
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
  description:
    'SecretEngine mounts a Vault database secrets engine and connects it to a PostgreSQL, MySQL, MariaDB or Redis database.',
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

/** The database an engine connects to: which kind, and its configuration (spec.postgres, .mysql, .mariadb or .redis). */
export type EngineDatabase =
  | { type: 'postgres'; config: PostgresConfiguration }
  | { type: 'mysql' | 'mariadb'; config: MySQLConfiguration }
  | { type: 'redis'; config: RedisConfiguration };

/**
 * The engine's database configuration. The schema admits exactly one; undefined only for an object the API server
 * didn't validate (which a controller reports rather than trusts).
 */
export function engineDatabase(engine: { spec: SecretEngineSpec }): EngineDatabase | undefined {
  const s = engine.spec;
  if (s.postgres) return { type: 'postgres', config: s.postgres };
  if (s.mysql) return { type: 'mysql', config: s.mysql };
  if (s.mariadb) return { type: 'mariadb', config: s.mariadb };
  if (s.redis) return { type: 'redis', config: s.redis };
  return undefined;
}
