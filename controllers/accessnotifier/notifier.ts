// What a notifier tells and to whom, as pure functions: which requests it selects (namespace, role, request
// labels), which notification an audit record is, when reminders and ExpiringSoon are due (from the request and
// the time, never from audit records), and the two bodies a delivery sends — the versioned JSON of the generic
// webhook (with its HMAC-SHA256 signature) and a Slack-compatible text. Documented in docs/notifications.md.
//
// Nothing here reads a Secret: a notification is built from the request and the audit record only, neither of
// which holds a credential (the audit record is redacted like a log line besides).
import crypto from 'node:crypto';
import {
  ACCESS_NOTIFIER,
  CLUSTER_ACCESS_NOTIFIER,
  DEFAULT_EXPIRING_SOON_WINDOW,
  DEFAULT_REMINDER_INTERVAL,
  Reason,
  RequestPhase,
  isDuration,
  parseDurationSeconds,
  type AccessNotifier,
  type ClusterAccessNotifier,
  type ClusterAccessNotifierSpec,
  type DatabaseAccessRequest,
  type LabelSelector,
  type NotificationEvent,
} from '../../api/index.ts';
import type { AuditRecord } from '../../lib/runtime/index.ts';
import { auditFields } from '../databaseaccessrequest/approval.ts';

/** The version of the webhook body; a change that isn't only an added field gets a new one. */
export const NOTIFICATION_API_VERSION = 'leasehold.dev/notification/v1';
export const NOTIFICATION_KIND = 'AccessNotification';
/** Headers of a webhook delivery. */
export const Headers = {
  timestamp: 'x-leasehold-timestamp',
  signature: 'x-leasehold-signature',
  delivery: 'x-leasehold-delivery',
  event: 'x-leasehold-event',
} as const;

/** Either notifier kind, told apart by `clusterScoped`. */
export interface AnyNotifier {
  clusterScoped: boolean;
  object: AccessNotifier | ClusterAccessNotifier;
}

export const notifierOf = {
  namespaced: (object: AccessNotifier): AnyNotifier => ({ clusterScoped: false, object }),
  cluster: (object: ClusterAccessNotifier): AnyNotifier => ({ clusterScoped: true, object }),
};

/** The queue key of a notifier: `namespace/name`, or `name` for a ClusterAccessNotifier. */
export function notifierKey(n: AnyNotifier): string {
  const m = n.object.metadata;
  return n.clusterScoped ? (m.name ?? '') : `${m.namespace ?? ''}/${m.name ?? ''}`;
}

/** "AccessNotifier ns/name" or "ClusterAccessNotifier name". */
export function describeNotifier(n: AnyNotifier): string {
  return `${n.clusterScoped ? CLUSTER_ACCESS_NOTIFIER.kind : ACCESS_NOTIFIER.kind} ${notifierKey(n)}`;
}

// ---- selection -----------------------------------------------------------------------------------------------

type Requirement = NonNullable<LabelSelector['matchExpressions']>[number];

