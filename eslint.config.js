import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', '.stack/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', Buffer: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', fetch: 'readonly', structuredClone: 'readonly', setImmediate: 'readonly', performance: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error',
        { selector: "CallExpression[callee.object.name='test'][callee.property.name='only']", message: 'no test.only left behind' },
        { selector: "CallExpression[callee.object.name='test'][callee.property.name='skip']", message: 'no test.skip left behind' }],
    },
  },
  // Warnings a reviewer reads: a function with more than 15 paths (split its decisions out), or more than 4
  // positional parameters (take an options object). Tests are exempt: a table of cases is long by design.
  {
    files: ['api/**', 'controllers/**', 'lib/**', 'cmd/**', 'scripts/**'],
    rules: { complexity: ['warn', 15], 'max-params': ['warn', 4] },
  },
  // The layers, imported one way only: cmd/ (the programs) → controllers/ → api/ → lib/ (libraries knowing none of
  // them). tests/unit/layers.test.ts runs these rules as part of `npm test`.
  layer('lib/**', ['api', 'controllers', 'cmd'], 'lib/ is a library: it imports neither api/, controllers/ nor cmd/'),
  layer('api/**', ['controllers', 'cmd'], 'api/ describes the kinds: it imports neither controllers/ nor cmd/'),
  layer('controllers/**', ['cmd'], 'controllers/ get their settings from cmd/, never import it'),
);

/** no-restricted-imports for the files under `files`: a relative import reaching one of the top-level `folders`. */
function layer(files, folders, message) {
  const regex = `^(\\.\\./)+(${folders.join('|')})(/|$)`;
  return { files: [files], rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] } };
}
