import test from 'ava';
import { decisionOf, type DatabaseAccessRequest } from '../../../api/index.ts';

function withStatus(status: DatabaseAccessRequest['status']): Pick<DatabaseAccessRequest, 'status'> {
  return { status };
}

const approvedCondition = {
  type: 'Approved',
  status: 'True' as const,
  reason: 'KubectlApprove',
  message: 'This was approved by: bob',
};
const deniedCondition = {
  type: 'Denied',
  status: 'True' as const,
  reason: 'KubectlDeny',
  message: 'This was denied by: carol',
};

test('an Approved or Denied condition with status True is the decision, with the condition that records it', (t) => {
  t.deepEqual(decisionOf(withStatus({ conditions: [approvedCondition] })), {
    type: 'Approved',
    condition: approvedCondition,
  });
  t.deepEqual(decisionOf(withStatus({ conditions: [deniedCondition] })), {
    type: 'Denied',
    condition: deniedCondition,
  });
});

test('a phase saying Approved or Denied without the condition is no decision', (t) => {
  t.is(decisionOf(withStatus({ phase: 'Approved' })), undefined);
  t.is(
    decisionOf(
      withStatus({
        phase: 'Denied',
        conditions: [{ type: 'Available', status: 'False', reason: 'WaitingForApproval' }],
      }),
    ),
    undefined,
  );
});

test('nothing decided: no status, no conditions, or a decision condition that is not True', (t) => {
  t.is(decisionOf({}), undefined);
  t.is(decisionOf(withStatus({ conditions: [] })), undefined);
  t.is(decisionOf(withStatus({ conditions: [{ ...approvedCondition, status: 'False' }] })), undefined);
});

test('were both there, Denied wins', (t) => {
  t.is(decisionOf(withStatus({ conditions: [approvedCondition, deniedCondition] }))?.type, 'Denied');
});
