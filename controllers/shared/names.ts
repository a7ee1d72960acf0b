// Names Leasehold gives things in Vault. One place, so the controllers, the plugin and the tests agree.
// KubeVault's scheme, kept so existing Vault policies written for KubeVault still match. And the limits of
// Kubernetes names and labels Leasehold derives from names people chose.
import crypto from 'node:crypto';
import { engineDatabase, type SecretEngine } from '../../api/index.ts';

/** Vault database role for a role of any kind: `k8s.<cluster>.<namespace>.<name>`. */
export function vaultRoleName(cluster: string, namespace: string, name: string): string {
  return `k8s.${cluster}.${namespace}.${name}`;
}

/** Vault database connection for a database AppBinding: `k8s.<cluster>.<dbNamespace>.<dbAppBinding>`. */
export function connectionName(cluster: string, dbNamespace: string, dbAppBinding: string): string {
  return `k8s.${cluster}.${dbNamespace}.${dbAppBinding}`;
}

/** Default mount path of a SecretEngine without spec.path: `k8s.<cluster>.<type>.<namespace>.<name>` (KubeVault's). */
export function defaultMountPath(cluster: string, namespace: string, name: string, type = 'postgres'): string {
  return `k8s.${cluster}.${type}.${namespace}.${name}`;
}

/** Where a SecretEngine is mounted: spec.path, else the default for its kind of database. */
export function engineMountPath(cluster: string, engine: Pick<SecretEngine, 'metadata' | 'spec'>): string {
  return (
    engine.spec.path ??
    defaultMountPath(cluster, engine.metadata.namespace ?? '', engine.metadata.name ?? '', engineDatabase(engine)?.type)
  );
}

/** The description Leasehold writes on mounts it enables; only mounts carrying it are ever unmounted. */
export function mountOwnerDescription(namespace: string, name: string): string {
  return `managed by leasehold for SecretEngine ${namespace}/${name}`;
}

/** The SecretEngine a mount's description names as its owner (the inverse of mountOwnerDescription), if any. */
export function mountOwnerFromDescription(
  description: string | undefined,
): { namespace: string; name: string } | undefined {
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

// ---- Kubernetes names and labels derived from user input ---------------------------------------------------

/** A label value's limit (Kubernetes: at most 63 characters, alphanumeric at both ends, `-_.` inside). */
export const MAX_LABEL_VALUE = 63;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** An object name's limit (DNS-1123 subdomain: Secrets, Roles, RoleBindings). */
export const MAX_OBJECT_NAME = 253;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kubernetes' cap on all of an object's annotations together (keys and values), in bytes. */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** Hex digits of the name's SHA-256 that stand in for what a shortened label value leaves out. */
const LABEL_HASH_CHARS = 10;

/**
 * A label value for any legal object name (up to 253 characters): the name itself when it fits (≤ 63
 * characters, which every DNS-1123 name of that length is), otherwise its first 52 characters, `-`, and the first
 * 10 hex digits of its SHA-256. Deterministic, so selecting by label works: select by `labelValue(name)`.
 */
export function labelValue(value: string): string {
  if (value.length <= MAX_LABEL_VALUE && LABEL_VALUE.test(value)) return value;
  const hash = crypto.createHash('sha256').update(value).digest('hex').slice(0, LABEL_HASH_CHARS);
  const keep = value.slice(0, MAX_LABEL_VALUE - LABEL_HASH_CHARS - 1).replace(/[^-A-Za-z0-9_.]/g, '-');
  // Must start alphanumeric; the hash makes the end alphanumeric.
  return /^[A-Za-z0-9]/.test(keep) ? `${keep}-${hash}` : hash;
}

/**
 * What the API server would refuse in an object's name, labels and annotations (empty: nothing): names are
 * DNS-1123 subdomains of at most 253 characters, label values at most 63 characters of `[A-Za-z0-9-_.]`
 * (alphanumeric at both ends), annotations at most 256 KiB together. Checked before Vault is asked for anything,
 * so a write that can only fail never costs a lease.
 */
export function metadataProblems(
  kind: string,
  m: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> },
): string[] {
  const problems: string[] = [];
  if (m.name.length > MAX_OBJECT_NAME)
    problems.push(
      `${kind} name ${m.name.slice(0, 40)}… is ${m.name.length} characters long (at most ${MAX_OBJECT_NAME})`,
    );
  else if (!DNS1123_SUBDOMAIN.test(m.name))
    problems.push(`${kind} name ${JSON.stringify(m.name)} is not a DNS-1123 subdomain`);
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    if (v.length > MAX_LABEL_VALUE)
      problems.push(`${kind} label ${k} is ${v.length} characters long (at most ${MAX_LABEL_VALUE})`);
    else if (!LABEL_VALUE.test(v)) problems.push(`${kind} label ${k} has the invalid value ${JSON.stringify(v)}`);
  }
  const bytes = Object.entries(m.annotations ?? {}).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v),
    0,
  );
  if (bytes > MAX_ANNOTATIONS_BYTES)
    problems.push(`${kind} annotations take ${bytes} bytes (at most ${MAX_ANNOTATIONS_BYTES})`);
  return problems;
}
