// The names everything else agrees on: API groups and versions (KubeVault's, so its manifests apply unchanged),
// our own label, annotation and finalizer keys, phases, defaults, and the schemas shared by several kinds
// (conditions, references, names, durations). Condition types, reasons and Event reasons are in vocabulary.ts.
import { MAX_CONDITION_MESSAGE, type Condition as WrittenCondition } from '../lib/runtime/conditions.ts';
import { DURATION_PATTERN, celDuration } from './duration.ts';
import { array, enumeration, integer, number, object, string, stringMap, type Schema, type Static } from './schema.ts';

// ---- API groups and versions -------------------------------------------------------------------------------

export const APPCATALOG_GROUP = 'appcatalog.appscode.com';
export const APPCATALOG_VERSION = 'v1alpha1';
export const APPCATALOG_API_VERSION = `${APPCATALOG_GROUP}/${APPCATALOG_VERSION}`;

export const ENGINE_GROUP = 'engine.kubevault.com';
export const ENGINE_VERSION = 'v1alpha1';
export const ENGINE_API_VERSION = `${ENGINE_GROUP}/${ENGINE_VERSION}`;

/** The embedded `spec.parameters` of a Vault AppBinding. */
export const VAULT_SERVER_CONFIGURATION_API_VERSION = 'config.kubevault.com/v1alpha1';
export const VAULT_SERVER_CONFIGURATION_KIND = 'VaultServerConfiguration';

// ---- Our own keys --------------------------------------------------------------------------------------------

/** The domain of every label, annotation and finalizer Leasehold owns. */
export const DOMAIN = 'leasehold.dev';

/** Held by every object whose deletion must first clean up Vault (a role, a mount, a lease). */
export const FINALIZER = `${DOMAIN}/finalizer`;
/**
 * KubeVault's finalizer. Objects taken over from a KubeVault installation may still carry it; nothing of
 * KubeVault's will remove it once KubeVault is gone, so controllers remove it after their own cleanup.
 */
export const KUBEVAULT_FINALIZER = 'kubevault.com';
/**
 * Held by what live leases need in order to be revoked, and what the cleanup of Vault needs: every Vault
 * AppBinding (the address, CA and login), and the token Secret a Vault AppBinding names. Deleting either waits
 * until nothing depends on it any more (SecretEngines and PostgresRoles wait alike, under FINALIZER).
 */
export const IN_USE_FINALIZER = `${DOMAIN}/in-use`;

export const Labels = {
  /** On every object Leasehold creates (Secrets, Roles, RoleBindings), with the value MANAGED_BY. */
  managedBy: 'app.kubernetes.io/managed-by',
  /**
   * On objects created for a DatabaseAccessRequest: that request's name, or, for a name longer than a label value
   * may be (63 characters), `labelValue(name)` of controllers/shared/names.ts (52 characters, `-`, 10 hex of its
   * SHA-256). The owner reference has the full name and the uid.
   */
  request: `${DOMAIN}/request`,
} as const;
export const MANAGED_BY = 'leasehold';

