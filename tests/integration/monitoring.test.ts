// The shipped alerts (manifests/monitoring/prometheusrule.yaml) and dashboard (manifests/monitoring/dashboard.json)
// checked with Prometheus's own tools against the real operator: promtool parses the rules and runs their unit tests
// on synthetic series (fixtures/monitoring/alerts.test.yaml), and every metric an alert or a panel reads, with the
// labels it matches on, is in the /metrics of an operator that ran the guide's flow on the real stack (a lease
// issued, renewed, rotated and revoked; a request left waiting for a decision; leader election on).
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { Annotations } from '../../api/index.ts';
import { resolvePrometheusTools, type PrometheusTools } from '../../scripts/stack/binaries.ts';
import { guideRole, kubectl } from '../../scripts/stack/leasehold-setup.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import { GROUP, VERSION, approvedRequest, getCr, prepareGuide } from './helpers/leasehold.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';

type Ctx = StackContext & { tools: PrometheusTools; operator: OperatorProcess; metrics: string; dir: string };
const test = anyTest as TestFn<Ctx>;
useStack(test);

const NS = 'demo';
const RULE = YAML.parse(fs.readFileSync('manifests/monitoring/prometheusrule.yaml', 'utf8'));
const DASHBOARD = JSON.parse(fs.readFileSync('manifests/monitoring/dashboard.json', 'utf8'));
/** What Prometheus adds to every series it scrapes: no exporter has them. */
const TARGET_LABELS = new Set(['job', 'instance']);

interface Selector {
  metric: string;
  labels: string[];
}

const dar = (t: ExecutionContext<Ctx>, name: string) => getCr(t.context.env, 'databaseaccessrequests', NS, name);

function kubectlAnnotate(t: ExecutionContext<Ctx>, name: string, key: string, value: string): void {
  kubectl(t.context.env, [
    '-n',
    NS,
    'annotate',
    '--overwrite',
    `databaseaccessrequests.${GROUP}`,
    name,
    `${key}=${value}`,
  ]);
}

/** Each expression's selectors, as Prometheus's parser reads them; a parse error fails the test naming it. */
function selectorsOf(t: ExecutionContext<Ctx>, exprs: Array<{ where: string; expr: string }>): Selector[][] {
  const out = execFileSync(t.context.tools.promqlSelectors, {
    input: JSON.stringify(exprs.map((e) => e.expr)),
    encoding: 'utf8',
  });
  const results = JSON.parse(out) as Array<{ selectors?: Selector[]; error?: string }>;
  return results.map((r, i) => {
    if (r.error) t.fail(`${exprs[i]!.where}: ${r.error}`);
    t.true((r.selectors ?? []).length > 0, `${exprs[i]!.where} reads no metric`);
    return r.selectors ?? [];
  });
}

/** The metric families of a Prometheus text exposition: each name with its type and the label names of its samples. */
function families(text: string): Map<string, { type: string; labels: Set<string>; samples: number }> {
  const byName = new Map<string, { type: string; labels: Set<string>; samples: number }>();
  const series = new Map<string, string>(); // sample name -> family
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      byName.set(type[1]!, { type: type[2]!, labels: new Set(), samples: 0 });
      const suffixes =
        type[2] === 'histogram' ? ['_bucket', '_sum', '_count'] : type[2] === 'summary' ? ['_sum', '_count'] : [];
      for (const s of ['', ...suffixes]) series.set(type[1]! + s, type[1]!);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!sample) continue;
    const family = byName.get(series.get(sample[1]!) ?? '');
    if (!family) continue;
    family.samples++;
    for (const m of (sample[2] ?? '').matchAll(/(\w+)="/g)) family.labels.add(m[1]!);
  }
  // Samples of a histogram family are named with their suffixes: index them under those names too.
  for (const [name, family] of [...byName]) {
    if (family.type !== 'histogram') continue;
    for (const s of ['_bucket', '_sum', '_count']) byName.set(name + s, family);
  }
  return byName;
}

