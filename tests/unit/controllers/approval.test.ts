import test from 'ava';
import fs from 'node:fs';
import YAML from 'yaml';
import { deciderOf, type DatabaseAccessRequest, type PostgresRole } from '../../../api/index.ts';
import {
  DEFAULT_PENDING_TTL_SECONDS,
  auditFields,
  auditRecord,
  auditSuffix,
  autoApproval,
  issueRefusal,
  parseRequester,
  pendingDeadlineMs,
  pendingStep,
  subjectMatches,
  unobservedDecision,
} from '../../../controllers/databaseaccessrequest/approval.ts';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const requesterJson = (username: string, groups: string[] = ['system:authenticated']) =>
  JSON.stringify({ username, uid: `${username}-uid`, groups });

function request(
  o: {
    requester?: string;
    ttl?: string;
    renew?: boolean;
    reason?: string;
    ns?: string;
    conditions?: unknown[];
    phase?: string;
    status?: object;
  } = {},
): DatabaseAccessRequest {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: {
      name: 'req',
      namespace: o.ns ?? 'demo',
      uid: 'uid-1',
      creationTimestamp: new Date(T0) as never,
      ...(o.requester ? { annotations: { 'leasehold.dev/requester': o.requester } } : {}),
    },
    spec: {
      roleRef: { kind: 'PostgresRole', name: 'role', namespace: 'demo' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: 'demo' }],
      ...(o.ttl ? { ttl: o.ttl } : {}),
      ...(o.renew !== undefined ? { renew: o.renew } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
    },
    ...(o.conditions || o.phase || o.status
      ? {
          status: {
            ...(o.status ?? {}),
            ...(o.phase ? { phase: o.phase } : {}),
            ...(o.conditions ? { conditions: o.conditions } : {}),
          } as never,
        }
      : {}),
  };
}

function role(approval?: PostgresRole['spec']['approval'], defaultTTL?: string): PostgresRole {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'PostgresRole',
    metadata: { name: 'role', namespace: 'demo' },
    spec: {
      vaultRef: { name: 'vault' },
      databaseName: 'db',
      creationStatements: ['CREATE ROLE x'],
      ...(defaultTTL ? { defaultTTL } : {}),
      ...(approval ? { approval } : {}),
    },
  };
}

const approvedBy = (who: string, reason = 'KubectlApprove') => ({
  type: 'Approved',
  status: 'True',
  reason,
  message: `This was approved by: ${who} (with kubectl vault approve)`,
  lastTransitionTime: '2026-03-01T12:01:00Z',
});

test('the requester annotation is read as the admission policy writes it; anything else is no requester', (t) => {
  t.deepEqual(parseRequester(requesterJson('alice')), {
    username: 'alice',
    uid: 'alice-uid',
    groups: ['system:authenticated'],
  });
  t.deepEqual(parseRequester('{"username":"sa\\"x","uid":"","groups":[]}'), { username: 'sa"x', groups: [] });
  for (const bad of [undefined, '', 'alice', '{"username":""}', '{"uid":"x"}', '[1]', 'null'])
    t.is(parseRequester(bad), undefined, String(bad));
});

test('the MutatingAdmissionPolicy and the guard spell the requester JSON the same way', (t) => {
  const expr = (file: string) => {
    const docs = YAML.parseAllDocuments(fs.readFileSync(`manifests/admission/${file}`, 'utf8')).map((d) => d.toJS());
    return (docs[0].spec.variables as { name: string; expression: string }[]).find((v) => v.name === 'requester')!
      .expression;
  };
  t.is(expr('requester-mutating.yaml'), expr('requester-guard.yaml'));
});

test('the approver ClusterRole holds approve on every role kind', (t) => {
  const docs = YAML.parseAllDocuments(fs.readFileSync('manifests/rbac/people.yaml', 'utf8')).map((d) => d.toJS());
  const approver = docs.find((d) => d.metadata.name === 'leasehold-approver');
  for (const resource of ['postgresroles', 'mysqlroles', 'mariadbroles', 'redisroles']) {
    t.true(
      approver.rules.some(
        (r: { resources: string[]; verbs: string[]; apiGroups: string[] }) =>
          r.apiGroups.includes('engine.kubevault.com') && r.resources.includes(resource) && r.verbs.includes('approve'),
      ),
      resource,
    );
  }
});

