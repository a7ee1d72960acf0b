// Approval that means something, against the real stack with the admission policies of
// manifests/admission installed and several users with different RBAC:
//   alice: requests (leasehold-requester) and may approve (leasehold-approver) in demo;
//   bob:   approves (leasehold-approver) in demo;
//   alice and bob may also approve in shared, where a role requests from demo may use lives;
//   carol: requests, and may write requests' status but holds no `approve`.
// The operator runs as its own process (as a cluster administrator, as everywhere in the tests).
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import YAML from 'yaml';
import { getCr as getCrIn, sample } from './helpers/leasehold.ts';
import { kubectlAs, prepareGuideForPeople, type Person } from './helpers/people.ts';
import { eventually, useStack, type StackContext } from './helpers/stack.ts';
import { startOperator, type OperatorProcess } from '../../scripts/stack/operator.ts';
import { kubectl } from '../../scripts/stack/leasehold-setup.ts';

type Ctx = StackContext & { operator: OperatorProcess };
const test = anyTest as TestFn<Ctx>;
useStack(test);

type User = Person;
const NS = 'demo';

/** kubectl as a user; never throws. */
const as = (t: ExecutionContext<Ctx>, user: User, args: string[], input?: string) =>
  kubectlAs(t.context.env, user, args, input);

/** `kubectl vault ARGS` as a user. */
const vault = (t: ExecutionContext<Ctx>, user: User, args: string[]) => as(t, user, ['vault', ...args]);

const getCr = (t: ExecutionContext<Ctx>, plural: string, name: string, ns = NS) =>
  getCrIn(t.context.env, plural, ns, name);

/** The guide's PostgresRole under another name, with an approval policy. */
function roleYaml(name: string, approval?: Record<string, unknown>, ns = NS): string {
  const doc = sample('40-postgres-role.yaml')[0] as {
    metadata: { name: string; namespace: string };
    spec: Record<string, unknown>;
  };
  doc.metadata = { name, namespace: ns };
  if (approval) doc.spec.approval = approval;
  return YAML.stringify(doc);
}

/** The guide's DatabaseAccessRequest under another name, for another role, with more spec. */
function requestYaml(
  name: string,
  role = 'psql-role',
  spec: Record<string, unknown> = {},
  annotations?: Record<string, string>,
  roleNs = NS,
): string {
  const doc = sample('50-postgres-access-request.yaml')[0] as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown> & { roleRef: Record<string, unknown> };
  };
  doc.metadata = { name, namespace: NS, ...(annotations ? { annotations } : {}) };
  doc.spec.roleRef = { ...doc.spec.roleRef, name: role, namespace: roleNs };
  Object.assign(doc.spec, spec);
  return YAML.stringify(doc);
}

const requesterOf = (o: { metadata?: { annotations?: Record<string, string> } } | undefined) => {
  const v = o?.metadata?.annotations?.['leasehold.dev/requester'];
  return v ? (JSON.parse(v) as { username: string; uid: string; groups: string[] }) : undefined;
};

/** A decision as a person writes it by hand (kubectl patch on the status subresource). */
function decisionPatch(user: string, type: 'Approved' | 'Denied' = 'Approved', reason = 'KubectlApprove'): string {
  return JSON.stringify({
    status: {
      conditions: [
        {
          type,
          status: 'True',
          reason,
          message: `This was ${type === 'Approved' ? 'approved' : 'denied'} by: ${user}`,
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      ],
    },
  });
}

async function phaseOf(t: ExecutionContext<Ctx>, name: string, phase: string, timeoutMs = 60_000) {
  return eventually(
    t,
    `${name} in phase ${phase}`,
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', name);
      return o?.status?.phase === phase ? o : undefined;
    },
    timeoutMs,
  );
}

