// `npm run gen`: writes manifests/crds/ from the kind definitions in api/ (one CRD per kind), and removes
// generated files whose kind no longer exists.
// `npm run gen -- --check` writes nothing and exits 1 if the committed files differ.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_DIR, renderCrdFiles } from '../api/crd.ts';
import { KINDS } from '../api/index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const files = renderCrdFiles(KINDS);
const wanted = new Set(files.map((f) => path.join(root, f.path)));
const dir = path.join(root, CRD_DIR);
const stale = fs.existsSync(dir)
  ? fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.yaml'))
      .map((n) => path.join(dir, n))
      .filter((p) => !wanted.has(p))
  : [];

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
if (!check && differences === 0) console.log('manifests/crds is up to date');
