import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Annotations } from '../../../api/index.ts';
import { run } from '../../../cmd/kubectl-vault/cli.ts';
import { FakeApi, NOW, fakeIo, request } from './fake.ts';

async function cli(api: FakeApi, argv: string[], opts: { namespace?: string; stdin?: string } = {}) {
  const { io, out } = fakeIo(api, opts);
  const code = await run(argv, io);
  return { code, ...out };
}

const conditions = (api: FakeApi, name: string, ns = 'demo') =>
  api.requests.get(`${ns}/${name}`)!.status?.conditions ?? [];

test('approve writes the condition through /status and prints what it did', async (t) => {
  const api = new FakeApi();
  api.add(request('r'));
  const r = await cli(api, ['approve', 'databaseaccessrequest', 'r', '-n', 'demo', '--message', 'OPS-1']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'databaseaccessrequest.engine.kubevault.com/r approved\n');
  t.is(api.patches[0]!.subresource, 'status');
  const [c] = conditions(api, 'r');
  t.like(c, {
    type: 'Approved',
    status: 'True',
    reason: 'KubectlApprove',
    message: 'This was approved by: admin (with kubectl vault approve): OPS-1',
    lastTransitionTime: '2026-03-01T12:00:00Z',
    observedGeneration: 1,
  });
});

test('approve after deny: refused, exit 1, nothing written', async (t) => {
  const api = new FakeApi();
  api.add(request('r'));
  t.is((await cli(api, ['deny', 'dar', 'r'])).code, 0);
  const before = structuredClone(api.requests.get('demo/r'));
  const r = await cli(api, ['approve', 'dar', 'r']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: databaseaccessrequest demo\/r was denied at .*a decision is permanent/);
  t.is(r.stdout, '');
  t.deepEqual(api.requests.get('demo/r'), before);
  t.is(api.patches.length, 1);
});

test("a conflict re-reads and re-judges: someone else's denial in between wins", async (t) => {
  const api = new FakeApi();
  api.add(request('r'));
  api.beforePatch = (attempt) => {
    if (attempt === 1)
      api.mutate('demo', 'r', (d) => {
        d.status = {
          conditions: [{ type: 'Denied', status: 'True', reason: 'KubectlDeny', message: 'This was denied by: bob' }],
        };
      });
  };
  const r = await cli(api, ['approve', 'dar', 'r']);
  t.is(r.code, 1);
  t.regex(r.stderr, /was denied .*bob/);
  t.deepEqual(
    conditions(api, 'r').map((c) => c.type),
    ['Denied'],
  );
});

