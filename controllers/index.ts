// The operator's controllers, as the entry point (cmd/operator/main.ts) registers them. Each controller reads its kinds
// from shared watch caches and enqueues keys; dependents are enqueued when what they depend on changes.
import type { KubernetesObject } from '@kubernetes/client-node';
import { DATABASE_ACCESS_REQUEST, DEFAULT_ROLE_PATH, IN_USE_FINALIZER, Labels, MANAGED_BY, type AppBinding, type DatabaseAccessRequest, type PostgresRole, type SecretEngine } from '../api/index.ts';
import { enqueueMapped, enqueueObject, enqueueOwner, hasFinalizer, specOrMetadataChanged, type ObjectKey } from '../lib/runtime/index.ts';
import type { ControllerDeps, ControllerRegistration } from '../lib/runtime/registration.ts';
import { AppBindingReconciler } from './appbinding/reconciler.ts';
import { DatabaseAccessRequestReconciler } from './databaseaccessrequest/reconciler.ts';
import { PostgresRoleReconciler } from './postgresrole/reconciler.ts';
import { SecretEngineReconciler } from './secretengine/reconciler.ts';
import { defaultMountPath } from './shared/names.ts';
import { postgresRoleReferences } from './shared/references.ts';
import type { Caches, ControllerContext, Grant } from './shared/context.ts';
import { secretCacheTransform, type CachedSecret } from './shared/secret-integrity.ts';
import { APP_BINDINGS, DATABASE_ACCESS_REQUESTS, POSTGRES_ROLES, ROLE_BINDINGS, ROLES, SECRET_ENGINES, SECRETS } from './shared/resources.ts';
import {
  Dependencies, REQUESTS_BY_VAULT_APPBINDING, deletingKeys, engineRoute, leaseAppBindings, refKey, roleOfRequest, type ObjectRef,
} from './shared/dependents.ts';
import { VaultConnections } from './shared/vault-connections.ts';

export type { ControllerDeps, ControllerRegistration };

const key = (namespace: string | undefined, name: string): ObjectKey => ({ namespace: namespace ?? '', name });
const ns = (o: KubernetesObject) => o.metadata?.namespace ?? '';
const refOf = (o: KubernetesObject): ObjectRef => ({ namespace: ns(o), name: o.metadata?.name ?? '' });
const OURS = `${Labels.managedBy}=${MANAGED_BY}`;
const REQUEST_OWNER = { group: DATABASE_ACCESS_REQUEST.group, kind: DATABASE_ACCESS_REQUEST.kind };

/** The Approved/Denied conditions, which people write: the only status changes the controller reacts to. */
function decisionChanged(a: DatabaseAccessRequest, b: DatabaseAccessRequest): boolean {
  const decisions = (d: DatabaseAccessRequest) => JSON.stringify((d.status?.conditions ?? []).filter((c) => c.type === 'Approved' || c.type === 'Denied'));
  return decisions(a) !== decisions(b);
}

