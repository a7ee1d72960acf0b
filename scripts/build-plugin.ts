// `npm run build:plugin`: the kubectl plugin as one file, for people without a checkout.
//
// Writes dist/plugin/ (never committed):
//   kubectl-vault                                 the plugin bundled with esbuild into one ES module with a
//                                                 `#!/usr/bin/env node` line: runs on Node.js >= 22.19, any OS
//   kubectl-vault-vX.Y.Z.tar.gz                   that file alone (the archive krew installs where no
//                                                 single executable is built)
//   sea/<os>-<arch>/kubectl-vault                 a Node.js single executable application (Linux only, for the
//                                                 machine's own os/arch): Node itself with the plugin injected,
//                                                 needs no Node.js installed
//   kubectl-vault-vX.Y.Z-<os>-<arch>.tar.gz       that executable alone
//   SHA256SUMS                                    `sha256sum` lines for the archives
//   vault.yaml                                    manifests/krew/vault.yaml with every archive's sha256 filled in
//                                                 (and its uri moved under --base-url, when given)
//
// Flags: --no-sea (skip the single executable), --out DIR (default dist/plugin), --base-url URL (where the
// archives will be published; default the GitHub release of package.json's version).
//
// The version comes from package.json at build time (esbuild `define`): the bundle reads no file at run time.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import YAML from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const PLUGIN_FILE = 'kubectl-vault';
/** The fuse Node.js checks to find an injected single-executable blob (Node's documentation names it). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Node.js's process.arch → krew's (Go's) arch names. */
const KREW_ARCH: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64' };
const KREW_MANIFEST = path.join(root, 'manifests/krew/vault.yaml');

export interface BuildOptions {
  /** Output directory (emptied first). */
  outDir: string;
  /** Also build the single executable (when the machine can: Linux, amd64 or arm64). */
  sea: boolean;
  /** Also pack the archives, SHA256SUMS and the krew manifest (default true; tests only need the builds). */
  archives?: boolean;
  /** Where the archives are published: the manifest's uris become BASE_URL/ARCHIVE. */
  baseUrl?: string;
  log?: (line: string) => void;
}

export interface Archive {
  file: string;
  sha256: string;
  bytes: number;
  /** krew's os/arch of what it holds; undefined for the bundle, which runs wherever Node.js does. */
  platform?: { os: string; arch: string };
}

export interface BuildResult {
  version: string;
  /** The bundled plugin (one JavaScript file). */
  bundle: string;
  /** The single executable, when built. */
  sea?: string;
  archives: Archive[];
  /** The krew manifest with the archives' sha256 filled in; undefined when an archive it names wasn't built. */
  manifest?: string;
}

export function packageJsonVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The archive names: the bundle's, and a single executable's for an os/arch. */
export function archiveName(version: string, platform?: { os: string; arch: string }): string {
  return `${PLUGIN_FILE}-v${version}${platform ? `-${platform.os}-${platform.arch}` : ''}.tar.gz`;
}

/**
 * Bundles cmd/kubectl-vault/main.ts and everything it imports into one file. `esm` for the Node.js-run bundle
 * (a require() shim lets the CommonJS dependencies load Node's built-ins), `cjs` for a single executable (which
 * runs a CommonJS script).
 */
