// The in-memory API server answers the runtime's helpers (patchStatus, addFinalizer/removeFinalizer, owner
// references, Events) the way kube-apiserver does where the controllers depend on it, and its cache sees every
// write at once.
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { FINALIZER, type SecretEngine } from '../../../api/index.ts';
import { secretCacheTransform, type CachedSecret } from '../../../controllers/shared/secret-integrity.ts';
import { addFinalizer, removeFinalizer } from '../../../lib/runtime/finalizers.ts';
import { KubeApiError, PatchType, isConflict, isNotFound } from '../../../lib/runtime/kube.ts';
import { controllerOwnerRef } from '../../../lib/runtime/owners.ts';
import { patchStatus } from '../../../lib/runtime/status.ts';
import { RetryableError } from '../../../lib/runtime/types.ts';
import { FakeWatchCache } from '../../fakes/fake-cache.ts';
import { FakeKube } from '../../fakes/fake-kube.ts';
import { NS, SECRETS, SECRET_ENGINES, secretEngine } from '../../fakes/fixtures.ts';

type Secret = KubernetesObject & { data?: Record<string, string>; stringData?: Record<string, string> };

const secret = (name: string, extra: Partial<Secret> = {}): Secret => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: NS },
  data: { password: 'c2VjcmV0' },
  ...extra,
});

