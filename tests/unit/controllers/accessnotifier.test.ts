// Notifications and the audit stream, on the fakes: what the audit stream records for a request's life, which
// notifiers select which requests, the signed webhook body and the Slack text, the ordered delivery queue and its
// backoff, reminders and ExpiringSoon from time, the notifier's status, and that no payload holds a credential.
import test from 'ava';
import { Registry } from 'prom-client';
import { PassThrough } from 'node:stream';
import {
  Annotations,
  ConditionType,
  Reason,
  RequestPhase,
  type AccessNotifier,
  type ClusterAccessNotifier,
  type DatabaseAccessRequest,
} from '../../../api/index.ts';
import { DeliveryQueue, backoffMs } from '../../../controllers/accessnotifier/delivery.ts';
import { NotificationHub, notifierMetrics } from '../../../controllers/accessnotifier/hub.ts';
import {
  Headers,
  NOTIFICATION_API_VERSION,
  eventOfRecord,
  expiringSoon,
  labelsMatch,
  notifierOf,
  reminderSchedule,
  selects,
  sign,
  slackText,
  verify,
  type AnyNotifier,
  type Notification,
  type RequestIdentity,
} from '../../../controllers/accessnotifier/notifier.ts';
import { AccessNotifierReconciler } from '../../../controllers/accessnotifier/reconciler.ts';
import { NotificationSender } from '../../../controllers/accessnotifier/sender.ts';
import { DatabaseAccessRequestReconciler } from '../../../controllers/databaseaccessrequest/reconciler.ts';
import { PostgresRoleReconciler } from '../../../controllers/role/reconciler.ts';
import { SecretEngineReconciler } from '../../../controllers/secretengine/reconciler.ts';
import { ACCESS_NOTIFIERS, CLUSTER_ACCESS_NOTIFIERS, NAMESPACES } from '../../../controllers/shared/resources.ts';
import { AuditSink, FakeClock, nullLogger, type AuditRecord } from '../../../lib/runtime/index.ts';
import { fakeWorld, type FakeWorld } from '../../fakes/controller-context.ts';
import {
  DATABASE_ACCESS_REQUESTS,
  NS,
  POSTGRES_ROLES,
  SECRET_ENGINES,
  SECRETS,
  applyGuideBindings,
  postgresRole,
  secretEngine,
} from '../../fakes/fixtures.ts';
import { HttpsReceiver } from '../../fakes/https-receiver.ts';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const KEY = { namespace: NS, name: 'postgres-cred-rqst' };
const approvedByBob = {
  type: 'Approved',
  status: 'True',
  reason: 'KubectlApprove',
  message: 'This was approved by: bob',
  lastTransitionTime: '2026-03-01T12:00:00Z',
};

/** Lets queued promise callbacks (a delivery's send, its retry's timer) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function notifier(spec: Partial<AccessNotifier['spec']> = {}, name = 'team'): AccessNotifier {
  return {
    apiVersion: 'leasehold.dev/v1alpha1',
    kind: 'AccessNotifier',
    metadata: { name, namespace: NS, generation: 1, uid: `uid-${name}` },
    spec: { webhook: { urlSecretRef: { name: 'hook' }, signingKeySecretRef: { name: 'hook' } }, ...spec },
  };
}

function clusterNotifier(spec: Partial<ClusterAccessNotifier['spec']>): AnyNotifier {
  return notifierOf.cluster({
    metadata: { name: 'oncall', generation: 1 },
    spec: { slack: { urlSecretRef: { name: 'slack' } }, ...spec },
  });
}

const request = (o: Partial<RequestIdentity> = {}): RequestIdentity => ({
  namespace: NS,
  name: 'r',
  roleKind: 'PostgresRole',
  roleName: 'psql-role',
  labels: { team: 'payments' },
  ...o,
});

/** The guide's engine and role, ready; a request by alice, approved by bob unless `approved` is false. */
async function world(opts: { approved?: boolean; request?: Partial<DatabaseAccessRequest['spec']> } = {}) {
  const w = fakeWorld({ startMs: T0 });
  applyGuideBindings(w.kube);
  w.kube.put(SECRET_ENGINES, secretEngine());
  await w.reconcile(new SecretEngineReconciler(w.context), { namespace: NS, name: 'postgresql-engine' });
  w.kube.put(POSTGRES_ROLES, postgresRole());
  await w.reconcile(new PostgresRoleReconciler(w.context), { namespace: NS, name: 'psql-role' });
  w.kube.put(DATABASE_ACCESS_REQUESTS, {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: {
      ...KEY,
      uid: 'dar-uid-1',
      creationTimestamp: new Date(T0).toISOString(),
      labels: { team: 'payments' },
      annotations: { [Annotations.requester]: JSON.stringify({ username: 'alice', groups: [] }) },
    },
    spec: {
      roleRef: { kind: 'PostgresRole', name: 'psql-role' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: NS }],
      reason: 'INC-42',
      ttl: '1h',
      ...opts.request,
    },
    ...(opts.approved === false ? {} : { status: { conditions: [approvedByBob] } }),
  } as unknown as DatabaseAccessRequest);
  const dars = new DatabaseAccessRequestReconciler(w.context);
  return {
    w,
    pass: () => w.reconcile(dars, KEY).catch((e: unknown) => e),
    dar: () => w.kube.object<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name)!,
    edit: (f: (d: DatabaseAccessRequest) => void) =>
      w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, f),
    actions: () => w.audit.records.filter((r) => r.request === `${NS}/${KEY.name}`).map((r) => r.action),
  };
}

