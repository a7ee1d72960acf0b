// Names Leasehold gives things in Vault. One place, so the controllers, the plugin and the tests agree.
// KubeVault's scheme, kept so existing Vault policies written for KubeVault still match.

/** Vault database role for a PostgresRole: `k8s.<cluster>.<namespace>.<name>`. */
export function vaultRoleName(cluster: string, namespace: string, name: string): string {
  return `k8s.${cluster}.${namespace}.${name}`;
}

/** Vault database connection for a database AppBinding: `k8s.<cluster>.<dbNamespace>.<dbAppBinding>`. */
export function connectionName(cluster: string, dbNamespace: string, dbAppBinding: string): string {
  return `k8s.${cluster}.${dbNamespace}.${dbAppBinding}`;
}

/** Default mount path of a SecretEngine without spec.path. */
export function defaultMountPath(cluster: string, namespace: string, name: string): string {
  return `k8s.${cluster}.postgres.${namespace}.${name}`;
}

/** The description Leasehold writes on mounts it enables; only mounts carrying it are ever unmounted. */
export function mountOwnerDescription(namespace: string, name: string): string {
  return `managed by leasehold for SecretEngine ${namespace}/${name}`;
}

/** The SecretEngine a mount's description names as its owner (the inverse of mountOwnerDescription), if any. */
export function mountOwnerFromDescription(description: string | undefined): { namespace: string; name: string } | undefined {
  const m = /^managed by leasehold for SecretEngine ([a-z0-9-]+)\/(\S+)$/.exec(description ?? '');
  return m ? { namespace: m[1]!, name: m[2]! } : undefined;
}

/**
 * The database AppBinding a connection name was made for (the inverse of connectionName), when the name has
 * this cluster's form `k8s.<cluster>.<dbNamespace>.<dbAppBinding>`; namespaces have no dots, names may.
 */
export function connectionOwner(cluster: string, connection: string): { namespace: string; name: string } | undefined {
  const prefix = `k8s.${cluster}.`;
  if (!connection.startsWith(prefix)) return undefined;
  const rest = connection.slice(prefix.length);
  const dot = rest.indexOf('.');
  if (dot <= 0 || dot === rest.length - 1) return undefined;
  return { namespace: rest.slice(0, dot), name: rest.slice(dot + 1) };
}

/** Prefix of every lease issued for a role (`<mount>/creds/<role>/`). */
export function leasePrefix(mount: string, role: string): string {
  return `${mount}/creds/${role}/`;
}
