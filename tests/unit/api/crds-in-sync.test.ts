import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { CRD_DIR, renderCrdFiles } from '../../../api/crd.ts';
import { KINDS } from '../../../api/index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const generated = renderCrdFiles(KINDS);

test('the committed CRDs are exactly what `npm run gen` produces from api/', (t) => {
  for (const f of generated) {
    const file = path.join(root, f.path);
    t.true(fs.existsSync(file), `${f.path} is missing: run npm run gen`);
    if (fs.existsSync(file))
      t.is(fs.readFileSync(file, 'utf8'), f.content, `${f.path} differs from api/: run npm run gen`);
  }
  const extra = fs
    .readdirSync(path.join(root, CRD_DIR))
    .map((n) => `${CRD_DIR}/${n}`)
    .filter((p) => !generated.some((f) => f.path === p));
  t.deepEqual(extra, [], 'files in manifests/crds that the generator no longer writes');
});

test('the install kustomization includes every CRD', (t) => {
  const kustomization = parse(fs.readFileSync(path.join(root, 'manifests/kustomization.yaml'), 'utf8')) as {
    resources: string[];
  };
  for (const f of generated)
    t.true(
      kustomization.resources.includes(path.relative('manifests', f.path)),
      `${f.path} not in manifests/kustomization.yaml`,
    );
});