export const Annotations = {
  /** On a DatabaseAccessRequest: set to any new value (a timestamp, say) to have fresh credentials issued now. */
  rotateNow: `${DOMAIN}/rotate-now`,
  /** On a DatabaseAccessRequest: set to revoke its lease now and end the access (the request stays, Revoked). */
  revokeNow: `${DOMAIN}/revoke-now`,
  /** On a DatabaseAccessRequest: who created it, as recorded at admission (never trusted from the client). */
  requester: `${DOMAIN}/requester`,
  /**
   * On a workload's pod template: when Leasehold last restarted it for new credentials (RFC 3339). Camel case,
   * unlike our other keys, to mirror `kubectl rollout restart`'s kubectl.kubernetes.io/restartedAt (and VSO's).
   */
  restartedAt: `${DOMAIN}/restartedAt`,
  /**
   * On an AppBinding (or a SecretEngine, for its mount): the other namespaces whose SecretEngines and
   * PostgresRoles may use it, comma-separated ("tenant-b,tenant-c"), or "*" for every namespace. Without it only
   * objects in its own namespace may (controllers/shared/references.ts).
   */
  allowedNamespaces: `${DOMAIN}/allowed-namespaces`,
  // On a request's credential Secret:
  /** Which lease the credential in the Secret belongs to (its Vault lease id). */
  leaseId: `${DOMAIN}/lease-id`,
  /** The issuance attempt that wrote the Secret (status.issuance.attempt of its request). */
  attempt: `${DOMAIN}/attempt`,
  /** When the Secret's credential was last rotated (RFC 3339). */
  rotatedAt: `${DOMAIN}/rotated-at`,
  /** Fingerprint of the Secret's templates and database address (not the credential), to render again on change. */
  layout: `${DOMAIN}/layout`,
  /** Digest of the Secret's data as Leasehold wrote it, to tell a change by hand. */
  dataDigest: `${DOMAIN}/data-digest`,
  // On the issuer token's Secret, in the operator's namespace:
  /** The Vault AppBinding (namespace/name) whose issuer token the Secret holds. */
  vaultAppBinding: `${DOMAIN}/vault-appbinding`,
  /** The address of that Vault. */
  vaultAddress: `${DOMAIN}/vault-address`,
  /** What the Secret is for, in a sentence, for whoever finds it. */
  purpose: `${DOMAIN}/purpose`,
} as const;

// ---- Conditions ------------------------------------------------------------------------------------------------

const CONDITION_TYPE_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$';
const CONDITION_REASON_PATTERN = '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$';
/** metav1.Condition's cap on a message (lib/runtime/conditions.ts truncates to fit); and ours on their number. */
export { MAX_CONDITION_MESSAGE };
export const MAX_CONDITIONS = 16;

export const conditionSchema = object({
  description:
    "One aspect of the object's state (metav1.Condition). `lastUpdateTime`, which KubeVault " +
    'wrote before it adopted metav1.Condition, is accepted too.',
  required: ['type', 'status'],
  properties: {
    type: string({
      description: 'CamelCase type of the condition, e.g. Ready, Approved, Denied.',
      pattern: CONDITION_TYPE_PATTERN,
      maxLength: 316,
    }),
    status: enumeration(['True', 'False', 'Unknown'], {
      description:
        "True, False or Unknown. Defaults to True: KubeVault's earliest conditions had no status and " +
        'meant True by being present.',
      default: 'True',
    }),
    observedGeneration: integer({
      description: 'The metadata.generation the condition was set for.',
      format: 'int64',
      minimum: 0,
    }),
    lastTransitionTime: string({
      description: 'When status last changed (RFC 3339).',
      format: 'date-time',
      maxLength: 64,
    }),
    lastUpdateTime: string({
      description: 'Deprecated (KubeVault v0.3): when the condition was written. Use lastTransitionTime.',
      format: 'date-time',
      maxLength: 64,
    }),
    reason: string({
      description: 'CamelCase reason for the last transition; for Approved and Denied, who or what decided.',
      pattern: CONDITION_REASON_PATTERN,
      maxLength: 1024,
    }),
    message: string({
      description: 'Human-readable details. Never contains a credential.',
      maxLength: MAX_CONDITION_MESSAGE,
    }),
  },
});
/**
 * A condition as read from an object: metav1.Condition, or an older shape KubeVault left (no status, which means
 * True; lastUpdateTime). What the operator writes is lib/runtime's Condition, which always fits this one.
 */
export type Condition = Static<typeof conditionSchema>;
export type ConditionStatus = Condition['status'];
/** Checked at compile time: every condition the operator writes is one the schema admits. */
type Fits<T extends true> = T;
export type _WrittenConditionFitsSchema = Fits<WrittenCondition extends Condition ? true : false>;

export function conditionsSchema(description: string): Schema<Condition[]> {
  return array(conditionSchema, { description, maxItems: MAX_CONDITIONS, listType: 'map', listMapKeys: ['type'] });
}

// ---- Phases ----------------------------------------------------------------------------------------------------

/** status.phase of SecretEngine and PostgresRole ("Success" is what KubeVault users wait for). */
export const EnginePhase = { Processing: 'Processing', Success: 'Success', Failed: 'Failed' } as const;
export type EnginePhase = (typeof EnginePhase)[keyof typeof EnginePhase];
export const ENGINE_PHASES = [EnginePhase.Processing, EnginePhase.Success, EnginePhase.Failed] as const;