/** Fails naming every selector whose metric the operator doesn't export, or whose matchers test a label it lacks. */
function checkAgainstMetrics(
  t: ExecutionContext<Ctx>,
  exprs: Array<{ where: string; expr: string }>,
  mustHaveSamples: Set<string>,
): void {
  const exported = families(t.context.metrics);
  const problems: string[] = [];
  selectorsOf(t, exprs).forEach((selectors, i) => {
    for (const s of selectors) {
      const family = exported.get(s.metric);
      if (!family) {
        problems.push(`${exprs[i]!.where}: ${s.metric} is not in the operator's /metrics`);
        continue;
      }
      if (family.samples === 0) {
        if (mustHaveSamples.has(s.metric)) problems.push(`${exprs[i]!.where}: ${s.metric} has no samples`);
        continue;
      }
      if (s.metric.endsWith('_bucket') && !family.labels.has('le')) problems.push(`${s.metric}: no le label`);
      for (const label of s.labels)
        if (!TARGET_LABELS.has(label) && !family.labels.has(label))
          problems.push(
            `${exprs[i]!.where}: ${s.metric} has no label ${label} (it has ${[...family.labels].join(', ')})`,
          );
    }
  });
  t.deepEqual(problems, []);
}

/** The PrometheusRule's alerts, each expression named by its alert. */
function alertExprs(): Array<{ where: string; expr: string }> {
  return RULE.spec.groups.flatMap((g: { rules: Array<{ alert?: string; record?: string; expr: string }> }) =>
    g.rules.map((r) => ({ where: `alert ${r.alert ?? r.record}`, expr: r.expr })),
  );
}

/** The dashboard's queries with Grafana's variables given values a query could have. */
function dashboardExprs(): Array<{ where: string; expr: string }> {
  const panels = DASHBOARD.panels as Array<{ title: string; targets?: Array<{ refId: string; expr: string }> }>;
  return panels.flatMap((p) =>
    (p.targets ?? []).map((x) => ({
      where: `panel "${p.title}" ${x.refId}`,
      expr: x.expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', 'leasehold').replaceAll('$namespace', NS),
    })),
  );
}

test.before(async (t) => {
  t.timeout(30 * 60_000, 'finding or building promtool, then the guide on the stack');
  t.context.tools = await resolvePrometheusTools((l) => t.log(l));
  t.context.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-rules-'));
  (t.context.cleanups ??= []).push(async () => fs.rmSync(t.context.dir, { recursive: true, force: true }));
  const { env } = t.context;
  await prepareGuide(env);
  const operator = await startOperator(env, ['--leader-elect']);
  t.context.operator = operator;
  t.context.cleanups.push(() => operator.stop());
  kubectl(env, ['apply', '-f', 'manifests/samples/30-postgres-secret-engine.yaml']);
  // Leases of 10 s, renewed every ~6 s: a renewal happens within the test.
  kubectl(env, ['apply', '-f', '-'], YAML.stringify(guideRole('short', { defaultTTL: '10s', maxTTL: '1h' })));
  await eventually(
    t,
    'PostgresRole short ready',
    async () => (await getCr(env, 'postgresroles', NS, 'short'))?.status?.phase === 'Success',
    90_000,
  );
  // One request issued, renewed, rotated, then revoked on demand; another left waiting for a decision.
  await approvedRequest(t, env, { namespace: NS, name: 'watched', role: 'short', spec: { rotationGracePeriod: '1s' } });
  await eventually(
    t,
    'a renewal of watched',
    async () => !!(await dar(t, 'watched'))?.status?.lease?.lastRenewalTime,
    60_000,
    500,
  );
  kubectl(
    env,
    ['apply', '-f', '-'],
    YAML.stringify({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DatabaseAccessRequest',
      metadata: { name: 'undecided', namespace: NS },
      spec: {
        roleRef: { kind: 'PostgresRole', name: 'short', namespace: NS },
        subjects: [{ kind: 'ServiceAccount', name: 'demo-sa', namespace: NS }],
      },
    }),
  );
  await eventually(
    t,
    'undecided waiting for approval',
    async () => (await dar(t, 'undecided'))?.status?.phase === 'WaitingForApproval',
    30_000,
  );
  const before = (await dar(t, 'watched'))!.status.lease.id;
  kubectlAnnotate(t, 'watched', Annotations.rotateNow, 'monitoring-test');
  await eventually(
    t,
    'watched rotated, its previous lease revoked',
    async () => {
      const st = (await dar(t, 'watched'))?.status;
      return st?.lease?.id !== before && st?.rotation?.completedAt && !st?.previousLeases?.length;
    },
    60_000,
    500,
  );
  // Scraped while watched holds a live lease (its expiry and renewal gauges); revoked afterwards.
  t.context.metrics = await eventually(
    t,
    'the lease and pending gauges in /metrics',
    async () => {
      const text = await (await fetch(operator.metricsUrl)).text();
      return text.includes('leasehold_lease_renewal_timestamp_seconds{') &&
        text.includes('leasehold_request_pending_deadline_timestamp_seconds{') &&
        text.includes('leader_election_master_status{')
        ? text
        : undefined;
    },
    30_000,
    500,
  );
  kubectlAnnotate(t, 'watched', Annotations.revokeNow, 'true');
  await eventually(
    t,
    'watched revoked',
    async () => (await dar(t, 'watched'))?.status?.phase === 'Revoked',
    30_000,
    500,
  );
  const revoked = await (await fetch(operator.metricsUrl)).text();
  t.context.metrics += `\n${revoked
    .split('\n')
    .filter((l) => l.startsWith('leasehold_lease_revocations_total'))
    .join('\n')}`;
});

