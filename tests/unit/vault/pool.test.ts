// A Vault session logs in lazily and keeps its login usable: a login token Vault refuses (revoked behind the
// operator's back) is dropped and replaced by a fresh login; a refused login is the login's failure, tried once;
// logins and token renewals are counted under fixed operation names like every other call.
import test from 'ava';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { VaultRequestError } from '../../../lib/vault/errors.ts';
import type { IssuerTokenStore } from '../../../lib/vault/issuer-token.ts';
import { VaultPool, type VaultSessionSpec } from '../../../lib/vault/pool.ts';
import type { CallOutcome, VaultOperation } from '../../../lib/vault/transport.ts';

type Route = (req: { token?: string; body: Record<string, unknown> }) => { status: number; body: unknown };

/**
 * A local HTTP server answering `routes` by "METHOD /path"; records each request's route and token, and counts
 * connections (kept alive for a minute, longer than any test: only the client closes them).
 */
async function fakeVault(t: { teardown(fn: () => unknown): void }, routes: Record<string, Route>) {
  const seen: Array<{ route: string; token?: string }> = [];
  const open = new Set<Socket>();
  let connections = 0;
  let allClosed: (() => void) | undefined;
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const route = `${req.method} ${req.url}`;
      const token = req.headers['x-vault-token'] as string | undefined;
      seen.push({ route, token });
      const handler = routes[route];
      const answer = handler
        ? handler({ token, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} })
        : { status: 404, body: { errors: [] } };
      res.statusCode = answer.status;
      res.end(JSON.stringify(answer.body));
    });
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    open.add(socket);
    socket.on('close', () => {
      open.delete(socket);
      if (open.size === 0) allClosed?.();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    connections: () => connections,
    /** Resolves once no connection is open. */
    closed: () => new Promise<void>((resolve) => (open.size === 0 ? resolve() : (allClosed = resolve))),
  };
}

const noIssuerStore: IssuerTokenStore = { load: async () => undefined, save: async () => undefined };
const ok = (body: unknown) => ({ status: 200, body });
const denied = { status: 403, body: { errors: ['permission denied'] } };
const renewed = ok({ lease_id: 'db/creds/r/1', lease_duration: 600, renewable: true });

function pool(now?: () => number) {
  const counted: Array<[VaultOperation, CallOutcome]> = [];
  return {
    pool: new VaultPool({
      issuerTokenRole: 'leasehold-issuer',
      observe: (op, outcome) => counted.push([op, outcome]),
      now,
    }),
    counted,
  };
}

test("a login token Vault refuses (revoked behind the operator's back) is dropped: the call logs in afresh and succeeds", async (t) => {
  const revoked = new Set<string>();
  const vault = await fakeVault(t, {
    'GET /v1/auth/token/lookup-self': ({ token }) =>
      token && !revoked.has(token) ? ok({ data: { ttl: 3600, renewable: true } }) : denied,
    'POST /v1/sys/leases/renew': ({ token }) => (token && !revoked.has(token) ? renewed : denied),
  });
  // The token Secret holds tok-1, revoked in Vault, until an admin puts tok-2 in.
  const tokens = ['tok-1', 'tok-2'];
  const { pool: p } = pool();
  const spec: VaultSessionSpec = {
    key: 'demo/vault',
    version: '1',
    endpoint: { address: vault.address },
    issuerStore: noIssuerStore,
    auth: { method: 'token', description: 'token from Secret demo/vault-token', token: async () => tokens[0]! },
  };
  const session = p.open(spec);
  await session.client.renewLease('db/creds/r/1', 600);
  revoked.add('tok-1');
  tokens.shift();
  const lease = await session.client.renewLease('db/creds/r/1', 600);
  t.is(lease.leaseDurationSeconds, 600);
  t.deepEqual(
    vault.seen.map((s) => `${s.route} ${s.token}`),
    [
      'GET /v1/auth/token/lookup-self tok-1',
      'POST /v1/sys/leases/renew tok-1',
      'POST /v1/sys/leases/renew tok-1',
      'GET /v1/auth/token/lookup-self tok-2',
      'POST /v1/sys/leases/renew tok-2',
    ],
  );
});

test("a refused login is the login's failure, said as such, and is tried once", async (t) => {
  const vault = await fakeVault(t, { 'POST /v1/auth/kubernetes/login': () => denied });
  let jwts = 0;
  const { pool: p, counted } = pool();
  const session = p.open({
    key: 'demo/vault',
    version: '1',
    endpoint: { address: vault.address },
    issuerStore: noIssuerStore,
    auth: {
      method: 'kubernetes',
      mountPath: 'kubernetes',
      role: 'r',
      subject: 'ServiceAccount demo/vault',
      jwt: async () => `jwt-${++jwts}`,
    },
  });
  const err = await t.throwsAsync(
    session.client.writeRole('db', 'r', {
      dbName: 'c',
      creationStatements: [],
      revocationStatements: [],
      rollbackStatements: [],
      renewStatements: [],
      defaultTtlSeconds: 60,
      maxTtlSeconds: 60,
    }),
    { instanceOf: VaultRequestError },
  );
  t.is(err.kind, 'PermissionDenied');
  t.is(
    err.message,
    'logging in with kubernetes auth at auth/kubernetes, role r, as ServiceAccount demo/vault: permission denied',
  );
  t.is(jwts, 1);
  t.deepEqual(counted, [
    ['login', 'error'],
    ['writeRole', 'error'],
  ]);
});

