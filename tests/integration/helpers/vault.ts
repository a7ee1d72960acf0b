// Direct Vault/OpenBao HTTP calls with the root token, for test set-up and assertions.
import { request } from '../../../scripts/stack/http.ts';
import type { Env } from '../../../scripts/stack/env.ts';

export interface VaultAnswer {
  status: number;
  body: unknown;
}

export async function vaultRequest(env: Env, method: string, path: string, body?: unknown, opts: { allowError?: boolean; token?: string } = {}): Promise<VaultAnswer> {
  const res = await request({
    method, url: `${env.vault.addr}/v1/${path}`, ca: env.vault.caCert, body, timeoutMs: 30_000,
    headers: { 'x-vault-token': opts.token ?? env.vault.rootToken },
  });
  const parsed = res.text ? res.json() : undefined;
  if (res.status >= 300 && !opts.allowError) throw new Error(`${method} ${path}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return { status: res.status, body: parsed };
}