/** A hub on the world's caches whose deliveries are kept (or failed, while `failing`). */
function hubOn(w: FakeWorld, opts: { failing?: () => boolean } = {}) {
  const sent: Notification[] = [];
  const woken: string[] = [];
  let id = 0;
  const registry = new Registry();
  const hub = new NotificationHub({
    caches: w.caches,
    send: async (_n, notification) => {
      await Promise.resolve();
      if (opts.failing?.()) throw new Error('could not reach the webhook at 127.0.0.1:1: ECONNREFUSED');
      sent.push(notification);
    },
    clock: w.clock,
    metrics: notifierMetrics(registry),
    wake: (n) => woken.push(n.object.metadata.name ?? ''),
    newId: () => `n-${++id}`,
    log: nullLogger(),
  });
  w.audit.subscribe(hub.onRecord);
  return { hub, sent, woken, registry };
}

// ---- the audit stream --------------------------------------------------------------------------------------------

test('each audit record is one line on stdout under the key "audit", without the producer\'s marker, redacted like a log line', (t) => {
  const out = new PassThrough();
  const lines: string[] = [];
  out.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)));
  const sink = new AuditSink({ stream: out });
  const seen: AuditRecord[] = [];
  sink.subscribe(() => {
    throw new Error('a broken subscriber');
  });
  sink.subscribe((r) => seen.push(r));
  sink.record({
    audit: true,
    action: 'RequestApproved',
    at: '2026-03-01T12:00:00.000Z',
    request: 'demo/r',
    token: 'hvs.abc',
  });
  t.is(lines.length, 1);
  t.deepEqual(JSON.parse(lines[0]!), {
    audit: { action: 'RequestApproved', at: '2026-03-01T12:00:00.000Z', request: 'demo/r', token: '[REDACTED]' },
  });
  t.is(seen.length, 1, 'a subscriber that throws costs the others nothing');
});

test('a request waiting for approval is recorded once; its approval, issuance and revocation once each', async (t) => {
  const x = await world({ approved: false });
  await x.pass();
  await x.pass();
  t.deepEqual(x.actions(), [Reason.WaitingForApproval]);
  x.edit((d) => {
    d.status = { ...d.status, conditions: [...(d.status?.conditions ?? []), approvedByBob] } as never;
  });
  await x.pass();
  await x.pass();
  x.edit((d) => {
    d.metadata.annotations = { ...d.metadata.annotations, [Annotations.revokeNow]: 'now' };
  });
  await x.pass();
  await x.pass();
  t.deepEqual(x.actions(), [
    Reason.WaitingForApproval,
    'RequestApproved',
    Reason.SuccessfullyIssuedCredential,
    Reason.RevokedOnDemand,
  ]);
  t.is(x.dar().status?.phase, RequestPhase.Revoked);
});

