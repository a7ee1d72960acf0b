import test from 'ava';
import pg from 'pg';
import type { AppBinding } from '../../../api/index.ts';
import type { DatabaseAddress } from '../../../controllers/databaseaccessrequest/engine.ts';
import {
  POSTGRES_TEMPLATE_VARIABLES as TEMPLATE_VARIABLES,
  pgpassEscape,
  postgresAddress as databaseAddress,
  postgresVariables,
} from '../../../controllers/databaseaccessrequest/engines/postgres.ts';
import {
  checkTemplates,
  layoutHash,
  mergeTemplates,
  renderSecretData,
  templateView,
} from '../../../controllers/databaseaccessrequest/template.ts';

const addressVariables = (a: DatabaseAddress | undefined, why: string) => postgresVariables.address(a, why);

// A password with every character that means something in a URI or a .pgpass line.
const NASTY = { username: 'v-k8s-app:ro', password: 'p@ss:w/rd?#%\\x y&z=1' };
const ADDRESS: DatabaseAddress = {
  host: 'db.demo.svc',
  port: '5432',
  dbname: 'app data',
  params: { sslmode: 'disable' },
};

function render(templates: Record<string, string>, address: DatabaseAddress | null = ADDRESS, cred = NASTY) {
  const t = mergeTemplates(undefined, 'PostgresRole demo/role', templates);
  const vars = addressVariables(address ?? undefined, 'the role names no database AppBinding');
  return {
    problems: checkTemplates(t, vars, TEMPLATE_VARIABLES),
    render: () => renderSecretData(t, templateView(vars, postgresVariables.credential(cred))),
  };
}

function appBinding(clientConfig: AppBinding['spec']['clientConfig']): AppBinding {
  return {
    apiVersion: 'appcatalog.appscode.com/v1alpha1',
    kind: 'AppBinding',
    metadata: { name: 'db', namespace: 'demo' },
    spec: { clientConfig },
  } as AppBinding;
}

test('a URI template with the url* variables round-trips the credential through a URI parser', (t) => {
  const r = render({
    uri: 'postgresql://<%urlUser%>:<%urlPassword%>@<%urlHost%>:<%port%>/<%urlDbname%><%#sslmode%>?sslmode=<%sslmode%><%/sslmode%>',
  });
  t.deepEqual(r.problems, []);
  const data = r.render();
  const u = new URL(data.uri!);
  t.is(decodeURIComponent(u.username), NASTY.username);
  t.is(decodeURIComponent(u.password), NASTY.password);
  t.is(u.hostname, 'db.demo.svc');
  t.is(decodeURIComponent(u.pathname.slice(1)), 'app data');
  t.is(u.searchParams.get('sslmode'), 'disable');
  // What `pg` itself makes of it (it is what the integration test logs in with).
  const parsed = new pg.Client({ connectionString: data.uri }) as unknown as {
    user: string;
    password: string;
    host: string;
    database: string;
    port: number;
  };
  t.is(parsed.user, NASTY.username);
  t.is(parsed.password, NASTY.password);
  t.is(parsed.database, 'app data');
  t.is(parsed.port, 5432);
});

test('nothing is HTML-escaped, and the credential keys are always there', (t) => {
  const data = render({ raw: '<%username%>|<%password%>', amp: '<%&password%>' }).render();
  t.is(data.raw, `${NASTY.username}|${NASTY.password}`);
  t.is(data.amp, NASTY.password);
  t.is(data.username, NASTY.username);
  t.is(data.password, NASTY.password);
});

test('pgpass escaping: backslash and colon are escaped, in that order, and nothing else', (t) => {
  t.is(pgpassEscape('a:b\\c'), 'a\\:b\\\\c');
  t.is(pgpassEscape('plain@/?#%'), 'plain@/?#%');
  const data = render({
    pgpass: '<%pgpassHost%>:<%port%>:<%pgpassDbname%>:<%pgpassUser%>:<%pgpassPassword%>',
  }).render();
  t.is(data.pgpass, 'db.demo.svc:5432:app data:v-k8s-app\\:ro:p@ss\\:w/rd?#%\\\\x y&z=1');
  // Split the way libpq reads .pgpass: `\` escapes the next character, `:` separates fields.
  const fields: string[] = [''];
  const line = data.pgpass!;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === ':') fields.push('');
    else fields[fields.length - 1] += ch === '\\' ? line[++i]! : ch;
  }
  t.deepEqual(fields, ['db.demo.svc', '5432', 'app data', NASTY.username, NASTY.password]);
});

test('a JDBC URI with url-encoded query parameters', (t) => {
  const data = render({
    'jdbc-uri': 'jdbc:postgresql://<%urlHost%>:<%port%>/<%urlDbname%>?user=<%urlUser%>&password=<%urlPassword%>',
  }).render();
  const q = new URL(data['jdbc-uri']!.replace(/^jdbc:/, '')).searchParams;
  t.is(q.get('user'), NASTY.username);
  t.is(q.get('password'), NASTY.password);
});

test('an unknown variable is a problem, never an empty value', (t) => {
  const r = render({ uri: 'postgresql://<%user%>@<%host%>' });
  t.is(r.problems.length, 1);
  t.regex(r.problems[0]!, /spec\.secretTemplate key "uri": unknown variable "user"/);
});

