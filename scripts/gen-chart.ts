// The Helm chart's generated part (charts/leasehold/): templates made from the kustomize manifests, so manifests/
// stays the one source of the CRDs, the RBAC, the admission policies and the monitoring rules. `npm run gen`
// (scripts/gen-crds.ts) writes these files with the CRDs; a unit test checks the committed chart matches.
//
// What changes on the way from manifests/ to the chart:
//   - each document is wrapped in the value that turns it on (crds.install, rbac.create, admission.enabled,
//     the requester MutatingAdmissionPolicy's helper, prometheusRule.enabled);
//   - the operator's username `system:serviceaccount:leasehold-system:leasehold` (the admission policies exempt it)
//     becomes the release's: the leasehold.operatorUsername helper, from the release namespace and ServiceAccount;
//   - `namespace: leasehold-system` becomes the release namespace, and a ServiceAccount subject named leasehold
//     becomes the release's ServiceAccount;
//   - the chart's standard labels replace app.kubernetes.io/name (kept: component, part-of and the rest);
//   - `{{` in the source (Prometheus alert templates, CEL) is escaped so Helm prints it unchanged.
// Dashboards (manifests/monitoring/*.json) are copied to charts/leasehold/dashboards/, which a hand-written template
// puts in ConfigMaps, and the chart README's values table is written from values.yaml. The hand-written templates
// (templates/*.yaml, _helpers.tpl) are not touched.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export const CHART_DIR = 'charts/leasehold';

/** The chart's directories that hold only generated files (a stale file there is removed by `npm run gen`). */
export const CHART_GENERATED_DIRS = [
  `${CHART_DIR}/templates/crds`,
  `${CHART_DIR}/templates/rbac`,
  `${CHART_DIR}/templates/admission`,
  `${CHART_DIR}/templates/monitoring`,
  `${CHART_DIR}/dashboards`,
] as const;

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  content: string;
}

/** The username the kustomize manifests give the operator (its ServiceAccount leasehold in leasehold-system). */
export const KUSTOMIZE_OPERATOR_USERNAME = 'system:serviceaccount:leasehold-system:leasehold';
const KUSTOMIZE_NAMESPACE = 'leasehold-system';
const KUSTOMIZE_SERVICE_ACCOUNT = 'leasehold';

/** Labels the chart's leasehold.labels helper writes; the source's own values for them are dropped. */
const HELPER_LABELS = [
  'app.kubernetes.io/name',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'app.kubernetes.io/managed-by',
  'helm.sh/chart',
];

// Placeholders: plain words the YAML writer leaves unquoted, replaced by template text after writing.
const P = {
  namespace: 'LEASEHOLD_CHART_NAMESPACE',
  serviceAccount: 'LEASEHOLD_CHART_SERVICE_ACCOUNT',
  username: 'LEASEHOLD_CHART_OPERATOR_USERNAME',
  mapApiVersion: 'LEASEHOLD_CHART_MAP_API_VERSION',
  labels: 'LEASEHOLD_CHART_LABELS',
  extraLabels: 'LEASEHOLD_CHART_EXTRA_LABELS',
  annotations: 'LEASEHOLD_CHART_ANNOTATIONS',
} as const;

type Obj = Record<string, unknown>;

interface Source {
  /** Directory under manifests/ and under the chart's templates/. */
  dir: 'crds' | 'rbac' | 'admission' | 'monitoring';
  file: string;
  text: string;
}

/** The `{{ if }}` that turns a document on, by where it comes from and its kind. */
function gateOf(dir: Source['dir'], kind: string, where: string): string | null {
  switch (dir) {
    case 'crds':
      return '.Values.crds.install';
    case 'rbac':
      return '.Values.rbac.create';
    case 'admission':
      return kind.startsWith('MutatingAdmissionPolicy')
        ? 'include "leasehold.mutatingAdmissionPolicy.apiVersion" .'
        : '.Values.admission.enabled';
    case 'monitoring':
      if (kind === 'PrometheusRule') return '.Values.prometheusRule.enabled';
      // The kustomize install's scrape config: the chart has its own Service and ServiceMonitor instead.
      if (kind === 'PodMonitor') return null;
      throw new Error(
        `${where}: kind ${kind} has no place in the chart yet; say in scripts/gen-chart.ts which value turns it on`,
      );
  }
}

