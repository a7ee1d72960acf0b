// `kubectl vault report`: who had access to which database role, from when to when, approved by whom, from what
// the cluster still holds: the DatabaseAccessRequests and their status. Pure: rows from request objects and a
// time window, and the three renderings (table, json, csv). It reads no Secret, so no credential can reach it.
//
// What a request's status says, and where each column comes from:
//   from       status.grant.accessStartedAt (first issuance); on requests written before it existed,
//              status.lease.issuedAt, or the Approved condition's time once the credential was rotated (the
//              lease then is the latest one, so its issuedAt is later than the start)
//   until      the Revoked (True) or Expired condition's lastTransitionTime; the deletion time of a request being
//              deleted (its finalizer revokes the lease); else the lease's expiresAt once passed; else "active"
//   approvers  status.approvals[].username; before approvals were recorded one by one, the person the Approved
//              condition's message names ("This was approved by: alice …"), or auto-approval by the operator
//   break-glass status.approvals[].breakGlass, reviewed per status.review
// A deleted request is gone from the cluster, and so is its row: the audit records (JSON lines under "audit" on
// the operator's stdout) and the notifiers' webhooks are the permanent record.
import { ConditionType, Reason, deciderOf, type Condition, type DatabaseAccessRequest } from '../../api/index.ts';
import { decisionOf, findCondition } from './decision.ts';
import { displayRequester, displaySubject, renderTable } from './format.ts';

export type ReportFormat = 'table' | 'json' | 'csv';
export const REPORT_FORMATS: readonly ReportFormat[] = ['table', 'json', 'csv'];

/** How access ended: the request's end, or "active" while it lasts. */
export type AccessEnd = 'active' | 'Revoked' | 'Expired' | 'Deleted';

/**
 * The approval policy's status fields (status.approvals, status.review, status.grant). Optional: requests
 * written before they existed have none, and the report then falls back to the conditions and the lease.
 */
interface PolicyStatus {
  approvals?: { username?: string; approvedAt?: string; message?: string; ttl?: string; breakGlass?: boolean }[];
  review?: { username?: string; reviewedAt?: string; message?: string };
  grant?: { ttl?: string; accessStartedAt?: string; accessEndsAt?: string };
}

/** One request that gave access within the window. Times are RFC 3339 (UTC). */
export interface AccessRow {
  namespace: string;
  request: string;
  roleKind: string;
  /** The role's name, "namespace/name" when it lives in another namespace than the request. */
  role: string;
  /** Who could read the credential: Kind/name (ServiceAccount/ns/name from another namespace). */
  subjects: string[];
  requester: string;
  /** spec.reason: why access was asked for. */
  reason?: string;
  /** The people who approved, in order; empty when the operator auto-approved. */
  approvedBy: string[];
  /** The operator approved it by its role's autoApproval rules. */
  autoApproved: boolean;
  /** Approved by the requester in an emergency (break-glass). */
  breakGlass: boolean;
  /** Who acknowledged a break-glass approval, and when; absent while it awaits review. */
  reviewedBy?: string;
  reviewedAt?: string;
  /** The lease TTL granted (after approvers' shortening, or the break-glass cap), when recorded. */
  ttl?: string;
  from: string;
  /** When access ended; absent while active. */
  until?: string;
  ended: AccessEnd;
  /** The Vault leases the request still names (current, then rotated-out ones): ids, never credentials. */
  leaseIds: string[];
}

export interface ReportWindow {
  /** Start of the window: rows whose access ended before it are left out. */
  since: Date;
  /** Now: the end of the window, and what "active" is judged against. */
  now: Date;
}