const errorOf = async (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

test('every write bumps the resourceVersion, and a write carrying a stale one gets 409 Conflict', async (t) => {
  const kube = new FakeKube();
  const created = await kube.create(SECRETS, NS, secret('s'));
  const updated = await kube.replace(SECRETS, NS, 's', { ...created, data: { password: 'b3RoZXI=' } });
  t.true(Number(updated.metadata?.resourceVersion) > Number(created.metadata?.resourceVersion));
  const stale = await errorOf(kube.replace(SECRETS, NS, 's', { ...created, data: {} }));
  t.true(isConflict(stale), String(stale));
  const stalePatch = await errorOf(
    kube.patch(
      SECRETS,
      NS,
      's',
      { metadata: { resourceVersion: created.metadata?.resourceVersion }, data: {} },
      PatchType.merge,
    ),
  );
  t.true(isConflict(stalePatch), String(stalePatch));
  t.deepEqual(
    kube.requests.map((r) => `${r.verb} ${r.code}`),
    ['create 201', 'update 200', 'update 409', 'patch 409'],
  );
});

test('patchStatus on a stale read is a retryable Conflict; on a fresh one it writes only status', async (t) => {
  const kube = new FakeKube();
  const engine = kube.put(SECRET_ENGINES, secretEngine());
  kube.edit<SecretEngine>(SECRET_ENGINES, NS, engine.metadata.name!, (e) => (e.metadata.labels = { touched: 'yes' }));
  const err = await errorOf(
    patchStatus<SecretEngine['status'], SecretEngine>(kube, SECRET_ENGINES, engine, {
      ...engine.status,
      phase: 'Success',
    }),
  );
  t.true(err instanceof RetryableError && err.reason === 'Conflict', String(err));
  const fresh = kube.object<SecretEngine>(SECRET_ENGINES, NS, engine.metadata.name!)!;
  const { object } = await patchStatus<SecretEngine['status'], SecretEngine>(kube, SECRET_ENGINES, fresh, {
    ...fresh.status,
    phase: 'Success',
  });
  t.is(object.status?.phase, 'Success');
  t.deepEqual(object.spec, fresh.spec);
  t.is(object.metadata?.generation, fresh.metadata.generation, 'a status write does not move generation');
  t.deepEqual(kube.requests.at(-1), {
    verb: 'patch',
    resource: 'secretengines',
    group: 'engine.kubevault.com',
    namespace: NS,
    name: 'postgresql-engine',
    subresource: 'status',
    patchType: 'merge',
    code: 200,
  });
});

test('a spec write moves generation and leaves status alone; a write that changes nothing keeps the resourceVersion', async (t) => {
  const kube = new FakeKube();
  const seeded = kube.put(SECRET_ENGINES, { ...secretEngine(), status: { phase: 'Success' } } as SecretEngine);
  const written = await kube.patch<SecretEngine>(
    SECRET_ENGINES,
    NS,
    'postgresql-engine',
    { spec: { defaultLeaseTTL: '1h' }, status: { phase: 'Failed' } },
    PatchType.merge,
  );
  t.is(written.metadata.generation, 2);
  t.is(written.status?.phase, 'Success', 'status goes through the status subresource only');
  const again = await kube.patch<SecretEngine>(
    SECRET_ENGINES,
    NS,
    'postgresql-engine',
    { spec: { defaultLeaseTTL: '1h' } },
    PatchType.merge,
  );
  t.is(again.metadata.resourceVersion, written.metadata.resourceVersion);
  t.not(seeded.metadata.resourceVersion, written.metadata.resourceVersion);
});

test('a JSON patch whose test op fails is 422, which the finalizer helpers read as a retryable Conflict', async (t) => {
  const kube = new FakeKube();
  const engine = kube.put(SECRET_ENGINES, secretEngine());
  const added = await addFinalizer(kube, SECRET_ENGINES, engine, FINALIZER);
  t.deepEqual(added.object.metadata.finalizers, [FINALIZER]);
  // Another writer added a finalizer meanwhile; our copy is stale.
  kube.edit<SecretEngine>(SECRET_ENGINES, NS, 'postgresql-engine', (e) =>
    e.metadata.finalizers!.push('other.example/finalizer'),
  );
  const raw = await errorOf(
    kube.patch(
      SECRET_ENGINES,
      NS,
      'postgresql-engine',
      [{ op: 'test', path: '/metadata/finalizers', value: [FINALIZER] }],
      PatchType.json,
    ),
  );
  t.true(raw instanceof KubeApiError && raw.statusCode === 422 && raw.reason === 'Invalid', String(raw));
  const err = await errorOf(addFinalizer(kube, SECRET_ENGINES, added.object, 'third.example/finalizer'));
  t.true(err instanceof RetryableError && err.reason === 'Conflict', String(err));
});

test('deleting an object with finalizers marks it; removing the last finalizer deletes it', async (t) => {
  const kube = new FakeKube();
  const { object } = await addFinalizer(kube, SECRET_ENGINES, kube.put(SECRET_ENGINES, secretEngine()), FINALIZER);
  t.true(await kube.delete(SECRET_ENGINES, NS, 'postgresql-engine'));
  const marked = kube.object<SecretEngine>(SECRET_ENGINES, NS, 'postgresql-engine')!;
  t.truthy(marked.metadata.deletionTimestamp);
  const err = await errorOf(
    kube.patch(
      SECRET_ENGINES,
      NS,
      'postgresql-engine',
      [{ op: 'add', path: '/metadata/finalizers/-', value: 'late.example/f' }],
      PatchType.json,
    ),
  );
  t.true(err instanceof KubeApiError && err.statusCode === 422, 'no new finalizer on an object being deleted');
  const removed = await removeFinalizer(kube, SECRET_ENGINES, marked, FINALIZER);
  t.true(removed.changed);
  t.is(kube.object(SECRET_ENGINES, NS, 'postgresql-engine'), undefined);
  t.false(await kube.delete(SECRET_ENGINES, NS, 'postgresql-engine'), 'already gone: the client answers false on 404');
  t.is(await kube.tryGet(SECRET_ENGINES, NS, 'postgresql-engine'), undefined);
  t.truthy(object.metadata.finalizers);
});

test('objects whose owner is deleted are deleted too', async (t) => {
  const kube = new FakeKube();
  const owner = kube.put(SECRET_ENGINES, secretEngine());
  await kube.create(
    SECRETS,
    NS,
    secret('owned', { metadata: { name: 'owned', namespace: NS, ownerReferences: [controllerOwnerRef(owner)] } }),
  );
  await kube.create(SECRETS, NS, secret('unrelated'));
  await kube.delete(SECRET_ENGINES, NS, owner.metadata.name!);
  t.is(kube.object(SECRETS, NS, 'owned'), undefined);
  t.truthy(kube.object(SECRETS, NS, 'unrelated'));
});

test('reads answer 404 for what is not there; creating twice is 409 AlreadyExists', async (t) => {
  const kube = new FakeKube();
  t.true(isNotFound(await errorOf(kube.get(SECRETS, NS, 'missing'))));
  await kube.create(SECRETS, NS, secret('s'));
  const twice = await errorOf(kube.create(SECRETS, NS, secret('s')));
  t.true(twice instanceof KubeApiError && twice.statusCode === 409 && twice.reason === 'AlreadyExists', String(twice));
});

test("a Secret's stringData is stored as base64 data", async (t) => {
  const kube = new FakeKube();
  await kube.create(SECRETS, NS, secret('s', { data: undefined, stringData: { token: 'abc' } }));
  t.deepEqual(kube.object<Secret>(SECRETS, NS, 's')?.data, { token: 'YWJj' });
});

test('lists filter by namespace and label selector', async (t) => {
  const kube = new FakeKube();
  kube.put(
    SECRETS,
    secret('a', { metadata: { name: 'a', namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'leasehold' } } }),
  );
  kube.put(SECRETS, secret('b', { metadata: { name: 'b', namespace: NS } }));
  kube.put(
    SECRETS,
    secret('c', {
      metadata: { name: 'c', namespace: 'other', labels: { 'app.kubernetes.io/managed-by': 'leasehold' } },
    }),
  );
  const names = async (opts: Parameters<FakeKube['list']>[1]) =>
    (await kube.list(SECRETS, opts)).items.map((i) => i.metadata?.name).sort();
  t.deepEqual(await names({ namespace: NS }), ['a', 'b']);
  t.deepEqual(await names({ labelSelector: 'app.kubernetes.io/managed-by=leasehold' }), ['a', 'c']);
  t.deepEqual(await names({ labelSelector: '!app.kubernetes.io/managed-by' }), ['b']);
});