test('a denial, a lease that runs out and a request nobody decided make one record each', async (t) => {
  const denied = await world({ approved: false });
  denied.edit((d) => {
    d.status = {
      conditions: [{ ...approvedByBob, type: 'Denied', reason: 'KubectlDeny', message: 'This was denied by: bob' }],
    } as never;
  });
  await denied.pass();
  t.deepEqual(denied.actions(), ['RequestDenied']);

  const short = await world({ request: { ttl: '5m', renew: false } });
  await short.pass();
  short.w.clock.advance(6 * 60_000);
  await short.pass();
  await short.pass();
  t.deepEqual(short.actions(), ['RequestApproved', Reason.SuccessfullyIssuedCredential, Reason.LeaseExpired]);

  const late = await world({ approved: false });
  await late.pass();
  late.w.clock.advance(25 * 3600_000);
  await late.pass();
  await late.pass();
  t.deepEqual(late.actions(), [Reason.WaitingForApproval, Reason.ApprovalTimedOut]);
});

// ---- which notification, for whom ------------------------------------------------------------------------------------

test('audit actions become notifications; a rotated-out lease revoked is not an end of access', (t) => {
  const rec = (action: string, message = '') => ({ action, at: '', message });
  t.is(eventOfRecord(rec(Reason.WaitingForApproval)), 'Pending');
  t.is(eventOfRecord(rec('RequestApproved')), 'Approved');
  t.is(eventOfRecord(rec(Reason.AutoApproved)), 'Approved');
  t.is(eventOfRecord(rec('RequestDenied')), 'Denied');
  t.is(eventOfRecord(rec(Reason.SuccessfullyIssuedCredential)), 'Issued');
  t.is(eventOfRecord(rec('BreakGlassApproved')), 'BreakGlass');
  t.is(eventOfRecord(rec(Reason.RevokedOnDemand)), 'Revoked');
  t.is(eventOfRecord(rec('LeaseRevoked', 'revoked lease x/y')), 'Revoked');
  t.is(eventOfRecord(rec('LeaseRevoked', 'revoked the previous lease x/y: rotated')), undefined);
  t.is(eventOfRecord(rec(Reason.LeaseExpired)), 'Expired');
  t.is(eventOfRecord(rec(Reason.ApprovalTimedOut)), 'Expired');
  t.is(eventOfRecord(rec('AccessDurationReached')), 'Expired');
  t.is(eventOfRecord(rec('RotationStarted')), undefined);
});

test('an AccessNotifier selects requests of its own namespace, by role and by request labels', (t) => {
  const none = () => undefined;
  t.true(selects(notifierOf.namespaced(notifier()), request(), none));
  t.false(selects(notifierOf.namespaced(notifier()), request({ namespace: 'other' }), none));
  const byRole = notifierOf.namespaced(notifier({ roles: [{ kind: 'PostgresRole', name: 'psql-role' }] }));
  t.true(selects(byRole, request(), none));
  t.false(selects(byRole, request({ roleKind: 'MySQLRole' }), none));
  t.false(selects(byRole, request({ roleName: 'admin' }), none));
  const anyKind = notifierOf.namespaced(notifier({ roles: [{ name: 'psql-role' }] }));
  t.true(selects(anyKind, request({ roleKind: 'RedisRole' }), none));
  const byLabel = notifierOf.namespaced(notifier({ requestSelector: { matchLabels: { team: 'payments' } } }));
  t.true(selects(byLabel, request(), none));
  t.false(selects(byLabel, request({ labels: { team: 'search' } }), none));
  t.false(selects(byLabel, request({ labels: undefined }), none), 'labels unknown: not selected');
});

test('a ClusterAccessNotifier selects by namespace list and namespace labels, both when both are given', (t) => {
  const labels = (ns: string) => ({ demo: { team: 'payments' }, other: { team: 'search' } })[ns];
  t.true(selects(clusterNotifier({}), request({ namespace: 'anything' }), labels));
  const listed = clusterNotifier({ namespaces: ['demo'] });
  t.true(selects(listed, request(), labels));
  t.false(selects(listed, request({ namespace: 'other' }), labels));
  const labelled = clusterNotifier({ namespaceSelector: { matchLabels: { team: 'payments' } } });
  t.true(selects(labelled, request(), labels));
  t.false(selects(labelled, request({ namespace: 'other' }), labels));
  t.false(selects(labelled, request({ namespace: 'unknown' }), labels));
  const both = clusterNotifier({ namespaces: ['other'], namespaceSelector: { matchLabels: { team: 'payments' } } });
  t.false(selects(both, request(), labels));
});

