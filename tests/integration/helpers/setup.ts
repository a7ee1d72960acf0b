// Cluster and Vault set-up shared by the controller tests: CRDs installed, the operator's Vault policy and
// auth role, and the token role its issuer tokens come from.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../../../scripts/stack/env.ts';
import { vaultRequest } from './vault.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function kubectl(env: Env, args: string[], input?: string): string {
  return execFileSync(env.kubernetes.kubectl, [`--kubeconfig=${env.kubernetes.kubeconfig}`, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

export function installCrds(env: Env): void {
  kubectl(env, ['apply', '-f', path.join(repo, 'manifests/crds')]);
  kubectl(env, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
}

/** What the README tells a Vault admin to set up for Leasehold. */
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

export interface VaultSetup {
  /** Login token TTL of the operator's kubernetes auth role (short, to prove credentials outlive it). */
  loginTtl: string;
  loginMaxTtl: string;
  /** ServiceAccount the operator logs in as. */
  serviceAccount: { namespace: string; name: string };
}

export async function configureVaultForOperator(env: Env, s: VaultSetup): Promise<void> {
  await vaultRequest(env, 'PUT', 'sys/policies/acl/leasehold-operator', { policy: OPERATOR_POLICY });
  await vaultRequest(env, 'PUT', 'sys/policies/acl/leasehold-issuer', { policy: ISSUER_POLICY });
  await vaultRequest(env, 'POST', 'auth/token/roles/leasehold-issuer', {
    allowed_policies: ['leasehold-issuer'], orphan: true, token_period: '768h', renewable: true,
  });
  await vaultRequest(env, 'POST', 'auth/kubernetes/role/leasehold-operator', {
    bound_service_account_names: [s.serviceAccount.name], bound_service_account_namespaces: [s.serviceAccount.namespace],
    token_policies: ['leasehold-operator'], ttl: s.loginTtl, max_ttl: s.loginMaxTtl,
  });
}
