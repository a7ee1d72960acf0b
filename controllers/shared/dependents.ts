// Who still depends on what, so that a deletion never takes away something a live lease needs in order to be
// revoked, nor something the cleanup of Vault needs.
//
// A lease is revoked through the Vault AppBinding it was issued through (address, CA, the operator's login:
// status.issuance.vaultAppBinding), and by Vault through the mount's database connection (Vault keeps the
// role's revocation statements and db_name in the lease when it issues it, so the Vault role may go first, but
// a deleted connection makes revocation fail while the login lives on). Renewing a lease reads its Vault role.
// So, while a request holds a lease:
//   its PostgresRole keeps its Vault role          (renewal),
//   the SecretEngine keeps its connection and mount (revocation),
//   the Vault AppBinding stays, and its token Secret (the login),
// and cleaning up Vault runs in the order Vault can honour: requests revoke, then PostgresRoles delete their
// Vault roles, then SecretEngines their connection and mount, then the Vault AppBinding is released. Each
// waits, with a Terminating condition naming who it waits for, until nothing depends on it.
//
// The functions at the top are pure (they take candidate objects and decide); `Dependencies` feeds them from
// the watch caches (through their indexes) for the reconcilers and the watch mappings.
import {
  DEFAULT_MOUNT_PATH,
  FINALIZER,
  KUBEVAULT_FINALIZER,
  ROLE_KINDS,
  RequestPhase,
  engineDatabase,
  type AppBinding,
  type DatabaseAccessRequest,
  type DatabaseRole,
  type RoleKind,
  type SecretEngine,
} from '../../api/index.ts';
import { hasFinalizer, type ObjectKey } from '../../lib/runtime/index.ts';
import type { Caches } from './context.ts';
import { connectionName, engineMountPath } from './names.ts';
import { roleReferences } from './references.ts';
import { kindOfRole, roleCaches } from './role-kinds.ts';

export interface ObjectRef {
  namespace: string;
  name: string;
}

export type DependentKind = 'DatabaseAccessRequest' | RoleKind | 'SecretEngine';

/** Something that still needs an object being deleted. */
export interface Dependent {
  kind: DependentKind;
  namespace: string;
  name: string;
}

/** Where a lease is revoked through: the Vault AppBinding and, when known, the mount and its connection. */
export interface Route {
  vaultAppBinding: ObjectRef;
  mount?: string;
  connection?: string;
}

type Obj = { metadata?: { namespace?: string; name?: string; finalizers?: string[]; deletionTimestamp?: unknown } };

const nsOf = (o: Obj) => o.metadata?.namespace ?? '';
const nameOf = (o: Obj) => o.metadata?.name ?? '';
export const refKey = (r: ObjectRef): string => `${r.namespace}/${r.name}`;

/** Whether the operator still has cleanup to do for an object: it holds Leasehold's finalizer (or KubeVault's). */
export function cleanupPending(o: Obj): boolean {
  return hasFinalizer(o as never, FINALIZER) || hasFinalizer(o as never, KUBEVAULT_FINALIZER);
}

/** The mount of a database lease id (`<mount>/creds/<role>/<id>`), or undefined for any other shape. */
export function mountOfLease(leaseId: string): string | undefined {
  return /^(.+)\/creds\/[^/]+\/[^/]+$/.exec(leaseId)?.[1];
}

function ended(dar: DatabaseAccessRequest): boolean {
  const phase = dar.status?.phase;
  return phase === RequestPhase.Revoked || phase === RequestPhase.Expired;
}

/**
 * The Vault AppBindings a request's recorded leases were issued through (status.issuance.vaultAppBinding and each
 * status.previousLeases[].vaultAppBinding; an empty namespace means the request's), whatever their state: the
 * key of a cache index, and what a change to the request may wake.
 */
export function leaseAppBindings(dar: DatabaseAccessRequest): ObjectRef[] {
  const ns = nsOf(dar);
  const refs: ObjectRef[] = [];
  const add = (r: { namespace?: string; name: string } | undefined) => {
    if (r && !refs.some((x) => x.name === r.name && x.namespace === (r.namespace || ns)))
      refs.push({ namespace: r.namespace || ns, name: r.name });
  };
  add(dar.status?.issuance?.vaultAppBinding);
  for (const p of dar.status?.previousLeases ?? []) add(p.vaultAppBinding);
  return refs;
}