test('the operator may read, finalize and report on every role kind', (t) => {
  const docs = YAML.parseAllDocuments(fs.readFileSync('manifests/rbac/operator.yaml', 'utf8')).map((d) => d.toJS());
  const rules = docs.find((d) => d.kind === 'ClusterRole').rules as { resources: string[]; verbs: string[] }[];
  for (const kind of ['postgresroles', 'mysqlroles', 'mariadbroles', 'redisroles']) {
    for (const [resource, verb] of [
      [kind, 'watch'],
      [kind, 'patch'],
      [`${kind}/status`, 'patch'],
      [`${kind}/finalizers`, 'update'],
    ] as const) {
      t.true(
        rules.some((r) => r.resources.includes(resource) && r.verbs.includes(verb)),
        `${verb} ${resource}`,
      );
    }
  }
});

test('each role kind has its approval policy, matching requests for that kind only', (t) => {
  const docs = YAML.parseAllDocuments(fs.readFileSync('manifests/admission/approval-role.yaml', 'utf8')).map((d) =>
    d.toJS(),
  );
  const policies = docs.filter((d) => d.kind === 'ValidatingAdmissionPolicy');
  t.deepEqual(
    policies.map((p) => p.spec.paramKind.kind),
    ['PostgresRole', 'MySQLRole', 'MariaDBRole', 'RedisRole'],
  );
  for (const p of policies) {
    t.true(
      docs.some((d) => d.kind === 'ValidatingAdmissionPolicyBinding' && d.spec.policyName === p.metadata.name),
      `${p.metadata.name} is bound`,
    );
    const kindCondition = p.spec.matchConditions.find((c: { name: string }) => c.name === 'role-kind')
      .expression as string;
    t.true(kindCondition.endsWith(`== '${p.spec.paramKind.kind}'`), p.metadata.name);
  }
  const approval = YAML.parseAllDocuments(fs.readFileSync('manifests/admission/approval.yaml', 'utf8')).map((d) =>
    d.toJS(),
  )[0];
  t.regex(JSON.stringify(approval.spec.validations[0]), /resource\(variables\.roleResource\)/);
});

test("subjects match users, groups and service accounts (namespace defaulting to the role's)", (t) => {
  const alice = parseRequester(requesterJson('alice', ['devs']))!;
  const sa = parseRequester(requesterJson('system:serviceaccount:demo:ci'))!;
  t.true(subjectMatches({ kind: 'User', name: 'alice' }, alice, 'demo'));
  t.false(subjectMatches({ kind: 'User', name: 'bob' }, alice, 'demo'));
  t.true(subjectMatches({ kind: 'Group', name: 'devs' }, alice, 'demo'));
  t.true(subjectMatches({ kind: 'ServiceAccount', name: 'ci' }, sa, 'demo'));
  t.false(subjectMatches({ kind: 'ServiceAccount', name: 'ci' }, sa, 'other'));
  t.true(subjectMatches({ kind: 'ServiceAccount', name: 'ci', namespace: 'demo' }, sa, 'other'));
});

test('the decider is read from the condition message the API server checked', (t) => {
  t.is(deciderOf('This was approved by: bob (with kubectl vault approve): ticket 1'), 'bob');
  t.is(deciderOf('This was denied by: system:serviceaccount:ops:bot'), 'system:serviceaccount:ops:bot');
  t.is(deciderOf('Approved by the test'), undefined);
  t.is(deciderOf(undefined), undefined);
});

