import test from 'ava';
import { Annotations } from '../../../api/index.ts';
import {
  displayExpiry,
  displayPhase,
  displayRequester,
  displaySubjects,
  humanDuration,
  renderTable,
  requestTable,
} from '../../../cmd/kubectl-vault/format.ts';
import { NOW, request } from './fake.ts';

test("humanDuration matches kubectl's AGE column", (t) => {
  const s = 1000;
  const cases: [number, string][] = [
    [-3 * s, '<invalid>'],
    [-1 * s, '0s'],
    [0, '0s'],
    [59 * s, '59s'],
    [119 * s, '119s'],
    [120 * s, '2m'],
    [125 * s, '2m5s'],
    [10 * 60 * s, '10m'],
    [179 * 60 * s, '179m'],
    [3 * 3600 * s, '3h'],
    [(3 * 3600 + 90 * 60) * s, '4h30m'],
    [8 * 3600 * s, '8h'],
    [47 * 3600 * s, '47h'],
    [48 * 3600 * s, '2d'],
    [50 * 3600 * s, '2d2h'],
    [8 * 86400 * s, '8d'],
    [730 * 86400 * s, '2y'],
    [735 * 86400 * s, '2y5d'],
    [9 * 365 * 86400 * s, '9y'],
  ];
  for (const [ms, want] of cases) t.is(humanDuration(ms), want, `${ms} ms`);
});

test('tables are padded like kubectl: three spaces, at least six wide, no trailing spaces', (t) => {
  t.is(
    renderTable(
      ['NAME', 'AGE'],
      [
        ['a', '5s'],
        ['longer-name', '10m'],
      ],
    ),
    'NAME          AGE\n' + 'a             5s\n' + 'longer-name   10m\n',
  );
  t.is(renderTable(['A', 'B', 'C'], [['x', '', 'z']]), 'A     B     C\nx           z\n');
});

test("the request table has the issue's columns, NAMESPACE first with -A", (t) => {
  const a = request('a', 'demo');
  a.status = {
    phase: 'Approved',
    requester: { username: 'alice' },
    lease: { expiresAt: '2026-03-01T13:00:00Z' },
    conditions: [{ type: 'Approved', status: 'True' }],
  };
  const b = request('b', 'other');
  const table = requestTable([a, b], { allNamespaces: true, now: NOW });
  t.is(
    table,
    'NAMESPACE   NAME   PHASE                ROLE        SUBJECTS                 REQUESTER   AGE   EXPIRES\n' +
      'demo        a      Approved             psql-role   ServiceAccount/demo-sa   alice       5m    in 60m\n' +
      'other       b      WaitingForApproval   psql-role   ServiceAccount/demo-sa   <unknown>   5m    <none>\n',
  );
  t.true(requestTable([a], { allNamespaces: false, now: NOW }).startsWith('NAME   PHASE '));
});

test('PHASE shows the decision until the operator catches up, and Terminating while deleted', (t) => {
  const dar = request('r');
  t.is(displayPhase(dar), 'WaitingForApproval');
  dar.status = { phase: 'WaitingForApproval', conditions: [{ type: 'Denied', status: 'True' }] };
  t.is(displayPhase(dar), 'Denied');
  dar.status = { phase: 'Revoked', conditions: [{ type: 'Approved', status: 'True' }] };
  t.is(displayPhase(dar), 'Revoked');
  dar.metadata.deletionTimestamp = NOW;
  t.is(displayPhase(dar), 'Terminating');
});

test('SUBJECTS: kind/name, a foreign namespace shown, at most three', (t) => {
  const dar = request('r', 'demo');
  dar.spec.subjects = [
    { kind: 'ServiceAccount', name: 'app' },
    { kind: 'ServiceAccount', name: 'job', namespace: 'batch' },
    { kind: 'User', name: 'alice' },
    { kind: 'Group', name: 'dbas' },
    { kind: 'Group', name: 'oncall' },
  ];
  t.is(displaySubjects(dar), 'ServiceAccount/app,ServiceAccount/batch/job,User/alice,+2 more');
});

test('REQUESTER: status first, else the annotation (plain or JSON)', (t) => {
  const dar = request('r');
  dar.metadata.annotations = { [Annotations.requester]: 'bob' };
  t.is(displayRequester(dar), 'bob');
  dar.metadata.annotations = { [Annotations.requester]: JSON.stringify({ username: 'carol', groups: [] }) };
  t.is(displayRequester(dar), 'carol');
  dar.status = { requester: { username: 'alice' } };
  t.is(displayRequester(dar), 'alice');
});

test('EXPIRES: ahead, behind, none once revoked', (t) => {
  const dar = request('r');
  dar.status = { lease: { expiresAt: '2026-03-01T11:57:00Z' } };
  t.is(displayExpiry(dar, NOW), '3m ago');
  dar.status = { phase: 'Revoked', lease: { expiresAt: '2026-03-01T13:00:00Z' } };
  t.is(displayExpiry(dar, NOW), '<none>');
});
