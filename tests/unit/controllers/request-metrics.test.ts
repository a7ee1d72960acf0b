// The request gauges the dashboard and the alerts read (controllers/databaseaccessrequest/metrics.ts), as
// whole passes on the fakes leave them: a request's phase, how long it has waited for a decision and until when,
// and when its lease runs out and is due for renewal (overdue while Vault is down).
import test from 'ava';
import { Registry } from 'prom-client';
import { Annotations, type DatabaseAccessRequest, type PostgresRole } from '../../../api/index.ts';
import { DatabaseAccessRequestReconciler } from '../../../controllers/databaseaccessrequest/reconciler.ts';
import { PostgresRoleReconciler } from '../../../controllers/role/reconciler.ts';
import { SecretEngineReconciler } from '../../../controllers/secretengine/reconciler.ts';
import { fakeWorld } from '../../fakes/controller-context.ts';
import {
  DATABASE_ACCESS_REQUESTS,
  NS,
  POSTGRES_ROLES,
  SECRET_ENGINES,
  applyGuideBindings,
  postgresRole,
  secretEngine,
} from '../../fakes/fixtures.ts';

const START = Date.parse('2026-03-01T12:00:00Z');
const NAME = 'postgres-cred-rqst';
const KEY = { namespace: NS, name: NAME };
const approvedByBob = {
  type: 'Approved',
  status: 'True',
  reason: 'KubectlApprove',
  message: 'This was approved by: bob',
  lastTransitionTime: '2026-03-01T12:00:00Z',
};

async function world(
  opts: {
    role?: Partial<PostgresRole['spec']>;
    request?: Partial<DatabaseAccessRequest['spec']>;
    approved?: boolean;
  } = {},
) {
  const w = fakeWorld({ startMs: START });
  applyGuideBindings(w.kube);
  w.kube.put(SECRET_ENGINES, secretEngine());
  await w.reconcile(new SecretEngineReconciler(w.context), { namespace: NS, name: 'postgresql-engine' });
  w.kube.put(POSTGRES_ROLES, postgresRole(opts.role));
  await w.reconcile(new PostgresRoleReconciler(w.context), { namespace: NS, name: 'psql-role' });
  w.kube.put(DATABASE_ACCESS_REQUESTS, {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: {
      ...KEY,
      uid: 'dar-uid-1',
      annotations: { [Annotations.requester]: JSON.stringify({ username: 'alice', groups: [] }) },
    },
    spec: {
      roleRef: { kind: 'PostgresRole', name: 'psql-role' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: NS }],
      ...opts.request,
    },
    ...(opts.approved === false ? {} : { status: { conditions: [approvedByBob] } }),
  } as unknown as DatabaseAccessRequest);
  const registry = new Registry();
  const reconciler = new DatabaseAccessRequestReconciler(w.context, registry);
  return {
    ...w,
    dar: () => w.kube.object<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, NAME)!,
    pass: () => w.reconcile(reconciler, KEY),
    tryPass: () => w.reconcile(reconciler, KEY).catch((e: Error) => e),
    /** The value of `metric` in the Prometheus exposition, for this request's labels unless told; undefined: no series. */
    value: async (metric: string, labels: Record<string, string> = { namespace: NS, name: NAME }) =>
      sampleOf(await registry.metrics(), metric, labels),
  };
}

function sampleOf(text: string, metric: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_]+)\{(.*)\} (\S+)$/);
    if (!m || m[1] !== metric) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

test("a request waiting for a decision is counted in its phase, with its creation and its role's pendingTTL deadline", async (t) => {
  const w = await world({ approved: false, role: { approval: { pendingTTL: '2h' } } as Partial<PostgresRole['spec']> });
  await w.pass();
  t.is(await w.value('leasehold_access_requests', { namespace: NS, phase: 'WaitingForApproval' }), 1);
  t.is(await w.value('leasehold_request_pending_since_timestamp_seconds'), START / 1000);
  t.is(await w.value('leasehold_request_pending_deadline_timestamp_seconds'), START / 1000 + 2 * 3600);
  t.is(await w.value('leasehold_lease_expiry_timestamp_seconds'), undefined, 'nothing issued, no lease');
});

test('once approved and issued, the request leaves the pending gauges and its lease shows its expiry and renewal', async (t) => {
  const w = await world();
  await w.pass();
  const lease = w.dar().status!.lease!;
  t.is(await w.value('leasehold_access_requests', { namespace: NS, phase: 'Approved' }), 1);
  t.is(await w.value('leasehold_access_requests', { namespace: NS, phase: 'WaitingForApproval' }), undefined);
  t.is(await w.value('leasehold_request_pending_since_timestamp_seconds'), undefined);
  const expiry = (await w.value('leasehold_lease_expiry_timestamp_seconds'))!;
  const renewal = (await w.value('leasehold_lease_renewal_timestamp_seconds'))!;
  t.is(expiry, Date.parse(lease.expiresAt!) / 1000);
  t.true(renewal > START / 1000 && renewal < expiry, `renewal ${renewal} between issue and expiry ${expiry}`);
});

test('a renewal that fails leaves the renewal time in the past (overdue) while the expiry stays put', async (t) => {
  const w = await world();
  await w.pass();
  const expiry = (await w.value('leasehold_lease_expiry_timestamp_seconds'))!;
  const renewal = (await w.value('leasehold_lease_renewal_timestamp_seconds'))!;
  w.clock.advance(50 * 60_000); // past the renewal point of a 1 h lease
  w.vault.down();
  await w.tryPass();
  const now = w.clock.now() / 1000;
  t.is(await w.value('leasehold_lease_renewal_timestamp_seconds'), renewal);
  t.true(renewal < now, 'the renewal is overdue');
  t.is(await w.value('leasehold_lease_expiry_timestamp_seconds'), expiry);
  w.vault.up();
  await w.pass();
  t.true((await w.value('leasehold_lease_renewal_timestamp_seconds'))! > now, 'renewed: the next renewal is ahead');
  t.true((await w.value('leasehold_lease_expiry_timestamp_seconds'))! > expiry);
});

test('a lease left to run out (spec.renew false) shows its expiry but no renewal', async (t) => {
  const w = await world({ request: { renew: false } });
  await w.pass();
  t.truthy(await w.value('leasehold_lease_expiry_timestamp_seconds'));
  t.is(await w.value('leasehold_lease_renewal_timestamp_seconds'), undefined);
});

test('a request revoked on demand counts as Revoked and its lease series go; deleted, it counts nowhere', async (t) => {
  const w = await world();
  await w.pass();
  const dar = w.dar();
  w.kube.put(DATABASE_ACCESS_REQUESTS, {
    ...dar,
    metadata: { ...dar.metadata, annotations: { ...dar.metadata.annotations, [Annotations.revokeNow]: 'true' } },
  });
  await w.pass();
  t.is(w.dar().status?.phase, 'Revoked');
  t.is(await w.value('leasehold_access_requests', { namespace: NS, phase: 'Revoked' }), 1);
  t.is(await w.value('leasehold_access_requests', { namespace: NS, phase: 'Approved' }), undefined);
  t.is(await w.value('leasehold_lease_expiry_timestamp_seconds'), undefined);
  t.is(await w.value('leasehold_lease_renewal_timestamp_seconds'), undefined);
  w.kube.remove(DATABASE_ACCESS_REQUESTS, NS, NAME);
  await w.pass();
  await w.pass();
  t.is(await w.value('leasehold_access_requests', { namespace: NS, phase: 'Revoked' }), undefined);
});
