// Tenancy: which references from one namespace into another are allowed. A SecretEngine or PostgresRole that
// names an AppBinding (a Vault login, a database's admin password) or a mount of another namespace would use
// that namespace's credentials on behalf of whoever wrote it; so such a reference is refused unless the
// referenced object admits the referring namespace in its leasehold.dev/allowed-namespaces annotation, which
// only someone allowed to edit objects in the referenced namespace can write. Pure functions over the objects;
// the reconcilers read them from their caches and act on the verdict.
import {
  Annotations,
  Reason,
  engineDatabase,
  type AppBinding,
  type DatabaseRole,
  type SecretEngine,
} from '../../api/index.ts';
import { TerminalError } from '../../lib/runtime/index.ts';
import { connectionOwner } from './names.ts';

/** Anything with metadata: the referenced object as a cache holds it. */
export interface Annotated {
  metadata?: { namespace?: string; name?: string; annotations?: Record<string, string> };
}

export type ReferencedKind = 'AppBinding' | 'SecretEngine';

/** One reference from an object's spec to an object that may live in another namespace. */
export interface Reference {
  /** The referring object: kind, namespace, name. */
  from: { kind: string; namespace: string; name: string };
  /** The field that holds the reference, e.g. "spec.vaultRef.namespace". */
  field: string;
  /** The referenced object. */
  to: { kind: ReferencedKind; namespace: string; name: string };
  /** What the referenced object is used for, for the message ("its Vault login"). */
  use: string;
}

/** The verdict on a refused reference: a TerminalError (a change, not a retry, fixes it) with reason ReferenceNotAllowed. */
export class ReferenceNotAllowed extends TerminalError {
  constructor(
    message: string,
    readonly reference: Reference,
  ) {
    super(Reason.ReferenceNotAllowed, message);
  }
}

/**
 * The namespaces an object's `leasehold.dev/allowed-namespaces` annotation admits: comma- (or space-) separated
 * namespace names; "*" admits every namespace. Anything else in the list (a typo, a pattern) admits nothing.
 */
export function allowedNamespaces(obj: Annotated | undefined): { any: boolean; namespaces: string[] } {
  const raw = obj?.metadata?.annotations?.[Annotations.allowedNamespaces] ?? '';
  const namespaces = raw.split(/[\s,]+/).filter((s) => s !== '');
  return { any: namespaces.includes('*'), namespaces: namespaces.filter((s) => s !== '*') };
}

/** Whether `target` (an object in `target.metadata.namespace`) may be used from `fromNamespace`. */
export function admits(target: Annotated | undefined, fromNamespace: string): boolean {
  if (!target) return false;
  if ((target.metadata?.namespace ?? '') === fromNamespace) return true;
  const allowed = allowedNamespaces(target);
  return allowed.any || allowed.namespaces.includes(fromNamespace);
}

/**
 * Checks one reference against the referenced object as found (undefined: it doesn't exist). A reference within
 * the referring object's namespace is always allowed (whether it exists is not this check's business). Across
 * namespaces a missing object is refused just like one that doesn't opt in, so the message says nothing about
 * what exists in a namespace the referrer may not be able to see.
 */
export function checkReference(ref: Reference, target: Annotated | undefined): ReferenceNotAllowed | undefined {
  if (ref.to.namespace === ref.from.namespace) return undefined;
  if (target && admits(target, ref.from.namespace)) return undefined;
  const kind = ref.to.kind === 'AppBinding' ? 'appbinding' : 'secretengine';
  return new ReferenceNotAllowed(
    `${ref.field} of ${ref.from.kind} ${ref.from.namespace}/${ref.from.name} refers to ${ref.to.kind} ` +
      `${ref.to.namespace}/${ref.to.name} (${ref.use}) in another namespace, which does not admit namespace ` +
      `${ref.from.namespace}: a namespace can't use another namespace's ${ref.to.kind === 'AppBinding' ? 'Vault login or database' : 'mount'} ` +
      `unless that namespace opts in. Someone with rights in namespace ${ref.to.namespace} can add ${ref.from.namespace} to its ` +
      `${Annotations.allowedNamespaces} annotation (comma-separated namespaces, or "*"), e.g. ` +
      `kubectl -n ${ref.to.namespace} annotate ${kind} ${ref.to.name} ${Annotations.allowedNamespaces}=${ref.from.namespace}; ` +
      `otherwise use an object in namespace ${ref.from.namespace}`,
    ref,
  );
}