test("a pending request expires at its creation plus the role's pendingTTL, 24h by default", (t) => {
  t.is(pendingDeadlineMs(request(), undefined), T0 + DEFAULT_PENDING_TTL_SECONDS * 1000);
  t.is(pendingDeadlineMs(request(), role({ pendingTTL: '5s' })), T0 + 5000);
  const wait = pendingStep(request(), role({ pendingTTL: '5s' }), T0 + 1000);
  t.is(wait.kind, 'wait');
  t.is((wait as { atMs: number }).atMs, T0 + 5000);
  t.regex(wait.message, /"approve" verb on PostgresRole demo\/role.*expires at 2026-03-01T12:00:05Z/);
  const expire = pendingStep(request(), role({ pendingTTL: '5s' }), T0 + 5000);
  t.is(expire.kind, 'expire');
  t.regex(expire.message, /within 5s .*nothing was issued/);
  t.is(pendingStep(request(), undefined, T0 + DEFAULT_PENDING_TTL_SECONDS * 1000).kind, 'expire');
});

test('auto-approval approves only what every criterion of the rule allows', (t) => {
  const carol = requesterJson('carol', ['system:authenticated', 'oncall']);
  const rule = role({ autoApprove: { subjects: [{ kind: 'User', name: 'carol' }], maxTTL: '10m' } });
  const ok = autoApproval(request({ requester: carol, ttl: '5m', renew: false }), rule);
  t.true(ok.approve);
  t.regex(
    (ok as { message: string }).message,
    /^This was approved by: leasehold \(autoApprove of PostgresRole demo\/role: requester carol matches User carol; ttl 5m0s is within 10m\)$/,
  );
  const why = (r: ReturnType<typeof autoApproval>) => (r.approve ? 'approved' : r.why);
  t.regex(
    why(autoApproval(request({ requester: requesterJson('alice'), ttl: '5m', renew: false }), rule)),
    /requester alice is none of/,
  );
  t.regex(why(autoApproval(request({ ttl: '5m', renew: false }), rule)), /no recorded requester/);
  t.regex(
    why(autoApproval(request({ requester: carol, ttl: '1h', renew: false }), rule)),
    /longer than autoApprove's maxTTL 10m/,
  );
  t.regex(why(autoApproval(request({ requester: carol, ttl: '5m' }), rule)), /spec\.renew: false/);
  t.regex(
    why(autoApproval(request({ requester: carol, renew: false }), rule)),
    /neither the request nor the role sets a ttl/,
  );
  t.true(
    autoApproval(
      request({ requester: carol, renew: false }),
      role({ autoApprove: { subjects: [{ kind: 'User', name: 'carol' }], maxTTL: '10m' } }, '5m'),
    ).approve,
  );
  // Groups and namespaces.
  t.true(
    autoApproval(
      request({ requester: carol }),
      role({ autoApprove: { subjects: [{ kind: 'Group', name: 'oncall' }] } }),
    ).approve,
  );
  t.true(autoApproval(request({ ns: 'dev' }), role({ autoApprove: { namespaces: ['dev'] } })).approve);
  t.true(autoApproval(request({ ns: 'dev' }), role({ autoApprove: { namespaces: ['*'] } })).approve);
  t.regex(
    why(autoApproval(request({ ns: 'prod' }), role({ autoApprove: { namespaces: ['dev'] } }))),
    /namespace prod is not among/,
  );
  // Both given: both must hold.
  t.false(
    autoApproval(
      request({ ns: 'dev', requester: requesterJson('alice') }),
      role({ autoApprove: { namespaces: ['dev'], subjects: [{ kind: 'User', name: 'carol' }] } }),
    ).approve,
  );
  // A required reason is required of auto-approved requests too; no rule, no auto-approval.
  t.regex(
    why(autoApproval(request({ ns: 'dev' }), role({ requireReason: true, autoApprove: { namespaces: ['dev'] } }))),
    /requires a reason/,
  );
  t.true(
    autoApproval(
      request({ ns: 'dev', reason: 'INC-1' }),
      role({ requireReason: true, autoApprove: { namespaces: ['dev'] } }),
    ).approve,
  );
  t.false(autoApproval(request(), role()).approve);
});

