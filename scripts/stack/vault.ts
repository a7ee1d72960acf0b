// A real Vault/OpenBao server with persistent file storage, TLS from the stack's CA, initialised with a single
// unseal key and unsealed by the stack. The unseal key and root token live in <dir>/vault/init.json so that a
// restarted server is unsealed again with its mounts, roles and leases intact.
import fs from 'node:fs';
import path from 'node:path';
import type { Binaries } from './binaries.ts';
import { request, waitFor } from './http.ts';
import { assertRunning } from './kube.ts';
import type { Pki } from './pki.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';

export interface VaultServer {
  addr: string;
  port: number;
  flavor: 'openbao' | 'vault';
  caCert: string;
  rootToken: string;
  unsealKey: string;
  process: ManagedProcess;
}

export async function startVault(
  dir: string,
  bins: Binaries,
  pki: Pki,
  onCreated: (v: VaultServer) => void = () => undefined,
): Promise<VaultServer> {
  const vaultDir = path.join(dir, 'vault');
  fs.mkdirSync(path.join(vaultDir, 'data'), { recursive: true });
  const port = await freePort();
  const addr = `https://127.0.0.1:${port}`;
  const config = path.join(vaultDir, 'config.hcl');
  fs.writeFileSync(
    config,
    [
      `storage "file" { path = ${JSON.stringify(path.join(vaultDir, 'data'))} }`,
      `listener "tcp" {`,
      `  address = "127.0.0.1:${port}"`,
      `  tls_cert_file = ${JSON.stringify(pki.vaultCert)}`,
      `  tls_key_file = ${JSON.stringify(pki.vaultKey)}`,
      `}`,
      `api_addr = "${addr}"`,
      `disable_mlock = true`,
      `ui = false`,
      `default_lease_ttl = "768h"`,
      `max_lease_ttl = "8760h"`,
      '',
    ].join('\n'),
  );
  const proc = new ManagedProcess({
    name: bins.vaultFlavor,
    command: bins.vaultServer,
    args: ['server', `-config=${config}`, '-log-level=warn'],
    env: { VAULT_DISABLE_MLOCK: 'true', BAO_DISABLE_MLOCK: 'true', SKIP_SETCAP: 'true' },
    logFile: path.join(dir, 'logs', `${bins.vaultFlavor}.log`),
  });
  const server: VaultServer = {
    addr,
    port,
    flavor: bins.vaultFlavor,
    caCert: fs.readFileSync(pki.caCert, 'utf8'),
    rootToken: '',
    unsealKey: '',
    process: proc,
  };
  onCreated(server);
  proc.start();
  await waitForListening(server);
  const init = await request({
    method: 'PUT',
    url: `${addr}/v1/sys/init`,
    ca: server.caCert,
    body: { secret_shares: 1, secret_threshold: 1 },
  });
  if (init.status !== 200) throw new Error(`initialising ${server.flavor} failed: HTTP ${init.status} ${init.text}`);
  const { keys_base64, root_token } = init.json<{ keys_base64: string[]; root_token: string }>();
  server.unsealKey = keys_base64[0]!;
  server.rootToken = root_token;
  fs.writeFileSync(
    path.join(vaultDir, 'init.json'),
    JSON.stringify({ unsealKey: server.unsealKey, rootToken: root_token }),
    { mode: 0o600 },
  );
  await unseal(server);
  return server;
}

async function waitForListening(server: VaultServer): Promise<void> {
  await waitFor(
    `${server.flavor} to answer sys/health`,
    async () => {
      assertRunning(server.process);
      const res = await request({ url: `${server.addr}/v1/sys/health`, ca: server.caCert });
      return res.status > 0;
    },
    60_000,
    100,
  );
}

export async function unseal(server: VaultServer): Promise<void> {
  const res = await request({
    method: 'PUT',
    url: `${server.addr}/v1/sys/unseal`,
    ca: server.caCert,
    body: { key: server.unsealKey },
  });
  if (res.status !== 200) throw new Error(`unsealing ${server.flavor} failed: HTTP ${res.status} ${res.text}`);
  // sys/health answers 200 only when initialised, unsealed and active.
  await waitFor(
    `${server.flavor} to become active`,
    async () => {
      const health = await request({ url: `${server.addr}/v1/sys/health`, ca: server.caCert });
      return health.status === 200;
    },
    60_000,
    100,
  );
}

export async function restartVaultProcess(server: VaultServer): Promise<void> {
  server.process.start();
  await waitForListening(server);
  await unseal(server);
}

/** Calls the Vault HTTP API with the root token; throws with Vault's error text on a non-2xx answer. */
export async function vaultApi(server: VaultServer, method: string, apiPath: string, body?: unknown): Promise<unknown> {
  const res = await request({
    method,
    url: `${server.addr}/v1/${apiPath}`,
    ca: server.caCert,
    body,
    headers: { 'x-vault-token': server.rootToken },
    timeoutMs: 30_000,
  });
  if (res.status >= 300) throw new Error(`${method} ${apiPath}: HTTP ${res.status} ${res.text.slice(0, 500)}`);
  return res.text ? res.json() : undefined;
}