async function bundle(outfile: string, format: 'esm' | 'cjs', version: string): Promise<void> {
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'cmd/kubectl-vault/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format,
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: {
      LEASEHOLD_PLUGIN_VERSION: JSON.stringify(version),
      // Only packageVersion() reads it, and the stamped version makes that unreachable; CommonJS has no import.meta.
      ...(format === 'cjs' ? { 'import.meta.url': JSON.stringify(`file:///${PLUGIN_FILE}`) } : {}),
    },
    banner: {
      js:
        format === 'esm'
          ? '#!/usr/bin/env node\nimport { createRequire as __leaseholdRequire } from "node:module"; const require = __leaseholdRequire(import.meta.url);'
          : '',
    },
  });
  if (result.errors.length > 0) throw new Error(`esbuild failed: ${result.errors.map((e) => e.text).join('; ')}`);
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** A reproducible tar.gz of one file (GNU tar: sorted, owner 0, fixed mtime from SOURCE_DATE_EPOCH or 0). */
function tarGz(dir: string, file: string, archive: string): void {
  const mtime = `@${process.env.SOURCE_DATE_EPOCH ?? '0'}`;
  const tar = execFileSync(
    'tar',
    ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=${mtime}`, '-cf', '-', '-C', dir, file],
    { maxBuffer: 1 << 30 },
  );
  fs.writeFileSync(archive, execFileSync('gzip', ['-9', '-n'], { input: tar, maxBuffer: 1 << 30 }));
}

/** Whether this machine can build a single executable for itself. */
export function seaPlatform(): { os: string; arch: string } | undefined {
  const arch = KREW_ARCH[process.arch];
  return process.platform === 'linux' && arch ? { os: 'linux', arch } : undefined;
}

/**
 * Node.js's single executable application: a blob made by `node --experimental-sea-config` from the CommonJS
 * bundle (with V8's code cache, for start-up), injected into a copy of the running Node.js with postject.
 * The copy is stripped of debug symbols first when `strip` is on PATH (about 18 MB less).
 */
async function buildSea(work: string, out: string, version: string, log: (line: string) => void): Promise<void> {
  const script = path.join(work, 'kubectl-vault.cjs');
  await bundle(script, 'cjs', version);
  const config = path.join(work, 'sea-config.json');
  const blob = path.join(work, 'sea.blob');
  fs.writeFileSync(
    config,
    JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.copyFileSync(process.execPath, out);
  fs.chmodSync(out, 0o755);
  try {
    execFileSync('strip', [out], { stdio: 'pipe' });
  } catch {
    log('strip not found (binutils): the single executable keeps Node.js debug symbols');
  }
  execFileSync(
    process.execPath,
    [path.join(root, 'node_modules/postject/dist/cli.js'), out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE],
    { stdio: 'pipe' },
  );
}

/**
 * manifests/krew/vault.yaml with each platform's sha256 taken from the archive its uri names (and the uri moved
 * under baseUrl when given). Throws when the manifest's version isn't package.json's, or an archive it names
 * wasn't built.
 */
export function fillKrewManifest(
  template: string,
  version: string,
  archives: readonly Archive[],
  baseUrl?: string,
): string {
  const doc = YAML.parseDocument(template);
  const specVersion = doc.getIn(['spec', 'version']);
  if (specVersion !== `v${version}`) {
    throw new Error(`manifests/krew/vault.yaml has spec.version ${String(specVersion)}; package.json says v${version}`);
  }
  const platforms = doc.getIn(['spec', 'platforms']) as YAML.YAMLSeq<YAML.YAMLMap>;
  for (const platform of platforms.items) {
    const uri = String(platform.get('uri'));
    const file = uri.slice(uri.lastIndexOf('/') + 1);
    const archive = archives.find((a) => a.file === file);
    if (!archive) throw new Error(`the krew manifest names ${file}, which this build did not make`);
    platform.set('sha256', archive.sha256);
    if (baseUrl) platform.set('uri', `${baseUrl.replace(/\/$/, '')}/${file}`);
  }
  return doc.toString({ lineWidth: 0 });
}

export async function buildPlugin(opts: BuildOptions): Promise<BuildResult> {
  const log = opts.log ?? (() => {});
  const version = packageJsonVersion();
  fs.rmSync(opts.outDir, { recursive: true, force: true });
  fs.mkdirSync(opts.outDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(opts.outDir, '.work-'));
  try {
    const bundlePath = path.join(opts.outDir, PLUGIN_FILE);
    await bundle(bundlePath, 'esm', version);
    fs.chmodSync(bundlePath, 0o755);
    const archives: Archive[] = [];
    const addArchive = (dir: string, platform?: { os: string; arch: string }) => {
      if (opts.archives === false) return;
      const file = archiveName(version, platform);
      const full = path.join(opts.outDir, file);
      tarGz(dir, PLUGIN_FILE, full);
      archives.push({ file, sha256: sha256(full), bytes: fs.statSync(full).size, platform });
    };
    addArchive(opts.outDir);
    log(`bundle: ${bundlePath} (${fs.statSync(bundlePath).size} bytes)`);

    let seaPath: string | undefined;
    const platform = seaPlatform();
    if (opts.sea && platform) {
      seaPath = path.join(opts.outDir, 'sea', `${platform.os}-${platform.arch}`, PLUGIN_FILE);
      await buildSea(work, seaPath, version, log);
      addArchive(path.dirname(seaPath), platform);
      log(`single executable: ${seaPath} (${fs.statSync(seaPath).size} bytes)`);
    } else if (opts.sea) {
      log(`single executable: not built (only on Linux amd64/arm64; this is ${process.platform}/${process.arch})`);
    }

    if (opts.archives === false) return { version, bundle: bundlePath, sea: seaPath, archives };
    fs.writeFileSync(path.join(opts.outDir, 'SHA256SUMS'), archives.map((a) => `${a.sha256}  ${a.file}\n`).join(''));
    let manifest: string | undefined = path.join(opts.outDir, 'vault.yaml');
    try {
      fs.writeFileSync(
        manifest,
        fillKrewManifest(fs.readFileSync(KREW_MANIFEST, 'utf8'), version, archives, opts.baseUrl),
      );
    } catch (err) {
      // A build without the single executable can't fill the manifest's linux/amd64 entry: say so, keep the rest.
      log(`krew manifest not written: ${err instanceof Error ? err.message : String(err)}`);
      manifest = undefined;
    }
    for (const a of archives) log(`archive: ${a.file} (${a.bytes} bytes) sha256 ${a.sha256}`);
    return { version, bundle: bundlePath, sea: seaPath, archives, manifest };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const started = Date.now();
  await buildPlugin({
    outDir: path.resolve(value('--out') ?? path.join(root, 'dist/plugin')),
    sea: !args.includes('--no-sea'),
    baseUrl: value('--base-url'),
    log: (line) => process.stdout.write(`[build:plugin] ${line}\n`),
  });
  process.stdout.write(`[build:plugin] done in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
}
