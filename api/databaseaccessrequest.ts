// DatabaseAccessRequest (engine.kubevault.com/v1alpha1): a request for a short-lived PostgreSQL login from a
// PostgresRole, for some subjects. Nothing is issued until an Approved condition appears in its status (written
// by `kubectl vault approve`, or by an auto-approval rule); a Denied condition ends it.
//
// The approval idiom (CSR, cert-manager): Approved and Denied are only ever True, exclusive, and permanent, and
// once either is set the parts of the spec that were judged (role, subjects, ttl, reason) are frozen. The API
// server enforces all of that with the CEL rules below, so no controller or client can get it wrong.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { KindDefinition } from './crd.ts';
import { DURATION_PATTERN, celDuration } from './duration.ts';
import {
  DEFAULT_RENEW_FRACTION_TEXT,
  ENGINE_API_VERSION,
  type Condition,
  ENGINE_GROUP,
  ENGINE_VERSION,
  REQUEST_PHASES,
  conditionsSchema,
  durationSchema,
  namespaceNameSchema,
  objectNameSchema,
  renewFractionSchema,
  secretTemplateSchema,
  subjectsSchema,
} from './meta.ts';
import {
  array,
  boolean,
  enumeration,
  integer,
  object,
  string,
  withRules,
  type Static,
  type ValidationRule,
} from './schema.ts';
import { ROLE_KINDS } from './role.ts';
import { ConditionType } from './vocabulary.ts';

export const roleRefSchema = object({
  description:
    'The role to issue from (a PostgresRole, MySQLRole, MariaDBRole or RedisRole). Whether it exists, and ' +
    'admits requests from this namespace, is checked by the controller, not here.',
  required: ['kind', 'name'],
  properties: {
    apiGroup: enumeration([ENGINE_GROUP], { description: `API group of the role: ${ENGINE_GROUP}.` }),
    kind: enumeration(ROLE_KINDS, { description: `Kind of the role: ${ROLE_KINDS.join(', ')}.` }),
    name: objectNameSchema('Name of the role.'),
    namespace: namespaceNameSchema(
      "Namespace of the role. Defaults to the request's namespace; another namespace " +
        'works only if the role lists this one in allowedRequestNamespaces.',
    ),
  },
});
export type RoleRef = Static<typeof roleRefSchema>;

export const rolloutRestartTargetSchema = object({
  description: 'A workload to restart when new credentials replace old ones.',
  required: ['kind', 'name'],
  properties: {
    kind: enumeration(['Deployment', 'StatefulSet', 'DaemonSet'], {
      description: 'Deployment, StatefulSet or DaemonSet.',
    }),
    name: objectNameSchema("Name of the workload, in the request's namespace."),
  },
});
export type RolloutRestartTarget = Static<typeof rolloutRestartTargetSchema>;

export const databaseAccessRequestSpecSchema = object({
  description: 'What is requested: a login from roleRef, readable by subjects, for ttl.',
  required: ['roleRef', 'subjects'],
  properties: {
    roleRef: roleRefSchema,
    subjects: subjectsSchema('Who may read the credential Secret (a Role and RoleBinding are created for them).', 1),
    ttl: withRules(
      durationSchema(
        "How long the access should last. Defaults to the role's defaultTTL. A ttl above the role's " +
          "maxTTL is refused by the controller (the schema can't see the role).",
      ),
      [
        {
          rule: `!self.matches(r'${DURATION_PATTERN}') || ${celDuration('self')} > duration('0s')`,
          message: 'must be longer than zero',
        },
      ],
    ),
    renew: boolean({
      description:
        'Keep the access for as long as the request exists: renew the lease before it runs out, and ' +
        "rotate to a fresh credential (same Secret) when Vault won't renew it any further (maxTTL). When false, the lease " +
        'runs out at its TTL: phase Expired, the credential removed from the Secret.',
      default: true,
    }),
    renewFraction: renewFractionSchema(
      `When to renew the lease. Defaults to the role's renewFraction, else ${DEFAULT_RENEW_FRACTION_TEXT} (two thirds).`,
    ),
    rotationGracePeriod: durationSchema(
      'When credentials are rotated, how long the previous login keeps working after the new ' +
        'one is in the Secret, before it is revoked. Defaults to 1m.',
    ),
    rolloutRestartTargets: array(rolloutRestartTargetSchema, {
      description: 'Workloads to restart after the credentials change, so they pick up the new ones.',
      maxItems: 16,
      listType: 'map',
      listMapKeys: ['kind', 'name'],
    }),
    secretTemplate: secretTemplateSchema("Layout of the credential Secret; keys given here override the role's."),
    reason: string({ description: 'Why access is needed, for the approver (a ticket, an incident).', maxLength: 1024 }),
  },
});