test('a variable without a value here is a problem; inside its own section it is fine', (t) => {
  const noSsl = { ...ADDRESS, params: {} };
  t.regex(render({ q: 'sslmode=<%sslmode%>' }, noSsl).problems[0]!, /"sslmode" has no value: .*no sslmode parameter/);
  const guarded = render({ q: 'x<%#sslmode%>?sslmode=<%sslmode%><%/sslmode%>' }, noSsl);
  t.deepEqual(guarded.problems, []);
  t.is(guarded.render().q, 'x');
  t.is(render({ q: 'x<%#sslmode%>?sslmode=<%sslmode%><%/sslmode%>' }).render().q, 'x?sslmode=disable');
  t.is(render({ q: '<%^sslmode%>none<%/sslmode%>' }, noSsl).render().q, 'none');
  // No database AppBinding at all: every address variable says why.
  t.regex(render({ h: '<%host%>' }, null).problems[0]!, /"host" has no value: the role names no database AppBinding/);
  t.deepEqual(render({ u: '<%username%>' }, null).problems, []);
});

test('Vault-style {{ }}, partials, delimiter changes, parse errors and credential keys are refused', (t) => {
  t.regex(
    render({ uri: 'postgresql://{{username}}@db' }).problems[0]!,
    /"\{\{username\}\}" uses \{\{ \}\}.*write <%username%>/,
  );
  t.regex(render({ x: '<%>partial%>' }).problems[0]!, /partials/);
  t.regex(render({ x: '<%={{ }}=%>{{username}}' }).problems[0]!, /changing the delimiters/);
  t.regex(render({ x: '<%#host%>unclosed' }).problems[0]!, /Unclosed section "host"/);
  t.regex(render({ x: '<%host' }).problems[0]!, /Unclosed tag/);
  t.regex(render({ password: '<%password%>' }).problems[0]!, /"password" always holds the credential/);
  t.regex(render({ x: '<%#bogus%>y<%/bogus%>' }).problems[0]!, /unknown variable "bogus" in a section/);
  t.regex(render({ x: '<%toString%>' }).problems[0]!, /unknown variable "toString"/);
  t.regex(render({ x: '<%host.length%>' }).problems[0]!, /unknown variable "host.length"/);
});

test("the request's keys override the role's; messages say where a template came from", (t) => {
  const m = mergeTemplates({ uri: 'role <%host%>', host: '<%host%>' }, 'PostgresRole demo/role', {
    uri: 'request <%bad%>',
  });
  t.deepEqual(m.templates, { uri: 'request <%bad%>', host: '<%host%>' });
  const problems = checkTemplates(m, addressVariables(ADDRESS, ''), TEMPLATE_VARIABLES);
  t.is(problems.length, 1);
  t.regex(problems[0]!, /^spec\.secretTemplate key "uri"/);
  const roleOnly = checkTemplates(
    mergeTemplates({ x: '<%nope%>' }, 'PostgresRole demo/role', undefined),
    addressVariables(ADDRESS, ''),
    TEMPLATE_VARIABLES,
  );
  t.regex(roleOnly[0]!, /^PostgresRole demo\/role spec\.secretTemplate key "x"/);
});

test('every documented variable has a value when the address is complete', (t) => {
  const view = templateView(addressVariables(ADDRESS, ''), postgresVariables.credential(NASTY));
  t.deepEqual(Object.keys(view).sort(), Object.keys(TEMPLATE_VARIABLES).sort());
});

test('the database address from an AppBinding URL or service', (t) => {
  t.deepEqual(databaseAddress(appBinding({ url: 'postgresql://127.0.0.1:15432/postgres?sslmode=disable' })), {
    host: '127.0.0.1',
    port: '15432',
    dbname: 'postgres',
    params: { sslmode: 'disable' },
  });
  t.deepEqual(
    databaseAddress(
      appBinding({
        service: { scheme: 'postgresql', name: 'postgres', port: 5432, path: 'postgres', query: 'sslmode=disable' },
      }),
    ),
    { host: 'postgres.demo.svc', port: '5432', dbname: 'postgres', params: { sslmode: 'disable' } },
  );
  t.deepEqual(databaseAddress(appBinding({ url: 'postgresql://db.example.com/my%20db' })), {
    host: 'db.example.com',
    port: '5432',
    dbname: 'my db',
    params: {},
  });
  const v6 = databaseAddress(appBinding({ url: 'postgresql://[::1]:5433/' }));
  t.deepEqual(v6, { host: '::1', port: '5433', dbname: 'postgres', params: {} });
  const data = render({ uri: 'postgresql://<%urlHost%>:<%port%>/', pgpass: '<%pgpassHost%>' }, v6).render();
  t.is(data.uri, 'postgresql://[::1]:5433/');
  t.is(data.pgpass, '\\:\\:1');
});

test('the layout fingerprint follows templates and address, not the credential', (t) => {
  const m = mergeTemplates(undefined, 'r', { uri: '<%host%>' });
  const a = addressVariables(ADDRESS, '');
  t.is(
    layoutHash(m, a),
    layoutHash(mergeTemplates(undefined, 'r', { uri: '<%host%>' }), addressVariables({ ...ADDRESS }, '')),
  );
  t.not(layoutHash(m, a), layoutHash(mergeTemplates(undefined, 'r', { uri: '<%port%>' }), a));
  t.not(layoutHash(m, a), layoutHash(m, addressVariables({ ...ADDRESS, host: 'other' }, '')));
  t.notRegex(layoutHash(m, a), new RegExp(NASTY.password.replace(/[^a-z]/g, '')));
});
