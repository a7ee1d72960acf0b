import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, KubeClient, PatchType } from '../../../lib/runtime/kube.ts';
import { Metrics } from '../../../lib/runtime/metrics.ts';
import type { ResourceType } from '../../../lib/runtime/types.ts';

const CONFIGMAPS: ResourceType = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' };

interface Seen { method: string; url: string; authorization: string | undefined; contentType: string | undefined; body: string }

/** A stand-in apiserver on 127.0.0.1: records each request, answers with `answer`. */
async function apiserver(answer: (req: Seen) => { status: number; body: unknown }): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, contentType: req.headers['content-type'], body };
      seen.push(s);
      const a = answer(s);
      res.writeHead(a.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

function kubeConfig(server: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

test('requests carry the kubeconfig\'s token and JSON body, answers come back parsed, and each is counted by verb and resource', async (t) => {
  const api = await apiserver((s) => ({ status: 200, body: s.url.includes('/configmaps/') ? { metadata: { name: 'a' } } : { items: [], metadata: { resourceVersion: '7' } } }));
  t.teardown(() => api.close());
  const metrics = new Metrics({ defaultMetrics: false });
  const client = new KubeClient(kubeConfig(api.url, 'token-1'), { metrics });

  t.deepEqual(await client.get(CONFIGMAPS, 'ns', 'a'), { metadata: { name: 'a' } });
  t.deepEqual(await client.list(CONFIGMAPS, { namespace: 'ns', labelSelector: 'x=y' }), { items: [], resourceVersion: '7', continue: undefined });
  await client.patch(CONFIGMAPS, 'ns', 'a', { data: { k: 'v' } }, PatchType.merge);

  t.deepEqual(api.seen.map((s) => `${s.method} ${s.url}`), [
    'GET /api/v1/namespaces/ns/configmaps/a',
    'GET /api/v1/namespaces/ns/configmaps?labelSelector=x%3Dy',
    'PATCH /api/v1/namespaces/ns/configmaps/a',
  ]);
  t.true(api.seen.every((s) => s.authorization === 'Bearer token-1'));
  t.is(api.seen[2]!.contentType, PatchType.merge);
  t.deepEqual(JSON.parse(api.seen[2]!.body), { data: { k: 'v' } });
  const counted = (await metrics.registry.getSingleMetric('kube_requests_total')!.get()).values.map((v) => `${v.labels.verb} ${v.labels.resource} ${v.value}`);
  t.deepEqual(counted.sort(), ['get configmaps 1', 'list configmaps 1', 'patch configmaps 1']);
});

test('an answer of 401 makes the next request ask the kubeconfig for credentials again (a rotated token is picked up)', async (t) => {
  const api = await apiserver((s) => (s.authorization === 'Bearer new' ? { status: 200, body: { metadata: { name: 'a' } } } : { status: 401, body: { kind: 'Status', reason: 'Unauthorized', message: 'Unauthorized' } }));
  t.teardown(() => api.close());
  const kc = kubeConfig(api.url, 'old');
  const client = new KubeClient(kc);

  const err = await t.throwsAsync(client.get(CONFIGMAPS, 'ns', 'a'), { instanceOf: KubeApiError });
  t.is(err.statusCode, 401);
  kc.users[0] = { ...kc.users[0]!, token: 'new' };
  t.deepEqual(await client.get(CONFIGMAPS, 'ns', 'a'), { metadata: { name: 'a' } });
});

test('an apiserver nobody listens on fails as a transport error (TypeError "fetch failed" with the socket error as cause), not an HTTP one', async (t) => {
  const api = await apiserver(() => ({ status: 200, body: {} }));
  await api.close();
  const client = new KubeClient(kubeConfig(api.url, 't'));
  const err = await t.throwsAsync(client.get(CONFIGMAPS, 'ns', 'a'), { instanceOf: TypeError, message: 'fetch failed' });
  t.is((err.cause as { code?: string }).code, 'ECONNREFUSED');
});

test('a request past its timeout fails with the timeout as the reason', async (t) => {
  const server = http.createServer(() => undefined); // never answers
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const client = new KubeClient(kubeConfig(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 't'));
  await t.throwsAsync(client.request(HttpMethod.GET, '/api', { timeoutMs: 200 }), { name: 'TimeoutError' });
});
