// The Helm chart (charts/leasehold), with the real helm: in sync with manifests/, lint-clean, every operator flag a
// value the operator accepts, bad values refused, the operator's username following the release, and the same
// objects as the kustomize install where both say the same thing.
import anyTest, { type TestFn } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { renderCrdFiles } from '../../../api/crd.ts';
import { KINDS } from '../../../api/index.ts';
import { parseConfig, usage } from '../../../cmd/operator/config.ts';
import { CHART_DIR, CHART_GENERATED_DIRS, renderChartFiles } from '../../../scripts/gen-chart.ts';
import { resolveHelm } from '../../../scripts/stack/binaries.ts';
import { CHART_PATH, Helm, parseObjects, type K8sObject } from '../../../scripts/stack/helm.ts';
import { REPO_ROOT } from '../../../scripts/stack/leasehold-setup.ts';

const test = anyTest as TestFn<{ helm: Helm }>;

test.before(async (t) => {
  t.timeout(30 * 60_000, 'finding or building helm (a cold build takes a few minutes)');
  t.context.helm = new Helm(await resolveHelm((l) => t.log(l)));
});

const RELEASE = 'lh';
const NS = 'ops-leasehold';
const USERNAME = `system:serviceaccount:${NS}:lh-leasehold`;

const of = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);
const one = (objs: K8sObject[], kind: string, name?: string) => {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0]!;
};
type Container = { args: string[]; securityContext: Record<string, unknown>; [k: string]: unknown };
const containerOf = (objs: K8sObject[]) =>
  (one(objs, 'Deployment').spec as { template: { spec: { containers: Container[] } } }).template.spec.containers[0]!;

/** The YAML documents of files under manifests/ (all of a directory, or one file). */
function manifests(rel: string): K8sObject[] {
  const full = path.join(REPO_ROOT, 'manifests', rel);
  const files = fs.statSync(full).isDirectory()
    ? fs
        .readdirSync(full)
        .filter((n) => n.endsWith('.yaml'))
        .map((n) => path.join(full, n))
    : [full];
  return files.flatMap((f) => parseObjects(fs.readFileSync(f, 'utf8')));
}

/** Drops what only the chart adds (its labels and the CRDs' keep annotation), to compare with kustomize's objects. */
function withoutChartMetadata(o: K8sObject): K8sObject {
  const c = structuredClone(o);
  for (const k of [
    'helm.sh/chart',
    'app.kubernetes.io/instance',
    'app.kubernetes.io/version',
    'app.kubernetes.io/managed-by',
  ])
    delete c.metadata.labels?.[k];
  delete c.metadata.annotations?.['helm.sh/resource-policy'];
  if (c.metadata.annotations && Object.keys(c.metadata.annotations).length === 0) delete c.metadata.annotations;
  if (c.metadata.annotations === null) delete c.metadata.annotations;
  return c;
}
const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

test('the committed chart templates are exactly what `npm run gen` makes from manifests/', (t) => {
  const generated = renderChartFiles(REPO_ROOT, renderCrdFiles(KINDS));
  for (const f of generated) {
    const file = path.join(REPO_ROOT, f.path);
    t.true(fs.existsSync(file), `${f.path} is missing: run npm run gen`);
    if (fs.existsSync(file))
      t.is(fs.readFileSync(file, 'utf8'), f.content, `${f.path} is out of date: run npm run gen`);
  }
  const extra = CHART_GENERATED_DIRS.flatMap((d) =>
    fs.existsSync(path.join(REPO_ROOT, d)) ? fs.readdirSync(path.join(REPO_ROOT, d)).map((n) => `${d}/${n}`) : [],
  ).filter((p) => !generated.some((f) => f.path === p));
  t.deepEqual(extra, [], 'files in the chart that `npm run gen` no longer writes');
});