async function issued(t: ExecutionContext<Ctx>, name: string) {
  return eventually(
    t,
    `${name} issued`,
    async () => {
      const o = await getCr(t, 'databaseaccessrequests', name);
      return o?.status?.lease?.id && o.status.secret?.name ? o : undefined;
    },
    90_000,
  );
}

test.before(async (t) => {
  const { env } = t.context;
  await prepareGuideForPeople(
    env,
    [
      ['alice', 'leasehold-requester'],
      ['alice', 'leasehold-approver'],
      ['bob', 'leasehold-approver'],
      ['carol', 'leasehold-requester'],
    ],
    {
      between: () => {
        kubectl(env, ['create', 'namespace', 'shared']);
        for (const user of ['alice', 'bob'])
          kubectl(env, [
            '-n',
            'shared',
            'create',
            'rolebinding',
            `${user}-approver`,
            '--clusterrole=leasehold-approver',
            `--user=${user}`,
          ]);
        // carol may write requests' status (as a too-broad Role might let her) but holds no `approve`.
        kubectl(env, [
          '-n',
          NS,
          'create',
          'role',
          'status-writer',
          '--verb=get,list,patch,update',
          '--resource=databaseaccessrequests.engine.kubevault.com',
          '--resource=databaseaccessrequests.engine.kubevault.com/status',
        ]);
        kubectl(env, [
          '-n',
          NS,
          'create',
          'rolebinding',
          'carol-status-writer',
          '--role=status-writer',
          '--user=carol',
        ]);
      },
    },
  );
  t.context.operator = await startOperator(env);
  const operator = t.context.operator;
  (t.context.cleanups ??= []).push(async () => {
    await operator.stop();
    if (process.env.LEASEHOLD_TEST_LOGS) process.stderr.write(operator.logs());
  });
  await eventually(
    t,
    'psql-role ready',
    async () => (await getCr(t as never, 'postgresroles', 'psql-role'))?.status?.phase === 'Success',
    90_000,
  );
});

test.serial(
  "the requester is recorded from the guide's manifest unchanged, shown by kubectl vault get, and can't be forged or changed",
  async (t) => {
    const applied = as(t, 'alice', ['apply', '-f', 'manifests/samples/50-postgres-access-request.yaml']);
    t.is(applied.code, 0, applied.stderr);
    const dar = await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst');
    t.deepEqual(requesterOf(dar), { username: 'alice', uid: 'alice-uid', groups: ['system:authenticated'] });
    await eventually(
      t,
      'status.requester',
      async () =>
        (await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst'))?.status?.requester?.username === 'alice',
    );
    const get = vault(t, 'bob', ['get', 'dar', 'postgres-cred-rqst', '-n', NS]);
    t.is(get.code, 0, get.stderr);
    t.regex(get.stdout, /REQUESTER/);
    t.regex(get.stdout.split('\n')[1] ?? '', /\balice\b/);

    // Forged on create: the API server records who really asked.
    const forged = as(
      t,
      'alice',
      ['create', '-f', '-'],
      requestYaml(
        'forged',
        'psql-role',
        {},
        { 'leasehold.dev/requester': JSON.stringify({ username: 'bob', uid: 'bob-uid', groups: [] }) },
      ),
    );
    t.is(forged.code, 0, forged.stderr);
    t.is(requesterOf(await getCr(t, 'databaseaccessrequests', 'forged'))?.username, 'alice');

    // Changed later: by no one, not even a cluster administrator.
    for (const user of ['alice', 'admin'] as const) {
      const r = as(t, user, [
        'annotate',
        '--overwrite',
        '-n',
        NS,
        'dar',
        'forged',
        'leasehold.dev/requester={"username":"bob","uid":"","groups":[]}',
      ]);
      t.not(r.code, 0, user);
      if (user === 'admin')
        t.regex(
          r.stderr,
          /leasehold\.dev\/requester annotation records who created the request and can't be added, changed or removed/,
        );
    }
    t.not(as(t, 'admin', ['annotate', '-n', NS, 'dar', 'forged', 'leasehold.dev/requester-']).code, 0);
    // Nor its copy in status, by someone who may write status.
    const status = as(t, 'bob', [
      'patch',
      '-n',
      NS,
      'dar',
      'forged',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { requester: { username: 'bob' } } }),
    ]);
    t.regex(status.stderr, /status\.requester is written by the operator/);
    t.is(requesterOf(await getCr(t, 'databaseaccessrequests', 'forged'))?.username, 'alice');
  },
);

