// The one way to Vault: a call is cancelled by its caller's signal (the HTTP request itself is closed, not just
// abandoned), reuses its endpoint's connection, and a request that gets no answer in time is Unreachable.
import test from 'ava';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createPki } from '../../../scripts/stack/pki.ts';
import { HttpVaultClient } from '../../../lib/vault/http-client.ts';
import { VaultRequestError } from '../../../lib/vault/errors.ts';
import { VaultTransport, type VaultEndpoint } from '../../../lib/vault/transport.ts';

/** A local HTTP server standing in for Vault: `handle` answers (or not); resolves its endpoint and a closer. */
async function fakeVault(
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ endpoint: VaultEndpoint; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = http.createServer(handle);
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: { address: `http://127.0.0.1:${port}` },
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test("aborting the caller's signal cancels the HTTP request, and the call rejects with the signal's reason", async (t) => {
  let arrived!: () => void;
  const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
  let closed!: () => void;
  const requestClosed = new Promise<void>((resolve) => (closed = resolve));
  // Vault that never answers: only the abort can end the call.
  const vault = await fakeVault((req, res) => {
    res.on('close', closed);
    arrived();
  });
  t.teardown(vault.close);
  const client = new HttpVaultClient(new VaultTransport(vault.endpoint), async () => 'a-token');
  const abort = new AbortController();
  const call = client.issueCredential('db', 'role', { signal: abort.signal });
  await requestArrived;
  const reason = new Error('reconcile cancelled');
  abort.abort(reason);
  t.is(await t.throwsAsync(call), reason);
  await requestClosed;
  t.pass('the server saw the request closed');
});

test('a signal aborted before the call sends nothing', async (t) => {
  let requests = 0;
  const vault = await fakeVault((_req, res) => {
    requests++;
    res.end('{}');
  });
  t.teardown(vault.close);
  const client = new HttpVaultClient(new VaultTransport(vault.endpoint), async () => 'a-token');
  const abort = new AbortController();
  abort.abort(new Error('shutting down'));
  await t.throwsAsync(client.revokeLease('db/creds/role/abc', { signal: abort.signal }), { message: 'shutting down' });
  t.is(requests, 0);
});

test('calls to one Vault reuse its keep-alive connections, and carry the token and the JSON body', async (t) => {
  const seen: Array<{ method?: string; url?: string; token?: string | string[]; body: string }> = [];
  const vault = await fakeVault((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, token: req.headers['x-vault-token'], body });
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ lease_id: 'db/creds/role/abc', lease_duration: 600, renewable: true }));
    });
  });
  t.teardown(vault.close);
  const client = new HttpVaultClient(new VaultTransport(vault.endpoint), async () => 'a-token');
  // undici may open a spare connection while it checks that the first one is still good for reuse; after that,
  // calls one after another open none.
  await client.renewLease('db/creds/role/abc', 600);
  await client.renewLease('db/creds/role/abc', 600);
  const warm = vault.connections();
  for (let i = 0; i < 4; i++) await client.renewLease('db/creds/role/abc', 600);
  t.is(vault.connections(), warm);
  t.true(warm <= 2);
  t.deepEqual(seen[0], {
    method: 'POST',
    url: '/v1/sys/leases/renew',
    token: 'a-token',
    body: JSON.stringify({ lease_id: 'db/creds/role/abc', increment: 600 }),
  });
});

test('a request Vault does not answer in time is Unreachable, "request timed out"', async (t) => {
  const vault = await fakeVault(() => undefined);
  t.teardown(vault.close);
  const client = new HttpVaultClient(new VaultTransport({ ...vault.endpoint, timeoutMs: 50 }), async () => 'a-token');
  const err = await t.throwsAsync(client.lookupLease('db/creds/role/abc'), { instanceOf: VaultRequestError });
  t.is(err.kind, 'Unreachable');
  t.regex(err.message, /^looking up a lease: request timed out/);
});

test("a listing is a GET with list=true, and an error answer keeps Vault's words but no token", async (t) => {
  const urls: string[] = [];
  const vault = await fakeVault((req, res) => {
    urls.push(`${req.method} ${req.url}`);
    res.statusCode = 403;
    res.end(JSON.stringify({ errors: ['permission denied'] }));
  });
  t.teardown(vault.close);
  const client = new HttpVaultClient(new VaultTransport(vault.endpoint), async () => 'hvs.AAAAAAAAAAAAAAAAAAAAAAAA');
  const err = await t.throwsAsync(client.listLeases('db/creds/role/'), { instanceOf: VaultRequestError });
  t.is(err.kind, 'PermissionDenied');
  t.is(err.message, 'listing leases under db/creds/role: permission denied');
  t.deepEqual(urls, ['GET /v1/sys/leases/lookup/db/creds/role?list=true']);
});

/** Vault over TLS: a certificate for 127.0.0.1 and localhost, signed by a CA made for the test (openssl, as the
 * stack makes its own); answers every request with a renewed lease. */
async function fakeTlsVault(t: {
  teardown(fn: () => unknown): void;
}): Promise<{ address: string; caBundlePem: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-tls-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pki = createPki(dir);
  const server = https.createServer(
    { cert: fs.readFileSync(pki.vaultCert), key: fs.readFileSync(pki.vaultKey) },
    (req, res) => {
      req.resume();
      req.on('end', () =>
        res.end(JSON.stringify({ lease_id: 'db/creds/role/abc', lease_duration: 600, renewable: true })),
      );
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    address: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caBundlePem: fs.readFileSync(pki.caCert, 'utf8'),
  };
}

test("over TLS, Vault's certificate is checked against the endpoint's CA bundle and server name; insecureSkipTLSVerify accepts it unchecked", async (t) => {
  const vault = await fakeTlsVault(t);
  const renew = (endpoint: VaultEndpoint) =>
    new HttpVaultClient(new VaultTransport(endpoint), async () => 'a-token').renewLease('db/creds/role/abc', 600);

  t.is((await renew({ address: vault.address, caBundlePem: vault.caBundlePem })).leaseDurationSeconds, 600);
  t.is(
    (await renew({ address: vault.address, caBundlePem: vault.caBundlePem, serverName: 'localhost' }))
      .leaseDurationSeconds,
    600,
  );
  t.is((await renew({ address: vault.address, insecureSkipTLSVerify: true })).leaseDurationSeconds, 600);

  const untrusted = await t.throwsAsync(renew({ address: vault.address }), { instanceOf: VaultRequestError });
  t.is(untrusted.kind, 'Unreachable');
  t.regex(untrusted.message, /^renewing a lease: TLS: .*\(set caBundle\)$/);
  const otherName = await t.throwsAsync(
    renew({ address: vault.address, caBundlePem: vault.caBundlePem, serverName: 'vault.example' }),
    { instanceOf: VaultRequestError },
  );
  t.is(otherName.kind, 'Unreachable');
  t.is(otherName.message, 'renewing a lease: TLS: the certificate does not match the host name (set serverName)');
});

test('an https:// address that answers plain HTTP is Unreachable, saying Vault did not answer in TLS', async (t) => {
  const vault = await fakeVault((_req, res) => res.end('{}'));
  t.teardown(vault.close);
  const client = new HttpVaultClient(
    new VaultTransport({ address: vault.endpoint.address.replace('http:', 'https:') }),
    async () => 'a-token',
  );
  const err = await t.throwsAsync(client.renewLease('db/creds/role/abc'), { instanceOf: VaultRequestError });
  t.is(err.kind, 'Unreachable');
  t.is(err.message, 'renewing a lease: TLS: Vault did not answer in TLS (is its address http://?)');
});
