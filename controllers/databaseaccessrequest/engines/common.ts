// What every engine does alike, whatever the database: find the role in its kind's cache, resolve where it lives
// in Vault, check its references, and find the database AppBinding behind it (through its SecretEngine's
// spec.<type>.databaseRef, or a 2021-style role's own databaseRef). An engine file adds its address and variables.
import { engineDatabase, type DatabaseRole, type RoleKind } from '../../../api/index.ts';
import { roleKindInfo } from '../../shared/role-kinds.ts';
import { resolveRoleTarget, roleReferenceRefusal } from '../../shared/role-target.ts';
import type { DatabaseEngine } from '../engine.ts';

type RoleLookup = Pick<DatabaseEngine, 'roleKind' | 'role' | 'target' | 'referenceRefusal' | 'databaseAppBinding'>;

const asRole = (role: unknown) => role as DatabaseRole;

/** The role-facing half of an engine for `kind`. */
export function roleLookup(kind: RoleKind): RoleLookup {
  const info = roleKindInfo(kind)!;
  return {
    roleKind: kind,
    role: (caches, namespace, name) => info.cache(caches).get(namespace, name),
    target: (role, caches, cluster) => resolveRoleTarget(asRole(role), caches, cluster),
    referenceRefusal: (role, caches, cluster) => roleReferenceRefusal(asRole(role), caches, cluster),
    databaseAppBinding(role, caches) {
      const r = asRole(role);
      const ns = r.metadata.namespace ?? '';
      let ref: { name: string; namespace?: string } | undefined;
      if (r.spec.secretEngineRef) {
        const engine = caches.secretEngines.get(ns, r.spec.secretEngineRef.name);
        if (!engine) return { why: `SecretEngine ${ns}/${r.spec.secretEngineRef.name} does not exist` };
        ref = engineDatabase(engine)?.config.databaseRef;
        if (!ref) return { why: `SecretEngine ${ns}/${r.spec.secretEngineRef.name} names no database` };
      } else {
        ref = r.spec.databaseRef;
      }
      if (!ref)
        return {
          why: `${kind} ${ns}/${r.metadata.name} names a Vault connection (databaseName), not a database AppBinding`,
        };
      const abNs = ref.namespace ?? ns;
      const appBinding = caches.appBindings.get(abNs, ref.name);
      return appBinding
        ? { appBinding, why: '' }
        : { why: `the database AppBinding ${abNs}/${ref.name} does not exist` };
    },
  };
}

/** Percent-encoding for the user, password and database parts of a URI. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s);
}

/** A host as a URI writes it: an IPv6 address in brackets. */
export function uriHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The credential variables every engine has: the login as is, and percent-encoded for a URI. */
export function uriCredential(cred: { username: string; password: string }): Record<string, string> {
  return {
    username: cred.username,
    password: cred.password,
    urlUser: uriEncode(cred.username),
    urlPassword: uriEncode(cred.password),
  };
}