export const leaseSchema = object({
  description: 'The Vault lease behind the credential.',
  properties: {
    id: string({ description: 'Vault lease id (<mount>/creds/<role>/<id>). Not a credential.', maxLength: 1024 }),
    duration: string({
      description: 'Lease duration when last issued or renewed, as Go prints it ("1h0m0s").',
      maxLength: 64,
    }),
    renewable: boolean({ description: 'Whether Vault lets the lease be renewed.' }),
    issuedAt: string({ description: 'When the current credential was issued.', format: 'date-time', maxLength: 64 }),
    lastRenewalTime: string({ description: 'When the lease was last renewed.', format: 'date-time', maxLength: 64 }),
    expiresAt: string({ description: 'When the lease runs out unless renewed.', format: 'date-time', maxLength: 64 }),
  },
});
export type LeaseStatus = Static<typeof leaseSchema>;

export const approvalSchema = object({
  description: 'One approval: who gave it, when, and what they allowed.',
  required: ['username', 'approvedAt'],
  properties: {
    username: string({ description: 'Who approved, as the API server authenticated them.', maxLength: 256 }),
    approvedAt: string({ description: 'When.', format: 'date-time', maxLength: 64 }),
    message: string({ description: 'Their note (for a break-glass approval: the reason, required).', maxLength: 1024 }),
    ttl: withRules(durationSchema('The approver shortened the grant: no lease longer than this (at least 1s).'), [
      {
        rule: `!self.matches(r'${DURATION_PATTERN}') || ${celDuration('self')} >= duration('1s')`,
        message: 'must be at least 1s: a shorter grant would be no grant at all',
      },
    ]),
    breakGlass: boolean({
      description: "The requester's own emergency approval (the role's approval.breakGlass allows it).",
    }),
  },
});
export type Approval = Static<typeof approvalSchema>;

const decisionTypes = `['${ConditionType.Approved}', '${ConditionType.Denied}']`;