test('promtool accepts every rule of the PrometheusRule', (t) => {
  const file = path.join(t.context.dir, 'rules.yaml');
  fs.writeFileSync(file, YAML.stringify(RULE.spec));
  const r = spawnSync(t.context.tools.promtool, ['check', 'rules', file], { encoding: 'utf8' });
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, new RegExp(`SUCCESS: ${alertExprs().length} rules found`));
});

test('the alerts fire on synthetic series exactly when their runbook says, and stay silent otherwise (promtool test rules)', (t) => {
  const dir = fs.mkdtempSync(path.join(t.context.dir, 'unit-'));
  fs.writeFileSync(path.join(dir, 'rules.yaml'), YAML.stringify(RULE.spec));
  fs.copyFileSync('tests/integration/fixtures/monitoring/alerts.test.yaml', path.join(dir, 'alerts.test.yaml'));
  const r = spawnSync(t.context.tools.promtool, ['test', 'rules', 'alerts.test.yaml'], { cwd: dir, encoding: 'utf8' });
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  // Every alert is exercised by at least one case.
  const cases = fs.readFileSync('tests/integration/fixtures/monitoring/alerts.test.yaml', 'utf8');
  for (const { where } of alertExprs()) t.true(cases.includes(`alertname: ${where.replace('alert ', '')}`), where);
});

test("every metric an alert reads is in the operator's real /metrics, with the labels the alert matches on", (t) => {
  checkAgainstMetrics(
    t,
    alertExprs(),
    new Set([
      'leasehold_lease_renewal_timestamp_seconds',
      'leasehold_lease_expiry_timestamp_seconds',
      'leasehold_lease_renewals_total',
      'leasehold_lease_revocations_total',
      'leasehold_request_pending_since_timestamp_seconds',
      'leasehold_request_pending_deadline_timestamp_seconds',
      'leader_election_master_status',
      'vault_requests_total',
    ]),
  );
});

test("every dashboard query parses and reads only metrics and labels in the operator's real /metrics", (t) => {
  checkAgainstMetrics(
    t,
    dashboardExprs(),
    new Set([
      'leasehold_access_requests',
      'leasehold_request_pending_since_timestamp_seconds',
      'leasehold_issuance_latency_seconds_bucket',
      'leasehold_lease_renewals_total',
      'leasehold_credential_rotations_total',
      'leasehold_lease_expiry_timestamp_seconds',
      'vault_requests_total',
      'workqueue_depth',
      'controller_runtime_reconcile_time_seconds_bucket',
    ]),
  );
});

test('the request gauges tell the story the flow left: one request waiting, one revoked, the operator leading', (t) => {
  const text = t.context.metrics;
  t.regex(text, /^leasehold_access_requests\{namespace="demo",phase="WaitingForApproval"\} 1$/m);
  t.regex(text, /^leader_election_master_status\{name="leasehold-operator-lock"\} 1$/m);
  t.regex(text, /^leasehold_request_pending_since_timestamp_seconds\{namespace="demo",name="undecided"\} \d+/m);
  t.regex(text, /^leasehold_lease_renewals_total\{outcome="success"\} [1-9]/m);
  t.regex(text, /^leasehold_credential_rotations_total\{reason="RotateRequested",outcome="success"\} 1$/m);
  t.regex(text, /^leasehold_lease_revocations_total\{reason="revoke-now",outcome="success"\} 1$/m);
});