test.serial('a user who may write status but holds no approve is refused by the API server, in words', async (t) => {
  const r = vault(t, 'carol', ['approve', 'dar', 'postgres-cred-rqst', '-n', NS]);
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /user carol may not approve requests for PostgresRole demo\/psql-role: that takes the RBAC verb "approve" on postgresroles \(group engine\.kubevault\.com\) named psql-role in namespace demo/,
  );
  const deny = vault(t, 'carol', ['deny', 'dar', 'postgres-cred-rqst', '-n', NS]);
  t.regex(deny.stderr, /user carol may not deny requests/);
  // By hand, naming someone else as the decider, or claiming the operator's reason, doesn't help either.
  const forgedDecider = as(t, 'bob', [
    'patch',
    '-n',
    NS,
    'dar',
    'postgres-cred-rqst',
    '--subresource=status',
    '--type=merge',
    '-p',
    decisionPatch('dave'),
  ]);
  t.regex(forgedDecider.stderr, /its message must start with "This was approved by: bob"/);
  const auto = as(t, 'bob', [
    'patch',
    '-n',
    NS,
    'dar',
    'postgres-cred-rqst',
    '--subresource=status',
    '--type=merge',
    '-p',
    decisionPatch('bob', 'Approved', 'AutoApproved'),
  ]);
  t.regex(auto.stderr, /reason AutoApproved is reserved for the operator/);
  t.falsy(
    (await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst'))?.status?.conditions?.find(
      (c: { type: string }) => c.type === 'Approved',
    ),
  );
});