export const databaseAccessRequestStatusSchema = object({
  description:
    'Where the request stands. Approvers write the Approved or Denied condition, approvals and a review; the ' +
    'controller writes the rest.',
  properties: {
    phase: enumeration(REQUEST_PHASES, {
      description: 'WaitingForApproval, Approved, Denied, Expired, Revoked or Failed.',
    }),
    observedGeneration: integer({
      description: 'The metadata.generation this status describes.',
      format: 'int64',
      minimum: 0,
    }),
    conditions: conditionsSchema(
      'Approved or Denied (the decision: status True, permanent, reason = who, message = why), ' +
        'Available (credential issued), Failed, Expired, Revoked.',
    ),
    lease: leaseSchema,
    secret: object({
      description: "The Secret holding the credential, in the request's namespace.",
      required: ['name'],
      properties: { name: objectNameSchema('Name of the Secret.') },
    }),
    issuance: object({
      description:
        'Where the credential comes from, written before Vault is asked for it: if the operator stops ' +
        'between issuing and recording, the next pass finds the unrecorded lease by this record and revokes it, so ' +
        'a request never holds two live leases and no lease is left that no request records.',
      properties: {
        vaultAppBinding: object({
          description:
            'The Vault AppBinding the lease was issued through (needed to revoke it after the role is gone).',
          required: ['name'],
          properties: {
            name: objectNameSchema('Name of the AppBinding.'),
            namespace: namespaceNameSchema('Namespace of the AppBinding.'),
          },
        }),
        mount: string({ description: 'Mount path of the database secrets engine.', maxLength: 255 }),
        connection: string({
          description:
            'The database connection of that mount the Vault role uses: revoking the lease needs ' +
            'it, so its SecretEngine waits for the lease before deleting it.',
          maxLength: 512,
        }),
        role: string({ description: 'Vault role the credential is read from.', maxLength: 512 }),
        attempt: string({
          description: 'Id of the issuance in progress, or of the last one completed.',
          maxLength: 64,
        }),
        startedAt: string({
          description: 'When the issuance in progress started.',
          format: 'date-time',
          maxLength: 64,
        }),
        completed: boolean({ description: 'Whether the attempt was recorded (lease and Secret written).' }),
      },
    }),
    previousLeases: array(
      object({
        description:
          'A lease replaced by a rotation, kept working until revokeAt so clients can switch to the new credential.',
        required: ['id'],
        properties: {
          id: string({ description: 'Vault lease id. Not a credential.', maxLength: 1024 }),
          revokeAt: string({
            description:
              "When the lease is revoked: the rotation's completion plus spec.rotationGracePeriod. " +
              'Absent while the new credential is still being issued.',
            format: 'date-time',
            maxLength: 64,
          }),
          vaultAppBinding: object({
            description: 'The Vault AppBinding the lease was issued through.',
            required: ['name'],
            properties: {
              name: objectNameSchema('Name of the AppBinding.'),
              namespace: namespaceNameSchema('Namespace of the AppBinding.'),
            },
          }),
        },
      }),
      { description: 'Leases replaced by rotations and not revoked yet (revoked on deletion too).', maxItems: 16 },
    ),
    rotation: object({
      description:
        'The last rotation: a fresh credential written into the same Secret, the old lease revoked after the grace period.',
      properties: {
        reason: string({
          description:
            'Why: RenewalTruncated, RenewalRefused, LeaseRevoked, LeaseExpired, NotRenewable, RotateRequested, SecretDeleted or SecretModified.',
          maxLength: 64,
        }),
        message: string({ description: 'Details. Never contains a credential.', maxLength: 1024 }),
        requestedAt: string({ description: 'When the rotation was decided.', format: 'date-time', maxLength: 64 }),
        completedAt: string({
          description:
            'When the new credential was written to the Secret (also its leasehold.dev/rotated-at ' +
            'annotation, and the value given to rolloutRestartTargets). Absent while under way.',
          format: 'date-time',
          maxLength: 64,
        }),
        notAfter: string({
          description: 'With spec.renew false: the new lease ends no later than the one it replaces.',
          format: 'date-time',
          maxLength: 64,
        }),
        restartedAt: string({
          description: 'When spec.rolloutRestartTargets were restarted for this rotation. Absent while still to do.',
          format: 'date-time',
          maxLength: 64,
        }),
      },
    }),
    lastRotateRequest: string({
      description:
        'The value of the leasehold.dev/rotate-now annotation last acted on (a long value is ' +
        'kept as its sha256): each new value rotates once.',
      maxLength: 256,
    }),
    approvals: array(approvalSchema, {
      description:
        'Approvals given so far, oldest first (kubectl vault approve appends one). Permanent; the API server ' +
        'refuses a second one by the same user, one naming someone other than its writer, one by the requester ' +
        '(unless the role allows self-approval, or a break-glass one on a role that allows it) and a ttl longer than asked.',
      maxItems: 16,
    }),
    requiredApprovals: integer({
      description:
        'How many distinct approvals the role asks for (its approval.approvals), as the operator last read it.',
      minimum: 1,
      maximum: 10,
    }),
    observedApprovals: integer({
      description: 'How many entries of approvals the operator has recorded in the audit trail.',
      minimum: 0,
      maximum: 16,
    }),
    review: object({
      description:
        'The acknowledgement of a break-glass approval by someone other than the requester (kubectl vault review).',
      required: ['username', 'reviewedAt'],
      properties: {
        username: string({ description: 'Who reviewed it, as the API server authenticated them.', maxLength: 256 }),
        reviewedAt: string({ description: 'When.', format: 'date-time', maxLength: 64 }),
        message: string({ description: 'Their note.', maxLength: 1024 }),
      },
    }),
    grant: object({
      description: 'What the approvals allow, recorded by the operator when it first issues.',
      properties: {
        ttl: durationSchema(
          "The longest lease issued: the request's ttl (else the role's), shortened by approvers' ttl and a " +
            "break-glass approval's cap.",
        ),
        accessStartedAt: string({ description: 'The first issuance.', format: 'date-time', maxLength: 64 }),
        accessEndsAt: string({
          description:
            "When access ends whatever renewals and rotations would do: the role's approval.maxAccessDuration (or a " +
            "break-glass approval's maxTTL) after accessStartedAt.",
          format: 'date-time',
          maxLength: 64,
        }),
      },
    }),
    requester: object({
      description: 'Who created the request, as the API server authenticated them.',
      properties: {
        username: string({ description: 'User name.', maxLength: 256 }),
        uid: string({ description: 'User uid.', maxLength: 256 }),
        groups: array(string({ description: 'A group.', maxLength: 256 }), {
          description: 'Groups of the user.',
          maxItems: 64,
        }),
      },
    }),
  },
  rules: [
    {
      rule: `!has(self.conditions) || self.conditions.all(c, !(c.type in ${decisionTypes}) || c.status == 'True')`,
      fieldPath: '.conditions',
      message: 'Approved and Denied conditions can only have status True',
    },
    {
      rule: `!has(self.conditions) || !(self.conditions.exists(c, c.type == '${ConditionType.Approved}') && self.conditions.exists(c, c.type == '${ConditionType.Denied}'))`,
      fieldPath: '.conditions',
      message: "a request can't be both Approved and Denied",
    },
    {
      rule: '!has(self.approvals) || self.approvals.all(a, self.approvals.exists_one(b, b.username == a.username))',
      fieldPath: '.approvals',
      message: 'one approval per user: this user has approved already',
    },
  ],
});

