// What every database role kind shares (PostgresRole, MySQLRole, MariaDBRole, RedisRole): KubeVault's TTL fields,
// Leasehold's approval policy, Secret layout, renewal and tenancy fields, the status, the CEL rules, the printer
// columns and the kind's names. Defined once here; each kind's module adds only its statements and references.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { KindDefinition, PrinterColumn } from './crd.ts';
import {
  DEFAULT_MOUNT_PATH,
  DEFAULT_RENEW_FRACTION_TEXT,
  DNS1123_LABEL,
  ENGINE_API_VERSION,
  ENGINE_GROUP,
  ENGINE_PHASES,
  ENGINE_VERSION,
  celDurationAtLeast,
  celUnchanged,
  conditionsSchema,
  durationSchema,
  localObjectReferenceSchema,
  mountPathSchema,
  renewFractionSchema,
  secretTemplateSchema,
  subjectsSchema,
  type LocalObjectReference,
} from './meta.ts';
import { appReferenceSchema, type AppReference } from './secretengine.ts';
import {
  array,
  boolean,
  describe,
  enumeration,
  integer,
  object,
  string,
  type Schema,
  type Static,
  type ValidationRule,
} from './schema.ts';

const namespaceOrAll = string({
  description: 'A namespace name, or "*" for every namespace.',
  pattern: `^(\\*|${DNS1123_LABEL.slice(1, -1)})$`,
  minLength: 1,
  maxLength: 63,
});

export const approvalPolicySchema = object({
  description: 'How requests for this role are approved. Without it, every request waits for a person.',
  properties: {
    pendingTTL: durationSchema(
      'How long a request may wait for a decision before it expires (phase Expired, reason ' +
        'ApprovalTimedOut, nothing issued). Defaults to 24h.',
    ),
    requireReason: boolean({
      description:
        'Requests must give spec.reason: the API server refuses one without it (and its ' +
        'approval), and the operator issues nothing for it.',
      default: false,
    }),
    allowSelfApproval: boolean({
      description:
        'Let the person who created a request approve it (four eyes off: for ' +
        'development namespaces). Cluster administrators (system:masters) may always.',
      default: false,
    }),
    approvals: integer({
      description:
        'How many distinct people allowed to approve (the RBAC verb "approve" on the role) must approve a ' +
        'request before anything is issued; each approval is recorded in status.approvals. Defaults to 1. With ' +
        '2 or more the operator writes the Approved condition once the last one is in.',
      minimum: 1,
      maximum: 10,
    }),
    breakGlass: object({
      description:
        'Let the requester approve their own request in an emergency (kubectl vault approve --break-glass ' +
        '--reason TEXT): only with a reason, the access capped at maxTTL in total, an audit record at once, and ' +
        'the request marked ReviewRequired until someone else with "approve" on the role reviews it ' +
        '(kubectl vault review).',
      required: ['maxTTL'],
      properties: {
        maxTTL: durationSchema('Longest a break-glass access lasts, renewals included.'),
      },
    }),
    maxAccessDuration: durationSchema(
      'How long a request may keep access in total, from its first issuance, renewals and rotations ' +
        'included (spec.renew: true would otherwise keep it as long as the request exists); then the lease is ' +
        'revoked and the request ends in phase Expired (reason AccessDurationReached).',
    ),
    autoApprove: object({
      description:
        'Requests approved by the operator itself (condition reason AutoApproved): those matching every ' +
        'criterion given here.',
      properties: {
        subjects: subjectsSchema('Requests created by one of these users, groups or service accounts.', 0),
        namespaces: array(namespaceOrAll, {
          description: 'Requests made from one of these namespaces.',
          maxItems: 64,
          listType: 'set',
        }),
        maxTTL: durationSchema(
          "Only requests whose access ends within this: a ttl (the request's, else the role's " +
            'defaultTTL) at most this, and spec.renew false.',
        ),
      },
      rules: [
        {
          rule: 'has(self.subjects) || has(self.namespaces)',
          message: 'autoApprove needs subjects or namespaces: without either it would approve every request',
        },
      ],
    }),
  },
});
export type ApprovalPolicy = Static<typeof approvalPolicySchema>;

/** KubeVault's TTLs: every role kind has them, after its statements. */
export const roleTtlProperties = {
  defaultTTL: durationSchema('Lease TTL when a request asks for none.'),
  maxTTL: durationSchema('Longest a lease can last, renewals included; at least defaultTTL.'),
};

/** Leasehold's own fields, the same on every role kind: who may request it, the Secret's layout, renewal, approval. */
export const roleAccessProperties = {
  allowedRequestNamespaces: array(namespaceOrAll, {
    description: 'Namespaces, besides the role\'s own, whose DatabaseAccessRequests may use this role ("*": any).',
    maxItems: 64,
    listType: 'set',
  }),
  secretTemplate: secretTemplateSchema('Layout of the credential Secret for requests of this role.'),
  renewFraction: renewFractionSchema(
    `When leases of this role are renewed. Defaults to ${DEFAULT_RENEW_FRACTION_TEXT} (two thirds).`,
  ),
  approval: approvalPolicySchema,
};

/** How a role finds its Vault and database: KubeVault's current style, and (PostgresRole, MySQLRole) its 2021 style. */
export const roleSecretEngineRefProperty = {
  secretEngineRef: describe(
    localObjectReferenceSchema,
    'The SecretEngine, in this namespace, whose mount and ' +
      'database the role uses. Whether it exists is checked by the controller, not here.',
  ),
};

