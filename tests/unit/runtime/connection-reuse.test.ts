import test from 'ava';
import { KubeConfig, RequestContext, HttpMethod } from '@kubernetes/client-node';
import { KubeClient } from '../../../lib/runtime/kube.ts';
import { reuseConnections } from '../../../lib/runtime/connection-reuse.ts';

function kubeConfig(caData: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData }],
    users: [{ name: 'u', token: 'not-a-real-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function dispatcherOf(kc: KubeConfig): Promise<unknown> {
  const ctx = new RequestContext('https://127.0.0.1:6443/api', HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getDispatcher();
}

const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');

test("every request through a KubeClient's KubeConfig shares one dispatcher (one connection pool)", async (t) => {
  const kc = kubeConfig(CA);
  const before = [await dispatcherOf(kc), await dispatcherOf(kc)];
  t.not(
    before[0],
    before[1],
    'client-node alone builds a dispatcher per request (if this fails, the workaround may be unnecessary)',
  );
  new KubeClient(kc);
  const first = await dispatcherOf(kc);
  t.truthy(first);
  t.is(await dispatcherOf(kc), first);
  t.is(await dispatcherOf(kc), first);
});

test('a changed CA (a rotated file, say) gets a new dispatcher, and that one is reused in turn', async (t) => {
  const kc = kubeConfig(CA);
  t.true(reuseConnections(kc));
  t.true(reuseConnections(kc), 'wrapping twice is harmless');
  const first = await dispatcherOf(kc);
  kc.clusters[0] = { ...kc.clusters[0]!, caData: Buffer.from('another CA').toString('base64') };
  const second = await dispatcherOf(kc);
  t.not(second, first);
  t.is(await dispatcherOf(kc), second);
});
