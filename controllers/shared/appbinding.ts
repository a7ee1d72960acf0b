// Reading an AppBinding: where the service is, how to trust it, and (for a database) which admin login Vault
// should use. Pure functions over the AppBinding and its Secret; I/O stays in the reconcilers.
import type { AppBinding, SecretTransform } from '../../api/index.ts';
import { TerminalError } from '../../lib/runtime/index.ts';
import type { VaultEndpoint } from '../../lib/vault/transport.ts';

/** The address an AppBinding's clientConfig points at, as a URL (a MySQL DSN's tcp(host:port)/db as mysql://host:port/db). */
export function appBindingUrl(ab: AppBinding): URL {
  const cc = ab.spec.clientConfig;
  // The Go MySQL driver's form KubeDB writes for MySQL and MariaDB, tcp(host:port)/db, read as mysql://host:port/db.
  const dsn = cc.url ? /^tcp\(([^()@/]+)\)\/(.*)$/.exec(cc.url) : null;
  if (dsn) return new URL(`mysql://${dsn[1]}/${dsn[2]}`);
  if (cc.url) return new URL(cc.url);
  const svc = cc.service;
  if (!svc)
    throw new TerminalError(
      'InvalidAppBinding',
      `AppBinding ${ab.metadata.namespace}/${ab.metadata.name} has neither clientConfig.url nor clientConfig.service`,
    );
  const ns = svc.namespace ?? ab.metadata.namespace;
  const path = svc.path ? `/${svc.path.replace(/^\/+/, '')}` : '';
  const query = svc.query ? `?${svc.query.replace(/^\?/, '')}` : '';
  return new URL(`${svc.scheme.toLowerCase()}://${svc.name}.${ns}.svc:${svc.port}${path}${query}`);
}

function decodeCaBundle(b64: string | undefined): string | undefined {
  if (!b64) return undefined;
  const text = Buffer.from(b64, 'base64').toString('utf8');
  // Some users paste PEM without base64: accept both.
  return text.includes('-----BEGIN') ? text : b64.includes('-----BEGIN') ? b64 : text;
}

export function vaultEndpoint(ab: AppBinding): VaultEndpoint {
  const url = appBindingUrl(ab);
  return {
    address: `${url.protocol}//${url.host}`,
    caBundlePem: decodeCaBundle(ab.spec.clientConfig.caBundle),
    insecureSkipTLSVerify: ab.spec.clientConfig.insecureSkipTLSVerify,
    serverName: ab.spec.clientConfig.serverName,
  };
}

export type VaultAuthConfig =
  | { kind: 'token'; secretName: string }
  | { kind: 'kubernetes'; mountPath: string; role: string; serviceAccountName?: string };

/** How to log into the Vault an AppBinding describes: a token Secret, or the kubernetes auth method. */
export function vaultAuthConfig(
  ab: AppBinding,
  secret: { type?: string; data?: Record<string, string> } | undefined,
): VaultAuthConfig {
  const where = `AppBinding ${ab.metadata.namespace}/${ab.metadata.name}`;
  if (ab.spec.secret && secret && (secret.type === 'kubevault.com/token' || secret.data?.token !== undefined)) {
    return { kind: 'token', secretName: ab.spec.secret.name };
  }
  const p = ab.spec.parameters;
  if (p?.vaultRole) {
    return {
      kind: 'kubernetes',
      mountPath: (p.path || 'kubernetes').replace(/^\/+|\/+$/g, ''),
      role: p.vaultRole,
      serviceAccountName: p.kubernetes?.serviceAccountName ?? p.serviceAccountName,
    };
  }
  throw new TerminalError(
    'InvalidAppBinding',
    `${where} says no way to log into Vault: give spec.secret naming a Secret with a "token" key (or of type ` +
      'kubevault.com/token), or spec.parameters (VaultServerConfiguration) with vaultRole for the kubernetes auth method',
  );
}

export interface PostgresTarget {
  host: string;
  port: number;
  database: string;
  /** Query parameters (sslmode and the like), without the leading "?". */
  query: string;
  username: string;
  password: string;
}

/** Applies an AppBinding's secretTransforms, in order, to a Secret's decoded data. */
export function applySecretTransforms(
  data: Record<string, string>,
  transforms: readonly SecretTransform[] | undefined,
  otherSecret: (name: string) => Record<string, string> | undefined,
): Record<string, string> {
  const out = { ...data };
  for (const t of transforms ?? []) {
    if (t.renameKey) {
      if (t.renameKey.from in out) {
        out[t.renameKey.to] = out[t.renameKey.from]!;
        delete out[t.renameKey.from];
      }
    } else if (t.addKey) {
      out[t.addKey.key] = t.addKey.stringValue ?? Buffer.from(t.addKey.value ?? '', 'base64').toString('utf8');
    } else if (t.addKeysFrom) {
      Object.assign(out, otherSecret(t.addKeysFrom.secretRef.name) ?? {});
    } else if (t.removeKey) {
      delete out[t.removeKey.key];
    }
  }
  return out;
}

export function decodeSecretData(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

/** The PostgreSQL server and admin login of a database AppBinding. `credentials` is the transformed Secret data. */
export function postgresTarget(ab: AppBinding, credentials: Record<string, string>): PostgresTarget {
  const where = `AppBinding ${ab.metadata.namespace}/${ab.metadata.name}`;
  const url = appBindingUrl(ab);
  const username = credentials.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = credentials.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  if (!username || password === undefined) {
    throw new TerminalError(
      'InvalidDatabaseSecret',
      `${where}: its Secret must hold "username" and "password" keys (after secretTransforms)`,
    );
  }
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : 5432,
    database: decodeURIComponent(url.pathname.replace(/^\/+/, '')) || 'postgres',
    query: url.search.replace(/^\?/, ''),
    username,
    password,
  };
}

/** Vault's connection_url for a target: Vault fills `{{username}}`/`{{password}}` itself, so no secret is in it. */
export function vaultConnectionUrl(t: PostgresTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  const q = t.query ? `?${t.query}` : '';
  return `postgresql://{{username}}:{{password}}@${host}:${t.port}/${encodeURIComponent(t.database)}${q}`;
}
