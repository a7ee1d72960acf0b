// Command-line parsing for `kubectl vault`, kubectl-style (pflag): flags anywhere among the arguments,
// `--flag value`, `--flag=value`, `-n value`, `-nvalue`, `-n=value`, combined short booleans (`-Ah`), `--` ends
// the flags, a repeated single-value flag keeps its last value, and `-f` takes comma-separated lists and
// repeats. Parsing is pure: it returns an Invocation or throws a UsageError (exit code 2).
import {
  DATABASE_ACCESS_REQUEST,
  ENGINE_GROUP,
  ENGINE_VERSION,
  Reason,
  isDuration,
  parseDurationSeconds,
} from '../../api/index.ts';
import { UsageError } from './errors.ts';
import { REPORT_FORMATS, parseSince, type ReportFormat } from './report.ts';

export const COMMANDS = [
  'approve',
  'deny',
  'review',
  'revoke',
  'rotate',
  'get',
  'credentials',
  'report',
  'version',
  'help',
] as const;
export type CommandName = (typeof COMMANDS)[number];

/** The commands that change a request: a decision, or an annotation the operator acts on. */
export type ActionName = 'approve' | 'deny' | 'review' | 'revoke' | 'rotate';
export const ACTIONS: readonly ActionName[] = ['approve', 'deny', 'review', 'revoke', 'rotate'];

export type OutputFormat = 'env' | 'json' | 'uri';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['env', 'json', 'uri'];

type FlagKind = 'bool' | 'string' | 'list';

export interface FlagSpec {
  /** Long name without dashes. */
  readonly name: string;
  readonly short?: string;
  readonly kind: FlagKind;
  /** Shown in help after the flag, e.g. NAMESPACE. */
  readonly value?: string;
  readonly help: string;
}

export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'kubeconfig',
    kind: 'string',
    value: 'FILE',
    help: 'Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).',
  },
  {
    name: 'context',
    kind: 'string',
    value: 'NAME',
    help: 'The kubeconfig context to use (default: its current-context).',
  },
  {
    name: 'namespace',
    short: 'n',
    kind: 'string',
    value: 'NAMESPACE',
    help: 'Namespace of the requests (default: the context\'s namespace, else "default").',
  },
  { name: 'help', short: 'h', kind: 'bool', help: 'Show help for the command.' },
];

const FLAG_SPECS: Record<string, FlagSpec> = {
  reason: { name: 'reason', kind: 'string', value: 'REASON', help: '' },
  message: { name: 'message', kind: 'string', value: 'TEXT', help: '' },
  ttl: {
    name: 'ttl',
    kind: 'string',
    value: 'DURATION',
    help:
      'Shorten the grant: no lease issued for the request lasts longer than this (e.g. 30m). Longer than the ' +
      'request asks is refused.',
  },
  'break-glass': {
    name: 'break-glass',
    kind: 'bool',
    help:
      'Approve your own request in an emergency, if its role has approval.breakGlass: --reason TEXT is then ' +
      "required (free text: an incident), the access is capped at the role's breakGlass.maxTTL, and the request " +
      'stays ReviewRequired until someone else runs kubectl vault review.',
  },
  filename: {
    name: 'filename',
    short: 'f',
    kind: 'list',
    value: 'FILE',
    help: 'Files (YAML or JSON, "-" for stdin, or a directory) with the requests to act on, like kubectl -f.',
  },
  'all-namespaces': { name: 'all-namespaces', short: 'A', kind: 'bool', help: 'List requests in every namespace.' },
  pending: {
    name: 'pending',
    kind: 'bool',
    help: 'Only requests still waiting for a decision (neither approved nor denied, and not expired or revoked).',
  },
  output: { name: 'output', short: 'o', kind: 'string', value: 'FORMAT', help: '' },
  since: { name: 'since', kind: 'string', value: 'WHEN', help: '' },
};

/** The flags each command accepts besides the global ones. */
export const COMMAND_FLAGS: Record<CommandName, readonly string[]> = {
  approve: ['reason', 'message', 'ttl', 'break-glass', 'filename'],
  review: ['message', 'filename'],
  deny: ['reason', 'message', 'filename'],
  revoke: ['filename'],
  rotate: ['filename'],
  get: ['all-namespaces', 'pending'],
  credentials: ['output'],
  report: ['since', 'all-namespaces', 'output'],
  version: [],
  help: [],
};

export function flagSpec(name: string): FlagSpec {
  const spec = FLAG_SPECS[name] ?? GLOBAL_FLAGS.find((f) => f.name === name);
  if (!spec) throw new Error(`no flag ${name}`);
  return spec;
}

