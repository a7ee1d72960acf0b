// The plugin's version: package.json's, found by walking up from this module (cmd/kubectl-vault/ in the repository,
// dist/cmd/kubectl-vault/ when built), so the source, the build and an npm install all report the same thing.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE_API_VERSION } from '../../api/index.ts';

export const PLUGIN_NAME = 'kubectl-vault';

export function packageVersion(startDir = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = startDir, i = 0; i < 6; i++, dir = path.dirname(dir)) {
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

export function versionText(): string {
  const v = packageVersion();
  return `${PLUGIN_NAME} ${v === 'unknown' ? v : `v${v}`}\nAPI: ${ENGINE_API_VERSION} (Leasehold, KubeVault-compatible)\nNode.js: ${process.version}\n`;
}