test.serial("the requester can't approve their own request (four eyes)", async (t) => {
  const r = vault(t, 'alice', ['approve', 'dar', 'postgres-cred-rqst', '-n', NS]);
  t.is(r.code, 1);
  t.regex(r.stderr, /user alice created this request and can't approve it too \(four eyes\)/);
  // Denying one's own request is withdrawing it: allowed.
  t.is(vault(t, 'alice', ['deny', 'dar', 'forged', '-n', NS, '--message', 'not needed after all']).code, 0);
  await phaseOf(t, 'forged', 'Denied');
});

test.serial('an approver with approve on the role approves; the decision names them and is audited', async (t) => {
  const r = vault(t, 'bob', [
    'approve',
    'dar',
    'postgres-cred-rqst',
    '-n',
    NS,
    '--reason',
    'OnCallApproval',
    '--message',
    'ticket OPS-1',
  ]);
  t.is(r.code, 0, r.stderr);
  const dar = await issued(t, 'postgres-cred-rqst');
  const approved = dar.status.conditions.find((c: { type: string }) => c.type === 'Approved');
  t.is(approved.reason, 'OnCallApproval');
  t.regex(approved.message, /^This was approved by: bob \(with kubectl vault approve\): ticket OPS-1$/);
  t.is(dar.status.requester.username, 'alice');

  const events = JSON.parse(
    kubectl(t.context.env, [
      'get',
      'events',
      '-n',
      NS,
      '--field-selector',
      'involvedObject.name=postgres-cred-rqst',
      '-o',
      'json',
    ]),
  ) as { items: { reason: string; message: string }[] };
  const byReason = (reason: string) => events.items.find((e) => e.reason === reason)?.message ?? '';
  // One Event per grant: the approval's audit record is the log line below, and the credential's Event names the approver.
  t.is(byReason('RequestApproved'), '');
  t.regex(
    byReason('SuccessfullyIssuedCredential'),
    /\[for ServiceAccount demo\/demo-sa on PostgresRole demo\/psql-role; requested by alice; approved by bob\]/,
  );
  await eventually(t, 'audit lines in the operator log', async () => {
    const lines = t.context.operator
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{"audit":') && l.includes('postgres-cred-rqst'));
    const actions = lines.map(
      (l) => (JSON.parse(l) as { audit: { action: string; requester: string; decidedBy?: string } }).audit,
    );
    const issue = actions.find((a) => a.action === 'SuccessfullyIssuedCredential');
    return (
      actions.some((a) => a.action === 'RequestApproved' && a.decidedBy === 'bob' && a.requester === 'alice') &&
      issue?.decidedBy === 'bob'
    );
  });
  // No credential in any audit line.
  const secret = JSON.parse(
    kubectl(t.context.env, ['get', 'secret', '-n', NS, dar.status.secret.name, '-o', 'json']),
  ) as { data: { password: string } };
  t.false(t.context.operator.logs().includes(Buffer.from(secret.data.password, 'base64').toString()));
});

test.serial(
  "an approver can't rewrite what the operator recorded: the lease, the Vault AppBinding it revokes through, the phase",
  async (t) => {
    const before = await issued(t, 'postgres-cred-rqst');
    const forgeries: Array<[string, Record<string, unknown>]> = [
      [
        'the Vault AppBinding of the issuance',
        { issuance: { ...before.status.issuance, vaultAppBinding: { name: 'vault', namespace: 'shared' } } },
      ],
      ['the lease id', { lease: { ...before.status.lease, id: 'my-postgres-se/creds/k8s.-.other.role/abc' } }],
      [
        'a rotated-out lease',
        {
          previousLeases: [
            {
              id: 'my-postgres-se/creds/k8s.-.other.role/abc',
              vaultAppBinding: { name: 'vault', namespace: 'shared' },
            },
          ],
        },
      ],
      ['the phase', { phase: 'Revoked' }],
      [
        'another condition',
        {
          conditions: [
            ...before.status.conditions.filter((c: { type: string }) => c.type !== 'Available'),
            {
              type: 'Available',
              status: 'False',
              reason: 'Forged',
              message: 'x',
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
            },
          ],
        },
      ],
    ];
    for (const [what, status] of forgeries) {
      const r = as(t, 'bob', [
        'patch',
        '-n',
        NS,
        'dar',
        'postgres-cred-rqst',
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status }),
      ]);
      t.not(r.code, 0, `bob changed ${what}`);
      t.regex(r.stderr, /only the Approved and Denied conditions may be written by hand/, what);
    }
    const after = await getCr(t, 'databaseaccessrequests', 'postgres-cred-rqst');
    t.deepEqual(after.status.issuance, before.status.issuance);
    t.is(after.status.lease.id, before.status.lease.id);
  },
);

test.serial('a role may require a reason: a request without one is refused, and so is approving one', async (t) => {
  const { env } = t.context;
  kubectl(env, ['apply', '-f', '-'], roleYaml('reason-role', { requireReason: true }));
  const refused = await eventually(t, 'a request without a reason refused', async () => {
    const r = as(t, 'alice', ['create', '--dry-run=server', '-f', '-'], requestYaml('no-reason', 'reason-role'));
    return r.code !== 0 ? r : undefined;
  });
  t.regex(refused.stderr, /PostgresRole demo\/reason-role requires a reason: set spec\.reason/);
  t.is(
    as(
      t,
      'alice',
      ['create', '-f', '-'],
      requestYaml('with-reason', 'reason-role', { reason: 'INC-42: broken invoices' }),
    ).code,
    0,
  );
  t.is(vault(t, 'bob', ['approve', 'dar', 'with-reason', '-n', NS]).code, 0);

  // A request made before the role required a reason can't be approved once it does.
  kubectl(env, ['apply', '-f', '-'], roleYaml('later-role'));
  t.is(as(t, 'alice', ['create', '-f', '-'], requestYaml('late', 'later-role')).code, 0);
  kubectl(env, ['apply', '-f', '-'], roleYaml('later-role', { requireReason: true }));
  const patch = ['patch', '-n', NS, 'dar', 'late', '--subresource=status', '--type=merge', '-p', decisionPatch('bob')];
  await eventually(
    t,
    'the API server to see the new role',
    async () => as(t, 'bob', [...patch, '--dry-run=server']).code !== 0,
  );
  const r = vault(t, 'bob', ['approve', 'dar', 'late', '-n', NS]);
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /this request can't be approved: PostgresRole demo\/later-role requires a reason and the request has no spec\.reason/,
  );
});