const ALL_FLAGS: readonly FlagSpec[] = [...GLOBAL_FLAGS, ...Object.values(FLAG_SPECS)];

/** What the words on the command line asked for, before anything is looked up. */
export interface Invocation {
  /** Undefined when no command was given (`kubectl vault`, `kubectl vault --help`). */
  command?: CommandName;
  help: boolean;
  /** For `help COMMAND`. */
  helpTopic?: CommandName;
  kubeconfig?: string;
  context?: string;
  /** Only when given with -n/--namespace. */
  namespace?: string;
  allNamespaces: boolean;
  pending: boolean;
  names: string[];
  filenames: string[];
  reason?: string;
  message?: string;
  /** approve --ttl. */
  ttl?: string;
  /** approve --break-glass (then `breakGlassReason` holds --reason's free text and `reason` is unset). */
  breakGlass?: boolean;
  breakGlassReason?: string;
  output: OutputFormat;
  /** report: --since as given (a duration back from now, or an RFC 3339 time; checked by parseArgs). */
  since: string;
  /** report: -o. */
  reportFormat: ReportFormat;
}

/** How far back `report` looks without --since. */
export const DEFAULT_SINCE = '7d';

/** Every spelling kubectl accepts for the one resource the plugin serves. */
export const RESOURCE_NAMES: ReadonlySet<string> = new Set(
  [
    DATABASE_ACCESS_REQUEST.singular,
    DATABASE_ACCESS_REQUEST.plural,
    ...DATABASE_ACCESS_REQUEST.shortNames,
    DATABASE_ACCESS_REQUEST.kind.toLowerCase(),
  ].flatMap((n) => [n, `${n}.${ENGINE_GROUP}`, `${n}.${ENGINE_VERSION}.${ENGINE_GROUP}`]),
);

const RESOURCE_HINT = `${DATABASE_ACCESS_REQUEST.singular} (or ${DATABASE_ACCESS_REQUEST.plural}, ${DATABASE_ACCESS_REQUEST.shortNames.join(', ')})`;

/** metav1.Condition's reason pattern (CamelCase word). */
export const CONDITION_REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
export const MAX_REASON = 1024;
export const MAX_MESSAGE = 1024;

interface Raw {
  positionals: string[];
  flags: Map<string, string | boolean | string[]>;
}

function tokenize(argv: readonly string[]): Raw {
  const positionals: string[] = [];
  const flags = new Map<string, string | boolean | string[]>();
  const set = (spec: FlagSpec, value: string | boolean) => {
    if (spec.kind === 'list') {
      const list = (flags.get(spec.name) as string[] | undefined) ?? [];
      list.push(
        ...String(value)
          .split(',')
          .filter((v) => v !== ''),
      );
      flags.set(spec.name, list);
    } else flags.set(spec.name, value);
  };
  const boolValue = (spec: FlagSpec, text: string, shown: string): boolean => {
    if (text === 'true') return true;
    if (text === 'false') return false;
    throw new UsageError(`invalid argument "${text}" for "${shown}" flag: want true or false`);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      const spec = ALL_FLAGS.find((f) => f.name === name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`);
      if (spec.kind === 'bool') set(spec, eq >= 0 ? boolValue(spec, arg.slice(eq + 1), `--${name}`) : true);
      else if (eq >= 0) set(spec, arg.slice(eq + 1));
      else if (i + 1 < argv.length) set(spec, argv[++i]!);
      else throw new UsageError(`flag needs an argument: --${name}`);
      continue;
    }
    if (arg.startsWith('-') && arg !== '-') {
      // A cluster of short flags: booleans may be combined; a value-taking one ends the cluster.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const spec = ALL_FLAGS.find((f) => f.short === letter);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${letter}' in ${arg}`);
        const rest = arg.slice(j + 1);
        if (spec.kind === 'bool') {
          if (rest.startsWith('=')) {
            set(spec, boolValue(spec, rest.slice(1), `-${letter}`));
            break;
          }
          set(spec, true);
          continue;
        }
        if (rest !== '') set(spec, rest.startsWith('=') ? rest.slice(1) : rest);
        else if (i + 1 < argv.length) set(spec, argv[++i]!);
        else throw new UsageError(`flag needs an argument: '${letter}' in -${letter}`);
        break;
      }
      continue;
    }
    positionals.push(arg);
  }
  return { positionals, flags };
}