test('label selectors: matchLabels and every matchExpressions operator, ANDed', (t) => {
  const l = { team: 'payments', tier: 'prod' };
  t.true(labelsMatch(undefined, l));
  t.true(labelsMatch({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['prod', 'staging'] }] }, l));
  t.false(labelsMatch({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['prod'] }] }, l));
  t.true(labelsMatch({ matchExpressions: [{ key: 'team', operator: 'Exists' }] }, l));
  t.false(labelsMatch({ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, l));
  t.false(labelsMatch({ matchLabels: { team: 'payments' }, matchExpressions: [{ key: 'x', operator: 'Exists' }] }, l));
});

// ---- the bodies ---------------------------------------------------------------------------------------------------

test("a webhook signature is HMAC-SHA256 over the timestamp and body; another body, key or an old timestamp fails the receiver's check", (t) => {
  const body = '{"event":"Pending"}';
  const signature = sign('k3y', 1_700_000_000, body);
  t.regex(signature, /^v1=[0-9a-f]{64}$/);
  const now = { nowSeconds: 1_700_000_010 };
  t.true(verify('k3y', { timestamp: '1700000000', signature, body }, now));
  t.false(verify('k3y', { timestamp: '1700000000', signature, body: '{"event":"Approved"}' }, now));
  t.false(verify('other', { timestamp: '1700000000', signature, body }, now));
  t.false(verify('k3y', { timestamp: '1700000000', signature, body }, { nowSeconds: 1_700_000_000 + 301 }));
  t.false(verify('k3y', { timestamp: '1700000001', signature, body }, now), 'the timestamp is signed too');
});

// ---- deliveries -----------------------------------------------------------------------------------------------------

test('backoff doubles from 1 s and stops growing at 5 min', (t) => {
  t.deepEqual(
    [1, 2, 3, 4].map((n) => backoffMs(n)),
    [1000, 2000, 4000, 8000],
  );
  t.is(backoffMs(40), 5 * 60_000);
});

test('a failing receiver holds the queue: retried with backoff, then everything delivered once, in order', async (t) => {
  const clock = new FakeClock(T0);
  const delivered: number[] = [];
  const attempts: number[] = [];
  let down = true;
  const results: string[] = [];
  const q = new DeliveryQueue<number>({
    clock,
    send: async (n) => {
      attempts.push(clock.now() - T0);
      await Promise.resolve();
      if (down) throw new Error('ECONNREFUSED');
      delivered.push(n);
    },
    onAttempt: (r) => results.push(r),
  });
  q.push(1);
  q.push(2);
  q.push(3);
  await settle();
  t.is(q.stats.backlog, 3);
  t.is(q.stats.lastFailureMessage, 'ECONNREFUSED');
  for (const step of [1000, 2000, 4000]) {
    clock.advance(step);
    await settle();
  }
  t.deepEqual(attempts, [0, 1000, 3000, 7000], 'the first item retried after 1 s, 2 s, 4 s');
  t.is(q.stats.consecutiveFailures, 4);
  down = false;
  clock.advance(8000);
  await settle();
  t.deepEqual(delivered, [1, 2, 3]);
  t.is(q.stats.backlog, 0);
  t.is(q.stats.consecutiveFailures, 0);
  t.deepEqual(results, ['failure', 'failure', 'failure', 'failure', 'success', 'success', 'success']);
});

test("a notifier is told a request's life in order: pending, approved, issued, revoked; each body versioned and free of the credential", async (t) => {
  const x = await world({ approved: false });
  x.w.kube.put(ACCESS_NOTIFIERS, notifier());
  const { hub, sent } = hubOn(x.w);
  await x.pass();
  x.edit((d) => {
    d.status = { ...d.status, conditions: [...(d.status?.conditions ?? []), approvedByBob] } as never;
  });
  await x.pass();
  const secretName = x.dar().status!.secret!.name;
  const secret = x.w.kube.object<{ metadata?: object; data: Record<string, string> }>(SECRETS, NS, secretName)!;
  x.edit((d) => {
    d.metadata.annotations = { ...d.metadata.annotations, [Annotations.revokeNow]: 'now' };
  });
  await x.pass();
  await hub.idle();
  await settle();
  t.deepEqual(
    sent.map((n) => n.event),
    ['Pending', 'Approved', 'Issued', 'Revoked'],
  );
  const pending = sent[0]!;
  t.is(pending.apiVersion, NOTIFICATION_API_VERSION);
  t.is(pending.approveCommand, 'kubectl vault approve postgres-cred-rqst -n demo');
  t.like(pending.request, {
    namespace: NS,
    name: 'postgres-cred-rqst',
    roleKind: 'PostgresRole',
    role: 'demo/psql-role',
    subjects: ['ServiceAccount demo/app'],
    requester: 'alice',
    reason: 'INC-42',
    ttl: '1h',
  });
  t.is(sent[2]!.audit?.decidedBy, 'bob');
  const everything = JSON.stringify(sent) + JSON.stringify(x.w.audit.records) + sent.map(slackText).join('\n');
  const password = Buffer.from(secret.data.password!, 'base64').toString();
  t.true(password.length > 8);
  t.false(everything.includes(password), 'no password in a notification or an audit record');
  t.false(everything.includes(secret.data.password!));
});

