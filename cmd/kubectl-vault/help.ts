// Help for every command (`kubectl vault COMMAND --help`, `kubectl vault help COMMAND`).
import { Annotations, Reason } from '../../api/index.ts';
import { COMMAND_FLAGS, GLOBAL_FLAGS, flagSpec, type CommandName, type FlagSpec } from './args.ts';

interface CommandHelp {
  usage: string;
  summary: string;
  description: string;
  /** Help for flags whose meaning depends on the command. */
  flags?: Record<string, string>;
  examples: string[];
}

const DECISION_FLAGS = (verb: 'approve' | 'deny', dflt: string): Record<string, string> => ({
  reason:
    `One CamelCase word recorded as the condition's reason (default ${dflt}), e.g. TicketChecked. ` +
    "Must match ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$; Leasehold's own reasons (AutoApproved, ...) are reserved.",
  message:
    `Free text (one line, up to 1024 characters) added to the condition's message after who ${verb === 'approve' ? 'approved' : 'denied'}: ` +
    'why, a ticket, an incident.',
});

export const HELP: Record<CommandName, CommandHelp> = {
  approve: {
    usage:
      'kubectl vault approve databaseaccessrequest|dar NAME... [-n NAMESPACE] [--reason REASON] [--message TEXT] [--ttl DURATION]\n' +
      '  kubectl vault approve dar NAME --break-glass --reason TEXT [--ttl DURATION]\n' +
      '  kubectl vault approve -f FILE [--reason REASON] [--message TEXT]',
    summary: 'Approve database access requests: the operator then issues the credentials.',
    description:
      'Writes the Approved condition (status True) through the status subresource. Its message names who\n' +
      'approved, as the API server knows you (a SelfSubjectReview, never a flag), and its reason is\n' +
      `${Reason.KubectlApprove} unless --reason says otherwise. Words go in --message; --reason takes one CamelCase\n` +
      "word, because a condition's reason must be one.\n\n" +
      'A decision is made once and is permanent: approving a request that is already approved, or was denied,\n' +
      'expired or revoked, is refused. The write is conditional on the request not having changed since it was\n' +
      "read, so two people deciding at once can't both win.\n\n" +
      'Needs get on databaseaccessrequests, patch on databaseaccessrequests/status, and the verb approve on the\n' +
      'role the request names, a PostgresRole, MySQLRole, MariaDBRole or RedisRole (the leasehold-approver\n' +
      "ClusterRole has all three). With Leasehold's\n" +
      'admission policies installed the API server also refuses approving your own request (four eyes), a\n' +
      'request without the reason its role requires, and one that expired waiting (docs/approval.md).\n\n' +
      'Your approval is also recorded in status.approvals (who, when, --message, --ttl). A role with\n' +
      'approval.approvals: N needs N distinct people: each approve adds one ("1 of 2 approvals") and the operator\n' +
      'writes the Approved condition once the last is in; the same person twice is refused. --ttl shortens the\n' +
      'grant (no lease longer than it); longer than the request asks is refused. --break-glass approves your own\n' +
      'request in an emergency, on a role with approval.breakGlass: --reason is then free text and required, the\n' +
      "access ends after the role's breakGlass.maxTTL, and the request stays ReviewRequired until someone else\n" +
      'runs kubectl vault review.',
    flags: {
      ...DECISION_FLAGS('approve', Reason.KubectlApprove),
      reason:
        DECISION_FLAGS('approve', Reason.KubectlApprove).reason! +
        ' With --break-glass: free text, required (why: an incident, a ticket).',
    },
    examples: [
      'kubectl vault approve databaseaccessrequest postgres-cred-rqst -n demo',
      'kubectl vault approve dar app-read app-write -n shop --message "OPS-1234: nightly export"',
      'kubectl vault approve -f postgresAccessRequest.yaml --reason IncidentResponse --message "INC-42"',
      'kubectl vault approve dar postgres-cred-rqst -n demo --ttl 30m',
      'kubectl vault approve dar postgres-cred-rqst -n demo --break-glass --reason "INC-123: primary down"',
    ],
  },
  review: {
    usage: 'kubectl vault review databaseaccessrequest|dar NAME... [-n NAMESPACE] [--message TEXT]',
    summary: 'Acknowledge a break-glass approval: the request is no longer ReviewRequired.',
    description:
      'Writes status.review (you, as the API server knows you, now, and --message) on a request its requester\n' +
      'approved with --break-glass; the operator then sets ReviewRequired to False (reason Reviewed) and records\n' +
      "it in the audit trail. The requester can't review their own; a review is made once.\n\n" +
      'Needs get on databaseaccessrequests, patch on databaseaccessrequests/status and the verb approve on the\n' +
      "request's role.",
    flags: { message: 'Free text (one line, up to 1024 characters): what you checked.' },
    examples: ['kubectl vault review dar postgres-cred-rqst -n demo --message "checked INC-123, access was needed"'],
  },
  deny: {
    usage:
      'kubectl vault deny databaseaccessrequest|dar NAME... [-n NAMESPACE] [--reason REASON] [--message TEXT]\n' +
      '  kubectl vault deny -f FILE [--reason REASON] [--message TEXT]',
    summary: 'Deny database access requests: nothing is ever issued for them.',
    description:
      'Writes the Denied condition (status True) through the status subresource, naming who denied (from the\n' +
      `API server) in its message; the reason is ${Reason.KubectlDeny} unless --reason says otherwise. Denying an\n` +
      'approved request is refused (revoke it instead), as is denying twice.\n\n' +
      'Needs get on databaseaccessrequests, patch on databaseaccessrequests/status, and the verb approve on the\n' +
      'role the request names (a PostgresRole, MySQLRole, MariaDBRole or RedisRole).',
    flags: DECISION_FLAGS('deny', Reason.KubectlDeny),
    examples: ['kubectl vault deny dar postgres-cred-rqst -n demo --message "use the read replica"'],
  },
  revoke: {
    usage: 'kubectl vault revoke databaseaccessrequest|dar NAME... [-n NAMESPACE]\n  kubectl vault revoke -f FILE',
    summary: "End an approved request's access now: the operator revokes the lease.",
    description:
      `Sets the ${Annotations.revokeNow} annotation to the current time. The operator then revokes the\n` +
      'Vault lease (the database login stops working) and the request ends in phase Revoked. Refused for requests\n' +
      'that were never approved, were denied, or have already ended.\n\n' +
      'Needs get and patch on databaseaccessrequests.',
    examples: ['kubectl vault revoke databaseaccessrequest postgres-cred-rqst -n demo'],
  },
  rotate: {
    usage: 'kubectl vault rotate databaseaccessrequest|dar NAME... [-n NAMESPACE]\n  kubectl vault rotate -f FILE',
    summary: 'Have the operator issue fresh credentials for an approved request now.',
    description:
      `Sets the ${Annotations.rotateNow} annotation to the current time; the operator issues a new login,\n` +
      "updates the Secret and revokes the old login after the request's rotationGracePeriod.\n\n" +
      'Needs get and patch on databaseaccessrequests.',
    examples: ['kubectl vault rotate dar postgres-cred-rqst -n demo'],
  },
  get: {
    usage: 'kubectl vault get databaseaccessrequests|dar [NAME...] [-n NAMESPACE | -A] [--pending]',
    summary: 'List database access requests: phase, role, subjects, requester, age and lease expiry.',
    description:
      "PHASE is the operator's; before the operator has seen a decision, the decision itself is shown.\n" +
      'REQUESTER is who created the request, as recorded at admission. EXPIRES is when the current lease runs\n' +
      'out unless renewed. --pending keeps the requests waiting for someone to approve or deny them. APPROVALS\n' +
      '("1 of 2 approvals") appears when a request needs several approvals (the role\'s approval.approvals).',
    examples: ['kubectl vault get dar -n demo', 'kubectl vault get databaseaccessrequests -A --pending'],
  },
  credentials: {
    usage: 'kubectl vault credentials databaseaccessrequest|dar NAME [-n NAMESPACE] [-o env|json|uri]',
    summary: 'Print the credentials issued for a request (if you may read its Secret).',
    description:
      "Reads the Secret the request's status names. Only the request's subjects, and whoever may read\n" +
      'Secrets in the namespace, can. Output formats:\n' +
      "  env   shell assignments for the database's client (the default): for a PostgresRole libpq's names\n" +
      '        (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD); for a MySQLRole or MariaDBRole MYSQL_HOST,\n' +
      '        MYSQL_TCP_PORT, MYSQL_PWD (read by mysql and mariadb), MYSQL_USER, MYSQL_DATABASE; for a RedisRole\n' +
      '        REDIS_HOST, REDIS_PORT, REDIS_USER, REDISCLI_AUTH (read by redis-cli), REDIS_URL\n' +
      '  json  every key of the Secret\n' +
      "  uri   a connection URI: the Secret's uri key, else built (postgresql://, mysql://, redis://; needs host)\n" +
      "The output is the credential itself: don't paste it anywhere it would be kept.",
    flags: { output: 'Output format: env (default), json or uri.' },
    examples: [
      'eval "$(kubectl vault credentials dar postgres-cred-rqst -n demo)" && psql',
      'psql "$(kubectl vault credentials dar postgres-cred-rqst -n demo -o uri)"',
      'eval "$(kubectl vault credentials dar mysql-cred-rqst -n demo)" && mysql -u "$MYSQL_USER"',
      'eval "$(kubectl vault credentials dar redis-cred-rqst -n demo)" && redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --user "$REDIS_USER"',
    ],
  },
  report: {
    usage: 'kubectl vault report [--since 7d] [-n NAMESPACE | -A] [-o table|json|csv]',
    summary: 'Who had access to which database role, from when to when, approved by whom.',
    description:
      'One row per request whose access overlapped the window: from --since (default 7d) until now. FROM is the\n' +
      'first issuance, UNTIL when access ended (revoked, expired, or the request deleted) or "active", ENDED how.\n' +
      'APPROVED-BY names every approver, as the API server authenticated them ("(auto)": the role\'s\n' +
      'autoApproval rules); BREAK-GLASS says whether the requester approved it in an emergency, and who reviewed it.\n\n' +
      'It reads what the cluster still holds: the requests and their status. A deleted request is gone, and so is\n' +
      'its row: keep the operator\'s audit records (JSON lines under "audit" on its stdout) or a notifier\'s webhook\n' +
      'for a permanent record. It reads no Secret and prints no credential.\n\n' +
      'Needs list on databaseaccessrequests.',
    flags: {
      since:
        'Start of the window: a duration back from now (7d, 36h, 1d12h, 90m, 2w) or an RFC 3339 time ' +
        '(2026-11-01T00:00:00Z). Default 7d.',
      output:
        'Output format: table (default), json (a versioned AccessReport document) or csv (RFC 4180, a header line).',
      'all-namespaces': 'Report on requests in every namespace.',
    },
    examples: [
      'kubectl vault report -n demo',
      'kubectl vault report -A --since 30d -o csv > access.csv',
      'kubectl vault report --since 2026-11-01T00:00:00Z -o json',
    ],
  },
  version: {
    usage: 'kubectl vault version',
    summary: "Print the plugin's version.",
    description: 'Prints the version of kubectl-vault and the API version it speaks. Needs no cluster.',
    examples: ['kubectl vault version'],
  },
  help: {
    usage: 'kubectl vault help [COMMAND]',
    summary: 'Help about any command.',
    description: 'Same as kubectl vault COMMAND --help.',
    examples: ['kubectl vault help approve'],
  },
};