/** Milliseconds since the epoch; metadata times are typed Date by the client library but arrive as strings. */
function time(value: string | Date | undefined): number | undefined {
  if (!value) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

function conditionTime(c: Condition | undefined): number | undefined {
  return time(c?.lastTransitionTime ?? c?.lastUpdateTime);
}

function trueCondition(dar: DatabaseAccessRequest, type: string): Condition | undefined {
  const c = findCondition(dar, type);
  return c && (c.status ?? 'True') === 'True' ? c : undefined;
}

/** When access began, or undefined when nothing was ever issued. */
function accessStart(dar: DatabaseAccessRequest, policy: PolicyStatus): number | undefined {
  const granted = time(policy.grant?.accessStartedAt);
  if (granted !== undefined) return granted;
  const st = dar.status;
  const issued = time(st?.lease?.issuedAt);
  const rotated = (st?.previousLeases?.length ?? 0) > 0 || st?.rotation?.requestedAt !== undefined;
  if (!rotated) return issued;
  // Rotated: the current lease is not the first. Access began at the first issuance, soon after approval.
  const decision = decisionOf(dar);
  return decision?.type === ConditionType.Approved ? (conditionTime(decision.condition) ?? issued) : issued;
}

/** When and how access ended, judged at `now`. */
function accessEnd(
  dar: DatabaseAccessRequest,
  policy: PolicyStatus,
  now: number,
): { until?: number; ended: AccessEnd } {
  const revoked = trueCondition(dar, ConditionType.Revoked);
  if (revoked) return { until: conditionTime(revoked), ended: 'Revoked' };
  const expired = trueCondition(dar, ConditionType.Expired);
  if (expired) return { until: conditionTime(expired), ended: 'Expired' };
  const deleting = time(dar.metadata.deletionTimestamp);
  if (deleting !== undefined) return { until: deleting, ended: 'Deleted' };
  // The operator may not have recorded the end yet (it is down, or behind): the lease or the cap says it.
  const ends = [time(dar.status?.lease?.expiresAt), time(policy.grant?.accessEndsAt)].filter(
    (t): t is number => t !== undefined && t <= now,
  );
  if (ends.length > 0) return { until: Math.min(...ends), ended: 'Expired' };
  return { ended: 'active' };
}

function approvers(dar: DatabaseAccessRequest, policy: PolicyStatus): { approvedBy: string[]; autoApproved: boolean } {
  const recorded = (policy.approvals ?? []).map((a) => a.username).filter((u): u is string => !!u);
  if (recorded.length > 0) return { approvedBy: recorded, autoApproved: false };
  const decision = decisionOf(dar);
  if (decision?.type !== ConditionType.Approved) return { approvedBy: [], autoApproved: false };
  if (decision.condition.reason === Reason.AutoApproved) return { approvedBy: [], autoApproved: true };
  const decider = deciderOf(decision.condition.message);
  return { approvedBy: decider ? [decider] : [], autoApproved: false };
}

function roleOf(dar: DatabaseAccessRequest): { roleKind: string; role: string } {
  const ref = dar.spec?.roleRef;
  const name = ref?.name ?? '';
  const role = ref?.namespace && ref.namespace !== dar.metadata.namespace ? `${ref.namespace}/${name}` : name;
  return { roleKind: ref?.kind ?? '', role };
}

/** Break-glass, its review, and the TTL granted: from the approval policy's status fields. */
function policyColumns(policy: PolicyStatus): Pick<AccessRow, 'breakGlass' | 'reviewedBy' | 'reviewedAt' | 'ttl'> {
  const breakGlass = (policy.approvals ?? []).some((a) => a.breakGlass === true);
  const review = breakGlass ? policy.review : undefined;
  return {
    breakGlass,
    ...(review?.username ? { reviewedBy: review.username, reviewedAt: review.reviewedAt } : {}),
    ...(policy.grant?.ttl ? { ttl: policy.grant.ttl } : {}),
  };
}

/** The Vault leases a request names: the current one, then the rotated-out ones. */
function leaseIds(dar: DatabaseAccessRequest): string[] {
  const st = dar.status;
  return [st?.lease?.id, ...(st?.previousLeases ?? []).map((p) => p.id)].filter((id): id is string => !!id);
}

/** The report's row for one request, or undefined when it gave no access within the window. */
export function accessRow(dar: DatabaseAccessRequest, window: ReportWindow): AccessRow | undefined {
  const policy = (dar.status ?? {}) as PolicyStatus;
  const now = window.now.getTime();
  const from = accessStart(dar, policy);
  if (from === undefined || from > now) return undefined;
  const end = accessEnd(dar, policy, now);
  if (end.until !== undefined && end.until < window.since.getTime()) return undefined;
  const ns = dar.metadata.namespace ?? '';
  return {
    namespace: ns,
    request: dar.metadata.name ?? '',
    ...roleOf(dar),
    subjects: (dar.spec?.subjects ?? []).map((s) => displaySubject(s, ns)),
    requester: displayRequester(dar),
    ...(dar.spec?.reason ? { reason: dar.spec.reason } : {}),
    ...approvers(dar, policy),
    ...policyColumns(policy),
    from: iso(from),
    ...(end.until !== undefined ? { until: iso(end.until) } : {}),
    ended: end.ended,
    leaseIds: leaseIds(dar),
  };
}

/** Every request's row, oldest access first (then by namespace and name). */
export function accessRows(requests: readonly DatabaseAccessRequest[], window: ReportWindow): AccessRow[] {
  return requests
    .map((dar) => accessRow(dar, window))
    .filter((r): r is AccessRow => r !== undefined)
    .sort(
      (a, b) =>
        a.from.localeCompare(b.from) || a.namespace.localeCompare(b.namespace) || a.request.localeCompare(b.request),
    );
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * `--since`: a duration back from now ("7d", "36h", "1d12h", "90m", "2w"; s, m, h, d, w) or an RFC 3339 time
 * ("2026-11-01T00:00:00Z"). Returns the window's start, or undefined when the text is neither.
 */
export function parseSince(text: string, now: Date): Date | undefined {
  if (/^(\d+[smhdw])+$/.test(text)) {
    let ms = 0;
    for (const [, n, unit] of text.matchAll(/(\d+)([smhdw])/g)) ms += Number(n) * DURATION_UNITS[unit!]!;
    return new Date(now.getTime() - ms);
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? undefined : new Date(ms);
  }
  return undefined;
}

const CSV_COLUMNS = [
  'namespace',
  'request',
  'roleKind',
  'role',
  'subjects',
  'requester',
  'reason',
  'approvedBy',
  'autoApproved',
  'breakGlass',
  'reviewedBy',
  'reviewedAt',
  'ttl',
  'from',
  'until',
  'ended',
  'leaseIds',
] as const satisfies readonly (keyof AccessRow)[];

/** RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. */
function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function csvValue(v: AccessRow[keyof AccessRow]): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) return v.join(' ');
  return String(v);
}

