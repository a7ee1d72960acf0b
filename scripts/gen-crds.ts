// `npm run gen`: writes manifests/crds/ from the kind definitions in api/ (one CRD per kind) and the Helm chart's
// generated templates from manifests/ (scripts/gen-chart.ts), and removes generated files whose source is gone.
// `npm run gen -- --check` writes nothing and exits 1 if the committed files differ.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_DIR, renderCrdFiles } from '../api/crd.ts';
import { KINDS } from '../api/index.ts';
import { CHART_GENERATED_DIRS, renderChartFiles } from './gen-chart.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const crdFiles = renderCrdFiles(KINDS);
const files = [...crdFiles, ...renderChartFiles(root, crdFiles)];
const wanted = new Set(files.map((f) => path.join(root, f.path)));
const stale = [CRD_DIR, ...CHART_GENERATED_DIRS].flatMap((d) => {
  const dir = path.join(root, d);
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((n) => /\.(yaml|json)$/.test(n))
        .map((n) => path.join(dir, n))
        .filter((p) => !wanted.has(p))
    : [];
});

let differences = 0;
for (const f of files) {
  const target = path.join(root, f.path);
  const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
  if (current === f.content) continue;
  differences++;
  if (check) {
    console.error(`${f.path} is out of date`);
  } else {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, f.content);
    console.log(`wrote ${f.path}`);
  }
}
for (const p of stale) {
  differences++;
  if (check) console.error(`${path.relative(root, p)} is no longer generated`);
  else {
    fs.rmSync(p);
    console.log(`removed ${path.relative(root, p)}`);
  }
}
if (check && differences > 0) {
  console.error('run `npm run gen` and commit the result');
  process.exit(1);
}
if (!check && differences === 0) console.log('manifests/crds and the chart are up to date');
