// The cached Vault connection (and so the login it holds) survives what doesn't change how to log in: a finalizer,
// the deletion itself, a status write, a token Secret's metadata. It is rebuilt when the spec or the token changes.
import test from 'ava';
import crypto from 'node:crypto';
import type { AppBinding } from '../../../api/index.ts';
import { KubeApiError, RetryableError, type KubeClient } from '../../../lib/runtime/index.ts';
import {
  VaultConnections,
  issuerTokenStore,
  loginUnavailableMessage,
} from '../../../controllers/shared/vault-connections.ts';
import { tokenRequestMinter } from '../../../controllers/shared/vault-ports.ts';

const settings = { operatorNamespace: 'leasehold-system', issuerTokenRole: 'leasehold-issuer', tokenAudiences: [] };
const b64 = (s: string) => Buffer.from(s).toString('base64');

function appBinding(meta: Record<string, unknown> = {}, spec: Record<string, unknown> = {}): AppBinding {
  return {
    apiVersion: 'appcatalog.appscode.com/v1alpha1',
    kind: 'AppBinding',
    metadata: { name: 'vault', namespace: 'demo', uid: 'ab-1', resourceVersion: '1', ...meta },
    spec: {
      clientConfig: { url: 'https://vault.example:8200' },
      parameters: {
        apiVersion: 'config.kubevault.com/v1alpha1',
        kind: 'VaultServerConfiguration',
        vaultRole: 'r',
        serviceAccountName: 'vault',
      },
      ...spec,
    },
  } as unknown as AppBinding;
}

type Secret = {
  metadata: { uid: string; resourceVersion: string; deletionTimestamp?: string; finalizers?: string[] };
  type: string;
  data?: Record<string, string>;
};

/** A KubeClient that only reads one Secret, counting the reads. */
function fakeKube(secret: () => Secret | undefined): { kube: KubeClient; reads: () => number } {
  let reads = 0;
  const kube = {
    tryGet: async () => {
      reads++;
      return secret();
    },
  } as unknown as KubeClient;
  return { kube, reads: () => reads };
}

test('a finalizer, a status write or the deletion itself keeps the connection and its login', async (t) => {
  const { kube } = fakeKube(() => undefined);
  const c = new VaultConnections(
    kube,
    settings,
    () => undefined,
    () => undefined,
  );
  const first = await c.forAppBinding(appBinding());
  t.is(await c.forAppBinding(appBinding({ resourceVersion: '2', finalizers: ['leasehold.dev/in-use'] })), first);
  t.is(await c.forAppBinding(appBinding({ resourceVersion: '3', deletionTimestamp: '2026-03-01T12:00:00Z' })), first);
});

test('a changed spec, or a new AppBinding of the same name, gets a new connection', async (t) => {
  const { kube } = fakeKube(() => undefined);
  const c = new VaultConnections(
    kube,
    settings,
    () => undefined,
    () => undefined,
  );
  const first = await c.forAppBinding(appBinding());
  const edited = await c.forAppBinding(
    appBinding(
      { resourceVersion: '2' },
      { parameters: { kind: 'VaultServerConfiguration', vaultRole: 'r2', serviceAccountName: 'vault' } },
    ),
  );
  t.not(edited, first);
  t.not(
    await c.forAppBinding(
      appBinding(
        { uid: 'ab-2', resourceVersion: '5' },
        { parameters: { kind: 'VaultServerConfiguration', vaultRole: 'r2', serviceAccountName: 'vault' } },
      ),
    ),
    edited,
  );
});

test('a token Secret: its metadata changing (a finalizer, being deleted) keeps the connection; a new token rebuilds it', async (t) => {
  let secret: Secret = {
    metadata: { uid: 's-1', resourceVersion: '10' },
    type: 'kubevault.com/token',
    data: { token: b64('t1') },
  };
  const { kube, reads } = fakeKube(() => secret);
  const c = new VaultConnections(
    kube,
    settings,
    () => undefined,
    () => ({ metadata: secret.metadata }),
  );
  const ab = appBinding({}, { secret: { name: 'vault-token' } });
  const first = await c.forAppBinding(ab);
  t.is(await c.forAppBinding(ab), first);
  t.is(reads(), 1, 'an unchanged Secret (per the cache) is not read again');
  secret = {
    ...secret,
    metadata: {
      ...secret.metadata,
      resourceVersion: '11',
      finalizers: ['leasehold.dev/in-use'],
      deletionTimestamp: '2026-03-01T12:00:00Z',
    },
  };
  t.is(await c.forAppBinding(ab), first);
  secret = { ...secret, metadata: { ...secret.metadata, resourceVersion: '12' }, data: { token: b64('t2') } };
  t.not(await c.forAppBinding(ab), first);
});

test("a token Secret that is gone keeps a connection already made (its login works until it doesn't), but none can be made", async (t) => {
  let secret: Secret | undefined = {
    metadata: { uid: 's-1', resourceVersion: '10' },
    type: 'kubevault.com/token',
    data: { token: b64('t1') },
  };
  const { kube } = fakeKube(() => secret);
  const c = new VaultConnections(
    kube,
    settings,
    () => undefined,
    () => (secret ? { metadata: secret.metadata } : undefined),
  );
  const ab = appBinding({}, { secret: { name: 'vault-token' } });
  const first = await c.forAppBinding(ab);
  secret = undefined;
  t.is(await c.forAppBinding(ab), first);
  c.invalidate(ab);
  await t.throwsAsync(c.forAppBinding(ab), {
    message: /Secret demo\/vault-token named by AppBinding demo\/vault does not exist/,
  });
});