function str(raw: Raw, name: string): string | undefined {
  const v = raw.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

function bool(raw: Raw, name: string): boolean {
  return raw.flags.get(name) === true;
}

/** Parses argv (without the program name). Throws UsageError for anything kubectl would call a usage error. */
export function parseArgs(argv: readonly string[]): Invocation {
  const raw = tokenize(argv);
  const help = bool(raw, 'help');
  const [first, ...rest] = raw.positionals;
  const base: Invocation = {
    help,
    allNamespaces: false,
    pending: false,
    names: [],
    filenames: [],
    output: 'env',
    since: DEFAULT_SINCE,
    reportFormat: 'table',
    kubeconfig: str(raw, 'kubeconfig'),
    context: str(raw, 'context'),
    namespace: str(raw, 'namespace'),
  };
  if (first === undefined) {
    const extra = [...raw.flags.keys()].filter((f) => !GLOBAL_FLAGS.some((g) => g.name === f));
    if (extra.length > 0) throw new UsageError(`flag --${extra[0]} needs a command`);
    return base;
  }
  if (!(COMMANDS as readonly string[]).includes(first)) {
    throw new UsageError(`unknown command "${first}" for "kubectl vault"`);
  }
  const command = first as CommandName;
  const inv: Invocation = { ...base, command };

  for (const flag of raw.flags.keys()) {
    if (GLOBAL_FLAGS.some((g) => g.name === flag) || COMMAND_FLAGS[command].includes(flag)) continue;
    const spec = flagSpec(flag);
    throw new UsageError(
      `unknown flag: --${flag}${spec.short ? ` (-${spec.short})` : ''} for "kubectl vault ${command}"`,
      command,
    );
  }
  // --help wins over everything that would otherwise be wrong with the arguments, as with kubectl.
  if (help) return inv;

  if (inv.namespace !== undefined && inv.namespace === '')
    throw new UsageError('--namespace must not be empty', command);
  if (inv.context !== undefined && inv.context === '') throw new UsageError('--context must not be empty', command);
  if (inv.kubeconfig !== undefined && inv.kubeconfig === '')
    throw new UsageError('--kubeconfig must not be empty', command);

  switch (command) {
    case 'help': {
      if (rest.length > 1) throw new UsageError('help takes at most one command', command);
      const topic = rest[0];
      if (topic !== undefined) {
        if (!(COMMANDS as readonly string[]).includes(topic))
          throw new UsageError(`unknown command "${topic}" for "kubectl vault"`);
        inv.helpTopic = topic as CommandName;
      }
      return inv;
    }
    case 'version':
      if (rest.length > 0) throw new UsageError(`version takes no arguments, got "${rest.join(' ')}"`, command);
      return inv;
    case 'approve':
    case 'deny':
    case 'review':
    case 'revoke':
    case 'rotate': {
      inv.filenames = (raw.flags.get('filename') as string[] | undefined) ?? [];
      if (raw.flags.has('filename') && inv.filenames.length === 0)
        throw new UsageError('--filename (-f) must name a file', command);
      const names = resourceNames(rest, command, inv.filenames.length > 0);
      if (inv.filenames.length > 0 && names.length > 0) {
        throw new UsageError('give either names or -f FILE, not both', command);
      }
      if (inv.filenames.length === 0 && names.length === 0) {
        throw new UsageError(`name at least one ${DATABASE_ACCESS_REQUEST.singular} (or use -f FILE)`, command);
      }
      inv.names = names;
      if (command === 'approve' && bool(raw, 'break-glass')) {
        inv.breakGlass = true;
        const why = str(raw, 'reason')?.trim();
        if (!why)
          throw new UsageError(
            '--break-glass needs --reason TEXT: why you approve your own request (an incident, a ticket)',
            command,
          );
        inv.breakGlassReason = decisionMessage(why, command);
        inv.message = decisionMessage(str(raw, 'message'), command);
      } else if (command === 'approve' || command === 'deny') {
        inv.reason = decisionReason(str(raw, 'reason'), command);
        inv.message = decisionMessage(str(raw, 'message'), command);
      }
      if (command === 'review') inv.message = decisionMessage(str(raw, 'message'), 'approve');
      const ttl = str(raw, 'ttl');
      if (ttl !== undefined) {
        if (!isDuration(ttl) || parseDurationSeconds(ttl) < 1)
          throw new UsageError(`--ttl must be a duration of at least 1s, e.g. 30m or 1h (got "${ttl}")`, command);
        inv.ttl = ttl;
      }
      return inv;
    }
    case 'get': {
      inv.allNamespaces = bool(raw, 'all-namespaces');
      inv.pending = bool(raw, 'pending');
      inv.names = resourceNames(rest, command, false);
      if (inv.allNamespaces && inv.names.length > 0) {
        throw new UsageError(
          "a request can't be looked up by name across all namespaces: drop -A or the names",
          command,
        );
      }
      return inv;
    }
    case 'report': {
      if (rest.length > 0) throw new UsageError(`report takes no arguments, got "${rest.join(' ')}"`, command);
      inv.allNamespaces = bool(raw, 'all-namespaces');
      if (inv.allNamespaces && inv.namespace !== undefined)
        throw new UsageError('give either -n NAMESPACE or -A, not both', command);
      inv.since = str(raw, 'since') ?? DEFAULT_SINCE;
      // Checked against the epoch: only the shape matters here; the window is computed at run time.
      if (!parseSince(inv.since, new Date(0)))
        throw new UsageError(
          `--since "${inv.since}" is neither a duration (7d, 36h, 1d12h, 90m, 2w) nor an RFC 3339 time (2026-11-01T00:00:00Z)`,
          command,
        );
      const format = str(raw, 'output') ?? 'table';
      if (!(REPORT_FORMATS as readonly string[]).includes(format))
        throw new UsageError(`unknown output format "${format}": use one of ${REPORT_FORMATS.join(', ')}`, command);
      inv.reportFormat = format as ReportFormat;
      return inv;
    }
    case 'credentials': {
      const names = resourceNames(rest, command, false);
      if (names.length !== 1) throw new UsageError(`name exactly one ${DATABASE_ACCESS_REQUEST.singular}`, command);
      inv.names = names;
      const output = str(raw, 'output') ?? 'env';
      if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) {
        throw new UsageError(`unknown output format "${output}": use one of ${OUTPUT_FORMATS.join(', ')}`, command);
      }
      inv.output = output as OutputFormat;
      return inv;
    }
  }
}