test("pendingStep auto-approves, and says why not when the rule didn't match", (t) => {
  const rule = role({ autoApprove: { subjects: [{ kind: 'User', name: 'carol' }] } });
  t.is(pendingStep(request({ requester: requesterJson('carol') }), rule, T0).kind, 'autoApprove');
  const wait = pendingStep(request({ requester: requesterJson('alice') }), rule, T0);
  t.is(wait.kind, 'wait');
  t.regex(wait.message, /not auto-approved: requester alice is none of autoApprove's subjects/);
  // Expiry wins over a rule that would match only after the deadline.
  t.is(
    pendingStep(request({ requester: requesterJson('carol') }), rule, T0 + DEFAULT_PENDING_TTL_SECONDS * 1000).kind,
    'expire',
  );
});

test('a decision is observed once: while phase still says waiting', (t) => {
  t.is(unobservedDecision(request()), undefined);
  t.is(unobservedDecision(request({ conditions: [approvedBy('bob')] }))?.decider, 'bob');
  t.is(unobservedDecision(request({ conditions: [approvedBy('bob')], phase: 'WaitingForApproval' }))?.type, 'Approved');
  t.is(unobservedDecision(request({ conditions: [approvedBy('bob')], phase: 'Approved' })), undefined);
  t.is(
    unobservedDecision(
      request({
        conditions: [{ type: 'Denied', status: 'True', reason: 'KubectlDeny', message: 'This was denied by: bob' }],
      }),
    )?.type,
    'Denied',
  );
});

test('the backstop refuses a first issuance without a required reason, or approved by the requester', (t) => {
  const alice = requesterJson('alice');
  const refusal = (dar: DatabaseAccessRequest, r: PostgresRole) =>
    issueRefusal(dar, r, 'PostgresRole demo/role')?.message;
  t.regex(
    refusal(request({ requester: alice, conditions: [approvedBy('bob')] }), role({ requireReason: true })) ?? '',
    /requires a reason/,
  );
  t.is(
    refusal(
      request({ requester: alice, reason: 'INC-1', conditions: [approvedBy('bob')] }),
      role({ requireReason: true }),
    ),
    undefined,
  );
  t.regex(
    refusal(request({ requester: alice, conditions: [approvedBy('alice')] }), role()) ?? '',
    /approved their own request/,
  );
  t.is(
    refusal(request({ requester: alice, conditions: [approvedBy('alice')] }), role({ allowSelfApproval: true })),
    undefined,
  );
  t.is(
    refusal(
      request({ requester: requesterJson('admin', ['system:masters']), conditions: [approvedBy('admin')] }),
      role(),
    ),
    undefined,
  );
});

test("an audit record names who asked, who decided and what, without anything secret; an audited Event's message names them too", (t) => {
  const dar = request({
    requester: requesterJson('alice'),
    reason: 'INC-7',
    conditions: [approvedBy('bob')],
    status: { lease: { id: 'db/creds/r/abc' }, secret: { name: 'req-x' } },
  });
  t.is(
    `credential issued into Secret req-x${auditSuffix(dar)}`,
    'credential issued into Secret req-x [for ServiceAccount demo/app on PostgresRole demo/role; requested by alice; approved by bob]',
  );
  t.deepEqual(auditRecord(dar, 'SuccessfullyIssuedCredential', 'credential issued into Secret req-x', new Date(T0)), {
    audit: true,
    action: 'SuccessfullyIssuedCredential',
    at: '2026-03-01T12:00:00.000Z',
    request: 'demo/req',
    uid: 'uid-1',
    role: 'demo/role',
    subjects: ['ServiceAccount demo/app'],
    requester: 'alice',
    requestReason: 'INC-7',
    decision: 'Approved',
    decidedBy: 'bob',
    decisionReason: 'KubectlApprove',
    decidedAt: '2026-03-01T12:01:00Z',
    leaseId: 'db/creds/r/abc',
    storedIn: 'Secret demo/req-x',
    message: 'credential issued into Secret req-x',
  });
  t.is(auditFields(request()).requester, 'unknown');
});
