// Which `kubectl-vault` the plugin tests (tests/integration/plugin.test.ts) drive, and the environment kubectl
// runs it in:
//   - source: bin/kubectl-vault from this checkout (TypeScript through tsx on node@24), as a developer runs it;
//   - bundle: the one-file build (`npm run build:plugin`'s dist/plugin/kubectl-vault), as krew installs it where
//     Node.js is on PATH;
//   - sea: the Node.js single executable, as krew installs it on Linux.
// The built ones are built afresh into a temp directory and run from an empty directory: no node_modules, no
// package.json, the working directory a fresh temp dir, PATH holding only one directory with the plugin,
// kubectl, and (for the bundle) node: nothing of the checkout is reachable.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPlugin } from '../../../scripts/build-plugin.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export type PluginBuild = 'source' | 'bundle' | 'sea';

let chosen: PluginBuild = 'source';

/** Chooses the build for the plugin tests; call before importing plugin.test.ts (plugin-bundle.test.ts does). */
export function usePluginBuild(build: PluginBuild): void {
  chosen = build;
}

export function pluginBuild(): PluginBuild {
  return chosen;
}

export interface PluginRun {
  build: PluginBuild;
  /** The environment kubectl runs with (callers add KUBECONFIG and their own). */
  env: Record<string, string | undefined>;
  /** kubectl's working directory (undefined: the test's own). */
  cwd?: string;
  /** Removes what was built. */
  cleanup(): void;
}

/**
 * Readies the chosen build for kubectl at `kubectlPath`. For a built plugin: builds it (esbuild, and for sea the
 * single executable), then lays out DIR/bin/{kubectl-vault,kubectl[,node]} and an empty DIR/work.
 */
export async function preparePlugin(kubectlPath: string): Promise<PluginRun> {
  const build = chosen;
  if (build === 'source') {
    return {
      build,
      env: {
        ...process.env,
        PATH: [path.join(root, 'bin'), path.join(root, 'node_modules/.bin'), process.env.PATH].join(path.delimiter),
      },
      cleanup: () => {},
    };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kubectl-vault-${build}-`));
  const out = path.join(dir, 'build');
  const result = await buildPlugin({ outDir: out, sea: build === 'sea', archives: false });
  const bin = path.join(dir, 'bin');
  const work = path.join(dir, 'work');
  const home = path.join(dir, 'home');
  for (const d of [bin, work, home]) fs.mkdirSync(d);
  const plugin = build === 'sea' ? result.sea : result.bundle;
  if (!plugin) throw new Error(`npm run build:plugin made no ${build} build on ${process.platform}/${process.arch}`);
  fs.copyFileSync(plugin, path.join(bin, 'kubectl-vault'));
  fs.chmodSync(path.join(bin, 'kubectl-vault'), 0o755);
  fs.rmSync(out, { recursive: true, force: true });
  fs.symlinkSync(kubectlPath, path.join(bin, 'kubectl'));
  // The bundle's `#!/usr/bin/env node` finds Node.js on PATH: the one running the tests (node@24). The single
  // executable gets none, to show it needs none.
  if (build === 'bundle') fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  return {
    build,
    env: { PATH: bin, HOME: home, LANG: 'C.UTF-8' },
    cwd: work,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
