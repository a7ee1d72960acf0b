// The operator as the benchmarks run it: compiled JavaScript on node@24, as the container image runs
// `node dist/cmd/operator/main.js`. Running it through tsx (what scripts/stack/operator.ts does for the tests and the
// demo) costs ~60 MB of RSS for the loader and its transpiled sources and seconds of start-up, which would be
// measured as the operator's. `--operator tsx` benchmarks that way instead. Either way the operator is started
// by scripts/stack/operator.ts (its `entryPoint` option).
//
// The build goes to a private directory (tsc -p tsconfig.build.json --noCheck: emit only, the type check is
// `npm run lint`'s job), never to dist/, which other work in this tree may be using.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../stack/leasehold-setup.ts';
import { nodeBinary } from '../stack/operator.ts';

export type OperatorRuntime = 'compiled' | 'tsx';

/** Compiles api/, cmd/, controllers/ and lib/ into `dir`; resolves with the entry point. */
export function buildOperator(dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const tsc = path.join(REPO_ROOT, 'node_modules/.bin/tsc');
    execFile(
      nodeBinary(),
      [tsc, '-p', path.join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', dir, '--noCheck', '--sourceMap', 'false'],
      {
        cwd: REPO_ROOT,
        maxBuffer: 16 << 20,
      },
      (err, stdout, stderr) => {
        const main = path.join(dir, 'cmd/operator/main.js');
        if (err && !fs.existsSync(main))
          return reject(new Error(`compiling the operator failed: ${(stdout + stderr).trim().slice(0, 2000)}`));
        // ESM needs the package's "type": "module"; packages resolve through the repository's node_modules.
        fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(dir, 'package.json'));
        fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
        resolve(main);
      },
    );
  });
}
