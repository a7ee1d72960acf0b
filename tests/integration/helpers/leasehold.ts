// Test-side helpers for the controller suites: the guide's manifests pointed at the stack, reading custom
// objects, deciding requests, reading issued credentials and logging in with them.
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import type { Env } from '../../../scripts/stack/env.ts';

export const GROUP = 'engine.kubevault.com';
export const VERSION = 'v1alpha1';

export function sample(file: string): Record<string, unknown>[] {
  return YAML.parseAllDocuments(fs.readFileSync(path.join('manifests/samples', file), 'utf8')).map((d) => d.toJS()).filter(Boolean);
}

type Doc = { kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> & { clientConfig?: Record<string, unknown>; parameters?: Record<string, unknown> }; data?: Record<string, string> };

/** The guide's namespace, AppBindings and admin Secret, with addresses (and the admin password) of the stack. */
export function guideBindings(env: Env, opts: { namespace?: string; dbPassword?: string } = {}): string {
  const docs = [...sample('00-namespace.yaml'), ...sample('10-vault-appbinding.yaml'), ...sample('20-postgres-app.yaml')] as Doc[];
  for (const d of docs) {
    if (opts.namespace) {
      if (d.kind === 'Namespace') d.metadata.name = opts.namespace;
      else d.metadata.namespace = opts.namespace;
    }
    if (d.kind === 'AppBinding' && d.metadata.name === 'vault') {
      d.spec!.clientConfig = { url: env.vault.addr, caBundle: Buffer.from(env.vault.caCert).toString('base64') };
      d.spec!.parameters!.vaultRole = 'leasehold-operator';
    }
    if (d.kind === 'AppBinding' && d.metadata.name === 'postgres-app') {
      d.spec!.clientConfig = { url: `postgresql://127.0.0.1:${env.postgres.port}/postgres?sslmode=disable`, insecureSkipTLSVerify: true };
    }
    if (d.kind === 'Secret') {
      d.data = { username: Buffer.from(env.postgres.user).toString('base64'), password: Buffer.from(opts.dbPassword ?? env.postgres.password).toString('base64') };
    }
  }
  return docs.map((d) => YAML.stringify(d)).join('---\n');
}

/** A sample manifest moved to another namespace (and optionally renamed). */
export function sampleIn(file: string, namespace: string, rename?: string): string {
  const docs = sample(file) as Doc[];
  for (const d of docs) {
    d.metadata.namespace = namespace;
    if (rename) d.metadata.name = rename;
    const spec = d.spec as Record<string, { namespace?: string }> | undefined;
    for (const ref of ['databaseRef', 'roleRef']) if (spec?.[ref]?.namespace) spec[ref]!.namespace = namespace;
    const pgRef = (spec as { postgres?: { databaseRef?: { namespace?: string } } } | undefined)?.postgres?.databaseRef;
    if (pgRef?.namespace) pgRef.namespace = namespace;
    const subjects = (spec as { subjects?: { namespace?: string }[] } | undefined)?.subjects;
    for (const s of subjects ?? []) if (s.namespace) s.namespace = namespace;
  }
  return docs.map((d) => YAML.stringify(d)).join('---\n');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- custom objects are read for assertions only
export type Cr = any;

export async function getCr(env: Env, plural: string, namespace: string, name: string): Promise<Cr | undefined> {
  const group = plural === 'appbindings' ? 'appcatalog.appscode.com' : GROUP;
  try {
    return await env.kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group, version: VERSION, namespace, plural, name });
  } catch {
    return undefined;
  }
}

/** Writes a decision the way a person's tool does: a condition through the status subresource. */
export async function decide(env: Env, namespace: string, name: string, type: 'Approved' | 'Denied'): Promise<void> {
  await env.kubeConfig.makeApiClient(CustomObjectsApi).patchNamespacedCustomObjectStatus({
    group: GROUP, version: VERSION, namespace, plural: 'databaseaccessrequests', name,
    body: { status: { conditions: [{ type, status: 'True', reason: type === 'Approved' ? 'KubectlApprove' : 'KubectlDeny', message: `${type} by the test`, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z/, 'Z') }] } },
  }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

export async function credentialsOf(env: Env, namespace: string, secretName: string): Promise<{ username: string; password: string }> {
  const secret = await env.kubeConfig.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name: secretName });
  return {
    username: Buffer.from(secret.data!.username!, 'base64').toString(),
    password: Buffer.from(secret.data!.password!, 'base64').toString(),
  };
}

export async function login(env: Env, user: string, password: string, sql = 'SELECT 1 AS one'): Promise<pg.QueryResult> {
  const c = new pg.Client({ host: '127.0.0.1', port: env.postgres.port, database: 'postgres', user, password });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}
