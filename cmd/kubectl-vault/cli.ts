// `kubectl vault`: parse, dispatch, present. Everything the commands touch outside themselves (the terminal,
// stdin, the environment, the clock, the cluster) comes in through Io, so the whole CLI runs in unit tests
// against a fake API. Returns the exit code: 0 done, 1 refused or failed, 2 wrong usage.
import {
  ConditionType,
  DATABASE_ACCESS_REQUEST,
  ENGINE_GROUP,
  RequestPhase,
  type DatabaseAccessRequest,
  type DatabaseRole,
} from '../../api/index.ts';
import type { PluginApi, UserInfo } from './api.ts';
import { parseArgs, type ActionName, type Invocation } from './args.ts';
import { decodeSecret, engineOfRoleKind, formatCredentials } from './credentials.ts';
import {
  PAST_TENSE,
  approvalsShown,
  decisionOf,
  describeRequest,
  endOf,
  findCondition,
  isPending,
  outcomeFor,
  requiredApprovalsOf,
  type DecisionInput,
} from './decision.ts';
import { ApiCallError, CommandError, ExitCode, UsageError, exitCodeOf, renderError } from './errors.ts';
import { readTargets, type Target } from './files.ts';
import { requestTable } from './format.ts';
import { commandHelp, rootHelp } from './help.ts';
import type { Environment, KubeconfigOptions } from '../../lib/runtime/kubeconfig.ts';
import { versionText } from './version.ts';
import { accessRows, parseSince, renderReport } from './report.ts';

export interface Connection {
  api: PluginApi;
  /** -n, else the context's namespace, else "default". */
  namespace: string;
}

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): string;
  env: Environment;
  now(): Date;
  /** Loads the kubeconfig and readies the API client (only the commands that talk to the cluster call it). */
  connect(opts: KubeconfigOptions): Promise<Connection>;
}

/** How many times a write is re-judged after a conflict (someone else changed the request meanwhile). */
export const MAX_ATTEMPTS = 5;

const QUALIFIED = `${DATABASE_ACCESS_REQUEST.singular}.${ENGINE_GROUP}`;

/**
 * The real cluster. Imported lazily: the Kubernetes client takes half a second to load, which `version`,
 * `--help` and usage errors shouldn't pay.
 */
export function defaultConnect(env: Environment): (opts: KubeconfigOptions) => Promise<Connection> {
  return async (opts) => {
    const [{ loadKubeconfig }, { KubePluginApi }] = await Promise.all([
      import('../../lib/runtime/kubeconfig.ts'),
      import('./api.ts'),
    ]);
    const loaded = loadKubeconfig(opts, env);
    return { api: new KubePluginApi(loaded.kubeConfig), namespace: loaded.namespace };
  };
}

export async function run(argv: readonly string[], io: Io): Promise<number> {
  let inv: Invocation;
  try {
    inv = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(
        `error: ${err.message}\nSee 'kubectl vault${err.command ? ` ${err.command}` : ''} --help' for usage.\n`,
      );
      return ExitCode.usage;
    }
    throw err;
  }
  if (inv.help || inv.command === undefined) {
    io.stdout(inv.command && inv.command !== 'help' ? commandHelp(inv.command) : rootHelp());
    return ExitCode.ok;
  }
  try {
    switch (inv.command) {
      case 'help':
        io.stdout(inv.helpTopic ? commandHelp(inv.helpTopic) : rootHelp());
        return ExitCode.ok;
      case 'version':
        io.stdout(versionText());
        return ExitCode.ok;
      case 'get':
        return await get(inv, io);
      case 'credentials':
        return await credentials(inv, io);
      case 'report':
        return await report(inv, io);
      case 'approve':
      case 'deny':
      case 'review':
      case 'revoke':
      case 'rotate':
        return await act(inv.command, inv, io);
    }
  } catch (err) {
    io.stderr(`error: ${renderError(err)}\n`);
    return exitCodeOf(err);
  }
}

function connect(inv: Invocation, io: Io): Promise<Connection> {
  return io.connect({ kubeconfig: inv.kubeconfig, context: inv.context, namespace: inv.namespace });
}

/** Names (in the namespace in use) or -f objects (in their own namespace, which must agree with an explicit -n). */
function targetsOf(inv: Invocation, io: Io, namespace: string): Target[] {
  if (inv.filenames.length === 0) return inv.names.map((name) => ({ name, namespace, source: 'the command line' }));
  return readTargets(inv.filenames, io.readStdin).map((t) => {
    if (t.namespace && inv.namespace && t.namespace !== inv.namespace) {
      throw new CommandError(
        `the namespace from ${t.source} ("${t.namespace}") does not match the namespace "${inv.namespace}" given with -n`,
      );
    }
    return { ...t, namespace: t.namespace ?? namespace };
  });
}

async function act(action: ActionName, inv: Invocation, io: Io): Promise<number> {
  const { api, namespace } = await connect(inv, io);
  const targets = targetsOf(inv, io, namespace);
  // Who decides comes from the API server, once, before anything is written.
  let identity: UserInfo = { username: '' };
  if (action === 'approve' || action === 'deny' || action === 'review') identity = await api.whoAmI();

  let failed = false;
  for (const target of targets) {
    try {
      const done = await actOn(
        api,
        action,
        target,
        {
          identity,
          reason: inv.reason,
          message: inv.message,
          ttl: inv.ttl,
          breakGlass: inv.breakGlass,
          breakGlassReason: inv.breakGlassReason,
        },
        io,
      );
      io.stdout(`${QUALIFIED}/${target.name} ${pastTense(action, done, inv)}\n`);
    } catch (err) {
      io.stderr(`error: ${renderError(err)}\n`);
      failed = true;
    }
  }
  return failed ? ExitCode.error : ExitCode.ok;
}