test('no ServiceAccount token in a namespace being deleted: the message says so, and what to do', (t) => {
  const terminating = new KubeApiError(
    403,
    'Forbidden',
    'serviceaccounts "vault" is forbidden: unable to create new content in namespace demo because it is being terminated',
  );
  const message = loginUnavailableMessage({ namespace: 'demo', name: 'vault' }, terminating);
  t.regex(message, /no Vault login as ServiceAccount demo\/vault: namespace demo is being deleted/);
  t.regex(message, /--operator-service-account/);
  t.regex(message, /remove the finalizers/);
  t.regex(
    loginUnavailableMessage(
      { namespace: 'demo', name: 'vault' },
      new KubeApiError(404, 'NotFound', 'serviceaccounts "vault" not found'),
    ),
    /does not exist/,
  );
});

/** A KubeClient holding Secrets in memory: tryGet, replace and create (what the issuer-token store uses). */
function secretStore(): {
  kube: KubeClient;
  secrets: Map<
    string,
    { metadata: { name: string }; stringData?: Record<string, string>; data?: Record<string, string> }
  >;
} {
  const secrets = new Map<
    string,
    { metadata: { name: string }; stringData?: Record<string, string>; data?: Record<string, string> }
  >();
  const asStored = (o: { metadata: { name: string }; stringData?: Record<string, string> }) => ({
    ...o,
    data: Object.fromEntries(Object.entries(o.stringData ?? {}).map(([k, v]) => [k, b64(v)])),
  });
  const kube = {
    tryGet: async (_r: unknown, _ns: string, name: string) => secrets.get(name),
    replace: async (
      _r: unknown,
      _ns: string,
      name: string,
      o: { metadata: { name: string }; stringData?: Record<string, string> },
    ) => {
      if (!secrets.has(name)) throw new KubeApiError(404, 'NotFound', 'not found');
      secrets.set(name, asStored(o));
      return o;
    },
    create: async (
      _r: unknown,
      _ns: string,
      o: { metadata: { name: string }; stringData?: Record<string, string> },
    ) => {
      secrets.set(o.metadata.name, asStored(o));
      return o;
    },
  } as unknown as KubeClient;
  return { kube, secrets };
}

test('an issuer token is only ever loaded for the Vault address it was created at: an AppBinding pointed elsewhere gets none', async (t) => {
  const { kube, secrets } = secretStore();
  const store = issuerTokenStore(kube, 'leasehold-system', appBinding());
  await store.save({ token: 'hvs.issuer-token-value', accessor: 'acc-1' });
  t.deepEqual(await issuerTokenStore(kube, 'leasehold-system', appBinding({ resourceVersion: '9' })).load(), {
    token: 'hvs.issuer-token-value',
    accessor: 'acc-1',
  });
  const elsewhere = issuerTokenStore(
    kube,
    'leasehold-system',
    appBinding({}, { clientConfig: { url: 'https://attacker.example:8200' } }),
  );
  t.is(await elsewhere.load(), undefined, 'the token is not shown to another server');
  await elsewhere.save({ token: 'hvs.other', accessor: 'acc-2' });
  t.deepEqual(
    await store.load(),
    { token: 'hvs.issuer-token-value', accessor: 'acc-1' },
    'and the real one is not overwritten',
  );
  t.is(secrets.size, 2);
});

test('an issuer token kept before tokens were bound to an address is adopted (an upgrade), one bound to another address never', async (t) => {
  const { kube, secrets } = secretStore();
  const legacyName = `leasehold-issuer-${crypto.createHash('sha256').update('demo/vault').digest('hex').slice(0, 12)}`;
  secrets.set(legacyName, {
    metadata: { name: legacyName },
    data: { token: b64('hvs.legacy'), accessor: b64('acc-0') },
  });
  t.deepEqual(await issuerTokenStore(kube, 'leasehold-system', appBinding()).load(), {
    token: 'hvs.legacy',
    accessor: 'acc-0',
  });
  secrets.set(legacyName, {
    metadata: { name: legacyName },
    data: { token: b64('hvs.legacy'), accessor: b64('acc-0'), address: b64('https://elsewhere:8200') },
  });
  t.is(await issuerTokenStore(kube, 'leasehold-system', appBinding()).load(), undefined);
});

test('a ServiceAccount token comes from a TokenRequest for that account; a refused one is VaultLoginUnavailable, saying what to do', async (t) => {
  const asked: Array<{ method: string; path: string; body: unknown }> = [];
  let refuse: KubeApiError | undefined = undefined;
  const kube = {
    request: async (method: string, path: string, opts: { body: unknown }) => {
      asked.push({ method, path, body: opts.body });
      if (refuse) throw refuse;
      return { status: { token: 'eyJ.sa-token' } };
    },
  } as unknown as KubeClient;
  const mint = tokenRequestMinter(kube, ['vault']);
  t.is(await mint({ namespace: 'demo', name: 'vault' }), 'eyJ.sa-token');
  t.deepEqual(asked[0], {
    method: 'POST',
    path: '/api/v1/namespaces/demo/serviceaccounts/vault/token',
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: ['vault'], expirationSeconds: 600 },
    },
  });
  refuse = new KubeApiError(
    403,
    'Forbidden',
    'unable to create new content in namespace demo because it is being terminated',
  );
  const err = await t.throwsAsync(mint({ namespace: 'demo', name: 'vault' }), { instanceOf: RetryableError });
  t.is(err.reason, 'VaultLoginUnavailable');
  t.regex(err.message, /no Vault login as ServiceAccount demo\/vault: namespace demo is being deleted/);
});
