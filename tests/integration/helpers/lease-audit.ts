// The lease audit every integration file ends with: Vault's own list of database leases against what the
// DatabaseAccessRequests record. Exactly-once issuance and truthful revocation both come down to these two sets
// being equal once the operator has settled:
//   - a lease Vault holds that no request records is a login nobody will ever revoke;
//   - a request that records a live lease Vault doesn't have claims access that doesn't exist; one that says its
//     access ended (Revoked, Expired) while Vault still holds the lease claims an ending that didn't happen.
import { CustomObjectsApi } from '@kubernetes/client-node';
import type { Env } from '../../../scripts/stack/env.ts';
import { vaultRequest } from '../../../scripts/stack/leasehold-setup.ts';
import { GROUP, VERSION, type Cr } from './leasehold.ts';

export interface LeaseAudit {
  /** Leases under a database mount's `creds/` that no request records. */
  unrecorded: string[];
  /** Leases a request records as live (its current lease, or a rotated-out one) that Vault doesn't have. */
  missing: string[];
  /** Leases of requests whose phase says access ended (Revoked, Expired) that Vault still holds. */
  endedButLive: string[];
}

const ENDED = new Set(['Revoked', 'Expired', 'Denied', 'Failed']);

/** Lease ids under `prefix` (Vault `LIST sys/leases/lookup/<prefix>`: keys ending in "/" are folders). Needs sudo. */
async function listLeases(env: Env, prefix: string): Promise<string[]> {
  const res = await vaultRequest(env, 'LIST', `sys/leases/lookup/${prefix}`, undefined, { allowError: true });
  if (res.status === 404) return [];
  if (res.status >= 300) throw new Error(`LIST sys/leases/lookup/${prefix}: HTTP ${res.status}`);
  const keys = (res.body as { data?: { keys?: string[] } })?.data?.keys ?? [];
  const out: string[] = [];
  for (const k of keys) {
    if (k.endsWith('/')) out.push(...(await listLeases(env, `${prefix}${k}`)));
    else out.push(`${prefix}${k}`);
  }
  return out;
}

/** Every lease Vault holds under the `creds/` of each `database` mount (root token). */
export async function vaultDatabaseLeases(env: Env): Promise<string[]> {
  const mounts = await vaultRequest(env, 'GET', 'sys/mounts');
  const data = (mounts.body as { data?: Record<string, { type?: string }> })?.data ?? {};
  const out: string[] = [];
  for (const [path, m] of Object.entries(data)) {
    if (m?.type === 'database') out.push(...(await listLeases(env, `${path}creds/`)));
  }
  return out;
}

/** Compares Vault's database leases with what every DatabaseAccessRequest in the cluster records. */
export async function auditLeases(env: Env): Promise<LeaseAudit> {
  const api = env.kubeConfig.makeApiClient(CustomObjectsApi);
  // A file that never installs Leasehold's CRDs has no requests: its Vault must then hold no database lease either.
  const list = (await api
    .listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'databaseaccessrequests' })
    .catch((err: { code?: number }) => {
      if (err.code === 404) return { items: [] };
      throw err;
    })) as { items: Cr[] };
  const live = new Set<string>();
  const ended = new Set<string>();
  const recorded = new Set<string>();
  for (const dar of list.items) {
    const ids: string[] = [
      dar.status?.lease?.id,
      ...(dar.status?.previousLeases ?? []).map((p: { id: string }) => p.id),
    ].filter(Boolean);
    for (const id of ids) recorded.add(id);
    // A request being deleted or one that ended may still record its last lease: only live claims are checked.
    if (dar.metadata?.deletionTimestamp) continue;
    for (const id of ids) (ENDED.has(dar.status?.phase) ? ended : live).add(id);
  }
  const inVault = new Set(await vaultDatabaseLeases(env));
  return {
    unrecorded: [...inVault].filter((id) => !recorded.has(id)).sort(),
    missing: [...live].filter((id) => !inVault.has(id)).sort(),
    endedButLive: [...ended].filter((id) => inVault.has(id)).sort(),
  };
}

export function auditIsClean(a: LeaseAudit): boolean {
  return a.unrecorded.length === 0 && a.missing.length === 0 && a.endedButLive.length === 0;
}

/** What an audit found, one line per kind of finding (lease ids are not credentials). */
export function describeAudit(a: LeaseAudit): string {
  const parts: string[] = [];
  if (a.unrecorded.length)
    parts.push(`${a.unrecorded.length} lease(s) in Vault that no request records: ${a.unrecorded.join(', ')}`);
  if (a.missing.length)
    parts.push(`${a.missing.length} lease(s) requests record as live that Vault doesn't have: ${a.missing.join(', ')}`);
  if (a.endedButLive.length)
    parts.push(
      `${a.endedButLive.length} lease(s) of requests that say access ended, still live in Vault: ${a.endedButLive.join(', ')}`,
    );
  return parts.join('; ') || 'clean';
}