test('a notifier that wants some events gets only those; one selecting another role gets nothing', async (t) => {
  const x = await world({ approved: false });
  x.w.kube.put(ACCESS_NOTIFIERS, notifier({ events: ['Issued'] }, 'issued-only'));
  x.w.kube.put(ACCESS_NOTIFIERS, notifier({ roles: [{ name: 'other-role' }] }, 'other-role'));
  const { hub, sent } = hubOn(x.w);
  await x.pass();
  x.edit((d) => {
    d.status = { ...d.status, conditions: [...(d.status?.conditions ?? []), approvedByBob] } as never;
  });
  await x.pass();
  await hub.idle();
  t.deepEqual(
    sent.map((n) => `${n.notifier.name} ${n.event}`),
    ['issued-only Issued'],
  );
});

test('reminders fall due every reminderInterval while a request waits, each sent once; none once it is decided', async (t) => {
  const x = await world({ approved: false });
  const n = notifierOf.namespaced(notifier({ events: ['Reminder'], reminderInterval: '3s' }));
  x.w.kube.put(ACCESS_NOTIFIERS, n.object);
  const { hub, sent } = hubOn(x.w);
  await x.pass();
  t.is(hub.scan(n, x.w.clock.now()), T0 + 3000, 'the first reminder is due 3 s after creation');
  x.w.clock.advance(3000);
  hub.scan(n, x.w.clock.now());
  hub.scan(n, x.w.clock.now());
  x.w.clock.advance(3000);
  hub.scan(n, x.w.clock.now());
  await hub.idle();
  t.deepEqual(
    sent.map((s) => s.event),
    ['Reminder', 'Reminder'],
  );
  t.is(sent[1]!.approveCommand, 'kubectl vault approve postgres-cred-rqst -n demo');
  x.edit((d) => {
    d.status = { ...d.status, conditions: [...(d.status?.conditions ?? []), approvedByBob] } as never;
  });
  await x.pass();
  x.w.clock.advance(60_000);
  t.is(hub.scan(n, x.w.clock.now()), undefined);
  await hub.idle();
  t.is(sent.length, 2);
  const remembered = (hub as unknown as { reminded: Map<string, number> }).reminded;
  t.is(remembered.size, 0, 'a decided request is forgotten: the memory is as large as the requests still waiting');
});

test("Slack text shows a requester's <!channel> or <link|label> as typed: it neither pings nor disguises a link", (t) => {
  const sample = {
    event: 'Pending',
    message: 'waiting for approval: <!here>',
    request: {
      namespace: 'demo',
      name: 'r',
      roleKind: 'PostgresRole',
      role: 'demo/role',
      subjects: ['ServiceAccount demo/app'],
      requester: 'alice',
      reason: '<!channel> <https://evil.example/approve|Approve here> & more',
    },
  } as unknown as Parameters<typeof slackText>[0];
  const text = slackText(sample);
  t.false(/<!channel>|<!here>|<https:/.test(text));
  t.true(text.includes('&lt;!channel&gt; &lt;https://evil.example/approve|Approve here&gt; &amp; more'));
});