/** Looks a referenced object up (from a cache). */
export type Lookup = (kind: ReferencedKind, namespace: string, name: string) => Annotated | undefined;

/** The first refused reference of a list, or undefined when every one is allowed. */
export function firstRefusal(refs: readonly Reference[], lookup: Lookup): ReferenceNotAllowed | undefined {
  for (const ref of refs) {
    const refusal = checkReference(
      ref,
      ref.to.namespace === ref.from.namespace ? undefined : lookup(ref.to.kind, ref.to.namespace, ref.to.name),
    );
    if (refusal) return refusal;
  }
  return undefined;
}

/** A SecretEngine's references: its Vault AppBinding (spec.vaultRef) and its database AppBinding (spec.<type>.databaseRef). */
export function secretEngineReferences(engine: SecretEngine): Reference[] {
  const ns = engine.metadata.namespace ?? '';
  const from = { kind: 'SecretEngine', namespace: ns, name: engine.metadata.name ?? '' };
  const database = engineDatabase(engine);
  const db = database?.config.databaseRef;
  return [
    {
      from,
      field: 'spec.vaultRef',
      to: { kind: 'AppBinding', namespace: engine.spec.vaultRef.namespace || ns, name: engine.spec.vaultRef.name },
      use: 'its Vault login',
    },
    ...(db
      ? [
          {
            from,
            field: `spec.${database.type}.databaseRef`,
            to: { kind: 'AppBinding' as const, namespace: db.namespace || ns, name: db.name },
            use: 'the database and its admin password',
          },
        ]
      : []),
  ];
}

/**
 * A SecretEngine's mount when another SecretEngine's description claims it (names.ts mountOwnerFromDescription):
 * writing a connection into it, or tuning it, acts on that engine's mount.
 */
export function mountReference(
  engine: SecretEngine,
  owner: { namespace: string; name: string },
  path: string,
): Reference {
  return {
    from: { kind: 'SecretEngine', namespace: engine.metadata.namespace ?? '', name: engine.metadata.name ?? '' },
    field: 'spec.path',
    to: { kind: 'SecretEngine', namespace: owner.namespace, name: owner.name },
    use: `the owner of the mount ${path}/`,
  };
}

/**
 * A vaultRef-style role's (PostgresRole, MySQLRole) references into other namespaces: spec.databaseRef, and spec.databaseName
 * when it names a connection Leasehold manages for a database AppBinding (`k8s.<cluster>.<ns>.<name>`). Its
 * vaultRef and secretEngineRef are in its own namespace by schema; a secretEngineRef's references are the
 * SecretEngine's (secretEngineReferences).
 */
export function roleReferences(
  role: Pick<DatabaseRole, 'metadata' | 'spec'> & { kind?: string },
  cluster: string,
): Reference[] {
  const ns = role.metadata.namespace ?? '';
  const from = { kind: role.kind ?? 'PostgresRole', namespace: ns, name: role.metadata.name ?? '' };
  const use = 'the database whose Vault connection the role would use';
  if (role.spec.databaseRef) {
    return [
      {
        from,
        field: 'spec.databaseRef',
        to: { kind: 'AppBinding', namespace: role.spec.databaseRef.namespace || ns, name: role.spec.databaseRef.name },
        use,
      },
    ];
  }
  const owner = role.spec.databaseName ? connectionOwner(cluster, role.spec.databaseName) : undefined;
  return owner ? [{ from, field: 'spec.databaseName', to: { kind: 'AppBinding', ...owner }, use }] : [];
}

/** PostgresRole's name for roleReferences. */
export const postgresRoleReferences = roleReferences;

/** A Lookup over the caches every controller has. */
export function cacheLookup(caches: {
  appBindings: { get(namespace: string, name: string): AppBinding | undefined };
  secretEngines: { get(namespace: string, name: string): SecretEngine | undefined };
}): Lookup {
  return (kind, namespace, name) =>
    kind === 'AppBinding' ? caches.appBindings.get(namespace, name) : caches.secretEngines.get(namespace, name);
}
