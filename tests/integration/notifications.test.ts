// Notifications on the real stack: an AccessNotifier posting signed JSON to a local HTTPS receiver (its own test
// CA, trusted through the notifier's caBundle) and a ClusterAccessNotifier posting Slack-compatible text to the same
// receiver under another path, its Secret in the operator's namespace. The operator runs as its own process.
// Assertions are on what the receiver got, waited for with generous deadlines (speed is the benchmark's business).
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import YAML from 'yaml';
import { Headers, verify } from '../../controllers/accessnotifier/notifier.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import { kubectl } from '../../scripts/stack/leasehold-setup.ts';
import { HttpsReceiver, type Received } from '../fakes/https-receiver.ts';
import { decide, getCr, prepareGuide, sampleIn } from './helpers/leasehold.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';

type Ctx = StackContext & { operator: OperatorProcess; receiver: HttpsReceiver };
const test = anyTest as TestFn<Ctx>;
useStack(test);

const NS = 'demo';
const SIGNING_KEY = 'integration-test-signing-key-0123456789';

type Body = {
  apiVersion: string;
  id: string;
  event: string;
  at: string;
  request: { namespace: string; name: string; requester: string; role: string };
  approveCommand?: string;
  audit?: { action: string; leaseId?: string };
};

const hook = (t: ExecutionContext<Ctx>): Array<Received & { json: Body }> =>
  t.context.receiver.received
    .filter((r) => r.path === '/hook')
    .map((r) => ({ ...r, json: JSON.parse(r.body) as Body }));
const slack = (t: ExecutionContext<Ctx>): string[] =>
  t.context.receiver.received
    .filter((r) => r.path.startsWith('/slack/'))
    .map((r) => (JSON.parse(r.body) as { text: string }).text);
const eventsFor = (t: ExecutionContext<Ctx>, name: string) =>
  hook(t)
    .filter((r) => r.json.request.name === name)
    .map((r) => r.json.event);

function secretYaml(name: string, namespace: string, data: Record<string, string>): string {
  return YAML.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, stringData: data });
}

type NotifierStatus = {
  backlog?: number;
  conditions?: { type: string; status: string; reason: string }[];
  lastSuccessTime?: string;
};

function notifierStatus(t: ExecutionContext<Ctx>, name: string): NotifierStatus | undefined {
  const out = kubectl(t.context.env, ['get', 'accessnotifier', name, '-n', NS, '-o', 'json']);
  return (JSON.parse(out) as { status?: NotifierStatus }).status;
}

test.before(async (t) => {
  const { env } = t.context;
  await prepareGuide(env);
  const receiver = (t.context.receiver = await HttpsReceiver.start());
  kubectl(env, ['apply', '-f', 'manifests/samples/30-postgres-secret-engine.yaml']);
  kubectl(env, ['apply', '-f', 'manifests/samples/40-postgres-role.yaml']);
  kubectl(
    env,
    ['apply', '-f', '-'],
    [
      secretYaml('hook', NS, { url: receiver.url('/hook'), signingKey: SIGNING_KEY }),
      YAML.stringify({
        apiVersion: 'leasehold.dev/v1alpha1',
        kind: 'AccessNotifier',
        metadata: { name: 'audit-hook', namespace: NS },
        spec: {
          reminderInterval: '3s',
          webhook: {
            urlSecretRef: { name: 'hook' },
            signingKeySecretRef: { name: 'hook' },
            caBundle: receiver.caBundle(),
          },
        },
      }),
      secretYaml('slack', 'leasehold-system', { url: receiver.url('/slack/T000/B000/not-for-payloads') }),
      YAML.stringify({
        apiVersion: 'leasehold.dev/v1alpha1',
        kind: 'ClusterAccessNotifier',
        metadata: { name: 'approvers' },
        spec: {
          namespaces: [NS],
          events: ['Pending'],
          slack: { urlSecretRef: { name: 'slack' }, caBundle: receiver.caBundle() },
        },
      }),
    ].join('---\n'),
  );
  t.context.operator = await startOperator(env);
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    await receiver.down();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
  await eventually(
    t,
    'psql-role ready',
    async () => (await getCr(env, 'postgresroles', NS, 'psql-role'))?.status?.phase === 'Success',
    90_000,
  );
});

