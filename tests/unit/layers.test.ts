// The layers hold: cmd/ → controllers/ → api/ → lib/, never the other way. The rule lives in eslint.config.js
// (no-restricted-imports per folder); `npm test` doesn't run `npm run lint`, so this runs that one rule.
import test from 'ava';
import { ESLint } from 'eslint';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const eslint = new ESLint({ cwd: repo, ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports' });

function violations(results: ESLint.LintResult[]): string[] {
  return results.flatMap((r) => r.messages.map((m) => `${path.relative(repo, r.filePath)}:${m.line} ${m.message}`));
}

test('no file of lib/, api/ or controllers/ imports a layer above it', async (t) => {
  t.timeout(120_000, 'linting three folders');
  t.deepEqual(violations(await eslint.lintFiles(['lib', 'api', 'controllers'])), []);
});

test('the rule refuses lib/ importing api/, controllers/ or cmd/, api/ importing controllers/, and controllers/ importing cmd/', async (t) => {
  t.timeout(60_000, 'linting');
  const probe = async (file: string, from: string) =>
    violations(
      await eslint.lintText(`import { x } from '${from}';\nexport { x };\n`, { filePath: path.join(repo, file) }),
    );
  for (const [file, from] of [
    ['lib/runtime/probe.ts', '../../api/index.ts'],
    ['lib/vault/probe.ts', '../../controllers/index.ts'],
    ['lib/runtime/probe.ts', '../../cmd/operator/config.ts'],
    ['api/probe.ts', '../controllers/shared/names.ts'],
    ['controllers/shared/probe.ts', '../../cmd/operator/config.ts'],
  ] as const) {
    t.is((await probe(file, from)).length, 1, `${file} importing ${from}`);
  }
  t.deepEqual(await probe('controllers/shared/probe.ts', '../../lib/runtime/index.ts'), [], 'downwards is fine');
  t.deepEqual(await probe('cmd/operator/probe.ts', '../../controllers/index.ts'), [], 'cmd/ may import anything');
});