test.serial(
  'a MySQLRole, MariaDBRole or RedisRole is approved as a PostgresRole is: approve on its own resource, four eyes, its required reason',
  async (t) => {
    const { env } = t.context;
    // Admission needs only the roles (not a database): their SecretEngine need not exist.
    const role = (kind: string, name: string, approval?: Record<string, unknown>) =>
      YAML.stringify({
        apiVersion: 'engine.kubevault.com/v1alpha1',
        kind,
        metadata: { name, namespace: NS },
        spec: {
          secretEngineRef: { name: 'absent' },
          creationStatements: [
            kind === 'RedisRole' ? '["~*", "+@read"]' : "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';",
          ],
          ...(approval ? { approval } : {}),
        },
      });
    const request = (name: string, kind: string, roleName: string, reason?: string) =>
      YAML.stringify({
        apiVersion: 'engine.kubevault.com/v1alpha1',
        kind: 'DatabaseAccessRequest',
        metadata: { name, namespace: NS },
        spec: {
          roleRef: { kind, name: roleName },
          subjects: [{ kind: 'ServiceAccount', name: 'demo-sa', namespace: NS }],
          ...(reason ? { reason } : {}),
        },
      });
    kubectl(
      env,
      ['apply', '-f', '-'],
      [
        role('MySQLRole', 'shop-mysql'),
        role('MariaDBRole', 'shop-mariadb'),
        role('RedisRole', 'cache-redis', { requireReason: true }),
      ].join('---\n'),
    );
    // A PostgresRole of the same name requiring a reason applies to PostgresRole requests only.
    kubectl(env, ['apply', '-f', '-'], roleYaml('shop-mysql', { requireReason: true }));

    // RedisRole's requireReason, checked by its own policy.
    const refused = await eventually(t, 'a RedisRole request without a reason refused', async () => {
      const r = as(
        t,
        'alice',
        ['create', '--dry-run=server', '-f', '-'],
        request('cache-no-reason', 'RedisRole', 'cache-redis'),
      );
      return r.code !== 0 ? r : undefined;
    });
    t.regex(refused.stderr, /RedisRole demo\/cache-redis requires a reason: set spec\.reason/);
    t.is(
      as(t, 'alice', ['create', '-f', '-'], request('mysql-rqst', 'MySQLRole', 'shop-mysql')).code,
      0,
      'the PostgresRole of that name does not apply',
    );
    t.is(as(t, 'alice', ['create', '-f', '-'], request('mariadb-rqst', 'MariaDBRole', 'shop-mariadb')).code, 0);

    // approve on mysqlroles is what it takes; carol has none.
    const carol = vault(t, 'carol', ['approve', 'dar', 'mysql-rqst', '-n', NS]);
    t.regex(
      carol.stderr,
      /user carol may not approve requests for MySQLRole demo\/shop-mysql: that takes the RBAC verb "approve" on mysqlroles \(group engine\.kubevault\.com\) named shop-mysql in namespace demo/,
    );
    t.regex(vault(t, 'alice', ['approve', 'dar', 'mysql-rqst', '-n', NS]).stderr, /four eyes/);
    for (const name of ['mysql-rqst', 'mariadb-rqst']) {
      const bob = vault(t, 'bob', ['approve', 'dar', name, '-n', NS]);
      t.is(bob.code, 0, bob.stderr);
    }
  },
);