async function actOn(
  api: PluginApi,
  action: ActionName,
  target: Target,
  input: Omit<DecisionInput, 'now' | 'role'>,
  io: Io,
): Promise<{ dar: DatabaseAccessRequest; role?: DatabaseRole }> {
  const ns = target.namespace!;
  for (let attempt = 1; ; attempt++) {
    const dar = await api.getRequest(ns, target.name);
    // The approval policy, when the caller may read the role (approvers may): how many approvals, break-glass.
    const role = action === 'approve' ? await roleOf(api, dar) : undefined;
    const outcome = outcomeFor(action, dar, { ...input, role, now: io.now() });
    if (outcome.kind === 'refuse') throw new CommandError(outcome.message);
    try {
      const written = await api.patchRequest(ns, target.name, outcome.patch, outcome.subresource);
      return { dar: written, ...(role ? { role } : {}) };
    } catch (err) {
      // Changed since we read it: read again and judge again (it may have been decided meanwhile).
      if (err instanceof ApiCallError && err.statusCode === 409 && attempt < MAX_ATTEMPTS) continue;
      throw err;
    }
  }
}

/** The request's role, or undefined when it can't be read (not found, or no permission to get it). */
async function roleOf(api: PluginApi, dar: DatabaseAccessRequest): Promise<DatabaseRole | undefined> {
  const ref = dar.spec.roleRef;
  try {
    return await api.getRole(ref.kind ?? 'PostgresRole', ref.namespace ?? dar.metadata.namespace ?? '', ref.name);
  } catch (err) {
    if (err instanceof ApiCallError && (err.statusCode === 403 || err.statusCode === 404)) return undefined;
    throw err;
  }
}

/** What the command prints after the name: "approved", or how far the approvals are. */
function pastTense(
  action: ActionName,
  done: { dar: DatabaseAccessRequest; role?: DatabaseRole },
  inv: Invocation,
): string {
  if (action !== 'approve') return PAST_TENSE[action];
  if (inv.breakGlass)
    return 'approved (break-glass: the operator issues now; the request stays ReviewRequired until someone else reviews it)';
  if (decisionOf(done.dar)) return PAST_TENSE.approve;
  const required = requiredApprovalsOf(done.role, done.dar);
  return `approval recorded (${approvalsShown(done.dar, required)}${required > 1 ? '; the operator approves once all are in' : ''})`;
}

async function get(inv: Invocation, io: Io): Promise<number> {
  const { api, namespace } = await connect(inv, io);
  let requests: DatabaseAccessRequest[];
  let failed = false;
  if (inv.names.length > 0) {
    requests = [];
    for (const name of inv.names) {
      try {
        requests.push(await api.getRequest(namespace, name));
      } catch (err) {
        io.stderr(`error: ${renderError(err)}\n`);
        failed = true;
      }
    }
  } else {
    requests = await api.listRequests(inv.allNamespaces ? undefined : namespace);
    requests.sort(
      (a, b) =>
        (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
        (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
    );
  }
  if (inv.pending) requests = requests.filter(isPending);
  if (requests.length > 0) io.stdout(requestTable(requests, { allNamespaces: inv.allNamespaces, now: io.now() }));
  else if (!failed) {
    const what = inv.pending ? 'No pending requests found' : 'No resources found';
    io.stderr(`${what}${inv.allNamespaces ? '' : ` in ${namespace} namespace`}.\n`);
  }
  return failed ? ExitCode.error : ExitCode.ok;
}

async function credentials(inv: Invocation, io: Io): Promise<number> {
  const { api, namespace } = await connect(inv, io);
  const dar = await api.getRequest(namespace, inv.names[0]!);
  const what = describeRequest(dar);
  const ended = endOf(dar);
  if (ended === 'Revoked') throw new CommandError(`${what} was revoked: its credentials no longer work`);
  if (ended === 'Expired') throw new CommandError(`${what} has expired: its credentials no longer work`);
  const decision = decisionOf(dar);
  if (decision?.type === ConditionType.Denied) throw new CommandError(`${what} was denied: nothing was issued`);
  const secretName = dar.status?.secret?.name;
  if (!secretName) {
    const failed = findCondition(dar, ConditionType.Failed);
    if (dar.status?.phase === RequestPhase.Failed || failed?.status === 'True') {
      throw new CommandError(`${what} failed${failed?.message ? `: ${failed.message}` : ''}; nothing was issued`);
    }
    throw new CommandError(
      decision
        ? `${what} is approved, but no credentials have been issued yet${dar.status?.phase ? ` (phase ${dar.status.phase})` : ''}; try again in a moment`
        : `${what} is waiting for approval: nothing has been issued yet`,
    );
  }
  const secret = await api.getSecret(namespace, secretName);
  io.stdout(formatCredentials(decodeSecret(secret), inv.output, engineOfRoleKind(dar.spec.roleRef.kind)));
  return ExitCode.ok;
}

/** `report`: every request in scope, judged against the window; reads no Secret. */
async function report(inv: Invocation, io: Io): Promise<number> {
  const { api, namespace } = await connect(inv, io);
  const now = io.now();
  const window = { since: parseSince(inv.since, now)!, now };
  const scope = inv.allNamespaces ? {} : { namespace };
  const rows = accessRows(await api.listRequests(scope.namespace), window);
  if (rows.length === 0 && inv.reportFormat === 'table') {
    io.stderr(`No access since ${window.since.toISOString()}${scope.namespace ? ` in ${namespace} namespace` : ''}.\n`);
    return ExitCode.ok;
  }
  io.stdout(renderReport(rows, inv.reportFormat, window, scope));
  return ExitCode.ok;
}
