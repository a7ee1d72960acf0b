// The plugin's version: stamped into the one-file build by `npm run build:plugin` (esbuild's `define`, so the
// bundle reads no file at run time), else package.json's, found by walking up from this module
// (cmd/kubectl-vault/ in the repository, dist/cmd/kubectl-vault/ when built with tsc), so the source, the builds
// and an npm install all report the same thing.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE_API_VERSION } from '../../api/index.ts';

export const PLUGIN_NAME = 'kubectl-vault';

/** Replaced by package.json's version (a string literal) in the one-file build; undeclared everywhere else. */
declare const LEASEHOLD_PLUGIN_VERSION: string | undefined;

/** The version stamped in at build time, if this is the one-file build. */
function stampedVersion(): string | undefined {
  return typeof LEASEHOLD_PLUGIN_VERSION === 'string' ? LEASEHOLD_PLUGIN_VERSION : undefined;
}

export function packageVersion(startDir?: string): string {
  let dir = startDir ?? path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    try {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'leasehold' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not here (or not readable): keep walking up.
    }
    if (path.dirname(dir) === dir) break;
  }
  return 'unknown';
}

/** The version `kubectl vault version` reports: "0.1.0", or "unknown" when neither source has one. */
export function pluginVersion(): string {
  return stampedVersion() ?? packageVersion();
}

export function versionText(): string {
  const v = pluginVersion();
  return `${PLUGIN_NAME} ${v === 'unknown' ? v : `v${v}`}\nAPI: ${ENGINE_API_VERSION} (Leasehold, KubeVault-compatible)\nNode.js: ${process.version}\n`;
}