test('an injected failure answers the matching requests only, for as many times as asked', async (t) => {
  const kube = new FakeKube();
  kube.put(SECRETS, secret('s'));
  kube.fail({ verb: 'get', name: 's' }, { code: 500, reason: 'InternalError', message: 'etcd timeout' }, { times: 1 });
  const err = await errorOf(kube.get(SECRETS, NS, 's'));
  t.true(err instanceof KubeApiError && err.statusCode === 500 && /etcd timeout/.test(err.message), String(err));
  t.truthy(await kube.get(SECRETS, NS, 's'));
  kube.fail({ resource: 'secrets' }, 'Unreachable');
  t.true((await errorOf(kube.get(SECRETS, NS, 's'))) instanceof TypeError);
});

test('the cache sees each write as it is made, keeps no Secret data, and can be held stale', async (t) => {
  const kube = new FakeKube();
  const secrets = new FakeWatchCache<CachedSecret>(kube, SECRETS, { transform: secretCacheTransform });
  const engines = new FakeWatchCache<SecretEngine>(kube, SECRET_ENGINES);
  const created = await kube.create(SECRETS, NS, secret('s'));
  const cached = secrets.get(NS, 's');
  t.is(cached?.metadata?.resourceVersion, created.metadata?.resourceVersion);
  t.false('data' in (cached ?? {}), 'no Secret data in the cache');
  kube.put(SECRET_ENGINES, secretEngine());
  kube.pauseWatch();
  const before = engines.get(NS, 'postgresql-engine')!.metadata.resourceVersion;
  kube.edit<SecretEngine>(SECRET_ENGINES, NS, 'postgresql-engine', (e) => (e.metadata.labels = { x: 'y' }));
  t.is(engines.get(NS, 'postgresql-engine')!.metadata.resourceVersion, before, 'held back');
  kube.resumeWatch();
  t.not(engines.get(NS, 'postgresql-engine')!.metadata.resourceVersion, before);
  await kube.delete(SECRETS, NS, 's');
  t.is(secrets.get(NS, 's'), undefined);
  t.true(secrets.hasSynced());
});

test('a cache with a label selector keeps only the matching objects, and drops one that stops matching', async (t) => {
  const kube = new FakeKube();
  const ours = new FakeWatchCache(kube, SECRETS, { labelSelector: 'app.kubernetes.io/managed-by=leasehold' });
  kube.put(
    SECRETS,
    secret('a', { metadata: { name: 'a', namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'leasehold' } } }),
  );
  kube.put(SECRETS, secret('b'));
  t.deepEqual(
    ours.list().map((s) => s.metadata?.name),
    ['a'],
  );
  kube.edit(SECRETS, NS, 'a', (s) => (s.metadata!.labels = {}));
  t.deepEqual(ours.list(), []);
});

test('cache indexes and handlers work as on the real cache', async (t) => {
  const kube = new FakeKube();
  const engines = new FakeWatchCache<SecretEngine>(kube, SECRET_ENGINES);
  engines.addIndex('vault', (e) => [e.spec.vaultRef.name]);
  const seen: string[] = [];
  engines.addHandler({
    onAdd: (o) => seen.push(`add ${o.metadata.name}`),
    onUpdate: (_a, b) => seen.push(`update ${b.metadata.name}`),
    onDelete: (o) => seen.push(`delete ${o.metadata.name}`),
  });
  await kube.create(SECRET_ENGINES, NS, secretEngine({}, 'one'));
  await kube.patch(SECRET_ENGINES, NS, 'one', { metadata: { labels: { a: 'b' } } }, PatchType.merge);
  await kube.delete(SECRET_ENGINES, NS, 'one');
  await kube.create(SECRET_ENGINES, NS, secretEngine({}, 'two'));
  t.deepEqual(seen, ['add one', 'update one', 'delete one', 'add two']);
  t.deepEqual(
    engines.byIndex('vault', 'vault').map((e) => e.metadata.name),
    ['two'],
  );
});