export const roleVaultRefProperties = {
  vaultRef: describe(
    localObjectReferenceSchema,
    "KubeVault 2021 style: the Vault server's AppBinding, in this " +
      'namespace. Whether it exists is checked by the controller, not here.',
  ),
  path: mountPathSchema(
    `KubeVault 2021 style: mount path of the database secrets engine. Defaults to "${DEFAULT_MOUNT_PATH}".`,
  ),
  databaseRef: describe(
    appReferenceSchema,
    "KubeVault 2021 style: the database's AppBinding; the Vault " +
      'connection is named k8s.<cluster>.<namespace>.<name> after it.',
  ),
  databaseName: string({
    description: 'KubeVault 2021 style: the Vault connection name, when there is no databaseRef.',
    pattern: '^[A-Za-z0-9_.-]+$',
    minLength: 1,
    maxLength: 253,
  }),
};

/** A list of statements Vault runs (SQL, or for Redis a JSON list of ACL rules), passed to Vault as written. */
export function statementsSchema(item: Schema<string>, description: string, minItems = 0): Schema<string[]> {
  return array(item, { description, ...(minItems ? { minItems } : {}), maxItems: 64 });
}

/** The CEL rules of a role's spec: the TTL order, and references that route leases can't move. */
export function roleSpecRules(kind: string, style: 'both' | 'secretEngineRef'): ValidationRule[] {
  const immutable =
    style === 'both'
      ? (['secretEngineRef', 'vaultRef', 'path', 'databaseRef', 'databaseName'] as const)
      : (['secretEngineRef'] as const);
  return [
    ...(style === 'both'
      ? [
          {
            rule: 'has(self.secretEngineRef) != has(self.vaultRef)',
            message: 'set exactly one of secretEngineRef and vaultRef',
          },
          {
            rule: '!has(self.secretEngineRef) || (!has(self.path) && !has(self.databaseRef) && !has(self.databaseName))',
            message:
              'path, databaseRef and databaseName go with vaultRef; with secretEngineRef the SecretEngine supplies them',
          },
          {
            rule: '!has(self.vaultRef) || has(self.databaseRef) != has(self.databaseName)',
            message: 'with vaultRef, set exactly one of databaseRef and databaseName',
          },
        ]
      : []),
    {
      rule: celDurationAtLeast('self', 'defaultTTL', 'maxTTL'),
      fieldPath: '.maxTTL',
      message: 'maxTTL must be at least defaultTTL',
    },
    ...immutable.map((field) => ({
      rule: celUnchanged(field),
      fieldPath: `.${field}`,
      message: `${field} is immutable: leases issued through the role would be revoked against another Vault, mount or database; create another ${kind} instead`,
    })),
  ];
}

export const roleStatusSchema = object({
  description: 'What the controller last did with the role.',
  properties: {
    phase: enumeration(ENGINE_PHASES, { description: 'Processing, Success or Failed.' }),
    observedGeneration: integer({
      description: 'The metadata.generation this status describes.',
      format: 'int64',
      minimum: 0,
    }),
    conditions: conditionsSchema('Ready/Available: the role exists in Vault. Failed: what went wrong.'),
    vaultRole: string({ description: 'Name of the role in Vault: k8s.<cluster>.<namespace>.<name>.', maxLength: 512 }),
    path: string({ description: 'Mount path of the secrets engine holding the role.', maxLength: 255 }),
  },
});
export type RoleStatus = Static<typeof roleStatusSchema>;

export const rolePrinterColumns: readonly PrinterColumn[] = [
  { name: 'Status', type: 'string', jsonPath: '.status.phase', description: 'Processing, Success or Failed.' },
  { name: 'Vault Role', type: 'string', jsonPath: '.status.vaultRole', description: 'Name of the role in Vault.' },
  { name: 'Path', type: 'string', jsonPath: '.status.path', description: 'Mount path of the secrets engine.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
];

/** The kind definition of a role kind: names, categories, status and columns shared; spec and description its own. */
export function roleKind<const K extends string, const P extends string, S extends Schema<unknown>>(o: {
  kind: K;
  plural: P;
  description: string;
  spec: S;
}) {
  return {
    group: ENGINE_GROUP,
    version: ENGINE_VERSION,
    kind: o.kind,
    listKind: `${o.kind}List` as `${K}List`,
    plural: o.plural,
    singular: o.kind.toLowerCase() as Lowercase<K>,
    namespaced: true,
    shortNames: [],
    categories: ['vault', 'appscode', 'all', 'leasehold'],
    description: o.description,
    spec: o.spec,
    specRequired: true,
    status: roleStatusSchema,
    rules: [],
    printerColumns: rolePrinterColumns,
  } as const satisfies KindDefinition;
}

/** The role kinds Leasehold serves, as spec.roleRef.kind names them. */
export const ROLE_KINDS = ['PostgresRole', 'MySQLRole', 'MariaDBRole', 'RedisRole'] as const;
export type RoleKind = (typeof ROLE_KINDS)[number];

/**
 * Any role kind as the controllers read it: the union of every kind's fields (a kind's schema lacks those it
 * doesn't have, e.g. vaultRef on a RedisRole, so they are simply absent).
 */
export interface DatabaseRole {
  apiVersion: typeof ENGINE_API_VERSION;
  kind: RoleKind;
  metadata: V1ObjectMeta;
  spec: {
    secretEngineRef?: LocalObjectReference;
    vaultRef?: LocalObjectReference;
    path?: string;
    databaseRef?: AppReference;
    databaseName?: string;
    creationStatements: string[];
    revocationStatements?: string[];
    rollbackStatements?: string[];
    renewStatements?: string[];
    defaultTTL?: string;
    maxTTL?: string;
    allowedRequestNamespaces?: string[];
    secretTemplate?: Record<string, string>;
    renewFraction?: number;
    approval?: ApprovalPolicy;
  };
  status?: RoleStatus;
}