/** One header line, then one line per row; lists (subjects, approvers, leases) are space-separated. */
export function reportCsv(rows: readonly AccessRow[]): string {
  const lines = [CSV_COLUMNS.join(','), ...rows.map((r) => CSV_COLUMNS.map((c) => csvCell(csvValue(r[c]))).join(','))];
  return lines.map((l) => `${l}\r\n`).join('');
}

/** The JSON document: versioned, with the window it covers, so a stored report says what it is. */
export function reportJson(rows: readonly AccessRow[], window: ReportWindow, scope: { namespace?: string }): string {
  return (
    JSON.stringify(
      {
        apiVersion: 'leasehold.dev/v1',
        kind: 'AccessReport',
        since: iso(window.since.getTime()),
        until: iso(window.now.getTime()),
        ...(scope.namespace ? { namespace: scope.namespace } : { allNamespaces: true }),
        items: rows,
      },
      null,
      2,
    ) + '\n'
  );
}

function breakGlassCell(r: AccessRow): string {
  if (!r.breakGlass) return 'no';
  return r.reviewedBy ? `reviewed-by:${r.reviewedBy}` : 'unreviewed';
}

/** kubectl's table layout; NAMESPACE first with -A; times in UTC, RFC 3339. */
export function reportTable(rows: readonly AccessRow[], opts: { allNamespaces: boolean }): string {
  const headers = ['REQUEST', 'ROLE', 'SUBJECTS', 'REQUESTER', 'APPROVED-BY', 'BREAK-GLASS', 'FROM', 'UNTIL', 'ENDED'];
  const body = rows.map((r) => [
    r.request,
    `${r.roleKind}/${r.role}`,
    r.subjects.join(',') || '<none>',
    r.requester,
    r.autoApproved ? '(auto)' : r.approvedBy.join(',') || '<unknown>',
    breakGlassCell(r),
    r.from,
    r.until ?? 'active',
    r.ended === 'active' ? '-' : r.ended,
  ]);
  if (!opts.allNamespaces) return renderTable(headers, body);
  return renderTable(
    ['NAMESPACE', ...headers],
    body.map((cells, i) => [rows[i]!.namespace, ...cells]),
  );
}

export function renderReport(
  rows: readonly AccessRow[],
  format: ReportFormat,
  window: ReportWindow,
  scope: { namespace?: string },
): string {
  switch (format) {
    case 'json':
      return reportJson(rows, window, scope);
    case 'csv':
      return reportCsv(rows);
    case 'table':
      return reportTable(rows, { allNamespaces: !scope.namespace });
  }
}
