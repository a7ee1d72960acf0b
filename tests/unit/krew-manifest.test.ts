import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { archiveName, fillKrewManifest, packageJsonVersion } from '../../scripts/build-plugin.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const template = fs.readFileSync(path.join(root, 'manifests/krew/vault.yaml'), 'utf8');

interface Platform {
  selector: { matchLabels?: Record<string, string> };
  uri: string;
  sha256: string;
  files: { from: string; to: string }[];
  bin: string;
}
const manifest = YAML.parse(template) as {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { version: string; platforms: Platform[] };
};

const matches = (p: Platform, os: string, arch: string) =>
  Object.entries(p.selector.matchLabels ?? {}).every(([k, v]) => (k === 'os' ? os : k === 'arch' ? arch : '') === v);

test("the krew manifest is krew's Plugin, named after its file, at package.json's version", (t) => {
  t.is(manifest.apiVersion, 'krew.googlecontainertools.github.com/v1alpha2');
  t.is(manifest.kind, 'Plugin');
  t.is(manifest.metadata.name, 'vault');
  t.is(manifest.spec.version, `v${packageJsonVersion()}`);
});

test('each os/arch matches at most one platform: the single executable on linux/amd64, the bundle on the others', (t) => {
  const version = packageJsonVersion();
  const chosen = (os: string, arch: string) =>
    manifest.spec.platforms.filter((p) => matches(p, os, arch)).map((p) => p.uri.slice(p.uri.lastIndexOf('/') + 1));
  t.deepEqual(chosen('linux', 'amd64'), [archiveName(version, { os: 'linux', arch: 'amd64' })]);
  t.deepEqual(chosen('linux', 'arm64'), [archiveName(version)]);
  t.deepEqual(chosen('darwin', 'arm64'), [archiveName(version)]);
  t.deepEqual(chosen('darwin', 'amd64'), [archiveName(version)]);
  t.deepEqual(chosen('windows', 'amd64'), []);
  for (const p of manifest.spec.platforms) {
    t.is(p.bin, 'kubectl-vault');
    t.deepEqual(p.files, [{ from: 'kubectl-vault', to: '.' }]);
    t.true(p.uri.includes(`/v${version}/`), p.uri);
  }
});

test("the build fills in every platform's sha256 from the archive its uri names, and can move the uris", (t) => {
  const version = packageJsonVersion();
  const archives = [
    { file: archiveName(version), sha256: 'a'.repeat(64), bytes: 1 },
    {
      file: archiveName(version, { os: 'linux', arch: 'amd64' }),
      sha256: 'b'.repeat(64),
      bytes: 2,
      platform: { os: 'linux', arch: 'amd64' },
    },
  ];
  const filled = YAML.parse(
    fillKrewManifest(template, version, archives, 'https://example.test/dl/'),
  ) as typeof manifest;
  t.deepEqual(
    filled.spec.platforms.map((p) => [p.uri, p.sha256]),
    [
      [`https://example.test/dl/${archives[1]!.file}`, 'b'.repeat(64)],
      [`https://example.test/dl/${archives[0]!.file}`, 'a'.repeat(64)],
      [`https://example.test/dl/${archives[0]!.file}`, 'a'.repeat(64)],
    ],
  );
  t.throws(() => fillKrewManifest(template, version, archives.slice(0, 1)), {
    message: new RegExp(`names ${archives[1]!.file}, which this build did not make`),
  });
  t.throws(() => fillKrewManifest(template, '9.9.9', archives), {
    message: /spec\.version v\d.*package\.json says v9\.9\.9/,
  });
});