test('installed as leasehold in leasehold-system, the chart makes the same CRDs, RBAC, admission policies and alerts as manifests/', async (t) => {
  const rendered = await t.context.helm.template('leasehold', 'leasehold-system', [
    '--api-versions',
    'admissionregistration.k8s.io/v1alpha1/MutatingAdmissionPolicy',
    '--set',
    'prometheusRule.enabled=true',
  ]);
  // The kustomize install's PodMonitor has no counterpart: the chart scrapes through its Service and ServiceMonitor.
  const monitoring = fs.existsSync(path.join(REPO_ROOT, 'manifests/monitoring'))
    ? manifests('monitoring').filter((o) => o.kind !== 'PodMonitor')
    : [];
  const kustomize = [...manifests('crds'), ...manifests('rbac'), ...manifests('admission'), ...monitoring];
  const chart = new Map(rendered.map((o) => [key(o), withoutChartMetadata(o)]));
  for (const o of kustomize) t.deepEqual(chart.get(key(o)), o, `${key(o)} differs between manifests/ and the chart`);
  t.true(kustomize.length > 20);
});

test("the chart's Deployment runs the operator as the kustomize one does: security context, probes, resources, environment, volumes", async (t) => {
  const rendered = await t.context.helm.template('leasehold', 'leasehold-system');
  type PodSpec = {
    securityContext: unknown;
    terminationGracePeriodSeconds: number;
    volumes: unknown;
    containers: Container[];
  };
  const chartPod = (one(rendered, 'Deployment').spec as { template: { spec: PodSpec } }).template.spec;
  const kustomizePod = (
    one(manifests('operator/deployment.yaml'), 'Deployment').spec as { template: { spec: PodSpec } }
  ).template.spec;
  t.deepEqual(chartPod.securityContext, kustomizePod.securityContext);
  t.is(chartPod.terminationGracePeriodSeconds, kustomizePod.terminationGracePeriodSeconds);
  t.deepEqual(chartPod.volumes, kustomizePod.volumes);
  const [c, k] = [chartPod.containers[0]!, kustomizePod.containers[0]!];
  for (const field of [
    'image',
    'command',
    'env',
    'ports',
    'livenessProbe',
    'readinessProbe',
    'resources',
    'volumeMounts',
  ])
    t.deepEqual(c[field], k[field], `container ${field}`);
  // The chart also pins seccomp on the container, so it holds whatever the Pod says.
  t.deepEqual({ ...c.securityContext, seccompProfile: undefined }, { ...k.securityContext, seccompProfile: undefined });
  const operatorArgs = parseConfig(c.args, {});
  t.is(operatorArgs.kind, 'config');
  if (operatorArgs.kind === 'config') t.true(operatorArgs.config.leaderElect);
});