const LINE_WIDTH = 110;

/** Greedy word wrap; lines after the first are indented by `indent`. */
export function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

function flagLines(flags: readonly FlagSpec[], overrides: Record<string, string> = {}): string {
  const left = flags.map((f) => `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.value ? ` ${f.value}` : ''}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  const indent = 2 + width;
  return flags
    .map((f, i) => `  ${left[i]!.padEnd(width)}${wrap(overrides[f.name] ?? f.help, LINE_WIDTH - indent, indent)}`)
    .join('\n');
}

export function commandHelp(command: CommandName): string {
  const h = HELP[command];
  const own = COMMAND_FLAGS[command].map(flagSpec);
  const sections = [
    h.summary,
    `Usage:\n  ${h.usage}`,
    h.description,
    own.length ? `Flags:\n${flagLines(own, h.flags)}` : '',
    `Global flags:\n${flagLines(GLOBAL_FLAGS)}`,
    `Examples:\n${h.examples.map((e) => `  ${e}`).join('\n')}`,
  ];
  return sections.filter(Boolean).join('\n\n') + '\n';
}

export function rootHelp(): string {
  const names = Object.keys(HELP) as CommandName[];
  const width = Math.max(...names.map((n) => n.length)) + 3;
  return (
    [
      "kubectl vault: approve, deny, revoke and read Leasehold's database access requests\n" +
        '(DatabaseAccessRequest, engine.kubevault.com/v1alpha1).',
      'Usage:\n  kubectl vault COMMAND [databaseaccessrequest|dar] [NAME...] [flags]',
      `Commands:\n${names.map((n) => `  ${n.padEnd(width)}${HELP[n].summary}`).join('\n')}`,
      `Global flags:\n${flagLines(GLOBAL_FLAGS)}`,
      'Exit codes: 0 done, 1 refused or failed, 2 wrong usage.\n' +
        'Use "kubectl vault COMMAND --help" for more about a command.',
    ].join('\n\n') + '\n'
  );
}