/** The routes status records for a request's current lease (or issuance attempt) and its rotated-out leases. */
function recordedRoutes(dar: DatabaseAccessRequest): { current?: Route; previous: Route[] } {
  const ns = nsOf(dar);
  const issuance = dar.status?.issuance;
  const current = issuance?.vaultAppBinding
    ? {
        vaultAppBinding: { namespace: issuance.vaultAppBinding.namespace || ns, name: issuance.vaultAppBinding.name },
        mount: issuance.mount || undefined,
        connection: issuance.connection || undefined,
      }
    : undefined;
  const previous = (dar.status?.previousLeases ?? []).flatMap((p) =>
    p.vaultAppBinding
      ? [
          {
            vaultAppBinding: { namespace: p.vaultAppBinding.namespace || ns, name: p.vaultAppBinding.name },
            mount: mountOfLease(p.id),
          },
        ]
      : [],
  );
  return { current, previous };
}

/**
 * The routes of the leases a request may still hold and will revoke when it ends: the current lease (or the one an
 * unfinished issuance may have left, which its deletion sweeps), and those rotated out and not yet revoked. Empty
 * once the request's finalizer is gone (nothing left to revoke) or its access ended (Revoked, Expired: the lease
 * was revoked then; only rotated-out leases can remain).
 */
export function revocationRoutes(dar: DatabaseAccessRequest): Route[] {
  if (!cleanupPending(dar)) return [];
  const { current, previous } = recordedRoutes(dar);
  const issuance = dar.status?.issuance;
  const holds = !ended(dar) && (!!dar.status?.lease?.id || (!!issuance?.attempt && !issuance.completed));
  return [...(current && holds ? [current] : []), ...previous];
}

/** Whether a request holds a recorded lease that renewing reads its role for (the current one, or one rotated out). */
export function renewsThroughRole(dar: DatabaseAccessRequest): boolean {
  if (!cleanupPending(dar)) return false;
  return (!ended(dar) && !!dar.status?.lease?.id) || (dar.status?.previousLeases ?? []).length > 0;
}

/** The role a request names (spec.roleRef; its namespace defaults to the request's). */
export function roleOfRequest(dar: DatabaseAccessRequest): ObjectRef & { kind: RoleKind } {
  return {
    kind: dar.spec.roleRef.kind ?? 'PostgresRole',
    namespace: dar.spec.roleRef.namespace ?? nsOf(dar),
    name: dar.spec.roleRef.name,
  };
}

/** The key of the REQUESTS_BY_ROLE index: `Kind/namespace/name` (a MySQLRole and a PostgresRole may share a name). */
export function roleKey(r: { kind?: string; namespace: string; name: string }): string {
  return `${r.kind ?? 'PostgresRole'}/${r.namespace}/${r.name}`;
}

/** A SecretEngine's route: its Vault AppBinding, mount (spec.path or the default) and connection name. */
export function engineRoute(engine: SecretEngine, cluster: string): Route {
  const ns = nsOf(engine);
  const db = engineDatabase(engine)?.config.databaseRef;
  return {
    vaultAppBinding: { namespace: engine.spec.vaultRef.namespace ?? ns, name: engine.spec.vaultRef.name },
    mount: engineMountPath(cluster, engine),
    connection: db ? connectionName(cluster, db.namespace ?? ns, db.name) : undefined,
  };
}

/**
 * A role's route, as resolveRoleTarget finds it but without requiring the AppBinding to exist: through its
 * SecretEngine (spec.secretEngineRef; undefined if that is gone), or spec.vaultRef + spec.path + the connection.
 */
export function roleRoute(
  role: DatabaseRole,
  engineOf: (ref: ObjectRef) => SecretEngine | undefined,
  cluster: string,
): Route | undefined {
  const ns = nsOf(role);
  if (role.spec.secretEngineRef) {
    const engine = engineOf({ namespace: ns, name: role.spec.secretEngineRef.name });
    return engine ? engineRoute(engine, cluster) : undefined;
  }
  if (!role.spec.vaultRef) return undefined;
  const db = role.spec.databaseRef;
  return {
    vaultAppBinding: { namespace: ns, name: role.spec.vaultRef.name },
    mount: role.spec.path ?? DEFAULT_MOUNT_PATH,
    connection: db ? connectionName(cluster, db.namespace ?? ns, db.name) : role.spec.databaseName,
  };
}