test('a conflict from an unrelated change is retried and succeeds', async (t) => {
  const api = new FakeApi();
  api.add(request('r'));
  api.beforePatch = (attempt) => {
    if (attempt === 1)
      api.mutate('demo', 'r', (d) => {
        d.metadata.labels = { x: 'y' };
      });
  };
  const r = await cli(api, ['approve', 'dar', 'r']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(
    conditions(api, 'r').map((c) => c.type),
    ['Approved'],
  );
});

test('several names: each is handled, failures reported, exit 1 if any failed', async (t) => {
  const api = new FakeApi();
  api.add(request('a'));
  api.add(request('c'));
  const r = await cli(api, ['approve', 'dar', 'a', 'b', 'c']);
  t.is(r.code, 1);
  t.is(
    r.stdout,
    'databaseaccessrequest.engine.kubevault.com/a approved\ndatabaseaccessrequest.engine.kubevault.com/c approved\n',
  );
  t.is(r.stderr, 'error: databaseaccessrequest "b" not found in namespace demo\n');
});

test('a caller without status write permission gets the missing permission named, and nothing changes', async (t) => {
  const api = new FakeApi();
  api.identity = { username: 'alice' };
  api.forbidden.add('patch databaseaccessrequests/status demo');
  api.add(request('r'));
  const r = await cli(api, ['approve', 'dar', 'r']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: you may not patch databaseaccessrequests\/status in namespace demo \(forbidden\)/);
  t.deepEqual(conditions(api, 'r'), []);
});

test("the identity comes from the API server; if it can't be had, nothing is written", async (t) => {
  const api = new FakeApi();
  api.forbidden.add('create selfsubjectreviews');
  api.add(request('r'));
  const r = await cli(api, ['approve', 'dar', 'r']);
  t.is(r.code, 1);
  t.regex(r.stderr, /you may not create selfsubjectreviews at the cluster scope/);
  t.is(api.patches.length, 0);
});

test('-f takes the names and namespaces from the file; an explicit different -n is an error', async (t) => {
  const api = new FakeApi();
  api.add(request('x', 'ns1'));
  api.add(request('y', 'ns2'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-'));
  const file = path.join(dir, 'reqs.yaml');
  fs.writeFileSync(
    file,
    [
      'apiVersion: engine.kubevault.com/v1alpha1\nkind: DatabaseAccessRequest\nmetadata: {name: x, namespace: ns1}\nspec: {}',
      'apiVersion: engine.kubevault.com/v1alpha1\nkind: DatabaseAccessRequest\nmetadata: {name: y, namespace: ns2}',
    ].join('\n---\n'),
  );
  const r = await cli(api, ['deny', '-f', file]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual([conditions(api, 'x', 'ns1')[0]?.type, conditions(api, 'y', 'ns2')[0]?.type], ['Denied', 'Denied']);
  const mismatch = await cli(api, ['approve', '-f', file, '-n', 'ns3']);
  t.is(mismatch.code, 1);
  t.regex(mismatch.stderr, /does not match the namespace "ns3"/);
  const wrongKind = await cli(api, ['approve', '-f', '-'], {
    stdin: '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}',
  });
  t.is(wrongKind.code, 1);
  t.regex(wrongKind.stderr, /stdin: Secret is not a DatabaseAccessRequest/);
  fs.rmSync(dir, { recursive: true });
});

test('-f - reads stdin; objects without a namespace use the current one', async (t) => {
  const api = new FakeApi();
  api.add(request('z', 'here'));
  const r = await cli(api, ['approve', '-f', '-'], {
    namespace: 'here',
    stdin:
      '{"apiVersion":"engine.kubevault.com/v1alpha1","kind":"List","items":[{"apiVersion":"engine.kubevault.com/v1alpha1","kind":"DatabaseAccessRequest","metadata":{"name":"z"}}]}',
  });
  t.is(r.code, 0, r.stderr);
  t.is(conditions(api, 'z', 'here')[0]?.type, 'Approved');
});

test('revoke and rotate set their annotations with a merge patch on the request', async (t) => {
  const api = new FakeApi();
  api.add({ ...request('r'), status: { conditions: [{ type: 'Approved', status: 'True' }], secret: { name: 's' } } });
  const r = await cli(api, ['revoke', 'dar', 'r']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'databaseaccessrequest.engine.kubevault.com/r revocation requested\n');
  t.is(api.patches[0]!.subresource, undefined);
  t.is(api.requests.get('demo/r')!.metadata.annotations?.[Annotations.revokeNow], NOW.toISOString());
  const again = await cli(api, ['revoke', 'dar', 'r']);
  t.is(again.code, 1);
  t.regex(again.stderr, /already requested/);
  t.is((await cli(api, ['rotate', 'dar', 'r'])).code, 1);
});

test('get prints the table; --pending keeps undecided ones; -A adds NAMESPACE; empty says so on stderr', async (t) => {
  const api = new FakeApi();
  api.add(request('b'));
  api.add({ ...request('a'), status: { phase: 'Approved', conditions: [{ type: 'Approved', status: 'True' }] } });
  api.add(request('c', 'other'));
  const all = await cli(api, ['get', 'dar']);
  t.is(all.code, 0);
  t.deepEqual(
    all.stdout.split('\n').map((l) => l.split(/\s+/)[0]),
    ['NAME', 'a', 'b', ''],
  );
  const pending = await cli(api, ['get', 'databaseaccessrequests', '-A', '--pending']);
  t.deepEqual(
    pending.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
    ['NAMESPACE NAME', 'demo b', 'other c'],
  );
  const none = await cli(api, ['get', 'dar', '-n', 'empty']);
  t.is(none.code, 0);
  t.is(none.stdout, '');
  t.is(none.stderr, 'No resources found in empty namespace.\n');
  const named = await cli(api, ['get', 'dar', 'a', 'missing']);
  t.is(named.code, 1);
  t.regex(named.stdout, /^NAME .*\na /);
  t.regex(named.stderr, /"missing" not found/);
});

test('credentials: env by default, json, uri; refused before issue, after revoke, and without Secret access', async (t) => {
  const api = new FakeApi();
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  api.add({
    ...request('r'),
    status: { phase: 'Approved', conditions: [{ type: 'Approved', status: 'True' }], secret: { name: 'r-cred' } },
  });
  api.secrets.set('demo/r-cred', {
    data: { username: b64('u'), password: b64('p'), host: b64('h'), port: b64('5432'), dbname: b64('d') },
  });
  t.is(
    (await cli(api, ['credentials', 'dar', 'r'])).stdout,
    'export PGHOST=h\nexport PGPORT=5432\nexport PGDATABASE=d\nexport PGUSER=u\nexport PGPASSWORD=p\n',
  );
  t.deepEqual(JSON.parse((await cli(api, ['credentials', 'dar', 'r', '-o', 'json'])).stdout), {
    dbname: 'd',
    host: 'h',
    password: 'p',
    port: '5432',
    username: 'u',
  });
  t.is((await cli(api, ['credentials', 'dar', 'r', '-o', 'uri'])).stdout, 'postgresql://u:p@h:5432/d\n');

  api.add(request('pending'));
  const pending = await cli(api, ['credentials', 'dar', 'pending']);
  t.is(pending.code, 1);
  t.regex(pending.stderr, /waiting for approval/);

  api.add({
    ...request('broken'),
    status: {
      phase: 'Failed',
      conditions: [
        { type: 'Approved', status: 'True' },
        {
          type: 'Failed',
          status: 'True',
          reason: 'ReferenceNotFound',
          message: 'PostgresRole demo/psql-role not found',
        },
      ],
    },
  });
  t.regex(
    (await cli(api, ['credentials', 'dar', 'broken'])).stderr,
    /demo\/broken failed: PostgresRole demo\/psql-role not found; nothing was issued/,
  );

  api.add({ ...request('gone'), status: { phase: 'Revoked', secret: { name: 'r-cred' } } });
  t.regex((await cli(api, ['credentials', 'dar', 'gone'])).stderr, /was revoked: its credentials no longer work/);

  api.forbidden.add('get secrets demo');
  const denied = await cli(api, ['credentials', 'dar', 'r']);
  t.is(denied.code, 1);
  t.is(denied.stdout, '');
  t.regex(denied.stderr, /^error: you may not get secrets in namespace demo \(forbidden\)/);
});

test('usage errors exit 2 with a pointer to help; --help and version exit 0 without a cluster', async (t) => {
  const api = new FakeApi();
  const bad = await cli(api, ['nope']);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'error: unknown command "nope" for "kubectl vault"\nSee \'kubectl vault --help\' for usage.\n');
  const badFlag = await cli(api, ['approve', 'dar', 'x', '--reason', 'two words']);
  t.is(badFlag.code, 2);
  t.regex(badFlag.stderr, /See 'kubectl vault approve --help'/);
  for (const argv of [
    ['--help'],
    [],
    ['help'],
    ['help', 'get'],
    ['approve', '--help'],
    ['credentials', '-h'],
    ['revoke', 'dar', '--help'],
  ]) {
    const r = await cli(api, argv);
    t.is(r.code, 0, argv.join(' '));
    t.regex(r.stdout, /Usage:/);
  }
  t.regex((await cli(api, ['approve', '-h'])).stdout, /--reason REASON +One CamelCase word/);
  const v = await cli(api, ['version']);
  t.is(v.code, 0);
  t.regex(v.stdout, /^kubectl-vault v\d+\.\d+\.\d+\n/);
});