test('ExpiringSoon falls due expiringSoonWindow before a lease that is not renewed runs out, once', async (t) => {
  const x = await world({ request: { ttl: '1h', renew: false } });
  const n = notifierOf.namespaced(notifier({ events: ['ExpiringSoon'], expiringSoonWindow: '10m' }));
  x.w.kube.put(ACCESS_NOTIFIERS, n.object);
  const { hub, sent } = hubOn(x.w);
  await x.pass();
  const ends = Date.parse(x.dar().status!.lease!.expiresAt!);
  t.is(expiringSoon(x.dar(), 600_000, x.w.clock.now())?.due, false);
  t.is(hub.scan(n, x.w.clock.now()), ends - 600_000);
  x.w.clock.advance(ends - 600_000 - x.w.clock.now());
  hub.scan(n, x.w.clock.now());
  hub.scan(n, x.w.clock.now());
  await hub.idle();
  t.deepEqual(
    sent.map((s) => s.event),
    ['ExpiringSoon'],
  );
  t.regex(sent[0]!.message, /loses its access soon at /);
  t.is(reminderSchedule(x.dar(), 1000, x.w.clock.now()), undefined, 'an issued request gets no reminders');
});

test("the notifier's status shows the backlog and why deliveries fail, then Ready again once they succeed", async (t) => {
  const x = await world({ approved: false });
  x.w.kube.put(ACCESS_NOTIFIERS, notifier());
  x.w.kube.put(SECRETS, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hook', namespace: NS }, data: {} });
  let failing = true;
  const { hub } = hubOn(x.w, { failing: () => failing });
  const r = new AccessNotifierReconciler(x.w.context, hub, false, 'leasehold-system');
  await x.pass();
  await settle();
  await x.w.reconcile(r, { namespace: NS, name: 'team' });
  const status = () => x.w.kube.object<AccessNotifier>(ACCESS_NOTIFIERS, NS, 'team')!.status!;
  t.is(status().backlog, 1);
  t.like(
    status().conditions?.find((c) => c.type === ConditionType.Ready),
    {
      status: 'False',
      reason: Reason.DeliveryFailing,
    },
  );
  t.regex(status().lastFailureMessage ?? '', /ECONNREFUSED/);
  t.deepEqual(x.w.events.summary({ metadata: { namespace: NS, name: 'team' } }), ['Warning DeliveryFailing']);
  failing = false;
  x.w.clock.advance(1000);
  await settle();
  await x.w.reconcile(r, { namespace: NS, name: 'team' });
  t.is(status().backlog, 0);
  t.like(
    status().conditions?.find((c) => c.type === ConditionType.Ready),
    { status: 'True', reason: Reason.Delivering },
  );
  t.truthy(status().lastSuccessTime);
});

test("a notifier whose Secret doesn't exist says which, and Ready is False", async (t) => {
  const x = await world({ approved: false });
  x.w.kube.put(ACCESS_NOTIFIERS, notifier());
  const { hub } = hubOn(x.w);
  await x.w.reconcile(new AccessNotifierReconciler(x.w.context, hub, false, 'leasehold-system'), {
    namespace: NS,
    name: 'team',
  });
  const ready = x.w.kube
    .object<AccessNotifier>(ACCESS_NOTIFIERS, NS, 'team')!
    .status!.conditions!.find((c) => c.type === ConditionType.Ready)!;
  t.is(ready.reason, Reason.SecretNotFound);
  t.regex(ready.message ?? '', /Secret demo\/hook \(webhook\.urlSecretRef\) and Secret demo\/hook/);
});

// ---- the wire: a real HTTPS receiver ----------------------------------------------------------------------------------

test('over HTTPS with a private CA: the webhook body is signed with the key from the Secret; Slack gets text with the approve command; neither holds a Secret value', async (t) => {
  const receiver = await HttpsReceiver.start();
  t.teardown(() => receiver.down());
  const w = fakeWorld({ startMs: T0 });
  const key = 'a-signing-key-from-a-secret';
  w.kube.put(SECRETS, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'hook', namespace: NS },
    data: {
      url: Buffer.from(receiver.url('/hook')).toString('base64'),
      signingKey: Buffer.from(key).toString('base64'),
    },
  });
  w.kube.put(SECRETS, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'slack', namespace: 'leasehold-system' },
    data: { url: Buffer.from(receiver.url('/services/T0/B0/secret-path')).toString('base64') },
  });
  const sender = new NotificationSender(w.kube, { operatorNamespace: 'leasehold-system' });
  t.teardown(() => sender.close());
  const webhook = notifierOf.namespaced(
    notifier({
      webhook: {
        urlSecretRef: { name: 'hook' },
        signingKeySecretRef: { name: 'hook' },
        caBundle: receiver.caBundle(),
      },
    }),
  );
  const notification: Notification = {
    apiVersion: NOTIFICATION_API_VERSION,
    kind: 'AccessNotification',
    id: 'n-1',
    event: 'Pending',
    at: new Date(T0).toISOString(),
    notifier: { kind: 'AccessNotifier', namespace: NS, name: 'team' },
    request: {
      namespace: NS,
      name: 'r',
      roleKind: 'PostgresRole',
      role: 'demo/psql-role',
      subjects: ['User carol'],
      requester: 'alice',
      reason: 'INC-42',
      ttl: '30m',
    },
    approveCommand: 'kubectl vault approve r -n demo',
    message: 'DatabaseAccessRequest demo/r is waiting for approval',
  };
  await sender.send(webhook, notification);
  const [hook] = receiver.received;
  t.is(hook!.path, '/hook');
  t.is(hook!.headers[Headers.delivery], 'n-1');
  t.true(
    verify(
      key,
      { timestamp: hook!.headers[Headers.timestamp], signature: hook!.headers[Headers.signature], body: hook!.body },
      { nowSeconds: Math.floor(Date.now() / 1000) },
    ),
  );
  t.deepEqual(JSON.parse(hook!.body), notification);

  const slack = clusterNotifier({ slack: { urlSecretRef: { name: 'slack' }, caBundle: receiver.caBundle() } });
  await sender.send(slack, notification);
  const text = (JSON.parse(receiver.received[1]!.body) as { text: string }).text;
  t.regex(text, /kubectl vault approve r -n demo/);
  for (const words of ['demo/r', 'PostgresRole demo/psql-role', 'User carol', 'alice', 'INC-42', '30m'])
    t.true(text.includes(words), words);
  for (const r of receiver.received) {
    t.false(r.body.includes(key));
    t.false(r.body.includes('secret-path'));
  }

  // Without the CA, the receiver's certificate isn't trusted; the error names the host, never the URL's path.
  const untrusted = notifierOf.namespaced(notifier());
  const err = await t.throwsAsync(sender.send(untrusted, notification));
  t.regex(err!.message, /could not reach the webhook at 127\.0\.0\.1:\d+/);
  await receiver.down();
  const down = await t.throwsAsync(sender.send(slack, notification));
  t.false(down!.message.includes('secret-path'));
});

