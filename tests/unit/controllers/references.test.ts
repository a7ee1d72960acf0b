import test from 'ava';
import type { AppBinding, PostgresRole, SecretEngine } from '../../../api/index.ts';
import {
  connectionName,
  connectionOwner,
  mountOwnerDescription,
  mountOwnerFromDescription,
} from '../../../controllers/shared/names.ts';
import {
  admits,
  allowedNamespaces,
  cacheLookup,
  checkReference,
  firstRefusal,
  mountReference,
  postgresRoleReferences,
  secretEngineReferences,
  ReferenceNotAllowed,
} from '../../../controllers/shared/references.ts';
import { resolveRoleTarget, roleReferenceRefusal, type RoleCaches } from '../../../controllers/shared/role-target.ts';

const CLUSTER = '-';
const ANNOTATION = 'leasehold.dev/allowed-namespaces';

function appBinding(namespace: string, name: string, allowed?: string): AppBinding {
  return {
    apiVersion: 'appcatalog.appscode.com/v1alpha1',
    kind: 'AppBinding',
    metadata: {
      namespace,
      name,
      uid: `${namespace}-${name}`,
      ...(allowed !== undefined ? { annotations: { [ANNOTATION]: allowed } } : {}),
    },
    spec: { clientConfig: { url: 'https://vault.example.com:8200' } },
  };
}

/** The SecretEngine: in tenant-b, pointing at demo's Vault and database. */
function engine(
  namespace: string,
  refs: { vaultNs?: string; dbNs?: string; path?: string } = {},
  status?: SecretEngine['status'],
): SecretEngine {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'SecretEngine',
    metadata: { namespace, name: 'pg', uid: `${namespace}-pg` },
    spec: {
      vaultRef: { name: 'vault', ...(refs.vaultNs ? { namespace: refs.vaultNs } : {}) },
      ...(refs.path ? { path: refs.path } : {}),
      postgres: { databaseRef: { name: 'postgres-app', ...(refs.dbNs ? { namespace: refs.dbNs } : {}) } },
    },
    ...(status ? { status } : {}),
  };
}

function role(namespace: string, spec: Partial<PostgresRole['spec']>): PostgresRole {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'PostgresRole',
    metadata: { namespace, name: 'root', uid: `${namespace}-root` },
    spec: { creationStatements: ['CREATE ROLE "{{name}}" WITH LOGIN SUPERUSER PASSWORD \'{{password}}\';'], ...spec },
  };
}

function caches(appBindings: AppBinding[], engines: SecretEngine[] = []): RoleCaches {
  const store = <T extends { metadata: { namespace?: string; name?: string } }>(items: T[]) => ({
    get: (ns: string, name: string) => items.find((i) => i.metadata.namespace === ns && i.metadata.name === name),
  });
  return { appBindings: store(appBindings), secretEngines: store(engines) } as unknown as RoleCaches;
}

test('the allow-list annotation: comma- or space-separated namespaces, "*" for all, anything else admits nothing', (t) => {
  t.deepEqual(allowedNamespaces(appBinding('demo', 'vault', 'tenant-b, tenant-c')), {
    any: false,
    namespaces: ['tenant-b', 'tenant-c'],
  });
  t.deepEqual(allowedNamespaces(appBinding('demo', 'vault', 'tenant-b tenant-c')), {
    any: false,
    namespaces: ['tenant-b', 'tenant-c'],
  });
  t.deepEqual(allowedNamespaces(appBinding('demo', 'vault', '*')), { any: true, namespaces: [] });
  t.deepEqual(allowedNamespaces(appBinding('demo', 'vault')), { any: false, namespaces: [] });
  t.false(admits(appBinding('demo', 'vault', 'tenant-*'), 'tenant-b'));
  t.false(admits(appBinding('demo', 'vault', 'tenant-bb'), 'tenant-b'));
  t.true(admits(appBinding('demo', 'vault', 'x,tenant-b'), 'tenant-b'));
  t.true(admits(appBinding('demo', 'vault', '*'), 'anyone'));
  t.true(admits(appBinding('demo', 'vault'), 'demo'), 'its own namespace needs no annotation');
  t.false(admits(undefined, 'demo'));
});