test.serial(
  'a new request reaches the webhook, signed with the key from the Secret; Slack gets the approve command',
  async (t) => {
    kubectl(t.context.env, ['apply', '-f', '-'], sampleIn('50-postgres-access-request.yaml', NS, 'wants-access'));
    const pending = await eventually(
      t,
      'the Pending notification of wants-access',
      async () => hook(t).find((r) => r.json.event === 'Pending' && r.json.request.name === 'wants-access'),
      60_000,
    );
    t.is(pending.json.apiVersion, 'leasehold.dev/notification/v1');
    t.is(pending.json.approveCommand, 'kubectl vault approve wants-access -n demo');
    t.is(pending.json.audit?.action, 'WaitingForApproval');
    t.true(
      verify(
        SIGNING_KEY,
        {
          timestamp: pending.headers[Headers.timestamp],
          signature: pending.headers[Headers.signature],
          body: pending.body,
        },
        { nowSeconds: Math.floor(Date.now() / 1000) },
      ),
      'the signature checks out',
    );
    t.false(
      verify(
        'another-key',
        {
          timestamp: pending.headers[Headers.timestamp],
          signature: pending.headers[Headers.signature],
          body: pending.body,
        },
        { nowSeconds: Math.floor(Date.now() / 1000) },
      ),
    );
    const text = await eventually(
      t,
      'the Slack text of wants-access',
      async () => slack(t).find((s) => s.includes('demo/wants-access')),
      60_000,
    );
    t.true(text.includes('`kubectl vault approve wants-access -n demo`'), text);
    t.regex(text, /Role: PostgresRole demo\/psql-role/);
    t.regex(text, /Subjects: ServiceAccount demo\/demo-sa/);
    await eventually(
      t,
      'the ClusterAccessNotifier Ready, with its last success recorded',
      async () => {
        const out = kubectl(t.context.env, ['get', 'clusteraccessnotifier', 'approvers', '-o', 'json']);
        const s = (JSON.parse(out) as { status?: NotifierStatus }).status;
        return s?.lastSuccessTime && s.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      },
      60_000,
    );
  },
);

test.serial('reminders arrive every reminderInterval while the request waits', async (t) => {
  await eventually(
    t,
    'two reminders of wants-access',
    async () => eventsFor(t, 'wants-access').filter((e) => e === 'Reminder').length >= 2,
    60_000,
  );
  const reminders = hook(t).filter((r) => r.json.event === 'Reminder' && r.json.request.name === 'wants-access');
  t.is(reminders[0]!.json.approveCommand, 'kubectl vault approve wants-access -n demo');
  t.is(new Set(reminders.map((r) => r.json.id)).size, reminders.length, 'each reminder is its own notification');
  t.true(Date.parse(reminders[1]!.json.at) > Date.parse(reminders[0]!.json.at));
});

