// Who still depends on an object being deleted (controllers/shared/dependents.ts): pure decisions over objects.
import test from 'ava';
import type { AppBinding, DatabaseAccessRequest, PostgresRole, SecretEngine } from '../../../api/index.ts';
import {
  dependentsOfAppBinding,
  dependentsOfPostgresRole,
  dependentsOfSecretEngine,
  describeDependents,
  leaseAppBindings,
  mountOfLease,
  renewsThroughRole,
  revocationRoutes,
  terminatingOnIssuePath,
  type ObjectRef,
} from '../../../controllers/shared/dependents.ts';

const CLUSTER = '-';
const NS = 'demo';
const F = 'leasehold.dev/finalizer';
const GONE = '2026-03-01T12:00:00Z';
const LEASE = 'my-postgres-se/creds/k8s.-.demo.psql-role/abc123';

const meta = (name: string, more: Record<string, unknown> = {}) => ({
  name,
  namespace: NS,
  uid: `uid-${name}`,
  finalizers: [F],
  ...more,
});

function appBinding(name = 'vault', more: Record<string, unknown> = {}): AppBinding {
  return {
    apiVersion: 'appcatalog.appscode.com/v1alpha1',
    kind: 'AppBinding',
    metadata: meta(name, { finalizers: ['leasehold.dev/in-use'], ...more }),
    spec: { clientConfig: { url: 'https://vault:8200' } },
  } as unknown as AppBinding;
}

function engine(
  name = 'postgresql-engine',
  spec: Record<string, unknown> = {},
  more: Record<string, unknown> = {},
): SecretEngine {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'SecretEngine',
    metadata: meta(name, more),
    spec: {
      vaultRef: { name: 'vault' },
      path: 'my-postgres-se',
      postgres: { databaseRef: { name: 'postgres-app', namespace: NS } },
      ...spec,
    },
  } as unknown as SecretEngine;
}

function role(
  name = 'psql-role',
  spec: Record<string, unknown> = {},
  more: Record<string, unknown> = {},
): PostgresRole {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'PostgresRole',
    metadata: meta(name, more),
    spec: {
      vaultRef: { name: 'vault' },
      path: 'my-postgres-se',
      databaseRef: { name: 'postgres-app', namespace: NS },
      creationStatements: ['x'],
      ...spec,
    },
  } as unknown as PostgresRole;
}

/** An approved request holding LEASE, issued through demo/vault, mount my-postgres-se, the guide's connection. */
function request(
  name = 'postgres-cred-rqst',
  status: Record<string, unknown> = {},
  more: Record<string, unknown> = {},
): DatabaseAccessRequest {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: meta(name, more),
    spec: {
      roleRef: { kind: 'PostgresRole', name: 'psql-role' },
      subjects: [{ kind: 'ServiceAccount', name: 'demo-sa' }],
    },
    status: {
      phase: 'Approved',
      lease: { id: LEASE },
      issuance: {
        vaultAppBinding: { namespace: NS, name: 'vault' },
        mount: 'my-postgres-se',
        connection: 'k8s.-.demo.postgres-app',
        role: 'k8s.-.demo.psql-role',
        attempt: 'a1',
        completed: true,
      },
      ...status,
    },
  } as unknown as DatabaseAccessRequest;
}

const engines =
  (...list: SecretEngine[]) =>
  (ref: ObjectRef) =>
    list.find((e) => e.metadata.name === ref.name && e.metadata.namespace === ref.namespace);
const names = (deps: { kind: string; name: string }[]) => deps.map((d) => `${d.kind}/${d.name}`).sort();

test('a request holding a lease needs its Vault AppBinding, its SecretEngine and its PostgresRole', (t) => {
  const r = request();
  t.deepEqual(names(dependentsOfAppBinding(appBinding(), { requests: [r] }, engines(), CLUSTER)), [
    'DatabaseAccessRequest/postgres-cred-rqst',
  ]);
  t.deepEqual(names(dependentsOfSecretEngine(engine(), { requests: [r] }, engines(), CLUSTER)), [
    'DatabaseAccessRequest/postgres-cred-rqst',
  ]);
  t.deepEqual(names(dependentsOfPostgresRole(role(), [r])), ['DatabaseAccessRequest/postgres-cred-rqst']);
});

