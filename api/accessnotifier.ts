// AccessNotifier (leasehold.dev/v1alpha1, namespaced): tells people about the requests of its own namespace —
// a new request waiting for approval, a reminder while it waits, approved, denied, issued, break-glass, expiring
// soon, revoked, expired — through a generic HTTPS webhook (signed JSON, docs/notifications.md) or a
// Slack-compatible incoming webhook. Webhook URLs and signing keys come from Secrets of its namespace, never from
// the spec. Its cluster-scoped sibling is ClusterAccessNotifier (clusteraccessnotifier.ts), as cert-manager has
// Issuer and ClusterIssuer.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { KindDefinition } from './crd.ts';
import { DOMAIN, conditionsSchema, durationSchema, objectNameSchema } from './meta.ts';
import { ROLE_KINDS } from './role.ts';
import { array, enumeration, integer, object, string, stringMap, type Static } from './schema.ts';

export const NOTIFIER_GROUP = DOMAIN;
export const NOTIFIER_VERSION = 'v1alpha1';
export const NOTIFIER_API_VERSION = `${NOTIFIER_GROUP}/${NOTIFIER_VERSION}`;

/** What a notifier can tell, in the order a request lives them. */
export const NOTIFICATION_EVENTS = [
  'Pending',
  'Reminder',
  'Approved',
  'Denied',
  'Issued',
  'BreakGlass',
  'ExpiringSoon',
  'Revoked',
  'Expired',
] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

/** Reminders while a request waits, when the notifier doesn't say. */
export const DEFAULT_REMINDER_INTERVAL = '1h';
/** How long before access ends ExpiringSoon is sent, when the notifier doesn't say. */
export const DEFAULT_EXPIRING_SOON_WINDOW = '15m';

export const secretKeySelectorSchema = object({
  description: 'A key of a Secret in the namespace the notifier reads Secrets from.',
  required: ['name'],
  properties: {
    name: objectNameSchema('Name of the Secret.'),
    key: string({
      description: 'Key in the Secret. Defaults to the field’s documented key.',
      pattern: '^[-._a-zA-Z0-9]+$',
      minLength: 1,
      maxLength: 253,
    }),
  },
});
export type SecretKeySelector = Static<typeof secretKeySelectorSchema>;

const caBundleSchema = string({
  description:
    'PEM CA certificates (base64-encoded, like a webhook configuration’s caBundle) the receiver’s certificate must ' +
    'chain to, for receivers with a private CA. Absent: the system’s trusted CAs.',
  format: 'byte',
  maxLength: 65536,
});

const webhookSchema = object({
  description:
    'A generic HTTPS webhook: each notification is POSTed as JSON (apiVersion leasehold.dev/notification/v1), ' +
    'signed with HMAC-SHA256 over the timestamp and body (headers X-Leasehold-Timestamp, X-Leasehold-Signature).',
  required: ['urlSecretRef', 'signingKeySecretRef'],
  properties: {
    urlSecretRef: {
      ...secretKeySelectorSchema,
      description: 'The Secret key holding the https:// URL to POST to (key defaults to "url").',
    } as typeof secretKeySelectorSchema,
    signingKeySecretRef: {
      ...secretKeySelectorSchema,
      description: 'The Secret key holding the HMAC-SHA256 signing key (key defaults to "signingKey").',
    } as typeof secretKeySelectorSchema,
    caBundle: caBundleSchema,
  },
});

const slackSchema = object({
  description: 'A Slack-compatible incoming webhook: each notification is POSTed as {"text": "…"}.',
  required: ['urlSecretRef'],
  properties: {
    urlSecretRef: {
      ...secretKeySelectorSchema,
      description: 'The Secret key holding the incoming webhook’s https:// URL (key defaults to "url").',
    } as typeof secretKeySelectorSchema,
    caBundle: caBundleSchema,
  },
});

const labelSelectorSchema = object({
  description: 'A label selector (matchLabels and matchExpressions, ANDed). Empty: everything.',
  properties: {
    matchLabels: stringMap(string({ description: 'A label value.', maxLength: 63 }), {
      description: 'Labels that must all have these values.',
      maxProperties: 32,
    }),
    matchExpressions: array(
      object({
        description: 'A label requirement.',
        required: ['key', 'operator'],
        properties: {
          key: string({ description: 'The label key.', minLength: 1, maxLength: 317 }),
          operator: enumeration(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const, {
            description: 'In, NotIn, Exists or DoesNotExist.',
          }),
          values: array(string({ description: 'A label value.', maxLength: 63 }), {
            description: 'Values for In and NotIn.',
            maxItems: 32,
          }),
        },
      }),
      { description: 'Requirements that must all hold.', maxItems: 16 },
    ),
  },
});
export type LabelSelector = Static<typeof labelSelectorSchema>;
export { labelSelectorSchema };

