// Test-side helpers for the controller suites: the guide's manifests pointed at the stack, reading custom
// objects, deciding requests, reading issued credentials and logging in with them.
import type { ExecutionContext } from 'ava';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import pg from 'pg';
import YAML from 'yaml';
import type { Env } from '../../../scripts/stack/env.ts';
import {
  configureVaultForOperator,
  guideManifests,
  installCrds,
  kubectl,
  sampleDocs,
} from '../../../scripts/stack/leasehold-setup.ts';
import { eventually } from './stack.ts';

const kubectlApply = (env: Env, yaml: string) => kubectl(env, ['apply', '-f', '-'], yaml);

export const GROUP = 'engine.kubevault.com';
export const VERSION = 'v1alpha1';

export const sample = sampleDocs;

type Doc = { kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> };

/** The guide's namespace, AppBindings and admin Secret pointed at the stack, with the operator's Vault role. */
export function guideBindings(env: Env, opts: { namespace?: string; dbPassword?: string } = {}): string {
  return guideManifests(env, { ...opts, vaultRole: 'leasehold-operator' });
}

/** A sample manifest moved to another namespace (and optionally renamed). */
export function sampleIn(file: string, namespace: string, rename?: string): string {
  const docs = sample(file) as unknown as Doc[];
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
    return await env.kubeConfig
      .makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({ group, version: VERSION, namespace, plural, name });
  } catch {
    return undefined;
  }
}

/** Writes a decision the way a person's tool does: a condition through the status subresource. */
export async function decide(env: Env, namespace: string, name: string, type: 'Approved' | 'Denied'): Promise<void> {
  await env.kubeConfig.makeApiClient(CustomObjectsApi).patchNamespacedCustomObjectStatus(
    {
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'databaseaccessrequests',
      name,
      body: {
        status: {
          conditions: [
            {
              type,
              status: 'True',
              reason: type === 'Approved' ? 'KubectlApprove' : 'KubectlDeny',
              message: `${type} by the test`,
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z/, 'Z'),
            },
          ],
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

export async function credentialsOf(
  env: Env,
  namespace: string,
  secretName: string,
): Promise<{ username: string; password: string }> {
  const secret = await env.kubeConfig.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name: secretName });
  return {
    username: Buffer.from(secret.data!.username!, 'base64').toString(),
    password: Buffer.from(secret.data!.password!, 'base64').toString(),
  };
}

export async function login(
  env: Env,
  user: string,
  password: string,
  sql = 'SELECT 1 AS one',
): Promise<pg.QueryResult> {
  const c = new pg.Client({ host: '127.0.0.1', port: env.postgres.port, database: 'postgres', user, password });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * Creates a DatabaseAccessRequest `name` in `namespace` for the PostgresRole `role` there (subject: the
 * ServiceAccount demo-sa), approves it, and waits for its first recorded lease (`status.lease.id`, issuance
 * completed). `spec` adds to or overrides the request's spec.
 */
export async function approvedRequest(
  t: ExecutionContext<unknown>,
  env: Env,
  r: { namespace: string; name: string; role: string; spec?: Record<string, unknown> },
): Promise<Cr> {
  const { namespace, name, role } = r;
  kubectlApply(
    env,
    YAML.stringify({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'DatabaseAccessRequest',
      metadata: { name, namespace },
      spec: {
        roleRef: { kind: 'PostgresRole', name: role, namespace },
        subjects: [{ kind: 'ServiceAccount', name: 'demo-sa', namespace }],
        ...r.spec,
      },
    }),
  );
  await eventually(
    t,
    `${name} waiting for approval`,
    async () => (await getCr(env, 'databaseaccessrequests', namespace, name))?.status?.phase === 'WaitingForApproval',
    30_000,
  );
  await decide(env, namespace, name, 'Approved');
  return eventually(
    t,
    `${name}: a lease recorded`,
    async () => {
      const o = await getCr(env, 'databaseaccessrequests', namespace, name);
      return o?.status?.lease?.id && o.status.issuance?.completed ? o : undefined;
    },
    60_000,
  );
}

/** Whether `user`/`password` log into the stack's PostgreSQL (`login` succeeding); missing values never do. */
export async function loginWorks(env: Env, user: string | undefined, password: string | undefined): Promise<boolean> {
  if (!user || !password) return false;
  return login(env, user, password).then(
    () => true,
    () => false,
  );
}

/**
 * The guide's ground on the stack, the operator not started: Leasehold's CRDs, namespace leasehold-system, the
 * guide's AppBindings in demo (guideBindings), ServiceAccounts demo/vault and demo/demo-sa, and Vault set up for an
 * operator logging in as demo/vault (login TTL 10m, max 1h).
 */
export async function prepareGuide(env: Env): Promise<void> {
  installCrds(env);
  kubectl(env, ['create', 'namespace', 'leasehold-system']);
  kubectl(env, ['apply', '-f', '-'], guideBindings(env));
  kubectl(env, ['-n', 'demo', 'create', 'serviceaccount', 'vault']);
  kubectl(env, ['-n', 'demo', 'create', 'serviceaccount', 'demo-sa']);
  await configureVaultForOperator(env, {
    loginTtl: '10m',
    loginMaxTtl: '1h',
    serviceAccount: { namespace: 'demo', name: 'vault' },
  });
}