test.serial(
  "a role in another namespace: the operator refuses to issue without its required reason (the policy can't see that role)",
  async (t) => {
    const { env } = t.context;
    kubectl(
      env,
      ['apply', '-f', '-'],
      roleYaml('shared-role', { requireReason: true }, 'shared').replace(
        'spec:',
        'spec:\n  allowedRequestNamespaces: [demo]',
      ),
    );
    t.is(as(t, 'alice', ['create', '-f', '-'], requestYaml('cross', 'shared-role', {}, undefined, 'shared')).code, 0);
    // Four eyes still holds at the API server for a role elsewhere.
    t.regex(vault(t, 'alice', ['approve', 'dar', 'cross', '-n', NS]).stderr, /four eyes/);
    const r = vault(t, 'bob', ['approve', 'dar', 'cross', '-n', NS]);
    t.is(r.code, 0, r.stderr);
    const dar = await phaseOf(t, 'cross', 'Failed');
    const failed = dar.status.conditions.find((c: { type: string }) => c.type === 'Failed');
    t.is(failed.reason, 'ReasonRequired');
    t.falsy(dar.status.lease);
    t.falsy(dar.status.issuance);
  },
);

test.serial(
  "an undecided request expires after the role's pendingTTL, with nothing issued, and can't be decided after",
  async (t) => {
    kubectl(t.context.env, ['apply', '-f', '-'], roleYaml('short-role', { pendingTTL: '5s' }));
    const created = Date.now();
    t.is(as(t, 'alice', ['create', '-f', '-'], requestYaml('too-slow', 'short-role')).code, 0);
    const waiting = await phaseOf(t, 'too-slow', 'WaitingForApproval');
    t.regex(waiting.status.conditions.find((c: { type: string }) => c.type === 'Available').message, /expires at/);
    const dar = await phaseOf(t, 'too-slow', 'Expired', 30_000);
    t.true(Date.now() - created >= 4_000);
    const expired = dar.status.conditions.find((c: { type: string }) => c.type === 'Expired');
    t.is(expired.reason, 'ApprovalTimedOut');
    t.regex(expired.message, /within 5s .*nothing was issued/);
    t.falsy(dar.status.lease);
    t.falsy(dar.status.secret);
    const late = as(t, 'bob', [
      'patch',
      '-n',
      NS,
      'dar',
      'too-slow',
      '--subresource=status',
      '--type=merge',
      '-p',
      decisionPatch('bob'),
    ]);
    t.regex(late.stderr, /the request expired waiting for a decision/);
  },
);