const roleSelectorSchema = object({
  description: 'A role the request names (spec.roleRef).',
  required: ['name'],
  properties: {
    kind: enumeration(ROLE_KINDS, { description: `Kind of the role: ${ROLE_KINDS.join(', ')}. Absent: any.` }),
    name: objectNameSchema('Name of the role.'),
  },
});

/** The fields both notifier kinds share; the cluster-scoped one adds namespace selection. */
export const notifierProperties = {
  roles: array(roleSelectorSchema, {
    description: 'Only requests for one of these roles. Empty: requests for any role.',
    maxItems: 64,
  }),
  requestSelector: labelSelectorSchema,
  events: array(enumeration(NOTIFICATION_EVENTS, { description: `One of ${NOTIFICATION_EVENTS.join(', ')}.` }), {
    description: `What to notify about. Absent: all of ${NOTIFICATION_EVENTS.join(', ')}.`,
    maxItems: NOTIFICATION_EVENTS.length,
    listType: 'set',
  }),
  reminderInterval: durationSchema(
    `With Reminder among the events: a reminder this often while a request waits for approval. Default ${DEFAULT_REMINDER_INTERVAL}; less than 1s counts as 1s.`,
  ),
  expiringSoonWindow: durationSchema(
    `With ExpiringSoon among the events: how long before a request's access ends (a lease that isn't renewed, or the role's maxAccessDuration) to say so. Default ${DEFAULT_EXPIRING_SOON_WINDOW}.`,
  ),
  webhook: webhookSchema,
  slack: slackSchema,
};

const oneSink = [{ rule: 'has(self.webhook) != has(self.slack)', message: 'set exactly one of webhook and slack' }];

export const accessNotifierSpecSchema = object({
  description: 'Which requests of this namespace to notify about, what about, and where to.',
  properties: notifierProperties,
  rules: oneSink,
});
export type AccessNotifierSpec = Static<typeof accessNotifierSpecSchema>;

export const accessNotifierStatusSchema = object({
  description: 'How deliveries go (as this operator process sees them: the queue lives in memory).',
  properties: {
    observedGeneration: integer({ description: 'The generation last reconciled.', format: 'int64', minimum: 0 }),
    conditions: conditionsSchema('Ready: True when the Secrets resolve and the last delivery succeeded.'),
    backlog: integer({
      description: 'Notifications queued and not yet delivered (each is retried, in order, until it is).',
      format: 'int64',
      minimum: 0,
    }),
    lastSuccessTime: string({ description: 'When a delivery last succeeded.', format: 'date-time', maxLength: 64 }),
    lastFailureTime: string({ description: 'When a delivery last failed.', format: 'date-time', maxLength: 64 }),
    lastFailureMessage: string({ description: 'Why it failed.', maxLength: 1024 }),
  },
});
export type AccessNotifierStatus = Static<typeof accessNotifierStatusSchema>;

export interface AccessNotifier {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec: AccessNotifierSpec;
  status?: AccessNotifierStatus;
}

export const notifierPrinterColumns = [
  { name: 'Backlog', type: 'integer', jsonPath: '.status.backlog', description: 'Notifications not yet delivered.' },
  {
    name: 'Last Success',
    type: 'date',
    jsonPath: '.status.lastSuccessTime',
    description: 'When a delivery last succeeded.',
  },
  {
    name: 'Last Failure',
    type: 'date',
    jsonPath: '.status.lastFailureTime',
    description: 'When a delivery last failed.',
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
] as const;

export const ACCESS_NOTIFIER = {
  group: NOTIFIER_GROUP,
  version: NOTIFIER_VERSION,
  kind: 'AccessNotifier',
  listKind: 'AccessNotifierList',
  plural: 'accessnotifiers',
  singular: 'accessnotifier',
  namespaced: true,
  shortNames: ['an'],
  categories: ['leasehold'],
  description:
    'AccessNotifier sends notifications about the DatabaseAccessRequests of its namespace (waiting, reminders, ' +
    'decisions, issuance, expiry, revocation) to an HTTPS webhook or a Slack-compatible incoming webhook.',
  spec: accessNotifierSpecSchema,
  specRequired: true,
  status: accessNotifierStatusSchema,
  rules: [],
  printerColumns: notifierPrinterColumns,
} as const satisfies KindDefinition;