test('a request that holds nothing any more is no dependent: finalizer gone, revoked, expired, never issued', (t) => {
  const none = [
    request('released', {}, { finalizers: [] }),
    request('revoked', { phase: 'Revoked' }),
    request('expired', { phase: 'Expired' }),
    request('waiting', { phase: 'WaitingForApproval', lease: undefined, issuance: undefined }),
  ];
  t.deepEqual(dependentsOfAppBinding(appBinding(), { requests: none }, engines(), CLUSTER), []);
  t.deepEqual(dependentsOfSecretEngine(engine(), { requests: none }, engines(), CLUSTER), []);
  t.deepEqual(dependentsOfPostgresRole(role(), none), []);
});

test('a KubeVault finalizer counts as cleanup still to do', (t) => {
  t.is(revocationRoutes(request('old', {}, { finalizers: ['kubevault.com'] })).length, 1);
});

test('a rotated-out lease not yet revoked keeps its AppBinding and mount, even once the request is Revoked', (t) => {
  const r = request('rotated', {
    phase: 'Revoked',
    previousLeases: [{ id: 'other-se/creds/k8s.-.demo.psql-role/old1', vaultAppBinding: { name: 'vault2' } }],
  });
  t.deepEqual(revocationRoutes(r), [{ vaultAppBinding: { namespace: NS, name: 'vault2' }, mount: 'other-se' }]);
  t.deepEqual(names(dependentsOfAppBinding(appBinding('vault2'), { requests: [r] }, engines(), CLUSTER)), [
    'DatabaseAccessRequest/rotated',
  ]);
  t.deepEqual(
    dependentsOfAppBinding(appBinding('vault'), { requests: [r] }, engines(), CLUSTER),
    [],
    'the revoked current lease no longer counts',
  );
  t.true(renewsThroughRole(r));
});

test('an unfinished issuance may have left a lease: the AppBinding and engine wait (its deletion sweeps), the role does not', (t) => {
  const r = request('crashed', {
    lease: undefined,
    issuance: {
      vaultAppBinding: { name: 'vault' },
      mount: 'my-postgres-se',
      connection: 'k8s.-.demo.postgres-app',
      attempt: 'a2',
      completed: false,
    },
  });
  t.deepEqual(names(dependentsOfAppBinding(appBinding(), { requests: [r] }, engines(), CLUSTER)), [
    'DatabaseAccessRequest/crashed',
  ]);
  t.deepEqual(names(dependentsOfSecretEngine(engine(), { requests: [r] }, engines(), CLUSTER)), [
    'DatabaseAccessRequest/crashed',
  ]);
  t.deepEqual(
    dependentsOfPostgresRole(role(), [r]),
    [],
    'renewal is what reads the Vault role, and nothing is renewed yet',
  );
});

test('a SecretEngine waits only for leases through its own mount and connection', (t) => {
  const otherMount = request('elsewhere', {
    issuance: {
      vaultAppBinding: { name: 'vault' },
      mount: 'other-se',
      connection: 'k8s.-.demo.postgres-app',
      attempt: 'a',
      completed: true,
    },
  });
  const otherDb = request('otherdb', {
    issuance: {
      vaultAppBinding: { name: 'vault' },
      mount: 'my-postgres-se',
      connection: 'k8s.-.demo.other-db',
      attempt: 'a',
      completed: true,
    },
  });
  const otherVault = request('othervault', {
    issuance: {
      vaultAppBinding: { name: 'vault-b' },
      mount: 'my-postgres-se',
      connection: 'k8s.-.demo.postgres-app',
      attempt: 'a',
      completed: true,
    },
  });
  const legacy = request('legacy', {
    issuance: { vaultAppBinding: { name: 'vault' }, mount: 'my-postgres-se', attempt: 'a', completed: true },
  });
  const deps = dependentsOfSecretEngine(
    engine(),
    { requests: [otherMount, otherDb, otherVault, legacy] },
    engines(),
    CLUSTER,
  );
  t.deepEqual(
    names(deps),
    ['DatabaseAccessRequest/legacy'],
    'a request that recorded no connection counts (it may use this one)',
  );
});

test('a SecretEngine waits for the PostgresRoles whose Vault roles live under it: by secretEngineRef, or by vaultRef, path and database', (t) => {
  const e = engine();
  const byRef = role('by-ref', {
    vaultRef: undefined,
    path: undefined,
    databaseRef: undefined,
    secretEngineRef: { name: 'postgresql-engine' },
  });
  const byPath = role('by-path');
  const otherPath = role('other-path', { path: 'somewhere-else' });
  const otherDb = role('other-db', { databaseRef: { name: 'other-db', namespace: NS } });
  const released = role('released', {}, { finalizers: [] });
  const deps = dependentsOfSecretEngine(
    e,
    { roles: [byRef, byPath, otherPath, otherDb, released] },
    engines(e),
    CLUSTER,
  );
  t.deepEqual(names(deps), ['PostgresRole/by-path', 'PostgresRole/by-ref']);
});

