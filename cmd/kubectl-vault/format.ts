// How `kubectl vault get` prints requests: kubectl's table layout (upper-case headers, columns padded with
// three spaces, at least six wide, like its tabwriter) and kubectl's way of printing ages.
import { Annotations, RequestPhase, type DatabaseAccessRequest, type Subject } from '../../api/index.ts';
import { approvalsShown, decisionOf, endOf } from './decision.ts';

const MIN_WIDTH = 6;
const PADDING = 3;

/** Renders rows under headers as kubectl does; every line ends with a newline, none with spaces. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(MIN_WIDTH, ...all.map((r) => (r[i] ?? '').length + PADDING)));
  return all
    .map(
      (r) =>
        r
          .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
          .join('')
          .trimEnd() + '\n',
    )
    .join('');
}

/** apimachinery's duration.HumanDuration, which kubectl uses for AGE. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(ms / 3_600_000);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    return dy === 0 ? `${Math.trunc(hours / 24 / 365)}y` : `${Math.trunc(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

const NONE = '<none>';

/** The phase the controller reports; before it has (or when it lags behind a decision), what the conditions say. */
export function displayPhase(dar: DatabaseAccessRequest): string {
  if (dar.metadata.deletionTimestamp) return 'Terminating';
  const phase = dar.status?.phase;
  const decision = decisionOf(dar);
  if ((!phase || phase === RequestPhase.WaitingForApproval) && decision) return decision.type;
  return phase ?? endOf(dar) ?? RequestPhase.WaitingForApproval;
}

export function displayRole(dar: DatabaseAccessRequest): string {
  const ref = dar.spec?.roleRef;
  if (!ref?.name) return NONE;
  return ref.namespace && ref.namespace !== dar.metadata.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
}

const MAX_SUBJECTS_SHOWN = 3;

export function displaySubject(s: Subject, requestNamespace: string | undefined): string {
  if (s.kind === 'ServiceAccount') {
    const ns = s.namespace || requestNamespace;
    return ns && ns !== requestNamespace ? `ServiceAccount/${ns}/${s.name}` : `ServiceAccount/${s.name}`;
  }
  return `${s.kind}/${s.name}`;
}

export function displaySubjects(dar: DatabaseAccessRequest): string {
  const subjects = dar.spec?.subjects ?? [];
  if (subjects.length === 0) return NONE;
  const shown = subjects.slice(0, MAX_SUBJECTS_SHOWN).map((s) => displaySubject(s, dar.metadata.namespace));
  const more = subjects.length - shown.length;
  return shown.join(',') + (more > 0 ? `,+${more} more` : '');
}

/** Who asked: status.requester as recorded at admission, else the requester annotation. */
export function displayRequester(dar: DatabaseAccessRequest): string {
  const fromStatus = dar.status?.requester?.username;
  if (fromStatus) return fromStatus;
  const annotation = dar.metadata.annotations?.[Annotations.requester];
  if (annotation) {
    try {
      const parsed = JSON.parse(annotation) as { username?: unknown };
      if (typeof parsed?.username === 'string' && parsed.username) return parsed.username;
    } catch {
      // Not JSON: the annotation is the user name itself.
    }
    return annotation;
  }
  return '<unknown>';
}

export function displayAge(dar: DatabaseAccessRequest, now: Date): string {
  const created = dar.metadata.creationTimestamp;
  if (!created) return NONE;
  return humanDuration(now.getTime() - new Date(created).getTime());
}

/** When the lease runs out: "in 59m", or "3m ago" once it has. */
export function displayExpiry(dar: DatabaseAccessRequest, now: Date): string {
  const expiresAt = dar.status?.lease?.expiresAt;
  if (!expiresAt || endOf(dar) === 'Revoked') return NONE;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return NONE;
  const left = at - now.getTime();
  return left >= 0 ? `in ${humanDuration(left)}` : `${humanDuration(-left)} ago`;
}

export function requestTable(
  requests: readonly DatabaseAccessRequest[],
  opts: { allNamespaces: boolean; now: Date },
): string {
  // APPROVALS only where some request needs several (status.requiredApprovals, written by the operator).
  const approvals = requests.some((d) => (d.status?.requiredApprovals ?? 1) > 1);
  const headers = [
    'NAME',
    'PHASE',
    ...(approvals ? ['APPROVALS'] : []),
    'ROLE',
    'SUBJECTS',
    'REQUESTER',
    'AGE',
    'EXPIRES',
  ];
  const rows = requests.map((dar) => [
    dar.metadata.name ?? '',
    displayPhase(dar),
    ...(approvals ? [approvalsShown(dar)] : []),
    displayRole(dar),
    displaySubjects(dar),
    displayRequester(dar),
    displayAge(dar, opts.now),
    displayExpiry(dar, opts.now),
  ]);
  if (!opts.allNamespaces) return renderTable(headers, rows);
  return renderTable(
    ['NAMESPACE', ...headers],
    rows.map((r, i) => [requests[i]!.metadata.namespace ?? '', ...r]),
  );
}