test('the login token is renewed (renew-self) once two thirds of its TTL have passed, and counted as renewToken', async (t) => {
  const vault = await fakeVault(t, {
    'POST /v1/auth/kubernetes/login': () =>
      ok({ auth: { client_token: 'tok-1', lease_duration: 30, renewable: true } }),
    'POST /v1/auth/token/renew-self': () => ok({ auth: { lease_duration: 30, renewable: true } }),
    'POST /v1/sys/leases/renew': () => renewed,
  });
  let nowMs = 1_000_000;
  const { pool: p, counted } = pool(() => nowMs);
  const session = p.open({
    key: 'demo/vault',
    version: '1',
    endpoint: { address: vault.address },
    issuerStore: noIssuerStore,
    auth: {
      method: 'kubernetes',
      mountPath: 'kubernetes',
      role: 'r',
      subject: 'ServiceAccount demo/vault',
      jwt: async () => 'jwt',
    },
  });
  await session.client.renewLease('db/creds/r/1');
  nowMs += 10_000;
  await session.client.renewLease('db/creds/r/1');
  nowMs += 15_000;
  await session.client.renewLease('db/creds/r/1');
  t.deepEqual(counted, [
    ['login', 'success'],
    ['renewLease', 'success'],
    ['renewLease', 'success'],
    ['renewToken', 'success'],
    ['renewLease', 'success'],
  ]);
});

test('the same version keeps the session (and its login); another version replaces it', async (t) => {
  const { pool: p } = pool();
  const spec: VaultSessionSpec = {
    key: 'demo/vault',
    version: '1',
    endpoint: { address: 'http://127.0.0.1:1' },
    issuerStore: noIssuerStore,
    auth: { method: 'token', description: 'token', token: async () => 'tok' },
  };
  const first = p.open(spec);
  t.is(p.open(spec), first);
  t.is(p.held('demo/vault'), first);
  const second = p.open({ ...spec, version: '2' });
  t.not(second, first);
  p.drop('demo/vault');
  t.is(p.held('demo/vault'), undefined);
});

test('an issuer token revoked in Vault is replaced when an issuance is refused, the issuance made with the new one, and the change told once', async (t) => {
  const revoked = new Set<string>();
  let created = 0;
  const vault = await fakeVault(t, {
    'POST /v1/auth/kubernetes/login': () =>
      ok({ auth: { client_token: 'login-1', lease_duration: 3600, renewable: true } }),
    'POST /v1/auth/token/create/leasehold-issuer': ({ token }) =>
      token === 'login-1'
        ? ok({ auth: { client_token: `issuer-${++created}`, accessor: `acc-${created}`, lease_duration: 3600 } })
        : denied,
    'POST /v1/auth/token/renew-self': ({ token }) =>
      token && !revoked.has(token) ? ok({ auth: { lease_duration: 3600, renewable: true } }) : denied,
    'GET /v1/db/creds/r': ({ token }) =>
      token?.startsWith('issuer-') && !revoked.has(token)
        ? ok({
            lease_id: `db/creds/r/${token}`,
            lease_duration: 600,
            renewable: true,
            data: { username: 'v-r', password: 'pw' },
          })
        : denied,
  });
  let stored: { token: string; accessor: string } | undefined;
  const changed: string[] = [];
  const p = new VaultPool({ issuerTokenRole: 'leasehold-issuer', onIssuerChanged: (key) => changed.push(key) });
  const session = p.open({
    key: 'demo/vault',
    version: '1',
    endpoint: { address: vault.address },
    issuerStore: { load: async () => stored, save: async (s) => void (stored = s) },
    auth: {
      method: 'kubernetes',
      mountPath: 'kubernetes',
      role: 'r',
      subject: 'ServiceAccount demo/vault',
      jwt: async () => 'jwt',
    },
  });
  const first = await session.issuingClient();
  t.is(first.ownedBy, 'issuer-token');
  t.is((await first.client.issueCredential('db', 'r')).leaseId, 'db/creds/r/issuer-1');
  revoked.add('issuer-1');
  t.is((await first.client.issueCredential('db', 'r')).leaseId, 'db/creds/r/issuer-2');
  t.deepEqual(stored, { token: 'issuer-2', accessor: 'acc-2' });
  t.deepEqual(changed, ['demo/vault']);
  t.is(p.issuerGeneration('demo/vault'), 1);
});

test('dropping the last session on a Vault closes its connections; while another session uses that Vault they stay open', async (t) => {
  const vault = await fakeVault(t, {
    'GET /v1/auth/token/lookup-self': () => ok({ data: { ttl: 3600, renewable: true } }),
    'POST /v1/sys/leases/renew': () => renewed,
  });
  const { pool: p } = pool();
  const session = (key: string) =>
    p.open({
      key,
      version: '1',
      endpoint: { address: vault.address },
      issuerStore: noIssuerStore,
      auth: { method: 'token', description: 'token', token: async () => 'tok' },
    });
  const a = session('demo/vault-a');
  const b = session('demo/vault-b');
  await a.client.renewLease('db/creds/r/1');
  await b.client.renewLease('db/creds/r/1');
  const opened = vault.connections();
  p.drop('demo/vault-a');
  await b.client.renewLease('db/creds/r/1');
  t.is(vault.connections(), opened);
  p.drop('demo/vault-b');
  await vault.closed();
  t.pass('every connection to Vault was closed');
});