test('the backlog gauge and the delivery counter carry the notifier', async (t) => {
  const x = await world({ approved: false });
  x.w.kube.put(ACCESS_NOTIFIERS, notifier());
  x.w.kube.put(NAMESPACES, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const { hub, registry } = hubOn(x.w);
  await x.pass();
  await hub.idle();
  const text = await registry.metrics();
  t.regex(text, /leasehold_notifications_total\{notifier="demo\/team",result="success"\} 1/);
  t.regex(text, /leasehold_notification_backlog\{notifier="demo\/team"\} 0/);
});

test("a ClusterAccessNotifier reads its Secret from the operator's namespace and is told about the namespaces it selects", async (t) => {
  const x = await world({ approved: false });
  x.w.kube.put(CLUSTER_ACCESS_NOTIFIERS, {
    apiVersion: 'leasehold.dev/v1alpha1',
    kind: 'ClusterAccessNotifier',
    metadata: { name: 'oncall', generation: 1 },
    spec: { namespaceSelector: { matchLabels: { team: 'payments' } }, slack: { urlSecretRef: { name: 'slack' } } },
  } as ClusterAccessNotifier);
  x.w.kube.put(SECRETS, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'slack', namespace: 'leasehold-system' },
    data: {},
  });
  x.w.kube.put(NAMESPACES, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NS, labels: { team: 'payments' } },
  });
  const { hub, sent } = hubOn(x.w);
  await x.pass();
  await hub.idle();
  t.deepEqual(
    sent.map((n) => `${n.notifier.kind} ${n.notifier.name} ${n.event}`),
    ['ClusterAccessNotifier oncall Pending'],
  );
  await x.w.reconcile(new AccessNotifierReconciler(x.w.context, hub, true, 'leasehold-system'), {
    namespace: '',
    name: 'oncall',
  });
  const stored = x.w.kube.object<ClusterAccessNotifier>(CLUSTER_ACCESS_NOTIFIERS, '', 'oncall')!;
  t.like(
    stored.status?.conditions?.find((c) => c.type === ConditionType.Ready),
    {
      status: 'True',
      reason: Reason.Delivering,
    },
  );
});
