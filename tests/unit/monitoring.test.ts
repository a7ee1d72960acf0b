// The shipped alerts and dashboard, read as Prometheus Operator and Grafana will: every alert has a severity, words
// for a person and a runbook section that exists; every dashboard panel has queries on the chosen data source.
// Whether the expressions parse and name metrics the operator really exports is checked against the real stack
// (tests/integration/monitoring.test.ts, with promtool).
import test from 'ava';
import fs from 'node:fs';
import YAML from 'yaml';
import { notifierMetrics } from '../../controllers/accessnotifier/hub.ts';
import { LeaseMetrics } from '../../controllers/databaseaccessrequest/metrics.ts';
import { Metrics } from '../../lib/runtime/metrics.ts';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Target {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}

const rule = YAML.parse(fs.readFileSync('manifests/monitoring/prometheusrule.yaml', 'utf8'));
const alerts: Rule[] = rule.spec.groups.flatMap((g: { rules: Rule[] }) => g.rules).filter((r: Rule) => r.alert);
const dashboard = JSON.parse(fs.readFileSync('manifests/monitoring/dashboard.json', 'utf8'));
const panels: Panel[] = dashboard.panels.filter((p: Panel) => p.type !== 'row');
const runbook = fs.readFileSync('docs/runbook.md', 'utf8');

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces as dashes. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

test('the PrometheusRule is a monitoring.coreos.com/v1 PrometheusRule with uniquely named alerts', (t) => {
  t.is(rule.apiVersion, 'monitoring.coreos.com/v1');
  t.is(rule.kind, 'PrometheusRule');
  const names = alerts.map((a) => a.alert);
  t.deepEqual(names, [...new Set(names)]);
  for (const wanted of [
    'LeaseholdLeaseExpiresBeforeRenewal',
    'LeaseholdLeaseRenewalsFailing',
    'LeaseholdRequestPendingTooLong',
    'LeaseholdOperatorNotLeading',
    'LeaseholdVaultUnavailable',
  ])
    t.true(names.includes(wanted), wanted);
});

test('every alert has a severity, a summary and description, and a runbook section that exists', (t) => {
  const sections = new Set([...runbook.matchAll(/^## (.+)$/gm)].map((m) => anchor(m[1]!)));
  for (const a of alerts) {
    t.true(['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''), `${a.alert}: severity`);
    t.truthy(a.annotations?.summary, `${a.alert}: summary`);
    t.truthy(a.annotations?.description, `${a.alert}: description`);
    const url = a.annotations?.runbook_url ?? '';
    t.regex(url, /\/docs\/runbook\.md#[a-z0-9-]+$/, `${a.alert}: runbook_url`);
    const section = url.split('#')[1]!;
    t.true(sections.has(section), `${a.alert}: docs/runbook.md has no section #${section}`);
    t.is(section, a.alert!.toLowerCase(), `${a.alert}: its runbook section is named after it`);
  }
});

test('every runbook section is about an alert that exists', (t) => {
  const names = new Set(alerts.map((a) => a.alert!.toLowerCase()));
  const sections = [...runbook.matchAll(/^## (.+)$/gm)].map((m) => anchor(m[1]!));
  t.deepEqual(
    sections.filter((s) => !names.has(s)),
    [],
  );
});

test('the dashboard picks its Prometheus data source from a variable, which every panel and query uses', (t) => {
  const vars: Array<{ name: string; type: string; query?: unknown }> = dashboard.templating.list;
  const ds = vars.find((v) => v.type === 'datasource');
  t.is(ds?.query, 'prometheus');
  const ref = `\${${ds!.name}}`;
  for (const p of panels) {
    t.is(p.datasource?.uid, ref, `panel "${p.title}"`);
    for (const target of p.targets ?? []) t.is(target.datasource?.uid, ref, `panel "${p.title}" ${target.refId}`);
  }
  for (const v of vars.filter((x) => x.type === 'query'))
    t.is((v as { datasource?: { uid?: string } }).datasource?.uid, ref, `variable ${v.name}`);
});

test('every dashboard panel has a title and at least one query, with unique ids and refIds, inside the 24-column grid', (t) => {
  const ids = dashboard.panels.map((p: Panel) => p.id);
  t.deepEqual(ids, [...new Set(ids)]);
  for (const p of panels) {
    t.truthy(p.title);
    t.true((p.targets ?? []).length > 0, `panel "${p.title}" has no query`);
    const refIds = (p.targets ?? []).map((x) => x.refId);
    t.deepEqual(refIds, [...new Set(refIds)], `panel "${p.title}"`);
    for (const target of p.targets ?? []) t.truthy(target.expr?.trim(), `panel "${p.title}" ${target.refId}`);
    const g = p.gridPos!;
    t.true(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, `panel "${p.title}" gridPos`);
  }
});

test('the dashboard draws what operators watch: requests, pending age, issuance, renewals, rotations, expiry, Vault, reconciles, queues', (t) => {
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr ?? '')).join('\n');
  for (const metric of [
    'leasehold_access_requests',
    'leasehold_request_pending_since_timestamp_seconds',
    'leasehold_issuance_latency_seconds_bucket',
    'leasehold_lease_renewals_total',
    'leasehold_credential_rotations_total',
    'leasehold_lease_expiry_timestamp_seconds',
    'vault_requests_total',
    'controller_runtime_reconcile_errors_total',
    'workqueue_depth',
  ])
    t.true(exprs.includes(metric), metric);
});

test("every metric name an alert or a panel mentions is registered by the operator's metrics", async (t) => {
  const metrics = new Metrics({ defaultMetrics: false });
  new LeaseMetrics(metrics.registry);
  notifierMetrics(metrics.registry);
  const registered = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    registered.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) registered.add(m.name + s);
  }
  const exprs = [
    ...alerts.map((a) => a.expr),
    ...panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr ?? '')),
  ].join('\n');
  // Leasehold's and controller-runtime's metric families (the rest of an expression is functions and labels).
  const mentioned = new Set(
    exprs.match(/\b(?:leasehold|vault|controller_runtime|workqueue|leader_election)_[a-z_]+\b(?=\s*[{[)\s])/g),
  );
  t.true(mentioned.size > 10);
  t.deepEqual(
    [...mentioned].filter((m) => !registered.has(m)),
    [],
  );
});

test("the PodMonitor scrapes the operator Deployment's pods on their metrics port", (t) => {
  const monitor = YAML.parse(fs.readFileSync('manifests/monitoring/podmonitor.yaml', 'utf8'));
  const deployment = YAML.parse(fs.readFileSync('manifests/operator/deployment.yaml', 'utf8'));
  t.is(monitor.kind, 'PodMonitor');
  const podLabels: Record<string, string> = deployment.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels as Record<string, string>))
    t.is(podLabels[k], v, k);
  const ports = deployment.spec.template.spec.containers.flatMap(
    (c: { ports?: Array<{ name: string }> }) => c.ports ?? [],
  );
  for (const e of monitor.spec.podMetricsEndpoints)
    t.true(
      ports.some((p: { name: string }) => p.name === e.port),
      e.port,
    );
});