export const RequestPhase = {
  WaitingForApproval: 'WaitingForApproval',
  Approved: 'Approved',
  Denied: 'Denied',
  Expired: 'Expired',
  Revoked: 'Revoked',
  Failed: 'Failed',
} as const;
export type RequestPhase = (typeof RequestPhase)[keyof typeof RequestPhase];
export const REQUEST_PHASES = [
  RequestPhase.WaitingForApproval,
  RequestPhase.Approved,
  RequestPhase.Denied,
  RequestPhase.Expired,
  RequestPhase.Revoked,
  RequestPhase.Failed,
] as const;

// ---- Names -----------------------------------------------------------------------------------------------------

/** DNS-1123 subdomain: most object names (Secrets, AppBindings, PostgresRoles, ServiceAccounts). */
export const DNS1123_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** DNS-1123 label: namespace names. */
export const DNS1123_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** DNS-1035 label: Service names. */
export const DNS1035_LABEL = '^[a-z]([-a-z0-9]*[a-z0-9])?$';

export function objectNameSchema(description: string): Schema<string> {
  return string({ description, pattern: DNS1123_SUBDOMAIN, minLength: 1, maxLength: 253 });
}

export function namespaceNameSchema(description: string): Schema<string> {
  return string({ description, pattern: DNS1123_LABEL, minLength: 1, maxLength: 63 });
}

/**
 * A Vault mount path: segments of letters, digits and `_ . -` joined by single slashes; no leading or
 * trailing slash (Vault would read a leading one as the root of its API), and no `..` anywhere.
 */
export const MOUNT_PATH_PATTERN = '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$';

/** KubeVault's mount path for a vaultRef-style PostgresRole that names none. */
export const DEFAULT_MOUNT_PATH = 'database';

export function mountPathSchema(description: string): Schema<string> {
  return string({
    description,
    pattern: MOUNT_PATH_PATTERN,
    minLength: 1,
    maxLength: 255,
    rules: [{ rule: "!self.contains('..')", message: "must not contain '..'" }],
  });
}

export function durationSchema(description: string): Schema<string> {
  return string({
    description: `${description} A Go duration ("1h", "90m", "1h30m", "1.5h") or a whole number of seconds ("3600").`,
    pattern: DURATION_PATTERN,
    minLength: 1,
    maxLength: 64,
  });
}

/**
 * CEL: both durations given (and well formed) ⇒ `max` is zero (Vault's "use the mount's maximum") or at
 * least `min`. Malformed values are left to the pattern's own, clearer, error.
 */
export function celDurationAtLeast(self: string, min: string, max: string): string {
  const well = (f: string) => `${self}.${f}.matches(r'${DURATION_PATTERN}')`;
  const d = (f: string) => celDuration(`${self}.${f}`);
  return (
    `!has(${self}.${min}) || !has(${self}.${max}) || !${well(min)} || !${well(max)} || ` +
    `${d(max)} == duration('0s') || ${d(max)} >= ${d(min)}`
  );
}

// ---- References ------------------------------------------------------------------------------------------------

export const localObjectReferenceSchema = object({
  description: 'A reference to an object in the same namespace.',
  required: ['name'],
  properties: { name: objectNameSchema('Name of the object.') },
});
export type LocalObjectReference = Static<typeof localObjectReferenceSchema>;

