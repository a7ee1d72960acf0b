import test from 'ava';
import { parseArgs, RESOURCE_NAMES } from '../../../cmd/kubectl-vault/args.ts';
import { UsageError } from '../../../cmd/kubectl-vault/errors.ts';

const usage = (argv: string[]) => {
  const err = (() => {
    try {
      parseArgs(argv);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  if (!(err instanceof UsageError)) throw new Error(`expected a UsageError for ${argv.join(' ')}`);
  return err;
};

test('approve takes the resource type, several names and the namespace in any order', (t) => {
  const inv = parseArgs(['approve', 'databaseaccessrequest', 'a', '-n', 'demo', 'b']);
  t.is(inv.command, 'approve');
  t.deepEqual(inv.names, ['a', 'b']);
  t.is(inv.namespace, 'demo');
});

test('every spelling of the resource is accepted, and TYPE/NAME', (t) => {
  for (const type of [
    'databaseaccessrequest',
    'databaseaccessrequests',
    'dar',
    'DAR',
    'databaseaccessrequest.engine.kubevault.com',
    'dar.v1alpha1.engine.kubevault.com',
  ]) {
    t.deepEqual(parseArgs(['deny', type, 'x']).names, ['x'], type);
  }
  t.deepEqual(parseArgs(['deny', 'dar/x', 'databaseaccessrequest/y']).names, ['x', 'y']);
  t.true(RESOURCE_NAMES.has('databaseaccessrequests.engine.kubevault.com'));
});

test('flag forms: --flag=value, --flag value, -nvalue, -n=value, last one wins', (t) => {
  t.is(parseArgs(['get', 'dar', '--namespace=a']).namespace, 'a');
  t.is(parseArgs(['get', 'dar', '--namespace', 'b']).namespace, 'b');
  t.is(parseArgs(['get', 'dar', '-nc']).namespace, 'c');
  t.is(parseArgs(['get', 'dar', '-n=d']).namespace, 'd');
  t.is(parseArgs(['get', 'dar', '-n', 'e', '-n', 'f']).namespace, 'f');
  t.is(parseArgs(['-n', 'g', 'get', 'dar']).namespace, 'g');
  const inv = parseArgs(['get', 'dar', '--kubeconfig', '/k', '--context=c']);
  t.is(inv.kubeconfig, '/k');
  t.is(inv.context, 'c');
});

test('boolean flags, combined short flags and --flag=false', (t) => {
  const inv = parseArgs(['get', 'dar', '-A', '--pending']);
  t.true(inv.allNamespaces);
  t.true(inv.pending);
  t.true(parseArgs(['get', 'dar', '-Ah']).help);
  t.false(parseArgs(['get', 'dar', '--all-namespaces=false']).allNamespaces);
  t.regex(usage(['get', 'dar', '--pending=maybe']).message, /want true or false/);
});

test('-f repeats and splits on commas; names and -f are exclusive; the type is optional with -f', (t) => {
  t.deepEqual(parseArgs(['approve', '-f', 'a.yaml,b.yaml', '-f', 'c.yaml']).filenames, ['a.yaml', 'b.yaml', 'c.yaml']);
  t.deepEqual(parseArgs(['approve', 'dar', '-f', '-']).filenames, ['-']);
  t.regex(usage(['approve', 'dar', 'x', '-f', 'a.yaml']).message, /either names or -f/);
});

test('-- ends the flags', (t) => {
  t.deepEqual(parseArgs(['approve', 'dar', '--', '-weird']).names, ['-weird']);
});

test('usage errors: unknown command, flag, resource type; missing names and values', (t) => {
  t.regex(usage(['frobnicate']).message, /unknown command "frobnicate"/);
  t.regex(usage(['get', 'dar', '--bogus']).message, /unknown flag: --bogus/);
  t.regex(usage(['get', 'dar', '-z']).message, /unknown shorthand flag: 'z'/);
  t.regex(usage(['approve', 'pods', 'x']).message, /unknown resource type "pods"/);
  t.regex(usage(['approve', 'dar']).message, /name at least one/);
  t.regex(usage(['approve']).message, /name the resource type/);
  t.regex(usage(['approve', 'dar', 'x', '--reason']).message, /flag needs an argument: --reason/);
  t.regex(usage(['get', 'dar', '-n']).message, /flag needs an argument/);
  t.regex(usage(['credentials', 'dar']).message, /exactly one/);
  t.regex(usage(['credentials', 'dar', 'a', 'b']).message, /exactly one/);
  t.regex(usage(['credentials', 'dar', 'a', '-o', 'yaml']).message, /unknown output format "yaml"/);
  t.regex(usage(['version', 'extra']).message, /no arguments/);
  t.regex(usage(['get', 'dar', 'x', '-A']).message, /across all namespaces/);
  t.regex(usage(['get', 'dar', '-n', '']).message, /must not be empty/);
});

test('flags belong to their commands: --reason on get, -A on approve, -o on approve are usage errors', (t) => {
  t.is(usage(['get', 'dar', '--reason', 'X']).command, 'get');
  t.regex(usage(['approve', 'dar', 'x', '-A']).message, /unknown flag: --all-namespaces/);
  t.regex(usage(['approve', 'dar', 'x', '-o', 'json']).message, /unknown flag: --output/);
  t.regex(usage(['revoke', 'dar', 'x', '--message', 'm']).message, /unknown flag: --message/);
});

test('--help wins over incomplete arguments, on every command and without one', (t) => {
  for (const c of ['approve', 'deny', 'revoke', 'rotate', 'get', 'credentials', 'version', 'help']) {
    const inv = parseArgs([c, '--help']);
    t.true(inv.help, c);
    t.is(inv.command as string | undefined, c);
  }
  t.true(parseArgs(['-h']).help);
  t.is(parseArgs([]).command, undefined);
  t.is(parseArgs(['help', 'approve']).helpTopic, 'approve');
  t.regex(usage(['help', 'nope']).message, /unknown command "nope"/);
});

test('--reason is one CamelCase word (the condition reason); free text is sent to --message', (t) => {
  t.is(parseArgs(['approve', 'dar', 'x', '--reason', 'TicketChecked']).reason, 'TicketChecked');
  t.is(parseArgs(['approve', 'dar', 'x', '--reason', 'Ops:Ticket_1']).reason, 'Ops:Ticket_1');
  const err = usage(['approve', 'dar', 'x', '--reason', 'ticket OPS-1 checked']);
  t.regex(err.message, /one CamelCase word/);
  t.regex(err.message, /--message "ticket OPS-1 checked"/);
  t.regex(usage(['approve', 'dar', 'x', '--reason', 'Trailing:']).message, /CamelCase/);
  t.regex(usage(['approve', 'dar', 'x', '--reason', '1Digit']).message, /CamelCase/);
  t.regex(usage(['approve', 'dar', 'x', '--reason', '']).message, /CamelCase/);
});

test("Leasehold's own reasons are reserved: nobody can pass a person's approval off as AutoApproved", (t) => {
  t.regex(usage(['approve', 'dar', 'x', '--reason', 'AutoApproved']).message, /reserved/);
  t.regex(usage(['approve', 'dar', 'x', '--reason', 'KubectlDeny']).message, /reserved/);
  t.regex(usage(['deny', 'dar', 'x', '--reason', 'KubectlApprove']).message, /reserved/);
  t.is(parseArgs(['approve', 'dar', 'x', '--reason', 'KubectlApprove']).reason, 'KubectlApprove');
});

test('--message is trimmed, one line, bounded', (t) => {
  t.is(parseArgs(['deny', 'dar', 'x', '--message', '  use the replica ']).message, 'use the replica');
  t.regex(usage(['deny', 'dar', 'x', '--message', 'a\nb']).message, /one line/);
  t.regex(usage(['deny', 'dar', 'x', '--message', '   ']).message, /must not be empty/);
  t.regex(usage(['deny', 'dar', 'x', '--message', 'x'.repeat(1025)]).message, /1024/);
});

test('credentials output defaults to env; -o and --output', (t) => {
  t.is(parseArgs(['credentials', 'dar', 'x']).output, 'env');
  t.is(parseArgs(['credentials', 'dar', 'x', '-o', 'uri']).output, 'uri');
  t.is(parseArgs(['credentials', 'dar', 'x', '--output=json']).output, 'json');
  t.is(parseArgs(['credentials', 'dar', 'x', '-ojson']).output, 'json');
});
