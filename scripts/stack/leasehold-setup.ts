// Leasehold's side of the local stack: what an installer does on a real cluster and a real Vault (the CRDs, the
// operator's Vault policy and kubernetes auth role, the token role issuer tokens come from), and the KubeVault
// guide's samples pointed at the stack. Shared by `npm run demo` and the integration tests.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { Env } from './env.ts';
import { request } from './http.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SAMPLES_DIR = path.join(REPO_ROOT, 'manifests/samples');

// ---- kubectl ----------------------------------------------------------------------------------------------------

/** Runs the stack's kubectl as the admin user and returns its stdout; throws (with stderr) on a non-zero exit. */
export function kubectl(env: Env, args: string[], input?: string): string {
  return execFileSync(env.kubernetes.kubectl, [`--kubeconfig=${env.kubernetes.kubeconfig}`, ...args], {
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** PATH with the repository's kubectl plugin (bin/kubectl-vault) and its tools (tsx, node@24) first. */
export function pathWithPlugin(base = process.env.PATH ?? ''): string {
  return [path.join(REPO_ROOT, 'bin'), path.join(REPO_ROOT, 'node_modules/.bin'), base]
    .filter(Boolean)
    .join(path.delimiter);
}

/**
 * Runs the stack's kubectl without blocking the event loop (so Ctrl-C is handled at once), with the
 * `kubectl vault` plugin on PATH. Never throws for a non-zero exit: the caller reads `code`.
 */
export function kubectlAsync(
  env: Env,
  args: string[],
  opts: { input?: string; kubeconfig?: string; timeoutMs?: number } = {},
): Promise<KubectlRun> {
  return new Promise((resolve) => {
    const child = execFile(
      env.kubernetes.kubectl,
      [...args, `--kubeconfig=${opts.kubeconfig ?? env.kubernetes.kubeconfig}`],
      {
        encoding: 'utf8',
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 16 << 20,
        env: { ...process.env, PATH: pathWithPlugin(), KUBECONFIG: opts.kubeconfig ?? env.kubernetes.kubeconfig },
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        resolve({ code: typeof err.code === 'number' ? err.code : 1, stdout, stderr: stderr || err.message });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

const CRD_STEPS = [
  ['apply', '-f', path.join(REPO_ROOT, 'manifests/crds')],
  ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all'],
];

/** `kubectl apply -f manifests/crds` and wait until every CRD is Established. */
export function installCrds(env: Env): void {
  for (const args of CRD_STEPS) kubectl(env, args);
}

/** installCrds without blocking the event loop. */
export async function installCrdsAsync(env: Env): Promise<void> {
  for (const args of CRD_STEPS) {
    const r = await kubectlAsync(env, args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  }
}

// ---- Vault ------------------------------------------------------------------------------------------------------

export interface VaultAnswer {
  status: number;
  body: unknown;
}

/** A Vault HTTP call with the stack's root token (set-up and checks only; the operator never has it). */
export async function vaultRequest(
  env: Env,
  method: string,
  apiPath: string,
  body?: unknown,
  opts: { allowError?: boolean; token?: string } = {},
): Promise<VaultAnswer> {
  const res = await request({
    method,
    url: `${env.vault.addr}/v1/${apiPath}`,
    ca: env.vault.caCert,
    body,
    timeoutMs: 30_000,
    headers: { 'x-vault-token': opts.token ?? env.vault.rootToken },
  });
  const parsed = res.text ? res.json() : undefined;
  if (res.status >= 300 && !opts.allowError)
    throw new Error(`${method} ${apiPath}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return { status: res.status, body: parsed };
}

/** The policy of the operator's own Vault login (what the README tells a Vault admin to write). */
export const OPERATOR_POLICY = `
path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/mounts" { capabilities = ["read"] }
path "+/config/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "+/roles/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "+/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/leases/lookup/*" { capabilities = ["list", "sudo"] }
path "auth/token/create/leasehold-issuer" { capabilities = ["update"] }
`;

/** The issuer token only issues, renews and looks up credentials. */
export const ISSUER_POLICY = `
path "+/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
`;

/** The token role issuer tokens are created from: orphan (they outlive the login), periodic (renewed forever). */
export const ISSUER_TOKEN_ROLE = {
  name: 'leasehold-issuer',
  allowed_policies: ['leasehold-issuer'],
  orphan: true,
  token_period: '768h',
  renewable: true,
} as const;

export interface VaultSetup {
  /** Login token TTL of the operator's kubernetes auth role (the tests make it short, to prove credentials outlive it). */
  loginTtl: string;
  loginMaxTtl: string;
  /** ServiceAccount the operator logs in as. */
  serviceAccount: { namespace: string; name: string };
  /** Name of the kubernetes auth role: the Vault AppBinding's `spec.parameters.vaultRole`. Default leasehold-operator. */
  authRole?: string;
}

/** Policies, the issuer token role and the operator's kubernetes auth role. */
export async function configureVaultForOperator(env: Env, s: VaultSetup): Promise<void> {
  const { name: issuerRole, ...issuerRoleFields } = ISSUER_TOKEN_ROLE;
  await vaultRequest(env, 'PUT', 'sys/policies/acl/leasehold-operator', { policy: OPERATOR_POLICY });
  await vaultRequest(env, 'PUT', 'sys/policies/acl/leasehold-issuer', { policy: ISSUER_POLICY });
  await vaultRequest(env, 'POST', `auth/token/roles/${issuerRole}`, issuerRoleFields);
  await vaultRequest(env, 'POST', `auth/${env.vault.kubernetesAuthPath}/role/${s.authRole ?? 'leasehold-operator'}`, {
    bound_service_account_names: [s.serviceAccount.name],
    bound_service_account_namespaces: [s.serviceAccount.namespace],
    token_policies: ['leasehold-operator'],
    ttl: s.loginTtl,
    max_ttl: s.loginMaxTtl,
  });
}

// ---- The guide's samples ------------------------------------------------------------------------------------------

type Doc = Record<string, unknown>;

/** The documents of one file of manifests/samples/. */
export function sampleDocs(file: string): Doc[] {
  return YAML.parseAllDocuments(fs.readFileSync(path.join(SAMPLES_DIR, file), 'utf8'))
    .map((d) => d.toJS() as Doc)
    .filter(Boolean);
}

/** The guide's PostgresRole (samples/40-postgres-role.yaml: its statements, Vault and database) named `name`, with `spec` fields replaced. */
export function guideRole(name: string, spec: Doc = {}): Doc {
  const doc = sampleDocs('40-postgres-role.yaml')[0] as { metadata: Doc; spec: Doc };
  return { ...doc, metadata: { ...doc.metadata, name }, spec: { ...doc.spec, ...spec } };
}

export interface GuideOptions {
  /** Replaces the Vault AppBinding's `parameters.vaultRole` (the guide's is `vault-policy-controller`). */
  vaultRole?: string;
  /** Moves everything into this namespace (the guide's is `demo`). */
  namespace?: string;
  /** Puts this admin password in the database Secret instead of the real one (to test a wrong password). */
  dbPassword?: string;
}

/**
 * The guide's namespace and AppBindings (samples 00, 10 and 20) with only the addresses changed: the Vault
 * AppBinding points at the stack's Vault and CA, the database AppBinding at the stack's PostgreSQL, and the admin
 * Secret holds the stack's admin login. The SecretEngine, PostgresRole and request samples need no change.
 */
export function guideManifests(env: Env, opts: GuideOptions = {}): string {
  const docs = [
    ...sampleDocs('00-namespace.yaml'),
    ...sampleDocs('10-vault-appbinding.yaml'),
    ...sampleDocs('20-postgres-app.yaml'),
  ];
  for (const d of docs as Array<{
    kind: string;
    metadata: { name: string; namespace?: string };
    spec?: { clientConfig?: Doc; parameters?: Doc };
    data?: Record<string, string>;
  }>) {
    if (opts.namespace) {
      if (d.kind === 'Namespace') d.metadata.name = opts.namespace;
      else d.metadata.namespace = opts.namespace;
    }
    if (d.kind === 'AppBinding' && d.metadata.name === 'vault') {
      d.spec!.clientConfig = { url: env.vault.addr, caBundle: Buffer.from(env.vault.caCert).toString('base64') };
      if (opts.vaultRole) d.spec!.parameters = { ...d.spec!.parameters, vaultRole: opts.vaultRole };
    }
    if (d.kind === 'AppBinding' && d.metadata.name === 'postgres-app') {
      d.spec!.clientConfig = {
        url: `postgresql://${env.postgres.host}:${env.postgres.port}/${env.postgres.database}?sslmode=disable`,
        insecureSkipTLSVerify: true,
      };
    }
    if (d.kind === 'Secret')
      d.data = {
        username: Buffer.from(env.postgres.user).toString('base64'),
        password: Buffer.from(opts.dbPassword ?? env.postgres.password).toString('base64'),
      };
  }
  return docs.map((d) => YAML.stringify(d)).join('---\n');
}