/** CEL over the previous object: a decision (Approved or Denied, True) had been recorded. */
const WAS_DECIDED =
  `has(oldSelf.status) && has(oldSelf.status.conditions) && ` +
  `oldSelf.status.conditions.exists(c, c.type in ${decisionTypes} && c.status == 'True')`;

function frozenAfterDecision(field: 'roleRef' | 'subjects' | 'ttl' | 'reason', optional: boolean): ValidationRule {
  const same = optional
    ? `has(self.spec.${field}) == has(oldSelf.spec.${field}) && (!has(self.spec.${field}) || self.spec.${field} == oldSelf.spec.${field})`
    : `self.spec.${field} == oldSelf.spec.${field}`;
  return {
    rule: `!(${WAS_DECIDED}) || (${same})`,
    fieldPath: `.spec.${field}`,
    message: `spec.${field} is immutable once the request is Approved or Denied; create a new request instead`,
  };
}

const optionalText = (v: string, f: string) => `(has(${v}.${f}) ? ${v}.${f} : '')`;

/**
 * Rules at the root, where one rule can see spec and status and the previous object (`oldSelf`): status
 * rules there also catch the status being emptied, which a rule on status itself wouldn't see.
 */
export const databaseAccessRequestRules: ValidationRule[] = [
  frozenAfterDecision('roleRef', false),
  frozenAfterDecision('subjects', false),
  frozenAfterDecision('ttl', true),
  frozenAfterDecision('reason', true),
  {
    rule:
      `!has(oldSelf.status) || !has(oldSelf.status.conditions) || oldSelf.status.conditions.all(o, ` +
      `!(o.type in ${decisionTypes} && o.status == 'True') || (has(self.status) && has(self.status.conditions) && ` +
      `self.status.conditions.exists(n, n.type == o.type && n.status == 'True' && ` +
      `${optionalText('n', 'reason')} == ${optionalText('o', 'reason')} && ${optionalText('n', 'message')} == ${optionalText('o', 'message')})))`,
    fieldPath: '.status.conditions',
    message: "an Approved or Denied decision is permanent: it can't be removed, flipped or reworded",
  },
  {
    rule:
      '!has(oldSelf.status) || !has(oldSelf.status.approvals) || (has(self.status) && has(self.status.approvals) && ' +
      'size(self.status.approvals) >= size(oldSelf.status.approvals) && ' +
      'oldSelf.status.approvals.all(o, self.status.approvals.exists(n, n == o)))',
    fieldPath: '.status.approvals',
    message: "approvals are permanent: they can't be removed or changed, only added",
  },
  {
    rule:
      '!has(oldSelf.status) || !has(oldSelf.status.review) || ' +
      '(has(self.status) && has(self.status.review) && self.status.review == oldSelf.status.review)',
    fieldPath: '.status.review',
    message: "a review is permanent: it can't be removed or changed",
  },
];

export type DatabaseAccessRequestSpec = Static<typeof databaseAccessRequestSpecSchema>;
export type DatabaseAccessRequestStatus = Static<typeof databaseAccessRequestStatusSchema>;
export type Requester = NonNullable<DatabaseAccessRequestStatus['requester']>;

export interface DatabaseAccessRequest {
  apiVersion: typeof ENGINE_API_VERSION;
  kind: 'DatabaseAccessRequest';
  metadata: V1ObjectMeta;
  spec: DatabaseAccessRequestSpec;
  status?: DatabaseAccessRequestStatus;
}