/** Whether a lease's route goes through `through`: the same AppBinding, and the same mount and connection where both are known. */
export function routeWithin(lease: Route, through: Route): boolean {
  if (refKey(lease.vaultAppBinding) !== refKey(through.vaultAppBinding)) return false;
  if (lease.mount !== undefined && through.mount !== undefined && lease.mount !== through.mount) return false;
  return !(
    lease.connection !== undefined &&
    through.connection !== undefined &&
    lease.connection !== through.connection
  );
}

function sameRoute(a: Route, b: Route): boolean {
  return (
    refKey(a.vaultAppBinding) === refKey(b.vaultAppBinding) && a.mount === b.mount && a.connection === b.connection
  );
}

/** Objects that may depend on the one being deleted (typically from cache indexes; extra ones are filtered out). */
export interface Candidates {
  requests?: readonly DatabaseAccessRequest[];
  engines?: readonly SecretEngine[];
  roles?: readonly DatabaseRole[];
}

function unique(deps: Dependent[]): Dependent[] {
  const seen = new Set<string>();
  return deps.filter((d) => {
    const k = `${d.kind}/${d.namespace}/${d.name}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const dependent = (kind: DependentKind, o: Obj): Dependent => ({ kind, namespace: nsOf(o), name: nameOf(o) });

/**
 * What a Vault AppBinding being deleted waits for: requests holding leases issued through it, and SecretEngines and
 * PostgresRoles using it that still have Vault to clean up (they hold their finalizer).
 */
export function dependentsOfAppBinding(
  ab: AppBinding,
  c: Candidates,
  engineOf: (ref: ObjectRef) => SecretEngine | undefined,
  cluster: string,
): Dependent[] {
  const self = refKey({ namespace: nsOf(ab), name: nameOf(ab) });
  const out: Dependent[] = [];
  for (const r of c.requests ?? []) {
    if (revocationRoutes(r).some((x) => refKey(x.vaultAppBinding) === self))
      out.push(dependent('DatabaseAccessRequest', r));
  }
  for (const e of c.engines ?? []) {
    if (cleanupPending(e) && refKey(engineRoute(e, cluster).vaultAppBinding) === self)
      out.push(dependent('SecretEngine', e));
  }
  for (const r of c.roles ?? []) {
    const route = cleanupPending(r) ? roleRoute(r, engineOf, cluster) : undefined;
    if (route && refKey(route.vaultAppBinding) === self) out.push(dependent(kindOfRole(r), r));
  }
  return unique(out);
}

/**
 * What a SecretEngine being deleted waits for: requests holding leases through its mount and connection, and the
 * PostgresRoles whose Vault roles live there (through spec.secretEngineRef, or vaultRef + path + databaseRef naming
 * the same mount and connection) that still have their Vault role to delete.
 */
export function dependentsOfSecretEngine(
  engine: SecretEngine,
  c: Candidates,
  engineOf: (ref: ObjectRef) => SecretEngine | undefined,
  cluster: string,
): Dependent[] {
  const through = engineRoute(engine, cluster);
  const out: Dependent[] = [];
  for (const r of c.requests ?? []) {
    if (revocationRoutes(r).some((x) => routeWithin(x, through))) out.push(dependent('DatabaseAccessRequest', r));
  }
  for (const r of c.roles ?? []) {
    if (!cleanupPending(r)) continue;
    const named = r.spec.secretEngineRef && r.spec.secretEngineRef.name === nameOf(engine) && nsOf(r) === nsOf(engine);
    const route = named ? undefined : roleRoute(r, engineOf, cluster);
    if (named || (route && sameRoute(route, through))) out.push(dependent(kindOfRole(r), r));
  }
  return unique(out);
}

/** What a role being deleted waits for: requests naming it that hold a lease (renewing one reads the Vault role). */
export function dependentsOfRole(role: DatabaseRole, requests: readonly DatabaseAccessRequest[]): Dependent[] {
  const self = roleKey({ kind: kindOfRole(role), namespace: nsOf(role), name: nameOf(role) });
  return unique(
    requests
      .filter((r) => roleKey(roleOfRequest(r)) === self && renewsThroughRole(r))
      .map((r) => dependent('DatabaseAccessRequest', r)),
  );
}

/** PostgresRole's name for dependentsOfRole. */
export const dependentsOfPostgresRole = dependentsOfRole;

/**
 * Dependents in a sentence for a condition: each kind with its count and the first `max` names, e.g.
 * `1 DatabaseAccessRequest still holds leases through it (demo/a); 2 PostgresRoles still use it (demo/r, demo/s)`.
 */
export function describeDependents(deps: readonly Dependent[], max = 3): string {
  const parts: string[] = [];
  const group = (kind: DependentKind, one: string, many: string) => {
    const of = deps.filter((d) => d.kind === kind);
    if (of.length === 0) return;
    const names =
      of
        .slice(0, max)
        .map((d) => `${d.namespace}/${d.name}`)
        .join(', ') + (of.length > max ? ` and ${of.length - max} more` : '');
    parts.push(`${of.length} ${kind}${of.length === 1 ? '' : 's'} still ${of.length === 1 ? one : many} (${names})`);
  };
  group('DatabaseAccessRequest', 'holds leases through it', 'hold leases through it');
  for (const kind of ROLE_KINDS) group(kind, 'uses it', 'use it');
  group('SecretEngine', 'uses it', 'use it');
  return parts.join('; ');
}

/** The first object on a role's issuance path that is being deleted, as `Kind namespace/name`, or undefined. */
export function terminatingOnIssuePath(
  role: DatabaseRole,
  vaultAppBinding: AppBinding | undefined,
  engines: readonly SecretEngine[],
): string | undefined {
  const deleting = (o: Obj | undefined) => !!o?.metadata?.deletionTimestamp;
  if (deleting(role)) return `${kindOfRole(role)} ${nsOf(role)}/${nameOf(role)}`;
  const engine = engines.find(deleting);
  if (engine) return `SecretEngine ${nsOf(engine)}/${nameOf(engine)}`;
  if (deleting(vaultAppBinding)) return `AppBinding ${nsOf(vaultAppBinding!)}/${nameOf(vaultAppBinding!)}`;
  return undefined;
}

// ---- from the caches ---------------------------------------------------------------------------------------------

// The cache indexes several kinds query (this graph, the reconcilers and more than one kind's setup.ts); an index
// only one kind's watches use is added in that kind's setup.ts.

/** Cache index of requests by the Vault AppBindings their leases were issued through (see leaseAppBindings). */
export const REQUESTS_BY_VAULT_APPBINDING = 'vaultAppBinding';
/** Cache index of requests by their role, `Kind/namespace/name` (roleKey). */
export const REQUESTS_BY_ROLE = 'role';
/** Cache index of SecretEngines by the AppBindings they use (Vault and database), `namespace/name`. */
export const SECRET_ENGINES_BY_APPBINDING = 'appbinding';
/** Cache index of roles (every kind's cache) by what they use: `SecretEngine/namespace/name` or `AppBinding/namespace/name`. */
export const POSTGRES_ROLES_BY_DEPENDENCY = 'dependency';
/** Cache index of AppBindings by the Secret they name (spec.secret), `namespace/name`. */
export const APPBINDINGS_BY_SECRET = 'secret';

/** Adds the shared indexes above to the caches; call once, before the caches start. */
export function addDependencyIndexes(caches: Caches, cluster: string): void {
  caches.secretEngines.addIndex(SECRET_ENGINES_BY_APPBINDING, (e) => {
    const db = engineDatabase(e)?.config.databaseRef;
    return [
      `${e.spec.vaultRef.namespace ?? nsOf(e)}/${e.spec.vaultRef.name}`,
      ...(db ? [`${db.namespace ?? nsOf(e)}/${db.name}`] : []),
    ];
  });
  for (const roles of roleCaches(caches)) {
    roles.addIndex(POSTGRES_ROLES_BY_DEPENDENCY, (r) => {
      const out: string[] = [];
      if (r.spec.secretEngineRef) out.push(`SecretEngine/${nsOf(r)}/${r.spec.secretEngineRef.name}`);
      if (r.spec.vaultRef) out.push(`AppBinding/${nsOf(r)}/${r.spec.vaultRef.name}`);
      // Tenancy: the database AppBinding whose leasehold.dev/allowed-namespaces decides whether the role may use it.
      for (const ref of roleReferences(r, cluster)) out.push(`AppBinding/${ref.to.namespace}/${ref.to.name}`);
      return out;
    });
  }
  caches.requests.addIndex(REQUESTS_BY_ROLE, (d) => [roleKey(roleOfRequest(d))]);
  caches.requests.addIndex(REQUESTS_BY_VAULT_APPBINDING, (d) => leaseAppBindings(d).map(refKey));
  caches.appBindings.addIndex(APPBINDINGS_BY_SECRET, (a) =>
    a.spec.secret ? [`${nsOf(a)}/${a.spec.secret.name}`] : [],
  );
}

/** The dependency graph over the watch caches, through the indexes addDependencyIndexes adds. */
export class Dependencies {
  constructor(
    private readonly caches: Caches,
    private readonly cluster: string,
  ) {}

  readonly engineOf = (ref: ObjectRef): SecretEngine | undefined =>
    this.caches.secretEngines.get(ref.namespace, ref.name);

  private requestsThrough(ab: ObjectRef): DatabaseAccessRequest[] {
    return this.caches.requests.byIndex(REQUESTS_BY_VAULT_APPBINDING, refKey(ab));
  }

  private rolesUsing(ab: ObjectRef, engines: readonly SecretEngine[]): DatabaseRole[] {
    return roleCaches(this.caches).flatMap((roles) => [
      ...roles.byIndex(POSTGRES_ROLES_BY_DEPENDENCY, `AppBinding/${refKey(ab)}`),
      ...engines.flatMap((e) => roles.byIndex(POSTGRES_ROLES_BY_DEPENDENCY, `SecretEngine/${nsOf(e)}/${nameOf(e)}`)),
    ]);
  }

  ofAppBinding(ab: AppBinding): Dependent[] {
    const self = { namespace: nsOf(ab), name: nameOf(ab) };
    const engines = this.caches.secretEngines.byIndex(SECRET_ENGINES_BY_APPBINDING, refKey(self));
    return dependentsOfAppBinding(
      ab,
      { requests: this.requestsThrough(self), engines, roles: this.rolesUsing(self, engines) },
      this.engineOf,
      this.cluster,
    );
  }

  ofSecretEngine(engine: SecretEngine): Dependent[] {
    const through = engineRoute(engine, this.cluster).vaultAppBinding;
    return dependentsOfSecretEngine(
      engine,
      { requests: this.requestsThrough(through), roles: this.rolesUsing(through, [engine]) },
      this.engineOf,
      this.cluster,
    );
  }

  ofRole(role: DatabaseRole): Dependent[] {
    return dependentsOfRole(
      role,
      this.caches.requests.byIndex(
        REQUESTS_BY_ROLE,
        roleKey({ kind: kindOfRole(role), namespace: nsOf(role), name: nameOf(role) }),
      ),
    );
  }

  /** The SecretEngines serving a role: its spec.secretEngineRef, or those whose mount and connection it names. */
  enginesOfRole(role: DatabaseRole): SecretEngine[] {
    if (role.spec.secretEngineRef) {
      const e = this.engineOf({ namespace: nsOf(role), name: role.spec.secretEngineRef.name });
      return e ? [e] : [];
    }
    const route = roleRoute(role, this.engineOf, this.cluster);
    if (!route) return [];
    return this.caches.secretEngines
      .byIndex(SECRET_ENGINES_BY_APPBINDING, refKey(route.vaultAppBinding))
      .filter((e) => sameRoute(engineRoute(e, this.cluster), route));
  }

  /** The SecretEngines a request's recorded leases went through (whatever the request's state: for watches). */
  enginesOfRequest(dar: DatabaseAccessRequest): SecretEngine[] {
    const { current, previous } = recordedRoutes(dar);
    const out = new Map<string, SecretEngine>();
    for (const route of current ? [current, ...previous] : previous) {
      for (const e of this.caches.secretEngines.byIndex(SECRET_ENGINES_BY_APPBINDING, refKey(route.vaultAppBinding))) {
        if (routeWithin(route, engineRoute(e, this.cluster))) out.set(`${nsOf(e)}/${nameOf(e)}`, e);
      }
    }
    return [...out.values()];
  }

  /** The Vault AppBinding a role uses (directly, or through its SecretEngine). */
  appBindingOfRole(role: DatabaseRole): ObjectRef | undefined {
    return roleRoute(role, this.engineOf, this.cluster)?.vaultAppBinding;
  }

  /** The first object on the role's issuance path that is being deleted (see terminatingOnIssuePath). */
  terminatingOnIssuePath(role: DatabaseRole, vaultAppBinding: AppBinding | undefined): string | undefined {
    return terminatingOnIssuePath(role, vaultAppBinding, this.enginesOfRole(role));
  }
}

/** Keys of the objects `keys` names that are being deleted (what a dependent's change may release). */
export function deletingKeys<T extends Obj>(
  refs: readonly (ObjectRef | undefined)[],
  get: (ns: string, name: string) => T | undefined,
): ObjectKey[] {
  return refs
    .filter((r): r is ObjectRef => !!r && !!get(r.namespace, r.name)?.metadata?.deletionTimestamp)
    .map((r) => ({ namespace: r.namespace, name: r.name }));
}