/**
 * `TYPE NAME...` or `TYPE/NAME...`, with TYPE any spelling of databaseaccessrequest. With -f the type may
 * be left out. Returns the names.
 */
function resourceNames(args: string[], command: CommandName, typeOptional: boolean): string[] {
  if (args.length === 0) {
    if (typeOptional) return [];
    throw new UsageError(`name the resource type: ${RESOURCE_HINT}`, command);
  }
  if (args[0]!.includes('/')) {
    return args.map((a) => {
      const slash = a.indexOf('/');
      if (slash < 0) throw new UsageError(`"${a}": when one argument is TYPE/NAME, all must be`, command);
      checkType(a.slice(0, slash), command);
      return checkName(a.slice(slash + 1), command);
    });
  }
  checkType(args[0]!, command);
  return args.slice(1).map((n) => checkName(n, command));
}

function checkType(type: string, command: CommandName): void {
  if (!RESOURCE_NAMES.has(type.toLowerCase())) {
    throw new UsageError(`unknown resource type "${type}": kubectl vault only handles ${RESOURCE_HINT}`, command);
  }
}

function checkName(name: string, command: CommandName): string {
  if (name === '' || name.includes('/')) throw new UsageError(`"${name}" is not a valid name`, command);
  return name;
}

/** The reasons Leasehold itself writes are reserved, so nobody can pass off a person's decision as, say, AutoApproved. */
function reservedReasons(command: 'approve' | 'deny'): Set<string> {
  const own = command === 'approve' ? Reason.KubectlApprove : Reason.KubectlDeny;
  return new Set(Object.values(Reason).filter((r) => r !== own));
}

function decisionReason(reason: string | undefined, command: 'approve' | 'deny'): string | undefined {
  if (reason === undefined) return undefined;
  if (reason.length > MAX_REASON || !CONDITION_REASON.test(reason)) {
    throw new UsageError(
      `--reason must be one CamelCase word (letters, digits, _ , :), e.g. --reason TicketChecked; ` +
        `it becomes the condition's reason. Put free text in --message, e.g. --message "${clip(reason)}"`,
      command,
    );
  }
  if (reservedReasons(command).has(reason)) {
    throw new UsageError(`--reason ${reason} is reserved for Leasehold itself; choose another word`, command);
  }
  return reason;
}

function decisionMessage(message: string | undefined, command: 'approve' | 'deny'): string | undefined {
  if (message === undefined) return undefined;
  const text = message.trim();
  if (text === '') throw new UsageError('--message must not be empty', command);
  if (text.length > MAX_MESSAGE) throw new UsageError(`--message is limited to ${MAX_MESSAGE} characters`, command);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(text))
    throw new UsageError('--message must be one line of text, without control characters', command);
  return text;
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').replace(/"/g, "'");
  return oneLine.length > 60 ? `${oneLine.slice(0, 57)}...` : oneLine;
}
