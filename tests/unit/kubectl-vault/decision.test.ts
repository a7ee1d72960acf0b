import test from 'ava';
import { Annotations, type DatabaseAccessRequest } from '../../../api/index.ts';
import { decide, decisionMessage, isPending, revoke, rotate } from '../../../cmd/kubectl-vault/decision.ts';
import { NOW, request } from './fake.ts';

const admin = { identity: { username: 'admin' }, now: NOW };

function withStatus(
  status: DatabaseAccessRequest['status'],
  meta: Partial<DatabaseAccessRequest['metadata']> = {},
): DatabaseAccessRequest {
  const dar = request('r');
  return { ...dar, metadata: { ...dar.metadata, resourceVersion: '7', ...meta }, status };
}

const approved = () =>
  withStatus({
    conditions: [
      {
        type: 'Approved',
        status: 'True',
        reason: 'KubectlApprove',
        message: 'This was approved by: bob (with kubectl vault approve)',
        lastTransitionTime: '2026-03-01T11:00:00Z',
      },
    ],
  });
const denied = () =>
  withStatus({
    conditions: [
      {
        type: 'Denied',
        status: 'True',
        reason: 'KubectlDeny',
        message: 'This was denied by: carol (with kubectl vault deny)',
        lastTransitionTime: '2026-03-01T11:00:00Z',
      },
    ],
  });

test('approving a pending request records the approval and writes Approved=True through /status, conditional on its resourceVersion', (t) => {
  const dar = withStatus(
    { phase: 'WaitingForApproval', conditions: [{ type: 'Failed', status: 'False', reason: 'Nope', message: '' }] },
    { generation: 3 },
  );
  const out = decide(dar, 'approve', admin);
  if (out.kind !== 'patch') return t.fail(out.message);
  t.is(out.subresource, 'status');
  t.deepEqual(out.patch, {
    metadata: { resourceVersion: '7' },
    status: {
      approvals: [{ username: 'admin', approvedAt: '2026-03-01T12:00:00Z' }],
      conditions: [
        { type: 'Failed', status: 'False', reason: 'Nope', message: '' },
        {
          type: 'Approved',
          status: 'True',
          observedGeneration: 3,
          lastTransitionTime: '2026-03-01T12:00:00Z',
          reason: 'KubectlApprove',
          message: 'This was approved by: admin (with kubectl vault approve)',
        },
      ],
    },
  });
});

test('deny records KubectlDeny, the decider and their note; --reason replaces the reason', (t) => {
  const out = decide(withStatus(undefined), 'deny', { ...admin, reason: 'NotNeeded', message: 'use the replica' });
  if (out.kind !== 'patch') return t.fail(out.message);
  const [c] = (out.patch as { status: { conditions: { type: string; reason: string; message: string }[] } }).status
    .conditions;
  t.is(c!.type, 'Denied');
  t.is(c!.reason, 'NotNeeded');
  t.is(c!.message, 'This was denied by: admin (with kubectl vault deny): use the replica');
  const plain = decide(withStatus(undefined), 'deny', admin);
  t.is(
    plain.kind === 'patch' &&
      (plain.patch as { status: { conditions: { reason: string }[] } }).status.conditions[0]!.reason,
    'KubectlDeny',
  );
});

test('the message names the identity from the API server verbatim', (t) => {
  t.is(
    decisionMessage('approve', { username: 'system:serviceaccount:ops:bot' }),
    'This was approved by: system:serviceaccount:ops:bot (with kubectl vault approve)',
  );
});

test('approve after deny is refused, naming the earlier decision', (t) => {
  const out = decide(denied(), 'approve', admin);
  t.is(out.kind, 'refuse');
  t.regex(
    out.kind === 'refuse' ? out.message : '',
    /databaseaccessrequest demo\/r was denied at 2026-03-01T11:00:00Z \(This was denied by: carol.*\); a decision is permanent.*create a new request/,
  );
});

