import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, KubeClient, PatchType } from '../../../lib/runtime/kube.ts';
import { Metrics } from '../../../lib/runtime/metrics.ts';
import type { ResourceType } from '../../../lib/runtime/types.ts';

const CONFIGMAPS: ResourceType = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' };

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
}

/** A stand-in apiserver on 127.0.0.1: records each request, answers with `answer`. */
async function apiserver(
  answer: (req: Seen) => { status: number; body: unknown },
): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        body,
      };
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

test("requests carry the kubeconfig's token and JSON body, answers come back parsed, and each is counted by verb and resource (writes as writes too)", async (t) => {
  const api = await apiserver((s) => ({
    status: 200,
    body: s.url.includes('/configmaps/')
      ? { metadata: { name: 'a' } }
      : { items: [], metadata: { resourceVersion: '7' } },
  }));
  t.teardown(() => api.close());
  const metrics = new Metrics({ defaultMetrics: false });
  const client = new KubeClient(kubeConfig(api.url, 'token-1'), { metrics });

  t.deepEqual(await client.get(CONFIGMAPS, 'ns', 'a'), { metadata: { name: 'a' } });
  t.deepEqual(await client.list(CONFIGMAPS, { namespace: 'ns', labelSelector: 'x=y' }), {
    items: [],
    resourceVersion: '7',
    continue: undefined,
  });
  await client.patch(CONFIGMAPS, 'ns', 'a', { data: { k: 'v' } }, PatchType.merge);

  t.deepEqual(
    api.seen.map((s) => `${s.method} ${s.url}`),
    [
      'GET /api/v1/namespaces/ns/configmaps/a',
      'GET /api/v1/namespaces/ns/configmaps?labelSelector=x%3Dy',
      'PATCH /api/v1/namespaces/ns/configmaps/a',
    ],
  );
  t.true(api.seen.every((s) => s.authorization === 'Bearer token-1'));
  t.is(api.seen[2]!.contentType, PatchType.merge);
  t.deepEqual(JSON.parse(api.seen[2]!.body), { data: { k: 'v' } });
  const counted = (await metrics.registry.getSingleMetric('kube_requests_total')!.get()).values.map(
    (v) => `${v.labels.verb} ${v.labels.resource} ${v.value}`,
  );
  t.deepEqual(counted.sort(), ['get configmaps 1', 'list configmaps 1', 'patch configmaps 1']);
  const writes = (await metrics.registry.getSingleMetric('kube_writes_total')!.get()).values.map(
    (v) => `${v.labels.verb} ${v.labels.resource} ${v.value}`,
  );
  t.deepEqual(writes, ['patch configmaps 1'], 'reads are not writes');
});

test('an answer of 401 makes the next request ask the kubeconfig for credentials again (a rotated token is picked up)', async (t) => {
  const api = await apiserver((s) =>
    s.authorization === 'Bearer new'
      ? { status: 200, body: { metadata: { name: 'a' } } }
      : { status: 401, body: { kind: 'Status', reason: 'Unauthorized', message: 'Unauthorized' } },
  );
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
  const err = await t.throwsAsync(client.get(CONFIGMAPS, 'ns', 'a'), {
    instanceOf: TypeError,
    message: 'fetch failed',
  });
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

/** A server that answers a watch with `status` and writes `chunks` (strings or Buffers) one at a time. */
async function watchServer(
  status: number,
  chunks: Array<string | Buffer>,
  end: boolean,
): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  const server = http.createServer(async (req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(status, { 'Content-Type': 'application/json' });
    for (const c of chunks) {
      res.write(c);
      await new Promise((r) => setTimeout(r, 5));
    }
    if (end) res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function collect(): {
  events: Array<[string, unknown]>;
  done: Promise<unknown>;
  cb: { onEvent(type: string, o: unknown): void; onDone(err: unknown): void };
} {
  const events: Array<[string, unknown]> = [];
  let resolve!: (err: unknown) => void;
  const done = new Promise<unknown>((r) => (resolve = r));
  return { events, done, cb: { onEvent: (type, o) => events.push([type, o]), onDone: (err) => resolve(err) } };
}

test('a watch delivers every event in order, however the lines are cut into chunks (a multi-byte character included), then ends cleanly', async (t) => {
  const lines =
    [
      JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } }),
      JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'é', resourceVersion: '2' } } }),
      JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '3' } } }),
    ].join('\n') + '\n';
  const bytes = Buffer.from(lines);
  const cut = bytes.indexOf(Buffer.from('é')) + 1; // inside the two bytes of é
  const api = await watchServer(200, [bytes.subarray(0, 10), bytes.subarray(10, cut), bytes.subarray(cut)], true);
  t.teardown(() => api.close());
  const c = collect();
  await new KubeClient(kubeConfig(api.url, 't')).watch(
    '/api/v1/configmaps',
    { resourceVersion: '0', labelSelector: 'a=b' },
    c.cb,
    { inactivityTimeoutMs: 5_000 },
  );
  t.is(await c.done, null);
  t.deepEqual(
    c.events.map(([type, o]) => `${type} ${(o as { metadata: { name?: string } }).metadata.name ?? '-'}`),
    ['ADDED a', 'MODIFIED é', 'BOOKMARK -'],
  );
  t.is(api.paths[0], '/api/v1/configmaps?watch=true&resourceVersion=0&labelSelector=a%3Db');
});

test('a watch answered 410 Gone ends with an error carrying statusCode 410, and no event', async (t) => {
  const api = await watchServer(
    410,
    [JSON.stringify({ kind: 'Status', reason: 'Expired', message: 'too old resource version' })],
    true,
  );
  t.teardown(() => api.close());
  const c = collect();
  await new KubeClient(kubeConfig(api.url, 't')).watch('/api/v1/configmaps', {}, c.cb, { inactivityTimeoutMs: 5_000 });
  const err = await c.done;
  t.is((err as { statusCode?: number }).statusCode, 410);
  t.deepEqual(c.events, []);
});

test('a watch that goes quiet past its inactivity limit ends with a TimeoutError, after the events it did send', async (t) => {
  const api = await watchServer(
    200,
    [`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } })}\n`],
    false,
  );
  t.teardown(() => api.close());
  const quiet = collect();
  await new KubeClient(kubeConfig(api.url, 't')).watch('/api/v1/configmaps', {}, quiet.cb, {
    inactivityTimeoutMs: 300,
  });
  t.is(((await quiet.done) as { name?: string }).name, 'TimeoutError');
  t.is(quiet.events.length, 1);
});
