// Whether a credential Secret still holds what Leasehold wrote, seen from the watch cache, which keeps no Secret
// data. Leasehold records a digest of the data it writes in an annotation of the Secret (with a random salt); the
// cache transform computes the same digest of the data the API server sends and keeps only the verdict, never the
// data and never the digest. Two digests are kept: one of the credential itself (username and password), which
// only a rotation can restore (the operator never keeps the password), and one of the whole data, which a
// re-render from the credential restores (templated keys edited or removed, keys added).
import crypto from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { Annotations } from '../../api/index.ts';
import { stripSecretData } from '../../lib/runtime/index.ts';

/** The Secret annotation with the digest of the data Leasehold last wrote: `v1.<salt>.<credential>.<data>`. */
export const DATA_DIGEST_ANNOTATION = Annotations.dataDigest;

/** The keys that are the credential itself. */
export const CREDENTIAL_KEYS = ['username', 'password'] as const;

/**
 * intact: the data is what Leasehold wrote. layout: the credential is, but other keys were changed, added or
 * removed (a re-render repairs it). credential: the username or password was changed or removed (a rotation
 * replaces it). Absent: no digest to compare with (a Secret written before digests were recorded, or not ours).
 */
export type SecretIntegrity = 'intact' | 'layout' | 'credential';

/** A Secret as the watch cache keeps it: metadata, type, and the verdict on its data. */
export type CachedSecret = KubernetesObject & { type?: string; integrity?: SecretIntegrity };

const VERSION = 'v1';
const DIGEST_HEX = 32; // 128 bits of HMAC-SHA256

/** HMAC-SHA256 (keyed by the salt) over the sorted keys given, each key and value length-prefixed; 32 hex digits. */
function digestOf(salt: string, entries: Array<[string, Buffer | undefined]>): string {
  const h = crypto.createHmac('sha256', salt);
  for (const [k, v] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    h.update(`${Buffer.byteLength(k)}:${k}`);
    h.update(v === undefined ? '-' : `${v.length}:`);
    if (v) h.update(v);
  }
  return h.digest('hex').slice(0, DIGEST_HEX);
}

/** Data as raw bytes, from a Secret's base64 `data` (what the API server sends). */
export function decodeData(data: Record<string, string> | undefined): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
}

/** Data as raw bytes, from the strings Leasehold renders. */
export function encodeData(data: Record<string, string>): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8')]));
}

/** The annotation value recording `data` (raw bytes per key); `salt` defaults to 8 random bytes. */
export function dataDigestAnnotation(
  data: Record<string, Buffer>,
  salt = crypto.randomBytes(8).toString('hex'),
): string {
  const credential = digestOf(
    salt,
    CREDENTIAL_KEYS.map((k) => [k, data[k]]),
  );
  const all = digestOf(salt, Object.entries(data));
  return `${VERSION}.${salt}.${credential}.${all}`;
}

/** The verdict on `data` (raw bytes per key) against the recorded annotation; undefined without a usable one. */
export function secretIntegrity(
  annotation: string | undefined,
  data: Record<string, Buffer>,
): SecretIntegrity | undefined {
  const parts = annotation?.split('.') ?? [];
  if (parts.length !== 4 || parts[0] !== VERSION) return undefined;
  const [, salt, credential, all] = parts as [string, string, string, string];
  if (
    digestOf(
      salt,
      CREDENTIAL_KEYS.map((k) => [k, data[k]]),
    ) !== credential
  )
    return 'credential';
  return digestOf(salt, Object.entries(data)) === all ? 'intact' : 'layout';
}

/**
 * The Secrets cache's transform: metadata and type only, as stripSecretData keeps them, plus the verdict on the
 * data for Secrets that carry a digest annotation. The data itself is dropped here and never cached.
 */
export function secretCacheTransform(obj: KubernetesObject): CachedSecret {
  const annotation = obj.metadata?.annotations?.[DATA_DIGEST_ANNOTATION];
  const integrity = annotation
    ? secretIntegrity(annotation, decodeData((obj as { data?: Record<string, string> }).data))
    : undefined;
  const stripped: CachedSecret = stripSecretData(obj);
  if (integrity) stripped.integrity = integrity;
  return stripped;
}