test('deny after approve is refused and points at revoke', (t) => {
  const out = decide(approved(), 'deny', admin);
  t.is(out.kind, 'refuse');
  t.regex(
    out.kind === 'refuse' ? out.message : '',
    /was approved .*permanent.*kubectl vault revoke databaseaccessrequest r -n demo/,
  );
});

test('deciding twice is refused', (t) => {
  t.regex(JSON.stringify(decide(approved(), 'approve', admin)), /is already approved/);
  t.regex(JSON.stringify(decide(denied(), 'deny', admin)), /is already denied/);
});

test('a phase without its condition is no decision: the request can still be approved or denied, as the operator sees it', (t) => {
  t.is(decide(withStatus({ phase: 'Approved' }), 'deny', admin).kind, 'patch');
  t.is(decide(withStatus({ phase: 'Denied' }), 'approve', admin).kind, 'patch');
  t.true(isPending(withStatus({ phase: 'Approved' })));
});

test("expired, revoked and terminating requests can't be decided", (t) => {
  t.regex(JSON.stringify(decide(withStatus({ phase: 'Expired' }), 'approve', admin)), /has expired/);
  t.regex(
    JSON.stringify(
      decide(
        withStatus({ conditions: [{ type: 'Expired', status: 'True', reason: 'ApprovalTimedOut' }] }),
        'deny',
        admin,
      ),
    ),
    /has expired/,
  );
  t.regex(JSON.stringify(decide(withStatus({ phase: 'Revoked' }), 'approve', admin)), /revoked/);
  t.regex(JSON.stringify(decide(withStatus(undefined, { deletionTimestamp: NOW }), 'approve', admin)), /being deleted/);
});

test('revoke sets the revoke-now annotation to an RFC 3339 time, conditional on the resourceVersion', (t) => {
  const out = revoke(approved(), NOW);
  t.deepEqual(out, {
    kind: 'patch',
    patch: { metadata: { resourceVersion: '7', annotations: { [Annotations.revokeNow]: '2026-03-01T12:00:00.000Z' } } },
  });
});

test('revoke is refused when there is nothing to revoke or it was already asked for', (t) => {
  t.regex(JSON.stringify(revoke(withStatus(undefined), NOW)), /never approved/);
  t.regex(JSON.stringify(revoke(denied(), NOW)), /was denied/);
  t.regex(
    JSON.stringify(revoke(withStatus({ phase: 'Revoked', conditions: approved().status!.conditions }), NOW)),
    /already revoked/,
  );
  t.regex(
    JSON.stringify(revoke(withStatus({ phase: 'Expired', conditions: approved().status!.conditions }), NOW)),
    /already expired/,
  );
  const asked = approved();
  asked.metadata.annotations = { [Annotations.revokeNow]: '2026-03-01T11:59:00Z' };
  t.regex(JSON.stringify(revoke(asked, NOW)), /already requested/);
});

test('rotate needs an approved, live request', (t) => {
  t.deepEqual(rotate(approved(), NOW), {
    kind: 'patch',
    patch: { metadata: { resourceVersion: '7', annotations: { [Annotations.rotateNow]: '2026-03-01T12:00:00.000Z' } } },
  });
  t.regex(JSON.stringify(rotate(withStatus(undefined), NOW)), /not approved yet/);
  t.regex(JSON.stringify(rotate(denied(), NOW)), /was denied/);
  t.regex(JSON.stringify(rotate(withStatus({ phase: 'Revoked' }), NOW)), /been revoked/);
});

test('pending means undecided and not ended', (t) => {
  t.true(isPending(withStatus(undefined)));
  t.true(isPending(withStatus({ phase: 'WaitingForApproval' })));
  t.false(isPending(approved()));
  t.false(isPending(denied()));
  t.false(isPending(withStatus({ phase: 'Expired' })));
  t.false(isPending(withStatus(undefined, { deletionTimestamp: NOW })));
});