const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** rbac/v1 Subject, with the checks the RBAC API applies when the controller copies it into a RoleBinding. */
export const subjectSchema = object({
  description: 'Who gets access (rbac/v1 Subject): a User, a Group or a ServiceAccount.',
  required: ['kind', 'name'],
  properties: {
    kind: enumeration(['User', 'Group', 'ServiceAccount'], { description: 'User, Group or ServiceAccount.' }),
    name: string({ description: 'Name of the user, group or service account.', minLength: 1, maxLength: 256 }),
    namespace: namespaceNameSchema(
      'ServiceAccount only: its namespace. Defaults to the namespace of the object that holds this subject.',
    ),
    apiGroup: string({
      description: `Empty for ServiceAccount; "${RBAC_GROUP}" (the default) for User and Group.`,
      maxLength: 64,
    }),
  },
  rules: [
    {
      rule: `self.kind != 'ServiceAccount' || self.name.matches(r'${DNS1123_SUBDOMAIN}')`,
      fieldPath: '.name',
      message: 'a ServiceAccount name must be a DNS-1123 subdomain (lower case letters, digits, - and .)',
    },
    {
      rule: `self.kind == 'ServiceAccount' || !has(self.namespace) || self.namespace == ''`,
      fieldPath: '.namespace',
      message: 'namespace applies to ServiceAccount subjects only',
    },
    {
      rule: `self.kind != 'ServiceAccount' || !has(self.apiGroup) || self.apiGroup == ''`,
      fieldPath: '.apiGroup',
      message: 'apiGroup must be empty for a ServiceAccount',
    },
    {
      rule: `self.kind == 'ServiceAccount' || !has(self.apiGroup) || self.apiGroup == '' || self.apiGroup == '${RBAC_GROUP}'`,
      fieldPath: '.apiGroup',
      message: `apiGroup must be ${RBAC_GROUP} for a User or Group`,
    },
  ],
});
export type Subject = Static<typeof subjectSchema>;
export const MAX_SUBJECTS = 32;

export function subjectsSchema(description: string, minItems: number): Schema<Subject[]> {
  return array(subjectSchema, { description, minItems, maxItems: MAX_SUBJECTS });
}

/** Keys of a Secret's data (what `kubectl create secret` accepts). */
export const SECRET_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';

// ---- Fields a PostgresRole sets and a DatabaseAccessRequest may override ----------------------------------

export const MAX_SECRET_TEMPLATE_KEYS = 32;

export function secretTemplateSchema(description: string): Schema<Record<string, string>> {
  return stringMap(
    string({ description: 'A Mustache template for one key of the Secret, with <% %> delimiters.', maxLength: 4096 }),
    {
      description:
        `${description} Each key is a Mustache template with <% %> delimiters (not {{ }}, which Vault's own ` +
        'templates use) and no HTML escaping, e.g. {"uri": "postgresql://<%urlUser%>:<%urlPassword%>@<%urlHost%>:<%port%>/<%urlDbname%>"}. ' +
        'Variables: username, password; urlUser, urlPassword (percent-encoded, for URIs); pgpassUser, pgpassPassword ' +
        '(: and \\ escaped, for .pgpass); host, urlHost, pgpassHost, port, dbname, urlDbname, pgpassDbname, sslmode (from the ' +
        'database AppBinding). <%#sslmode%>…<%/sslmode%> renders only when the variable has a value. An unknown variable is ' +
        'a status error (reason InvalidSecretTemplate) and nothing is issued until it is fixed. The keys username and ' +
        "password are always the credential itself and can't be templated.",
      maxProperties: MAX_SECRET_TEMPLATE_KEYS,
      rules: [
        {
          rule: `self.all(k, size(k) <= 253 && k.matches(r'${SECRET_KEY_PATTERN}'))`,
          message: 'keys must be valid Secret keys (letters, digits, -, _ and .; at most 253 characters)',
        },
      ],
    },
  );
}

/** Default for renewFraction: renew when two thirds of the lease have passed (what Vault Agent does). */
export const DEFAULT_RENEW_FRACTION = 2 / 3;
/** DEFAULT_RENEW_FRACTION as the CRD descriptions say it ("0.667"). */
export const DEFAULT_RENEW_FRACTION_TEXT = DEFAULT_RENEW_FRACTION.toFixed(3);

export function renewFractionSchema(description: string): Schema<number> {
  return number({
    description: `${description} A fraction of the lease's duration, from 0.1 to 0.95.`,
    minimum: 0.1,
    maximum: 0.95,
  });
}

/**
 * A CEL transition rule (on the parent object, so adding or removing the field counts as a change) keeping
 * `field` as it was: fields that route leases (which Vault, which mount, which database connection) can't move
 * under leases already issued through them, which Vault would then revoke against the wrong place.
 */
export function celUnchanged(field: string): string {
  return `has(self.${field}) == has(oldSelf.${field}) && (!has(self.${field}) || self.${field} == oldSelf.${field})`;
}