export const DATABASE_ACCESS_REQUEST = {
  group: ENGINE_GROUP,
  version: ENGINE_VERSION,
  kind: 'DatabaseAccessRequest',
  listKind: 'DatabaseAccessRequestList',
  plural: 'databaseaccessrequests',
  singular: 'databaseaccessrequest',
  namespaced: true,
  shortNames: ['dar'],
  categories: ['vault', 'appscode', 'all', 'leasehold'],
  description:
    'DatabaseAccessRequest asks for a short-lived database login from a PostgresRole, MySQLRole, ' +
    'MariaDBRole or RedisRole. Nothing is issued until it is approved.',
  spec: databaseAccessRequestSpecSchema,
  specRequired: true,
  status: databaseAccessRequestStatusSchema,
  rules: databaseAccessRequestRules,
  printerColumns: [
    {
      name: 'Status',
      type: 'string',
      jsonPath: '.status.phase',
      description: 'WaitingForApproval, Approved, Denied, Expired, Revoked or Failed.',
    },
    { name: 'Role', type: 'string', jsonPath: '.spec.roleRef.name', description: 'The role requested.' },
    {
      name: 'Secret',
      type: 'string',
      jsonPath: '.status.secret.name',
      description: 'The Secret holding the credential.',
    },
    // A string, not a date: kubectl prints a future date column as "<invalid>".
    {
      name: 'Expires',
      type: 'string',
      jsonPath: '.status.lease.expiresAt',
      description: 'When the lease runs out unless renewed.',
    },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
  ],
} as const satisfies KindDefinition;

// ---- What was decided ----------------------------------------------------------------------------------------

/** A request's decision, and the condition that records it. */
export interface RequestDecision {
  type: typeof ConditionType.Approved | typeof ConditionType.Denied;
  condition: Condition;
}

/**
 * What was decided about a request: its Denied or Approved condition with status True (the API server defaults
 * a missing status to True, as KubeVault's earliest conditions meant), or undefined while nobody has decided. The one predicate the
 * operator and `kubectl vault` share. The API server keeps the two exclusive; were both there, Denied wins.
 *
 * The phase is never a decision on its own. A request whose status.phase says Approved (or Denied) without that
 * condition, as KubeVault's plugin could leave one or a hand edit of status can, is undecided: the operator waits
 * for a decision (setting the phase back to WaitingForApproval) and `kubectl vault approve|deny` may make one.
 * Everything the API server guarantees about a decision (only holders of the `approve` verb on the role make it,
 * four eyes, a required reason, permanence, the judged spec frozen) is attached to the conditions; a phase
 * carries none of it, and issuing on one would issue what nobody was allowed to approve.
 */
export function decisionOf(dar: Pick<DatabaseAccessRequest, 'status'>): RequestDecision | undefined {
  for (const type of [ConditionType.Denied, ConditionType.Approved] as const) {
    const condition = dar.status?.conditions?.find((c) => c.type === type && c.status === 'True');
    if (condition) return { type, condition };
  }
  return undefined;
}

/**
 * Who a decision condition's message names: the convention "This was approved by: USER …" (or "denied") that
 * `kubectl vault approve|deny` and the operator write, and the admission policy (manifests/admission/approval.yaml)
 * checks against the user who wrote it. Undefined for a message that doesn't follow it (KubeVault's plugin, a hand
 * edit by a cluster administrator).
 */
export function deciderOf(message: string | undefined): string | undefined {
  return message ? /^This was (?:approved|denied) by: (\S+)/.exec(message)?.[1] : undefined;
}

/**
 * Which of `usernames` a decision message names whole, as the admission policy checks it (the message starts with
 * "This was approved by: <username> " or is exactly that): "This was approved by: Dave Smith (…)" names "Dave
 * Smith", where deciderOf reads only "Dave". The longest match, or undefined when it names none of them.
 */
export function namedDecider(message: string | undefined, usernames: Iterable<string | undefined>): string | undefined {
  if (!message) return undefined;
  let best: string | undefined;
  const named = /^This was (?:approved|denied) by: /.exec(message);
  if (!named) return undefined;
  for (const u of usernames) {
    if (u && `${message} `.startsWith(`${named[0]}${u} `) && u.length > (best?.length ?? -1)) best = u;
  }
  return best;
}