test("a SecretEngine in tenant-b naming demo's Vault AppBinding is refused, naming the field, the object and how to opt in", (t) => {
  const se = engine('tenant-b', { vaultNs: 'demo', dbNs: 'demo' });
  const refusal = firstRefusal(
    secretEngineReferences(se),
    cacheLookup(caches([appBinding('demo', 'vault'), appBinding('demo', 'postgres-app')])),
  );
  t.true(refusal instanceof ReferenceNotAllowed);
  t.is(refusal!.reason, 'ReferenceNotAllowed');
  t.is(refusal!.reference.field, 'spec.vaultRef');
  t.regex(refusal!.message, /^spec\.vaultRef of SecretEngine tenant-b\/pg refers to AppBinding demo\/vault /);
  t.regex(refusal!.message, /kubectl -n demo annotate appbinding vault leasehold\.dev\/allowed-namespaces=tenant-b/);
});

test('the database AppBinding is checked as well as the Vault one', (t) => {
  const se = engine('tenant-b', { vaultNs: 'demo', dbNs: 'demo' });
  const refusal = firstRefusal(
    secretEngineReferences(se),
    cacheLookup(caches([appBinding('demo', 'vault', 'tenant-b'), appBinding('demo', 'postgres-app')])),
  );
  t.is(refusal?.reference.field, 'spec.postgres.databaseRef');
  t.is(refusal?.reference.to.name, 'postgres-app');
});

test('once both AppBindings admit tenant-b, its SecretEngine may use them; another namespace still may not', (t) => {
  const bindings = [appBinding('demo', 'vault', 'tenant-b'), appBinding('demo', 'postgres-app', 'tenant-c,tenant-b')];
  t.is(
    firstRefusal(
      secretEngineReferences(engine('tenant-b', { vaultNs: 'demo', dbNs: 'demo' })),
      cacheLookup(caches(bindings)),
    ),
    undefined,
  );
  t.truthy(
    firstRefusal(
      secretEngineReferences(engine('tenant-x', { vaultNs: 'demo', dbNs: 'demo' })),
      cacheLookup(caches(bindings)),
    ),
  );
});

test('the guide (everything in demo) needs no annotation, explicit namespace or not', (t) => {
  const lookup = cacheLookup(caches([]));
  t.is(firstRefusal(secretEngineReferences(engine('demo', { dbNs: 'demo' })), lookup), undefined);
  t.is(firstRefusal(secretEngineReferences(engine('demo', { vaultNs: 'demo' })), lookup), undefined);
  t.is(
    firstRefusal(
      postgresRoleReferences(
        role('demo', { vaultRef: { name: 'vault' }, databaseRef: { name: 'postgres-app', namespace: 'demo' } }),
        CLUSTER,
      ),
      lookup,
    ),
    undefined,
  );
});

test("a missing object in another namespace is refused like one that doesn't opt in (existence isn't revealed)", (t) => {
  const missing = checkReference(secretEngineReferences(engine('tenant-b', { vaultNs: 'demo' }))[0]!, undefined);
  const closed = checkReference(
    secretEngineReferences(engine('tenant-b', { vaultNs: 'demo' }))[0]!,
    appBinding('demo', 'vault'),
  );
  t.is(missing?.message, closed?.message);
});

test('connection names: k8s.<cluster>.<ns>.<name> is read back for this cluster only; names may hold dots', (t) => {
  t.deepEqual(connectionOwner(CLUSTER, connectionName(CLUSTER, 'demo', 'postgres-app')), {
    namespace: 'demo',
    name: 'postgres-app',
  });
  t.deepEqual(connectionOwner('prod.eu', 'k8s.prod.eu.demo.db.v2'), { namespace: 'demo', name: 'db.v2' });
  t.is(connectionOwner(CLUSTER, 'k8s.other.demo.postgres-app'), undefined);
  t.is(connectionOwner(CLUSTER, 'my-connection'), undefined);
  t.is(connectionOwner(CLUSTER, 'k8s.-.demo'), undefined);
});

test('mount descriptions name their owner; other descriptions name none', (t) => {
  t.deepEqual(mountOwnerFromDescription(mountOwnerDescription('demo', 'postgresql-engine')), {
    namespace: 'demo',
    name: 'postgresql-engine',
  });
  t.is(mountOwnerFromDescription('database secrets for the payments team'), undefined);
  t.is(mountOwnerFromDescription(undefined), undefined);
});