/** metadata.namespace: leasehold-system (or none, for monitoring objects) becomes the release namespace. */
function rewriteNamespace(metadata: Obj, dir: Source['dir'], what: string): void {
  if (metadata.namespace === undefined) {
    if (dir === 'monitoring') metadata.namespace = P.namespace;
    return;
  }
  if (metadata.namespace !== KUSTOMIZE_NAMESPACE)
    throw new Error(`${what} is in namespace ${String(metadata.namespace)}`);
  metadata.namespace = P.namespace;
}

/** Rewrites one document (a plain object) for the chart; returns it with placeholders in place. */
function rewrite(doc: Obj, dir: Source['dir'], where: string): Obj {
  const metadata = (doc.metadata ??= {}) as Obj;
  const kind = String(doc.kind);
  rewriteNamespace(metadata, dir, `${where}: ${kind} ${String(metadata.name)}`);
  const labels = Object.fromEntries(
    Object.entries((metadata.labels ?? {}) as Obj).filter(([k]) => !HELPER_LABELS.includes(k)),
  );
  metadata.labels = { [P.labels]: 'x', ...labels, ...(kind === 'PrometheusRule' ? { [P.extraLabels]: 'x' } : {}) };
  if (kind === 'CustomResourceDefinition') {
    metadata.annotations = { [P.annotations]: 'x', ...((metadata.annotations ?? {}) as Obj) };
  }
  if (kind.startsWith('MutatingAdmissionPolicy')) doc.apiVersion = P.mapApiVersion;
  for (const s of (doc.subjects ?? []) as Obj[]) {
    if (s.kind === 'ServiceAccount' && s.name === KUSTOMIZE_SERVICE_ACCOUNT && s.namespace === KUSTOMIZE_NAMESPACE) {
      s.name = P.serviceAccount;
      s.namespace = P.namespace;
    }
  }
  const out = replaceStrings(doc, (s) => s.split(KUSTOMIZE_OPERATOR_USERNAME).join(P.username)) as Obj;
  const leftover = findString(out, (s) => s.includes(KUSTOMIZE_NAMESPACE));
  if (leftover !== undefined)
    throw new Error(
      `${where}: "${leftover}" still names ${KUSTOMIZE_NAMESPACE}; teach scripts/gen-chart.ts what it is in the chart`,
    );
  return out;
}

function replaceStrings(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === 'string') return f(v);
  if (Array.isArray(v)) return v.map((x) => replaceStrings(x, f));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replaceStrings(x, f)]));
  return v;
}