function requirementHolds(e: Requirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, e.key);
  const listed = has && (e.values ?? []).includes(labels[e.key]!);
  switch (e.operator) {
    case 'In':
      return listed;
    case 'NotIn':
      return !listed;
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** Whether `labels` satisfy a label selector (matchLabels and matchExpressions, ANDed); absent selects all. */
export function labelsMatch(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  return (
    Object.entries(selector.matchLabels ?? {}).every(([k, v]) => l[k] === v) &&
    (selector.matchExpressions ?? []).every((e) => requirementHolds(e, l))
  );
}

/** What selection looks at: the request's namespace, role and labels (from the request, or its audit record). */
export interface RequestIdentity {
  namespace: string;
  name: string;
  roleKind: string;
  roleName: string;
  labels?: Record<string, string>;
}

export function identityOf(dar: DatabaseAccessRequest): RequestIdentity {
  return {
    namespace: dar.metadata.namespace ?? '',
    name: dar.metadata.name ?? '',
    roleKind: dar.spec.roleRef.kind ?? 'PostgresRole',
    roleName: dar.spec.roleRef.name,
    labels: dar.metadata.labels ?? {},
  };
}

/**
 * Whether the notifier selects the request. An AccessNotifier: requests of its own namespace. A
 * ClusterAccessNotifier: requests of `namespaces` (if given) whose namespace labels match `namespaceSelector` (if
 * given; `namespaceLabels` answers for a namespace, undefined when unknown, which doesn't match a selector). Both:
 * a role in `roles` (if given), labels matching `requestSelector` (if given; a request of unknown labels doesn't).
 */
export function selects(
  n: AnyNotifier,
  r: RequestIdentity,
  namespaceLabels: (ns: string) => Record<string, string> | undefined,
): boolean {
  const spec = n.object.spec;
  if (!n.clusterScoped) {
    if (r.namespace !== n.object.metadata.namespace) return false;
  } else {
    const c = spec as ClusterAccessNotifierSpec;
    if (c.namespaces?.length && !c.namespaces.includes(r.namespace)) return false;
    if (c.namespaceSelector) {
      const labels = namespaceLabels(r.namespace);
      if (!labels || !labelsMatch(c.namespaceSelector, labels)) return false;
    }
  }
  if (spec.roles?.length && !spec.roles.some((x) => x.name === r.roleName && (!x.kind || x.kind === r.roleKind)))
    return false;
  if (spec.requestSelector && (!r.labels || !labelsMatch(spec.requestSelector, r.labels))) return false;
  return true;
}

/** Whether the notifier tells this kind of notification (absent `events`: every one). */
export function wants(n: AnyNotifier, event: NotificationEvent): boolean {
  const events = n.object.spec.events;
  return !events?.length || events.includes(event);
}

// ---- which notification an audit record is ----------------------------------------------------------------------

/**
 * The notification an audit record's action is, if any. Reminder and ExpiringSoon come from time (due* below).
 * LeaseRevoked of a lease a rotation replaced is housekeeping, not the end of access: not notified.
 */
export function eventOfRecord(record: AuditRecord): NotificationEvent | undefined {
  switch (record.action) {
    case Reason.WaitingForApproval:
      return 'Pending';
    case 'RequestApproved':
    case Reason.AutoApproved:
      return 'Approved';
    case 'RequestDenied':
      return 'Denied';
    case Reason.SuccessfullyIssuedCredential:
      return 'Issued';
    case 'BreakGlassApproved':
      return 'BreakGlass';
    case Reason.RevokedOnDemand:
      return 'Revoked';
    case 'LeaseRevoked':
      return typeof record.message === 'string' && record.message.startsWith('revoked the previous lease')
        ? undefined
        : 'Revoked';
    case Reason.LeaseExpired:
    case Reason.ApprovalTimedOut:
    case 'AccessDurationReached':
      return 'Expired';
    default:
      return undefined;
  }
}

/** The identity of the request an audit record is about, from the record alone (for a request no longer cached). */
export function identityOfRecord(record: AuditRecord): RequestIdentity | undefined {
  const [namespace, name] = typeof record.request === 'string' ? record.request.split('/') : [];
  if (!namespace || !name) return undefined;
  const role = typeof record.role === 'string' ? record.role.split('/') : [];
  return {
    namespace,
    name,
    roleKind: typeof record.roleKind === 'string' ? record.roleKind : 'PostgresRole',
    roleName: role[1] ?? role[0] ?? '',
  };
}

// ---- time: reminders and ExpiringSoon ----------------------------------------------------------------------------

function durationMs(v: string | undefined, fallback: string, floorMs: number): number {
  const s = v && isDuration(v) ? parseDurationSeconds(v) : parseDurationSeconds(fallback);
  return Math.max(floorMs, s * 1000);
}

export const reminderIntervalMs = (n: AnyNotifier) =>
  durationMs(n.object.spec.reminderInterval, DEFAULT_REMINDER_INTERVAL, 1000);
export const expiringSoonWindowMs = (n: AnyNotifier) =>
  durationMs(n.object.spec.expiringSoonWindow, DEFAULT_EXPIRING_SOON_WINDOW, 0);

const created = (dar: DatabaseAccessRequest) => Date.parse(String(dar.metadata.creationTimestamp ?? ''));

/**
 * Reminders of a request waiting for approval: the k-th is due at creation + k × interval (k ≥ 1). Returns the
 * latest due k at nowMs (0: none yet) and when the next one is due; undefined for a request not waiting.
 */
export function reminderSchedule(
  dar: DatabaseAccessRequest,
  intervalMs: number,
  nowMs: number,
): { due: number; nextAtMs: number } | undefined {
  if (dar.metadata.deletionTimestamp || dar.status?.phase !== RequestPhase.WaitingForApproval) return undefined;
  const t0 = created(dar);
  if (!Number.isFinite(t0)) return undefined;
  const due = Math.max(0, Math.floor((nowMs - t0) / intervalMs));
  return { due, nextAtMs: t0 + (due + 1) * intervalMs };
}

/**
 * When the request's access ends by itself, if it does: a lease that isn't renewed (spec.renew false) runs out at
 * status.lease.expiresAt; a renewed one ends at status.grant.accessEndsAt (the role's maxAccessDuration), if set.
 */
export function accessEndsAtMs(dar: DatabaseAccessRequest): number | undefined {
  if (dar.metadata.deletionTimestamp || !dar.status?.lease?.id) return undefined;
  const grant = (dar.status as { grant?: { accessEndsAt?: string } }).grant;
  const at = dar.spec.renew === false ? dar.status.lease.expiresAt : grant?.accessEndsAt;
  const ms = at ? Date.parse(at) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/** ExpiringSoon: due from endsAt − window until endsAt; `key` tells one end from another (a new lease, say). */
export function expiringSoon(
  dar: DatabaseAccessRequest,
  windowMs: number,
  nowMs: number,
): { due: boolean; atMs: number; endsAtMs: number } | undefined {
  const end = accessEndsAtMs(dar);
  if (end === undefined || nowMs >= end) return undefined;
  const at = end - windowMs;
  return { due: nowMs >= at, atMs: at, endsAtMs: end };
}

// ---- the bodies --------------------------------------------------------------------------------------------------

/** The request as a notification describes it: who, what, why, for how long; never a credential. */
export interface RequestSummary {
  namespace: string;
  name: string;
  uid?: string;
  roleKind: string;
  role: string;
  subjects: string[];
  requester: string;
  reason?: string;
  ttl?: string;
  phase?: string;
  leaseId?: string;
  expiresAt?: string;
  labels?: Record<string, string>;
}

/** The webhook body, version leasehold.dev/notification/v1 (docs/notifications.md). */
export interface Notification {
  apiVersion: typeof NOTIFICATION_API_VERSION;
  kind: typeof NOTIFICATION_KIND;
  /** Unique per notification, the same on each retry of it (X-Leasehold-Delivery): receivers de-duplicate on it. */
  id: string;
  event: NotificationEvent;
  /** When it happened (RFC 3339): the audit record's time, or when a reminder or ExpiringSoon fell due. */
  at: string;
  notifier: { kind: string; namespace?: string; name: string };
  request: RequestSummary;
  /** For Pending and Reminder: the command that approves it. */
  approveCommand?: string;
  /** One sentence for people. */
  message: string;
  /** The audit record behind it (absent for Reminder and ExpiringSoon). */
  audit?: AuditRecord;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

/** The entries of `o` that have a value (neither undefined nor an empty string). */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
}

/** What only the request itself tells (its phase, lease end and labels). */
function fromRequest(dar: DatabaseAccessRequest): Record<string, unknown> {
  const labels = dar.metadata.labels;
  return defined({
    phase: dar.status?.phase,
    expiresAt: dar.status?.lease?.expiresAt,
    labels: labels && Object.keys(labels).length ? labels : undefined,
  });
}

/** The summary of a request, from the request when cached, else from its audit record. */
export function summarize(dar: DatabaseAccessRequest | undefined, record: AuditRecord | undefined): RequestSummary {
  const f: Record<string, unknown> = dar ? auditFields(dar) : { ...(record ?? {}) };
  const [namespace = '', name = ''] = String(f.request ?? '').split('/');
  return {
    namespace,
    name,
    roleKind: dar?.spec.roleRef.kind ?? str(record?.roleKind) ?? 'PostgresRole',
    role: String(f.role ?? ''),
    subjects: Array.isArray(f.subjects) ? f.subjects.map(String) : [],
    requester: String(f.requester ?? 'unknown'),
    ...defined({ uid: str(f.uid), reason: str(f.requestReason), ttl: str(f.ttl), leaseId: str(f.leaseId) }),
    ...(dar ? fromRequest(dar) : {}),
  };
}

export function approveCommand(r: { namespace: string; name: string }): string {
  return `kubectl vault approve ${r.name} -n ${r.namespace}`;
}

const WORDS: Record<NotificationEvent, string> = {
  Pending: 'is waiting for approval',
  Reminder: 'is still waiting for approval',
  Approved: 'was approved',
  Denied: 'was denied',
  Issued: 'was issued a credential',
  BreakGlass: 'was approved by break-glass (review it)',
  ExpiringSoon: 'loses its access soon',
  Revoked: 'had its access revoked',
  Expired: 'expired',
};

export interface NotificationInput {
  id: string;
  event: NotificationEvent;
  at: Date;
  notifier: AnyNotifier;
  request: RequestSummary;
  record?: AuditRecord;
  /** Extra words (when the access ends, for ExpiringSoon). */
  detail?: string;
}

export function buildNotification(i: NotificationInput): Notification {
  const m = i.notifier.object.metadata;
  const r = i.request;
  const waiting = i.event === 'Pending' || i.event === 'Reminder';
  const what = str(i.record?.message);
  return {
    apiVersion: NOTIFICATION_API_VERSION,
    kind: NOTIFICATION_KIND,
    id: i.id,
    event: i.event,
    at: i.at.toISOString(),
    notifier: {
      kind: i.notifier.clusterScoped ? CLUSTER_ACCESS_NOTIFIER.kind : ACCESS_NOTIFIER.kind,
      ...(i.notifier.clusterScoped ? {} : { namespace: m.namespace ?? '' }),
      name: m.name ?? '',
    },
    request: r,
    ...(waiting ? { approveCommand: approveCommand(r) } : {}),
    message: `DatabaseAccessRequest ${r.namespace}/${r.name} ${WORDS[i.event]}${i.detail ? ` ${i.detail}` : ''}${what && !waiting ? `: ${what}` : ''}`,
    ...(i.record ? { audit: i.record } : {}),
  };
}

/** The Slack-compatible text: request, role, subjects, reason, TTL, requester, and how to approve a waiting one. */
export function slackText(n: Notification): string {
  const r = n.request;
  const e = slackEscape;
  const lines = [
    `*${n.event}*: ${e(n.message)}`,
    `• Request: ${r.namespace}/${r.name}`,
    `• Role: ${r.roleKind} ${r.role}`,
    `• Subjects: ${e(r.subjects.join(', ')) || '(none)'}`,
    `• Requested by: ${e(r.requester)}`,
    `• Reason: ${r.reason ? e(r.reason) : '(none given)'}`,
    `• TTL: ${r.ttl ?? "the role's default"}`,
  ];
  if (n.approveCommand) lines.push(`Approve with: \`${n.approveCommand}\``);
  return lines.join('\n');
}

/**
 * Text a requester wrote (a reason, a break-glass reason in a message, a user name), made inert for Slack's
 * mrkdwn: `&`, `<` and `>` escaped as Slack documents, so `<!channel>` or `<https://…|Approve here>` show as
 * typed instead of pinging a channel or disguising a link.
 */
export function slackEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/**
 * The signature header value: `v1=` + hex HMAC-SHA256, keyed by the signing key, over `<timestamp>.<body>`
 * (timestamp: the X-Leasehold-Timestamp header, Unix seconds). Receivers recompute it and refuse an old timestamp.
 */
export function sign(key: string | Buffer, timestamp: number, body: string): string {
  return `v1=${crypto.createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * A receiver's check (also what tests use): the signature matches (constant time) and the timestamp is within
 * `toleranceSeconds` (300 by default) of `nowSeconds`.
 */
export function verify(
  key: string | Buffer,
  delivery: { timestamp?: string; signature?: string; body: string },
  at: { nowSeconds: number; toleranceSeconds?: number },
): boolean {
  const ts = Number(delivery.timestamp);
  if (!Number.isInteger(ts) || Math.abs(at.nowSeconds - ts) > (at.toleranceSeconds ?? 300)) return false;
  if (!delivery.signature) return false;
  const want = Buffer.from(sign(key, ts, delivery.body));
  const got = Buffer.from(delivery.signature);
  return want.length === got.length && crypto.timingSafeEqual(want, got);
}