test('helm lint passes in strict mode, with default and with every optional part turned on', async (t) => {
  for (const args of [
    [],
    [
      '--set',
      'serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboards.enabled=true,metrics.service.enabled=true',
    ],
  ]) {
    const r = await t.context.helm.run(['lint', '--strict', CHART_PATH, ...args]);
    t.is(r.code, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

test('every operator flag is a chart value, and the container arguments the chart renders are what the operator parses', async (t) => {
  const flags = [...usage().matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]!);
  const values = YAML.parse(fs.readFileSync(path.join(CHART_PATH, 'values.yaml'), 'utf8')) as {
    config: Record<string, unknown>;
  };
  const camel = (f: string) => f.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  t.true(flags.length >= 15);
  t.deepEqual(
    flags.filter((f) => !(camel(f) in values.config)),
    [],
    'flags without a value in values.yaml config',
  );
  t.deepEqual(Object.keys(values.config).sort(), flags.map(camel).sort(), 'values in config that are no flag');

  const set: Record<string, string> = {
    kubeconfig: '/etc/leasehold/kubeconfig',
    clusterName: 'prod-eu',
    leaderElect: 'false',
    leaderElectionNamespace: 'elections',
    leaderElectionId: 'lh-lock',
    metricsBindAddress: ':9090',
    healthProbeBindAddress: '127.0.0.1:9091',
    concurrency: '12',
    namespace: 'team-a',
    logLevel: 'debug',
    resyncPeriod: '1h30m',
    gracefulShutdownTimeout: '45s',
    operatorNamespace: 'lh-secrets',
    operatorServiceAccount: 'vault-auth/leasehold-login',
    vaultIssuerTokenRole: 'issuer-b',
  };
  const rendered = await t.context.helm.template(RELEASE, NS, [
    ...Object.entries(set).flatMap(([k, v]) => [
      k === 'leaderElect' || k === 'concurrency' ? '--set' : '--set-string',
      `config.${k}=${v}`,
    ]),
  ]);
  const container = containerOf(rendered);
  const parsed = parseConfig(container.args, {}, () => undefined);
  if (parsed.kind !== 'config') return t.fail(`the operator refuses the chart's arguments: ${JSON.stringify(parsed)}`);
  t.like(parsed.config, {
    kubeconfig: '/etc/leasehold/kubeconfig',
    clusterName: 'prod-eu',
    leaderElect: false,
    leaderElectionNamespace: 'elections',
    leaderElectionId: 'lh-lock',
    metricsBindAddress: ':9090',
    healthProbeBindAddress: '127.0.0.1:9091',
    concurrency: 12,
    namespace: 'team-a',
    logLevel: 'debug',
    resyncPeriodMs: 90 * 60_000,
    gracefulShutdownTimeoutMs: 45_000,
    operatorNamespace: 'lh-secrets',
    operatorServiceAccount: { namespace: 'vault-auth', name: 'leasehold-login' },
    vaultIssuerTokenRole: 'issuer-b',
  });
  t.deepEqual(
    (container.ports as Array<{ name: string; containerPort: number }>).map((p) => [p.name, p.containerPort]),
    [
      ['metrics', 9090],
      ['health', 9091],
    ],
  );
});

test('a release named lh in ops-leasehold exempts its own ServiceAccount from the admission policies and binds its RBAC to it, naming leasehold-system nowhere', async (t) => {
  const rendered = await t.context.helm.template(RELEASE, NS, [
    '--api-versions',
    'admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy',
  ]);
  t.is(one(rendered, 'ServiceAccount').metadata.name, 'lh-leasehold');
  t.is(one(rendered, 'ServiceAccount').metadata.namespace, NS);
  t.is(
    (one(rendered, 'Deployment').spec as { template: { spec: { serviceAccountName: string } } }).template.spec
      .serviceAccountName,
    'lh-leasehold',
  );
  const policies = of(rendered, 'ValidatingAdmissionPolicy');
  t.true(policies.length >= 3);
  for (const p of policies) {
    const conditions = (
      (p.spec as { matchConditions?: Array<{ name: string; expression: string }> }).matchConditions ?? []
    ).filter((c) => c.name === 'not-the-operator');
    for (const c of conditions) t.is(c.expression, `request.userInfo.username != '${USERNAME}'`, p.metadata.name);
  }
  t.true(policies.some((p) => JSON.stringify(p).includes(USERNAME)));
  for (const b of [...of(rendered, 'ClusterRoleBinding'), ...of(rendered, 'RoleBinding')])
    t.deepEqual((b as unknown as { subjects: unknown[] }).subjects, [
      { kind: 'ServiceAccount', name: 'lh-leasehold', namespace: NS },
    ]);
  t.is(one(rendered, 'Role').metadata.namespace, NS);
  const text = YAML.stringify(rendered);
  t.false(text.includes('leasehold-system'), 'no object names leasehold-system');
  t.is(one(rendered, 'MutatingAdmissionPolicy').apiVersion, 'admissionregistration.k8s.io/v1beta1');
});

test('serviceAccount.name renames the exempted user too; an existing ServiceAccount can be used without creating one', async (t) => {
  const rendered = await t.context.helm.template(RELEASE, NS, [
    '--set',
    'serviceAccount.create=false,serviceAccount.name=ops-bot',
  ]);
  t.is(of(rendered, 'ServiceAccount').length, 0);
  t.true(JSON.stringify(rendered).includes(`system:serviceaccount:${NS}:ops-bot'`));
  await t.throwsAsync(() => t.context.helm.template(RELEASE, NS, ['--set', 'serviceAccount.create=false']), {
    message: /set serviceAccount.name/,
  });
});

test("the requester MutatingAdmissionPolicy follows the cluster's API versions, and the value that turns it off", async (t) => {
  const map = (objs: K8sObject[]) =>
    objs.filter((o) => o.kind.startsWith('MutatingAdmissionPolicy')).map((o) => `${o.apiVersion} ${o.kind}`);
  const served = (v: string) => ['--api-versions', `admissionregistration.k8s.io/${v}/MutatingAdmissionPolicy`];
  t.deepEqual(map(await t.context.helm.template(RELEASE, NS, served('v1alpha1'))), [
    'admissionregistration.k8s.io/v1alpha1 MutatingAdmissionPolicy',
    'admissionregistration.k8s.io/v1alpha1 MutatingAdmissionPolicyBinding',
  ]);
  t.deepEqual(map(await t.context.helm.template(RELEASE, NS, [...served('v1alpha1'), ...served('v1beta1')])), [
    'admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy',
    'admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicyBinding',
  ]);
  t.deepEqual(map(await t.context.helm.template(RELEASE, NS)), [], 'not served: left out');
  t.deepEqual(
    map(
      await t.context.helm.template(RELEASE, NS, [
        ...served('v1beta1'),
        '--set',
        'admission.requesterMutatingPolicy=false',
      ]),
    ),
    [],
  );
  await t.throwsAsync(() => t.context.helm.template(RELEASE, NS, ['--set', 'admission.requesterMutatingPolicy=true']), {
    message: /serves no MutatingAdmissionPolicy API/,
  });
});

test('the operator container runs non-root, read-only, without privilege escalation or capabilities, under seccomp RuntimeDefault', async (t) => {
  const rendered = await t.context.helm.template(RELEASE, NS);
  const pod = (one(rendered, 'Deployment').spec as { template: { spec: { securityContext: Record<string, unknown> } } })
    .template.spec;
  t.like(pod.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  t.deepEqual(containerOf(rendered).securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  t.like(one(rendered, 'PodDisruptionBudget').spec, { maxUnavailable: 1 });
});

test('bad values are refused with the value named', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--set', 'config.logLevel=loud'], /config\/logLevel/],
    [['--set-string', 'config.resyncPeriod=10 minutes'], /config\/resyncPeriod/],
    [['--set', 'config.concurrency=0'], /config\/concurrency/],
    [['--set-string', 'config.metricsBindAddress=everywhere'], /config\/metricsBindAddress/],
    [['--set-string', 'config.operatorServiceAccount=leasehold'], /config\/operatorServiceAccount/],
    [['--set', 'replicaCount=-1'], /replicaCount/],
    [['--set', 'replicas=2'], /additional properties 'replicas' not allowed/],
    [['--set-string', 'admission.requesterMutatingPolicy=sometimes'], /requesterMutatingPolicy/],
    [['--set', 'image.pullPolicy=Sometimes'], /image\/pullPolicy/],
    [['--set', 'serviceAccount.name=Not_A_Name'], /serviceAccount\/name/],
  ];
  for (const [args, message] of cases)
    await t.throwsAsync(() => t.context.helm.template(RELEASE, NS, args), { message }, args.join(' '));
});

test('replicaCount 0 installs the Deployment scaled down; deployment.enabled=false leaves it (and its PDB) out but keeps the ServiceAccount and RBAC', async (t) => {
  const scaled = await t.context.helm.template(RELEASE, NS, ['--set', 'replicaCount=0']);
  t.is((one(scaled, 'Deployment').spec as { replicas: number }).replicas, 0);
  const without = await t.context.helm.template(RELEASE, NS, ['--set', 'deployment.enabled=false']);
  t.deepEqual(of(without, 'Deployment'), []);
  t.deepEqual(of(without, 'PodDisruptionBudget'), []);
  t.is(of(without, 'ServiceAccount').length, 1);
  t.is(of(without, 'ClusterRoleBinding').length, 1);
});

test('crds.install=false leaves the CRDs out; by default they are kept on uninstall', async (t) => {
  const rendered = await t.context.helm.template(RELEASE, NS);
  const crds = of(rendered, 'CustomResourceDefinition');
  t.is(crds.length, KINDS.length);
  for (const c of crds) t.is(c.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
  t.deepEqual(
    of(await t.context.helm.template(RELEASE, NS, ['--set', 'crds.install=false']), 'CustomResourceDefinition'),
    [],
  );
  for (const c of of(
    await t.context.helm.template(RELEASE, NS, ['--set', 'crds.keep=false']),
    'CustomResourceDefinition',
  ))
    t.falsy(c.metadata.annotations?.['helm.sh/resource-policy']);
});

test("monitoring files in manifests/ become the chart's PrometheusRule (alert templates intact) and dashboard ConfigMaps, behind their values", async (t) => {
  // A scratch repository: this chart's hand-written files, and a manifests/ with monitoring files in it.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-chart-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.cpSync(CHART_PATH, path.join(root, CHART_DIR), { recursive: true });
  for (const d of CHART_GENERATED_DIRS) fs.rmSync(path.join(root, d), { recursive: true, force: true });
  for (const d of ['rbac', 'admission'])
    fs.cpSync(path.join(REPO_ROOT, 'manifests', d), path.join(root, 'manifests', d), { recursive: true });
  fs.mkdirSync(path.join(root, 'manifests/monitoring'));
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'leasehold', namespace: 'leasehold-system', labels: { 'app.kubernetes.io/name': 'leasehold' } },
    spec: {
      groups: [
        {
          name: 'leasehold',
          rules: [
            {
              alert: 'LeaseholdRenewalsFailing',
              expr: 'sum by (namespace) (rate(leasehold_renewals_total{outcome="error"}[5m])) > 0',
              annotations: { summary: 'Renewals fail in {{ $labels.namespace }}' },
            },
          ],
        },
      ],
    },
  };
  fs.writeFileSync(path.join(root, 'manifests/monitoring/prometheusrule.yaml'), YAML.stringify(rule));
  const dashboard = JSON.stringify({ title: 'Leasehold', panels: [{ targets: [{ legendFormat: '{{phase}}' }] }] });
  fs.writeFileSync(path.join(root, 'manifests/monitoring/leasehold-dashboard.json'), dashboard);
  for (const f of renderChartFiles(root, renderCrdFiles(KINDS))) {
    fs.mkdirSync(path.dirname(path.join(root, f.path)), { recursive: true });
    fs.writeFileSync(path.join(root, f.path), f.content);
  }
  const chart = path.join(root, CHART_DIR);

  const off = await t.context.helm.template(RELEASE, NS, [], chart);
  t.deepEqual([...of(off, 'PrometheusRule'), ...of(off, 'ConfigMap'), ...of(off, 'ServiceMonitor')], []);
  const on = await t.context.helm.template(
    RELEASE,
    NS,
    [
      '--set',
      'prometheusRule.enabled=true,grafanaDashboards.enabled=true,serviceMonitor.enabled=true',
      '--set',
      'prometheusRule.labels.release=kps',
    ],
    chart,
  );
  const pr = one(on, 'PrometheusRule');
  t.is(pr.metadata.namespace, NS);
  t.is(pr.metadata.labels?.release, 'kps');
  t.deepEqual(pr.spec, rule.spec, 'the rules as written, {{ $labels }} included');
  const cm = one(on, 'ConfigMap');
  t.is(cm.metadata.labels?.grafana_dashboard, '1');
  t.is((cm.data as Record<string, string>)['leasehold-dashboard.json'], dashboard);
  const sm = one(on, 'ServiceMonitor');
  const svc = one(on, 'Service');
  t.like(sm.spec, {
    selector: { matchLabels: (svc.spec as { selector: object }).selector },
    endpoints: [{ port: 'metrics' }],
  });
  t.deepEqual((svc.spec as { ports: unknown }).ports, [
    { name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' },
  ]);
});