test.serial(
  'the receiver down for 30 s loses nothing: the status shows the backlog, then all of it arrives in order',
  async (t) => {
    const { env, receiver } = t.context;
    await receiver.down();
    const downAt = Date.now();
    await decide(env, NS, 'wants-access', 'Approved');
    await eventually(
      t,
      'the notifier showing a backlog and failing deliveries',
      async () => {
        const s = notifierStatus(t, 'audit-hook');
        const ready = s?.conditions?.find((c) => c.type === 'Ready');
        return (s?.backlog ?? 0) >= 1 && ready?.status === 'False' && ready.reason === 'DeliveryFailing';
      },
      60_000,
    );
    await eventually(
      t,
      'wants-access issued while the receiver is down',
      async () => (await getCr(env, 'databaseaccessrequests', NS, 'wants-access'))?.status?.lease?.id,
      90_000,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - downAt))));
    const before = hook(t).length;
    await receiver.up();
    await eventually(
      t,
      'the Approved and Issued notifications of wants-access after the receiver came back',
      async () => eventsFor(t, 'wants-access').includes('Issued'),
      180_000,
    );
    const life = eventsFor(t, 'wants-access').filter((e) => e !== 'Reminder');
    t.deepEqual(life, ['Pending', 'Approved', 'Issued'], 'delivered once each, in the order they happened');
    const after = hook(t).slice(before);
    const at = after.map((r) => Date.parse(r.json.at));
    t.deepEqual(
      at,
      [...at].sort((a, b) => a - b),
      'the backlog arrived in order',
    );
    await eventually(
      t,
      'the notifier Ready with nothing left',
      async () => {
        const s = notifierStatus(t, 'audit-hook');
        return (
          s?.backlog === 0 && s.conditions?.find((c) => c.type === 'Ready')?.status === 'True' && s.lastSuccessTime
        );
      },
      60_000,
    );
    const metrics = await (await fetch(t.context.operator.metricsUrl)).text();
    t.regex(metrics, /leasehold_notifications_total\{notifier="demo\/audit-hook",result="failure"\} [1-9]/);
    t.regex(metrics, /leasehold_notification_backlog\{notifier="demo\/audit-hook"\} 0/);
  },
);

test.serial('no notification and no audit line holds the password', async (t) => {
  const { env } = t.context;
  const dar = await getCr(env, 'databaseaccessrequests', NS, 'wants-access');
  const secret = JSON.parse(kubectl(env, ['get', 'secret', '-n', NS, dar.status.secret.name, '-o', 'json'])) as {
    data: { password: string };
  };
  const password = Buffer.from(secret.data.password, 'base64').toString();
  t.true(password.length >= 8);
  const issuedNote = hook(t).find((r) => r.json.event === 'Issued' && r.json.request.name === 'wants-access');
  t.is(issuedNote?.json.audit?.leaseId, dar.status.lease.id, 'the Issued notification names the lease');
  for (const r of t.context.receiver.received) {
    t.false(r.body.includes(password));
    t.false(r.body.includes(secret.data.password));
    t.false(r.body.includes(SIGNING_KEY));
    t.false(r.body.includes('not-for-payloads'));
  }
  const audit = t.context.operator
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{"audit":') && l.includes('demo/wants-access'))
    .map((l) => (JSON.parse(l) as { audit: { action: string } }).audit.action);
  t.deepEqual(audit, ['WaitingForApproval', 'RequestApproved', 'SuccessfullyIssuedCredential']);
  t.false(t.context.operator.logs().includes(password));
});

test.serial('the API server refuses a notifier naming both a webhook and Slack, or neither', (t) => {
  const attempt = (spec: Record<string, unknown>) => {
    try {
      kubectl(
        t.context.env,
        ['apply', '-f', '-'],
        YAML.stringify({
          apiVersion: 'leasehold.dev/v1alpha1',
          kind: 'AccessNotifier',
          metadata: { name: 'malformed', namespace: NS },
          spec,
        }),
      );
      return '';
    } catch (err) {
      return String((err as { stderr?: string }).stderr ?? err);
    }
  };
  const webhook = { urlSecretRef: { name: 'hook' }, signingKeySecretRef: { name: 'hook' } };
  t.regex(attempt({ webhook, slack: { urlSecretRef: { name: 'slack' } } }), /set exactly one of webhook and slack/);
  t.regex(attempt({ events: ['Pending'] }), /set exactly one of webhook and slack/);
  t.regex(attempt({ webhook, events: ['Sometimes'] }), /Unsupported value: "Sometimes"/);
});