test.serial("auto-approval approves only what the role's policy allows", async (t) => {
  kubectl(
    t.context.env,
    ['apply', '-f', '-'],
    roleYaml('auto-role', { autoApprove: { subjects: [{ kind: 'User', name: 'carol' }], maxTTL: '10m' } }),
  );
  await eventually(
    t,
    'auto-role ready',
    async () => (await getCr(t, 'postgresroles', 'auto-role'))?.status?.phase === 'Success',
    60_000,
  );
  t.is(
    as(t, 'carol', ['create', '-f', '-'], requestYaml('carol-short', 'auto-role', { ttl: '5m', renew: false })).code,
    0,
  );
  t.is(
    as(t, 'carol', ['create', '-f', '-'], requestYaml('carol-long', 'auto-role', { ttl: '1h', renew: false })).code,
    0,
  );
  t.is(as(t, 'carol', ['create', '-f', '-'], requestYaml('carol-renewing', 'auto-role', { ttl: '5m' })).code, 0);
  t.is(
    as(t, 'alice', ['create', '-f', '-'], requestYaml('alice-short', 'auto-role', { ttl: '5m', renew: false })).code,
    0,
  );

  const dar = await issued(t, 'carol-short');
  const approved = dar.status.conditions.find((c: { type: string }) => c.type === 'Approved');
  t.is(approved.reason, 'AutoApproved');
  t.regex(
    approved.message,
    /^This was approved by: leasehold \(autoApprove of PostgresRole demo\/auto-role: requester carol matches User carol; ttl 5m0s is within 10m\)$/,
  );

  for (const [name, why] of [
    ['carol-long', /not auto-approved: ttl 1h0m0s is longer than autoApprove's maxTTL 10m/],
    ['carol-renewing', /not auto-approved: .*set spec\.renew: false/],
    ['alice-short', /not auto-approved: requester alice is none of autoApprove's subjects/],
  ] as const) {
    const o = await phaseOf(t, name, 'WaitingForApproval');
    const available = o.status.conditions.find((c: { type: string }) => c.type === 'Available');
    t.regex(available.message, why, name);
    t.falsy(
      o.status.conditions.find((c: { type: string }) => c.type === 'Approved'),
      name,
    );
  }
});

test.serial(
  'a role may allow self-approval; a cluster administrator may always approve their own request',
  async (t) => {
    kubectl(t.context.env, ['apply', '-f', '-'], roleYaml('dev-role', { allowSelfApproval: true }));
    t.is(as(t, 'alice', ['create', '-f', '-'], requestYaml('self-dev', 'dev-role')).code, 0);
    const ok = await eventually(t, 'alice approves her own request for dev-role', async () => {
      const r = vault(t, 'alice', ['approve', 'dar', 'self-dev', '-n', NS]);
      return r.code === 0 ? r : undefined;
    });
    t.regex(ok.stdout, /approved/);

    t.is(as(t, 'admin', ['create', '-f', '-'], requestYaml('admins-own')).code, 0);
    t.is(requesterOf(await getCr(t, 'databaseaccessrequests', 'admins-own'))?.username, 'admin');
    const r = vault(t, 'admin', ['approve', 'dar', 'admins-own', '-n', NS]);
    t.is(r.code, 0, r.stderr);
    await issued(t, 'admins-own');
  },
);

test.serial(
  "without the MutatingAdmissionPolicy (the fallback): a set annotation must be the creator's own, and requests without one only an administrator approves",
  async (t) => {
    const { env } = t.context;
    kubectl(env, ['delete', 'mutatingadmissionpolicybinding', 'leasehold-requester']);
    try {
      const forged = await eventually(t, 'a forged requester refused', async () => {
        const r = as(
          t,
          'alice',
          ['create', '--dry-run=server', '-f', '-'],
          requestYaml(
            'forged-2',
            'psql-role',
            {},
            { 'leasehold.dev/requester': JSON.stringify({ username: 'bob', uid: 'bob-uid', groups: [] }) },
          ),
        );
        return r.code !== 0 ? r : undefined;
      });
      t.regex(
        forged.stderr,
        /leasehold\.dev\/requester annotation is written by the API server .* must not be set by hand/,
      );
      // The guide's manifest still applies; nobody is recorded.
      t.is(as(t, 'alice', ['create', '-f', '-'], requestYaml('unrecorded')).code, 0);
      t.is(requesterOf(await getCr(t, 'databaseaccessrequests', 'unrecorded')), undefined);
      const bob = vault(t, 'bob', ['approve', 'dar', 'unrecorded', '-n', NS]);
      t.regex(
        bob.stderr,
        /no recorded requester, so four eyes can't be checked: a cluster administrator must approve it/,
      );
      t.is(vault(t, 'admin', ['approve', 'dar', 'unrecorded', '-n', NS]).code, 0);
    } finally {
      kubectl(env, ['apply', '-f', 'manifests/admission/requester-mutating.yaml']);
    }
  },
);