test('a Vault AppBinding waits for SecretEngines and PostgresRoles that still have Vault to clean up through it', (t) => {
  const e = engine();
  const viaEngine = role('via-engine', {
    vaultRef: undefined,
    path: undefined,
    databaseRef: undefined,
    secretEngineRef: { name: 'postgresql-engine' },
  });
  const direct = role('direct');
  const elsewhere = role('elsewhere', { vaultRef: { name: 'vault-b' } });
  const neverProvisioned = engine('new-engine', {}, { finalizers: [] });
  const dbOnly = engine('db-only', { vaultRef: { name: 'vault-b' }, postgres: { databaseRef: { name: 'vault' } } });
  const deps = dependentsOfAppBinding(
    appBinding(),
    { engines: [e, neverProvisioned, dbOnly], roles: [viaEngine, direct, elsewhere] },
    engines(e),
    CLUSTER,
  );
  t.deepEqual(names(deps), ['PostgresRole/direct', 'PostgresRole/via-engine', 'SecretEngine/postgresql-engine']);
});

test('a PostgresRole waits only for requests naming it (also from another namespace)', (t) => {
  const other = request('other-role', {}, {});
  (other.spec as { roleRef: { name: string } }).roleRef.name = 'another-role';
  const remote = request('remote', {}, { namespace: 'team-b' });
  (remote.spec as { roleRef: { namespace?: string } }).roleRef.namespace = NS;
  t.deepEqual(names(dependentsOfPostgresRole(role(), [other, remote])), ['DatabaseAccessRequest/remote']);
});

test("the AppBindings a request's leases went through, for indexes and wake-ups, whatever its state", (t) => {
  const r = request('r', {
    phase: 'Revoked',
    previousLeases: [
      { id: 'x/creds/y/z', vaultAppBinding: { name: 'vault2', namespace: 'other' } },
      { id: 'x/creds/y/w', vaultAppBinding: { name: 'vault' } },
    ],
  });
  t.deepEqual(leaseAppBindings(r), [
    { namespace: NS, name: 'vault' },
    { namespace: 'other', name: 'vault2' },
  ]);
});

test('the mount of a lease id is everything before /creds/<role>/<id>, slashes included', (t) => {
  t.is(mountOfLease('my-postgres-se/creds/k8s.-.demo.psql-role/abc'), 'my-postgres-se');
  t.is(mountOfLease('team/a/db/creds/role/abc'), 'team/a/db');
  t.is(mountOfLease('not-a-database-lease'), undefined);
});

test('a condition names the first few dependents of each kind and counts the rest', (t) => {
  const deps = [
    ...['a', 'b', 'c', 'd', 'e'].map((name) => ({ kind: 'DatabaseAccessRequest' as const, namespace: NS, name })),
    { kind: 'PostgresRole' as const, namespace: NS, name: 'psql-role' },
  ];
  t.is(
    describeDependents(deps),
    '5 DatabaseAccessRequests still hold leases through it (demo/a, demo/b, demo/c and 2 more); 1 PostgresRole still uses it (demo/psql-role)',
  );
  t.is(
    describeDependents([{ kind: 'SecretEngine', namespace: NS, name: 'e' }]),
    '1 SecretEngine still uses it (demo/e)',
  );
});

test('a new issuance is refused through a role, SecretEngine or AppBinding being deleted, named in that order', (t) => {
  const deleting = { deletionTimestamp: GONE };
  t.is(terminatingOnIssuePath(role(), appBinding(), [engine()]), undefined);
  t.is(
    terminatingOnIssuePath(role('psql-role', {}, deleting), appBinding('vault', deleting), [engine()]),
    'PostgresRole demo/psql-role',
  );
  t.is(
    terminatingOnIssuePath(role(), appBinding('vault', deleting), [engine('postgresql-engine', {}, deleting)]),
    'SecretEngine demo/postgresql-engine',
  );
  t.is(terminatingOnIssuePath(role(), appBinding('vault', deleting), []), 'AppBinding demo/vault');
});