function findString(v: unknown, p: (s: string) => boolean): string | undefined {
  if (typeof v === 'string') return p(v) ? v : undefined;
  const children = Array.isArray(v) ? v : v && typeof v === 'object' ? Object.values(v) : [];
  for (const c of children) {
    const found = findString(c, p);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** YAML text (with placeholders) → template text. */
function templateText(yaml: string): string {
  // First escape what Helm would read as an action; the placeholders hold no braces.
  let t = yaml.replace(/\{\{/g, '{{ "{{" }}');
  const indented = (placeholder: string, render: (indent: number) => string) => {
    t = t.replace(new RegExp(`^( *)${placeholder}: x$`, 'gm'), (_m, sp: string) => render(sp.length));
  };
  indented(P.labels, (n) => `{{- include "leasehold.labels" . | nindent ${n} }}`);
  indented(P.extraLabels, (n) => `{{- with .Values.prometheusRule.labels }}{{ toYaml . | nindent ${n} }}{{ end }}`);
  indented(
    P.annotations,
    (n) => `{{- if .Values.crds.keep }}\n${' '.repeat(n)}helm.sh/resource-policy: keep\n${' '.repeat(n)}{{- end }}`,
  );
  // An annotations map left with only the conditional one would be empty when crds.keep is false: Helm then reads
  // `annotations:` as null, which the API server accepts.
  t = t
    .replaceAll(P.namespace, '{{ .Release.Namespace }}')
    .replaceAll(P.serviceAccount, '{{ include "leasehold.serviceAccountName" . }}')
    .replaceAll(P.username, '{{ include "leasehold.operatorUsername" . }}')
    .replaceAll(P.mapApiVersion, '{{ include "leasehold.mutatingAdmissionPolicy.apiVersion" . }}');
  return t;
}

function renderSource(src: Source): GeneratedFile[] {
  const where = `manifests/${src.dir}/${src.file}`;
  const parts: string[] = [];
  for (const d of YAML.parseAllDocuments(src.text)) {
    if (d.errors.length) throw new Error(`${where}: ${d.errors[0]!.message}`);
    const doc = d.toJS() as Obj | null;
    if (!doc) continue;
    const kind = String(doc.kind);
    const gate = gateOf(src.dir, kind, where);
    if (gate === null) continue;
    const body = YAML.stringify(rewrite(doc, src.dir, where), { lineWidth: 0 });
    parts.push(`{{- if ${gate} }}\n---\n${templateText(body)}{{- end }}\n`);
  }
  if (parts.length === 0) return [];
  const header =
    src.dir === 'crds'
      ? `{{- /* Generated by \`npm run gen\` from api/ (as ${where}). Do not edit. */}}\n`
      : `{{- /* Generated by \`npm run gen\` from ${where} (read it for what each object does). Do not edit: change the source and regenerate. */}}\n`;
  return [{ path: `${CHART_DIR}/templates/${src.dir}/${src.file}`, content: header + parts.join('') }];
}

function readDir(root: string, dir: string, ext: RegExp): Array<{ file: string; text: string }> {
  const full = path.join(root, 'manifests', dir);
  if (!fs.existsSync(full)) return [];
  return fs
    .readdirSync(full)
    .filter((n) => ext.test(n))
    .sort()
    .map((file) => ({ file, text: fs.readFileSync(path.join(full, file), 'utf8') }));
}

/**
 * The chart's generated files, from manifests/ under `root` and the CRD files `npm run gen` renders (passed in, so a
 * check run needs nothing written first). Throws naming the source file for anything the chart can't express.
 */
export function renderChartFiles(root: string, crdFiles: readonly GeneratedFile[]): GeneratedFile[] {
  const sources: Source[] = [
    ...crdFiles.map((f) => ({ dir: 'crds' as const, file: path.basename(f.path), text: f.content })),
    ...(['rbac', 'admission', 'monitoring'] as const).flatMap((dir) =>
      readDir(root, dir, /\.ya?ml$/).map((f) => ({ dir, ...f })),
    ),
  ];
  const dashboards = readDir(root, 'monitoring', /\.json$/).map((f) => ({
    path: `${CHART_DIR}/dashboards/${f.file}`,
    content: f.text,
  }));
  return [
    ...sources.flatMap(renderSource),
    ...dashboards,
    ...(fs.existsSync(path.join(root, CHART_DIR, 'README.md')) ? [renderChartReadme(root)] : []),
  ];
}

const VALUES_START = '<!-- values: generated by `npm run gen` from values.yaml -->';
const VALUES_END = '<!-- end of values -->';

/** One row per value of values.yaml: its path, default and `# --` comment (maps documented as a whole stay one row). */
function valueRows(map: YAML.YAMLMap, prefix: string): string[] {
  return map.items.flatMap((pair, i) => {
    const key = `${prefix}${String((pair.key as YAML.Scalar).value)}`;
    const comment = (pair.key as YAML.Scalar).commentBefore ?? (i === 0 ? map.commentBefore : undefined);
    const documented = comment?.trim().startsWith('--');
    if (YAML.isMap(pair.value) && pair.value.items.length > 0 && !documented) return valueRows(pair.value, `${key}.`);
    const description = documented
      ? comment!
          .trim()
          .replace(/^--\s*/, '')
          .split('\n')
          .map((l) => l.trim())
          .join(' ')
      : '';
    const value = JSON.stringify((pair.value as YAML.Node | null)?.toJSON() ?? null);
    return [`| \`${key}\` | \`${value.replace(/\|/g, '\\|')}\` | ${description.replace(/\|/g, '\\|')} |`];
  });
}

/** charts/leasehold/README.md with its values table regenerated from values.yaml (the rest is hand-written). */
export function renderChartReadme(root: string): GeneratedFile {
  const rel = `${CHART_DIR}/README.md`;
  const readme = fs.readFileSync(path.join(root, rel), 'utf8');
  const values = YAML.parseDocument(fs.readFileSync(path.join(root, CHART_DIR, 'values.yaml'), 'utf8'));
  const start = readme.indexOf(VALUES_START);
  const end = readme.indexOf(VALUES_END);
  if (start < 0 || end < start) throw new Error(`${rel} lacks the lines ${VALUES_START} and ${VALUES_END}`);
  const table = [
    '| Value | Default | What it does |',
    '| --- | --- | --- |',
    ...valueRows(values.contents as YAML.YAMLMap, ''),
  ];
  return {
    path: rel,
    content: `${readme.slice(0, start)}${VALUES_START}\n\n${table.join('\n')}\n\n${readme.slice(end)}`,
  };
}
