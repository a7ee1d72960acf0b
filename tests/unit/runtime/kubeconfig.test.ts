import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeconfigError, loadKubeconfig } from '../../../lib/runtime/kubeconfig.ts';

function kubeconfig(opts: {
  current?: string;
  contexts: { name: string; cluster: string; namespace?: string }[];
  clusters: { name: string; server: string }[];
}): string {
  const lines = ['apiVersion: v1', 'kind: Config'];
  if (opts.current) lines.push(`current-context: ${opts.current}`);
  lines.push('clusters:', ...opts.clusters.map((c) => `- name: ${c.name}\n  cluster: {server: "${c.server}"}`));
  lines.push('users:', '- name: u\n  user: {token: t}');
  lines.push(
    'contexts:',
    ...opts.contexts.map(
      (c) =>
        `- name: ${c.name}\n  context: {cluster: ${c.cluster}, user: u${c.namespace ? `, namespace: ${c.namespace}` : ''}}`,
    ),
  );
  return `${lines.join('\n')}\n`;
}

function dir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-kubeconfig-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('--kubeconfig wins; namespace from -n, else the context, else default', (t) => {
  const d = dir(t);
  const file = path.join(d, 'a');
  fs.writeFileSync(
    file,
    kubeconfig({
      current: 'one',
      clusters: [{ name: 'c', server: 'https://one' }],
      contexts: [
        { name: 'one', cluster: 'c', namespace: 'team' },
        { name: 'two', cluster: 'c' },
      ],
    }),
  );
  const env = { KUBECONFIG: path.join(d, 'elsewhere'), HOME: d };
  t.is(loadKubeconfig({ kubeconfig: file }, env).namespace, 'team');
  t.is(loadKubeconfig({ kubeconfig: file, namespace: 'x' }, env).namespace, 'x');
  const two = loadKubeconfig({ kubeconfig: file, context: 'two' }, env);
  t.is(two.namespace, 'default');
  t.is(two.kubeConfig.getCurrentContext(), 'two');
});

test('KUBECONFIG files merge as kubectl merges them: first wins, missing files skipped', (t) => {
  const d = dir(t);
  const a = path.join(d, 'a');
  const b = path.join(d, 'b');
  fs.writeFileSync(
    a,
    kubeconfig({ clusters: [{ name: 'c', server: 'https://from-a' }], contexts: [{ name: 'ctx-a', cluster: 'c' }] }),
  );
  fs.writeFileSync(
    b,
    kubeconfig({
      current: 'ctx-b',
      clusters: [
        { name: 'c', server: 'https://from-b' },
        { name: 'd', server: 'https://d' },
      ],
      contexts: [{ name: 'ctx-b', cluster: 'c', namespace: 'bee' }],
    }),
  );
  const loaded = loadKubeconfig({}, { KUBECONFIG: [path.join(d, 'missing'), a, b].join(path.delimiter) });
  t.is(loaded.kubeConfig.getCurrentContext(), 'ctx-b');
  t.is(loaded.kubeConfig.getCurrentCluster()?.server, 'https://from-a');
  t.is(loaded.namespace, 'bee');
});

test('~/.kube/config when nothing else is set', (t) => {
  const d = dir(t);
  fs.mkdirSync(path.join(d, '.kube'));
  fs.writeFileSync(
    path.join(d, '.kube', 'config'),
    kubeconfig({
      current: 'h',
      clusters: [{ name: 'c', server: 'https://home' }],
      contexts: [{ name: 'h', cluster: 'c' }],
    }),
  );
  t.is(loadKubeconfig({}, { HOME: d }).kubeConfig.getCurrentCluster()?.server, 'https://home');
});

test('clear errors: missing file, unknown context, no current context, nothing at all', (t) => {
  const d = dir(t);
  t.throws(() => loadKubeconfig({ kubeconfig: path.join(d, 'nope') }, {}), {
    instanceOf: KubeconfigError,
    message: /does not exist/,
  });
  const file = path.join(d, 'a');
  fs.writeFileSync(
    file,
    kubeconfig({ clusters: [{ name: 'c', server: 'https://x' }], contexts: [{ name: 'one', cluster: 'c' }] }),
  );
  t.throws(() => loadKubeconfig({ kubeconfig: file, context: 'zzz' }, {}), {
    instanceOf: KubeconfigError,
    message: /context "zzz" is not in/,
  });
  t.throws(() => loadKubeconfig({ kubeconfig: file }, {}), {
    instanceOf: KubeconfigError,
    message: /sets no current context/,
  });
  t.throws(() => loadKubeconfig({}, { HOME: d }), { instanceOf: KubeconfigError, message: /no kubeconfig found/ });
  t.throws(() => loadKubeconfig({}, { KUBECONFIG: path.join(d, 'nope'), HOME: d }), {
    instanceOf: KubeconfigError,
    message: /none of the files in KUBECONFIG/,
  });
});
