import test from 'ava';
import { KubeApiError } from '../../../lib/runtime/kube.ts';
import { toCallError } from '../../../cmd/kubectl-vault/api.ts';
import {
  ApiCallError,
  CommandError,
  UsageError,
  exitCodeOf,
  renderError,
  type ApiCall,
} from '../../../cmd/kubectl-vault/errors.ts';

const statusWrite: ApiCall = {
  verb: 'patch',
  resource: 'databaseaccessrequests',
  group: 'engine.kubevault.com',
  subresource: 'status',
  namespace: 'demo',
  name: 'r',
};
const RBAC_403 =
  'databaseaccessrequests.engine.kubevault.com "r" is forbidden: User "alice" cannot patch resource "databaseaccessrequests/status" in API group "engine.kubevault.com" in the namespace "demo"';

test('an RBAC 403 names the missing permission: verb, resource/subresource, namespace', (t) => {
  const text = renderError(new ApiCallError(statusWrite, 403, 'Forbidden', RBAC_403));
  t.true(text.startsWith('you may not patch databaseaccessrequests/status in namespace demo (forbidden)'), text);
  t.regex(text, /leasehold-approver/);
  t.notRegex(text, /HTTP|at .*\.ts:\d+/);
});

test('a cluster-scoped RBAC 403 says so', (t) => {
  const call: ApiCall = { verb: 'list', resource: 'databaseaccessrequests', group: 'engine.kubevault.com' };
  const text = renderError(
    new ApiCallError(
      call,
      403,
      'Forbidden',
      'databaseaccessrequests.engine.kubevault.com is forbidden: User "alice" cannot list resource "databaseaccessrequests" in API group "engine.kubevault.com" at the cluster scope',
    ),
  );
  t.is(text, 'you may not list databaseaccessrequests at the cluster scope (forbidden)');
});

test('a Secret 403 explains who can read credentials', (t) => {
  const call: ApiCall = { verb: 'get', resource: 'secrets', group: '', namespace: 'demo', name: 's' };
  const text = renderError(
    new ApiCallError(
      call,
      403,
      'Forbidden',
      'secrets "s" is forbidden: User "alice" cannot get resource "secrets" in API group "" in the namespace "demo"',
    ),
  );
  t.regex(text, /^you may not get secrets in namespace demo \(forbidden\); only the request's subjects/);
});

test("a 403 from an admission policy shows the policy's own words", (t) => {
  const text = renderError(
    new ApiCallError(
      statusWrite,
      403,
      'Forbidden',
      "databaseaccessrequests.engine.kubevault.com \"r\" is forbidden: ValidatingAdmissionPolicy 'leasehold-approval' with binding 'b' denied request: you can't approve your own request",
    ),
  );
  t.regex(
    text,
    /^the API server refused to patch databaseaccessrequests\/status "r" in namespace demo: .*approve your own request/,
  );
});

test('a 403 without a message still names what was attempted', (t) => {
  t.regex(
    renderError(new ApiCallError(statusWrite, 403, 'Forbidden', '')),
    /^you may not patch databaseaccessrequests\/status in namespace demo \(forbidden\)/,
  );
});

test('404: a missing object, or a missing API (CRDs not installed)', (t) => {
  const get: ApiCall = {
    verb: 'get',
    resource: 'databaseaccessrequests',
    group: 'engine.kubevault.com',
    namespace: 'demo',
    name: 'nope',
  };
  t.is(
    renderError(new ApiCallError(get, 404, 'NotFound', 'databaseaccessrequests.engine.kubevault.com "nope" not found')),
    'databaseaccessrequest "nope" not found in namespace demo',
  );
  t.regex(
    renderError(new ApiCallError(get, 404, '', '')),
    /does not serve databaseaccessrequests .*Leasehold installed/,
  );
});

test('401, 409, 422, 5xx and unreachable servers read as sentences', (t) => {
  t.regex(renderError(new ApiCallError(statusWrite, 401, 'Unauthorized', 'Unauthorized')), /does not know who you are/);
  t.regex(renderError(new ApiCallError(statusWrite, 409, 'Conflict', 'x')), /changed by someone else .*try again/);
  t.regex(
    renderError(
      new ApiCallError(statusWrite, 422, 'Invalid', 'status.conditions: an Approved or Denied decision is permanent'),
    ),
    /rejected the change .*decision is permanent/,
  );
  t.regex(
    renderError(new ApiCallError(statusWrite, 503, 'ServiceUnavailable', 'etcd down')),
    /failed: server error HTTP 503 ServiceUnavailable: etcd down/,
  );
  t.regex(
    renderError(new ApiCallError(statusWrite, 0, '', 'https://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1')),
    /^cannot reach the Kubernetes API server: .*ECONNREFUSED/,
  );
});

test('KubeApiError and transport failures become ApiCallErrors keeping only the Status message', (t) => {
  const e = toCallError(statusWrite, new KubeApiError(403, 'Forbidden', RBAC_403), 'https://x');
  t.true(e instanceof ApiCallError);
  t.is((e as ApiCallError).detail, RBAC_403);
  t.is((e as ApiCallError).statusCode, 403);
  const bare = toCallError(statusWrite, new KubeApiError(404, '', ''), 'https://x') as ApiCallError;
  t.is(bare.detail, '');
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  const net = toCallError(
    statusWrite,
    new TypeError('fetch failed', { cause: refused }),
    'https://127.0.0.1:1',
  ) as ApiCallError;
  t.is(net.statusCode, 0);
  t.is(net.detail, 'https://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1');
  const badUrl = toCallError(
    statusWrite,
    Object.assign(new TypeError('Invalid URL'), { code: 'ERR_INVALID_URL' }),
    'https://x:port',
  );
  t.is(renderError(badUrl), 'the kubeconfig\'s server address "https://x:port" is not a valid URL');
});

test('exit codes: usage 2, everything else 1; no stack traces', (t) => {
  t.is(exitCodeOf(new UsageError('x')), 2);
  t.is(exitCodeOf(new CommandError('x')), 1);
  t.is(exitCodeOf(new Error('x')), 1);
  const text = renderError(Object.assign(new Error('boom'), { code: 'EBOOM' }));
  t.is(text, 'boom (EBOOM)');
});
