// Errors as a person wants to read them. Three kinds reach the top: a UsageError (the command line is wrong:
// exit 2), a CommandError (we understood, but it can't or mustn't be done: exit 1), and an ApiCallError (the
// API server said no), which is rendered from what we asked for and the server's Status, never as a stack
// trace, never with request bodies or headers.

export const ExitCode = { ok: 0, error: 1, usage: 2 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class UsageError extends Error {
  /** The command whose help the user should look at, if known. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** A refusal or failure that is fully described by its message (exit 1). */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/** What the plugin asked the API server: enough to say which permission was missing. */
export interface ApiCall {
  /** The RBAC verb: get, list, patch, create. */
  verb: string;
  /** Plural resource, e.g. databaseaccessrequests, secrets, selfsubjectreviews. */
  resource: string;
  /** API group ('' for the core group). */
  group: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export class ApiCallError extends Error {
  readonly call: ApiCall;
  /** 0 when no HTTP answer came back (connection refused, timeout, TLS). */
  readonly statusCode: number;
  /** The Kubernetes Status reason (Forbidden, NotFound, Conflict...), or ''. */
  readonly reason: string;
  /** The Kubernetes Status message, or a description of the transport failure. */
  readonly detail: string;
  constructor(call: ApiCall, statusCode: number, reason: string, detail: string) {
    super(
      `${call.verb} ${describeResource(call)}: ${statusCode ? `HTTP ${statusCode}` : 'no answer'}${reason ? ` ${reason}` : ''}${detail ? `: ${detail}` : ''}`,
    );
    this.name = 'ApiCallError';
    this.call = call;
    this.statusCode = statusCode;
    this.reason = reason;
    this.detail = detail;
  }
}

function describeResource(call: ApiCall): string {
  return call.subresource ? `${call.resource}/${call.subresource}` : call.resource;
}

function where(namespace: string | undefined): string {
  return namespace ? ` in namespace ${namespace}` : ' at the cluster scope';
}

/** RBAC's refusal: `User "alice" cannot patch resource "databaseaccessrequests/status" in API group "…" in the namespace "demo"`. */
const RBAC_DENIAL =
  /cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)"|( at the cluster scope))?/;

/** One line (or a few) for the person at the terminal. */
export function renderApiError(err: ApiCallError): string {
  const { call } = err;
  const kind = describeResource(call);
  const named = call.name ? ` "${call.name}"` : '';
  switch (err.statusCode) {
    case 0:
      return `cannot reach the Kubernetes API server: ${err.detail || 'no answer'}`;
    case 401:
      return 'the API server does not know who you are (401 Unauthorized): your kubeconfig credentials are missing, wrong or expired';
    case 403: {
      const m = RBAC_DENIAL.exec(err.detail);
      if (m) {
        const [, verb, resource, , ns] = m;
        return `you may not ${verb} ${resource}${ns ? ` in namespace ${ns}` : ' at the cluster scope'} (forbidden)${hint(resource!)}`;
      }
      if (err.detail && !/\bis forbidden: User "/.test(err.detail)) {
        // Not RBAC: an admission policy or webhook refused the request; its own words are the explanation.
        return `the API server refused to ${call.verb} ${kind}${named}${where(call.namespace)}: ${err.detail}`;
      }
      return `you may not ${call.verb} ${kind}${where(call.namespace)} (forbidden)${hint(kind)}`;
    }
    case 404:
      if (!err.reason) {
        // A 404 without a Status object: the API itself is missing, not the object.
        return `the API server does not serve ${kind} (${call.group || 'core'}): is Leasehold installed (its CRDs applied)?`;
      }
      return `${singular(call.resource)}${named} not found${where(call.namespace)}`;
    case 409:
      return `${singular(call.resource)}${named}${where(call.namespace)} was changed by someone else at the same time; try again`;
    case 422:
      return `the API server rejected the change to ${kind}${named}${where(call.namespace)}: ${err.detail || 'invalid'}`;
    case 429:
      return 'the API server is too busy (429 Too Many Requests); try again in a moment';
    default:
      return (
        `${call.verb} ${kind}${named}${where(call.namespace)} failed: ${err.statusCode >= 500 ? 'server error ' : ''}` +
        `HTTP ${err.statusCode}${err.reason ? ` ${err.reason}` : ''}${err.detail ? `: ${err.detail}` : ''}`
      );
  }
}

/** Who usually grants what was missing. */
function hint(resource: string): string {
  if (resource === 'databaseaccessrequests/status')
    return '; deciding on requests takes the leasehold-approver ClusterRole';
  if (resource === 'secrets')
    return "; only the request's subjects (and whoever may read Secrets there) can read its credentials";
  return '';
}

const SINGULAR: Record<string, string> = {
  databaseaccessrequests: 'databaseaccessrequest',
  secrets: 'secret',
  selfsubjectreviews: 'selfsubjectreview',
};

function singular(plural: string): string {
  return SINGULAR[plural] ?? plural.replace(/s$/, '');
}

/** Any error, as the line after "error: ". Unexpected errors keep only their message (no stack). */
export function renderError(err: unknown): string {
  if (err instanceof ApiCallError) return renderApiError(err);
  if (err instanceof UsageError || err instanceof CommandError) return err.message;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.message}${typeof code === 'string' ? ` (${code})` : ''}`;
  }
  return String(err);
}

export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof UsageError ? ExitCode.usage : ExitCode.error;
}