export function buildControllers(deps: ControllerDeps): ControllerRegistration[] {
  const caches: Caches = {
    appBindings: deps.cache<AppBinding>(APP_BINDINGS),
    secretEngines: deps.cache<SecretEngine>(SECRET_ENGINES),
    postgresRoles: deps.cache<PostgresRole>(POSTGRES_ROLES),
    requests: deps.cache<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS),
    // Metadata only: the data of no Secret is ever kept in memory (for credential Secrets, a verdict on it).
    secrets: deps.cache<CachedSecret>(SECRETS, { transform: secretCacheTransform }),
    // Only the Roles and RoleBindings Leasehold made (a label selector), to compare without reading them.
    grantRoles: deps.cache<Grant>(ROLES, { labelSelector: OURS }),
    grantBindings: deps.cache<Grant>(ROLE_BINDINGS, { labelSelector: OURS }),
  };
  // Who depends on what: the reverse references, kept as cache indexes.
  caches.secretEngines.addIndex('appbinding', (e) => [
    `${e.spec.vaultRef.namespace ?? ns(e)}/${e.spec.vaultRef.name}`,
    `${e.spec.postgres.databaseRef.namespace ?? ns(e)}/${e.spec.postgres.databaseRef.name}`,
  ]);
  caches.postgresRoles.addIndex('dependency', (r) => {
    const out: string[] = [];
    if (r.spec.secretEngineRef) out.push(`SecretEngine/${ns(r)}/${r.spec.secretEngineRef.name}`);
    if (r.spec.vaultRef) out.push(`AppBinding/${ns(r)}/${r.spec.vaultRef.name}`);
    // Tenancy: the database AppBinding whose leasehold.dev/allowed-namespaces decides whether the role may use it.
    for (const ref of postgresRoleReferences(r, deps.config.clusterName)) out.push(`AppBinding/${ref.to.namespace}/${ref.to.name}`);
    return out;
  });
  // Tenancy: SecretEngines sharing a mount, so the owner's leasehold.dev/allowed-namespaces wakes the others.
  const mountOf = (e: SecretEngine) => e.spec.path ?? defaultMountPath(deps.config.clusterName, ns(e), e.metadata.name ?? '');
  caches.secretEngines.addIndex('mount', (e) => [mountOf(e)]);
  // Guide-style roles (vaultRef + path) by the mount they write into: a SecretEngine enabling it wakes them.
  caches.postgresRoles.addIndex('mount', (r) => (r.spec.vaultRef && !r.spec.secretEngineRef ? [`${ns(r)}/${r.spec.vaultRef.name}/${r.spec.path ?? DEFAULT_ROLE_PATH}`] : []));
  caches.requests.addIndex('role', (d) => [`${d.spec.roleRef.namespace ?? ns(d)}/${d.spec.roleRef.name}`]);
  caches.requests.addIndex(REQUESTS_BY_VAULT_APPBINDING, (d) => leaseAppBindings(d).map(refKey));
  caches.appBindings.addIndex('secret', (a) => (a.spec.secret ? [`${ns(a)}/${a.spec.secret.name}`] : []));

  const c = deps.config;
  const [saNs, saName] = c.operatorServiceAccount.split('/');
  // An issuer token replaced or lost (revoked in Vault, say): its AppBinding says so at once (LeaseOwnership).
  let wakeAppBinding: (key: ObjectKey) => void = () => undefined;
  const connections = new VaultConnections(deps.client, {
    operatorNamespace: c.operatorNamespace,
    operatorServiceAccount: saNs && saName ? { namespace: saNs, name: saName } : undefined,
    issuerTokenRole: c.vaultIssuerTokenRole,
    tokenAudiences: [],
    onIssuerChanged: (ab) => wakeAppBinding(ab),
  }, (operation, outcome) => deps.metrics.vaultRequests.labels(operation, outcome).inc(),
  (namespace, name) => caches.secrets.get(namespace, name));
  const recorders = new Map<string, ReturnType<ControllerDeps['eventRecorder']>>();
  const ctx: ControllerContext = {
    kube: deps.client,
    clusterName: c.clusterName,
    resyncPeriodMs: c.resyncPeriodMs,
    caches,
    connections,
    log: deps.logger,
    events: (component) => {
      let r = recorders.get(component);
      if (!r) recorders.set(component, (r = deps.eventRecorder(component)));
      return r;
    },
  };

  // Deletion order (dependents.ts): an object being deleted waits for what depends on it; their changes wake it.
  const dependencies = new Dependencies(caches, c.clusterName);
  const deleting = <T extends KubernetesObject>(cache: { get(ns: string, name: string): T | undefined }) =>
    (refs: readonly (ObjectRef | undefined)[]) => deletingKeys(refs, (n, m) => cache.get(n, m));
  /** An AppBinding that is being deleted, or whose token Secret is: it waits for its dependents. */
  // AppBindings a dependent's change concerns: one being deleted (or whose token Secret is) may be released; one
  // without the in-use finalizer may have just become a Vault that something depends on.
  const waitingAppBindings = (refs: readonly (ObjectRef | undefined)[]) => refs.filter((r): r is ObjectRef => {
    const ab = r && caches.appBindings.get(r.namespace, r.name);
    return !!ab && (!!ab.metadata.deletionTimestamp || !hasFinalizer(ab, IN_USE_FINALIZER) ||
      !!(ab.spec.secret && caches.secrets.get(r!.namespace, ab.spec.secret.name)?.metadata?.deletionTimestamp));
  });

  const appBindings = deps.newController({ name: 'appbinding', reconciler: new AppBindingReconciler(ctx) })
    .watch(caches.appBindings, enqueueObject())
    .watch(caches.secrets, enqueueMapped((s) => caches.appBindings.byIndex('secret', `${ns(s)}/${s.metadata?.name}`).map((a) => key(ns(a), a.metadata.name ?? ''))))
    // A token Secret still holding in-use that no AppBinding names any more: any in-use AppBinding of its
    // namespace releases it (AppBindingReconciler.releaseFormerTokenSecrets).
    .watch(caches.secrets, enqueueMapped((s) => (hasFinalizer(s, IN_USE_FINALIZER) && caches.appBindings.byIndex('secret', `${ns(s)}/${s.metadata?.name}`).length === 0
      ? caches.appBindings.list().filter((a) => ns(a) === ns(s) && hasFinalizer(a, IN_USE_FINALIZER)).slice(0, 1).map((a) => key(ns(a), a.metadata.name ?? ''))
      : [])))
    .watch(caches.requests, enqueueMapped((d) => waitingAppBindings(leaseAppBindings(d))))
    .watch(caches.secretEngines, enqueueMapped((e) => waitingAppBindings([engineRoute(e, c.clusterName).vaultAppBinding])))
    .watch(caches.postgresRoles, enqueueMapped((r) => waitingAppBindings([dependencies.appBindingOfRole(r)])));
  wakeAppBinding = (k) => appBindings.enqueue(k);

  const enginesOfAppBinding = (a: AppBinding) => caches.secretEngines.byIndex('appbinding', `${ns(a)}/${a.metadata.name}`).map((e) => key(ns(e), e.metadata.name ?? ''));
  const secretEngines = deps.newController({ name: 'secretengine', reconciler: new SecretEngineReconciler(ctx) })
    .watch(caches.secretEngines, enqueueObject())
    .watch(caches.secretEngines, enqueueMapped((e) => caches.secretEngines.byIndex('mount', mountOf(e))
      .filter((o) => o.metadata.uid !== e.metadata.uid).map((o) => key(ns(o), o.metadata.name ?? ''))))
    .watch(caches.appBindings, enqueueMapped(enginesOfAppBinding))
    // A rotated admin password: Secret → AppBindings using it → their SecretEngines.
    .watch(caches.secrets, enqueueMapped((s) => caches.appBindings.byIndex('secret', `${ns(s)}/${s.metadata?.name}`).flatMap(enginesOfAppBinding)))
    .watch(caches.requests, enqueueMapped((d) => deleting(caches.secretEngines)(dependencies.enginesOfRequest(d).map(refOf))))
    .watch(caches.postgresRoles, enqueueMapped((r) => deleting(caches.secretEngines)(dependencies.enginesOfRole(r).map(refOf))));

  const rolesDependingOn = (kind: string, o: KubernetesObject) =>
    caches.postgresRoles.byIndex('dependency', `${kind}/${ns(o)}/${o.metadata?.name}`).map((r) => key(ns(r), r.metadata.name ?? ''));
  // The roles writing into an engine's mount (same Vault AppBinding, same path), whether or not they name it.
  const rolesOnMount = (e: SecretEngine) => caches.postgresRoles
    .byIndex('mount', `${e.spec.vaultRef.namespace ?? ns(e)}/${e.spec.vaultRef.name}/${e.spec.path ?? defaultMountPath(c.clusterName, ns(e), e.metadata.name ?? '')}`)
    .map((r) => key(ns(r), r.metadata.name ?? ''));
  const postgresRoles = deps.newController({ name: 'postgresrole', reconciler: new PostgresRoleReconciler(ctx) })
    .watch(caches.postgresRoles, enqueueObject())
    .watch(caches.secretEngines, enqueueMapped((e) => [...rolesDependingOn('SecretEngine', e), ...rolesOnMount(e)]))
    .watch(caches.appBindings, enqueueMapped((a) => rolesDependingOn('AppBinding', a)))
    .watch(caches.requests, enqueueMapped((d) => deleting(caches.postgresRoles)([roleOfRequest(d)])));

  const requests = deps.newController({ name: 'databaseaccessrequest', reconciler: new DatabaseAccessRequestReconciler(ctx, deps.metrics.registry) })
    // A decision arrives as a status write by a person: it must wake the controller, unlike our own status writes.
    .watch(caches.requests, enqueueObject<DatabaseAccessRequest>({ predicate: (a, b) => specOrMetadataChanged(a, b) || decisionChanged(a, b) }))
    // Status changes of a role (it became ready) matter to its requests: every change counts.
    .watch(caches.postgresRoles, enqueueMapped((r) => caches.requests.byIndex('role', `${ns(r)}/${r.metadata.name}`).map((d) => key(ns(d), d.metadata.name ?? ''))))
    // What a request owns: changed or deleted by someone, it is put back at once.
    .watch(caches.secrets, enqueueOwner(REQUEST_OWNER))
    .watch(caches.grantRoles, enqueueOwner(REQUEST_OWNER))
    .watch(caches.grantBindings, enqueueOwner(REQUEST_OWNER))
    // A request being deleted that waits for a way into Vault (its AppBinding's login was fixed, say).
    .watch(caches.appBindings, enqueueMapped((a) => caches.requests.byIndex(REQUESTS_BY_VAULT_APPBINDING, refKey(refOf(a)))
      .filter((d) => d.metadata.deletionTimestamp).map((d) => key(ns(d), d.metadata.name ?? '')), { predicate: specOrMetadataChanged }));

  return [
    { name: 'appbinding', controller: appBindings },
    { name: 'secretengine', controller: secretEngines },
    { name: 'postgresrole', controller: postgresRoles },
    { name: 'databaseaccessrequest', controller: requests },
  ];
}
