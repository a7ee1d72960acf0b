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

/** Prefix of every lease issued for a role (`<mount>/creds/<role>/`). */
export function leasePrefix(mount: string, role: string): string {
  return `${mount}/creds/${role}/`;
}