test("a PostgresRole naming demo's database by databaseRef or by its connection name is refused until demo opts in", (t) => {
  const closed = caches([appBinding('demo', 'postgres-app')]);
  const byRef = role('tenant-b', {
    vaultRef: { name: 'vault' },
    path: 'my-postgres-se',
    databaseRef: { name: 'postgres-app', namespace: 'demo' },
  });
  const byName = role('tenant-b', {
    vaultRef: { name: 'vault' },
    path: 'my-postgres-se',
    databaseName: 'k8s.-.demo.postgres-app',
  });
  t.is(roleReferenceRefusal(byRef, closed, CLUSTER)?.reference.field, 'spec.databaseRef');
  t.is(roleReferenceRefusal(byName, closed, CLUSTER)?.reference.field, 'spec.databaseName');
  t.throws(
    () =>
      resolveRoleTarget(byName, caches([appBinding('demo', 'postgres-app'), appBinding('tenant-b', 'vault')]), CLUSTER),
    { instanceOf: ReferenceNotAllowed },
  );

  const open = caches([appBinding('demo', 'postgres-app', 'tenant-b'), appBinding('tenant-b', 'vault')]);
  t.is(roleReferenceRefusal(byRef, open, CLUSTER), undefined);
  t.is(resolveRoleTarget(byName, open, CLUSTER).connection, 'k8s.-.demo.postgres-app');
  // Its own namespace's connections, and connections Leasehold doesn't manage, are not references into another namespace.
  t.is(
    roleReferenceRefusal(
      role('tenant-b', { vaultRef: { name: 'vault' }, databaseName: 'k8s.-.tenant-b.db' }),
      closed,
      CLUSTER,
    ),
    undefined,
  );
  t.is(
    roleReferenceRefusal(role('tenant-b', { vaultRef: { name: 'vault' }, databaseName: 'hand-made' }), closed, CLUSTER),
    undefined,
  );
});

test("a role of a refused SecretEngine is refused too, from the engine's spec or its status (the mount)", (t) => {
  const viaEngine = role('tenant-b', { secretEngineRef: { name: 'pg' } });
  const crossing = engine('tenant-b', { vaultNs: 'demo', dbNs: 'demo' });
  t.is(
    roleReferenceRefusal(
      viaEngine,
      caches([appBinding('demo', 'vault'), appBinding('demo', 'postgres-app')], [crossing]),
      CLUSTER,
    )?.reference.field,
    'spec.vaultRef',
  );

  const mountRefused = engine(
    'tenant-b',
    { path: 'my-postgres-se' },
    {
      phase: 'Failed',
      conditions: [
        {
          type: 'Failed',
          status: 'True',
          reason: 'ReferenceNotAllowed',
          message: 'spec.path of SecretEngine tenant-b/pg refers to SecretEngine demo/postgresql-engine …',
        },
      ],
    },
  );
  const refusal = roleReferenceRefusal(
    viaEngine,
    caches([appBinding('tenant-b', 'vault'), appBinding('tenant-b', 'postgres-app')], [mountRefused]),
    CLUSTER,
  );
  t.regex(refusal?.message ?? '', /^SecretEngine tenant-b\/pg named by spec\.secretEngineRef is refused: spec\.path/);
});

test("deleting a role's own Vault role is never refused", (t) => {
  const byRef = role('tenant-b', {
    vaultRef: { name: 'vault' },
    path: 'my-postgres-se',
    databaseRef: { name: 'postgres-app', namespace: 'demo' },
  });
  const target = resolveRoleTarget(byRef, caches([appBinding('tenant-b', 'vault')]), CLUSTER, { forCleanup: true });
  t.is(target.mount, 'my-postgres-se');
});

test("a SecretEngine writing into a mount another namespace's SecretEngine enabled needs that engine's consent", (t) => {
  const se = engine('tenant-b', { path: 'my-postgres-se' });
  const owner = { namespace: 'demo', name: 'postgresql-engine' };
  const demoEngine = (allowed?: string): SecretEngine => ({
    ...engine('demo'),
    metadata: {
      namespace: 'demo',
      name: 'postgresql-engine',
      ...(allowed ? { annotations: { [ANNOTATION]: allowed } } : {}),
    },
  });
  const refusal = checkReference(mountReference(se, owner, 'my-postgres-se'), demoEngine());
  t.regex(
    refusal?.message ?? '',
    /^spec\.path of SecretEngine tenant-b\/pg refers to SecretEngine demo\/postgresql-engine \(the owner of the mount my-postgres-se\/\)/,
  );
  t.regex(
    refusal?.message ?? '',
    /kubectl -n demo annotate secretengine postgresql-engine leasehold\.dev\/allowed-namespaces=tenant-b/,
  );
  t.is(checkReference(mountReference(se, owner, 'my-postgres-se'), demoEngine('tenant-b')), undefined);
  t.is(
    checkReference(mountReference(engine('demo', { path: 'my-postgres-se' }), owner, 'my-postgres-se'), undefined),
    undefined,
    'its own namespace',
  );
});
