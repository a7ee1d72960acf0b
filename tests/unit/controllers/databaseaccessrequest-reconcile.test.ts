// The DatabaseAccessRequest reconciler, whole passes, against a FakeKube and a FakeVault: the guide's objects made
// ready by their own reconcilers, then a request approved by bob. What status, the Secret, Vault's leases and the
// Events say after each pass. (The real stack pins the same stories end to end: tests/integration/.)
import test from 'ava';
import {
  Annotations,
  ConditionType,
  FINALIZER,
  Reason,
  RequestPhase,
  type DatabaseAccessRequest,
  type PostgresRole,
} from '../../../api/index.ts';
import { DatabaseAccessRequestReconciler } from '../../../controllers/databaseaccessrequest/reconciler.ts';
import { PostgresRoleReconciler } from '../../../controllers/role/reconciler.ts';
import { SecretEngineReconciler } from '../../../controllers/secretengine/reconciler.ts';
import { ROLE_BINDINGS, ROLES } from '../../../controllers/shared/resources.ts';
import { RetryableError, TerminalError, type Result } from '../../../lib/runtime/index.ts';
import { fakeWorld, type FakeWorld } from '../../fakes/controller-context.ts';
import {
  DATABASE_ACCESS_REQUESTS,
  NS,
  POSTGRES_ROLES,
  SECRET_ENGINES,
  SECRETS,
  applyGuideBindings,
  conditionOf,
  postgresRole,
  secretEngine,
} from '../../fakes/fixtures.ts';

const KEY = { namespace: NS, name: 'postgres-cred-rqst' };
const approvedByBob = {
  type: 'Approved',
  status: 'True',
  reason: 'KubectlApprove',
  message: 'This was approved by: bob',
  lastTransitionTime: '2026-03-01T12:00:00Z',
};

type Secret = { metadata?: { name?: string; annotations?: Record<string, string> }; data?: Record<string, string> };

/** The guide's SecretEngine and PostgresRole, made ready by their reconcilers; a request approved by bob. */
async function world(
  opts: {
    role?: Partial<PostgresRole['spec']>;
    request?: Partial<DatabaseAccessRequest['spec']>;
    approved?: boolean;
  } = {},
) {
  const w = fakeWorld({ startMs: Date.parse('2026-03-01T12:00:00Z') });
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
  w.events.clear();
  w.vault.resetCalls();
  w.kube.resetRequests();
  return darWorld(w);
}

function darWorld(w: FakeWorld) {
  let reconciler = new DatabaseAccessRequestReconciler(w.context);
  const dar = () => w.kube.object<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name)!;
  const secret = () => {
    const name = dar()?.status?.secret?.name;
    return name ? w.kube.object<Secret>(SECRETS, NS, name) : undefined;
  };
  return {
    ...w,
    dar,
    secret,
    pass: (): Promise<Result> => w.reconcile(reconciler, KEY),
    /** A pass whose failure is returned rather than thrown. */
    tryPass: async (): Promise<Result | Error> => w.reconcile(reconciler, KEY).catch((e: Error) => e),
    /** The operator restarts: a new reconciler, nothing remembered. */
    restart: () => {
      reconciler = new DatabaseAccessRequestReconciler(w.context);
    },
    live: () => w.vault.liveLeases().map((l) => l.id),
  };
}

test('an approved request gets one lease, its credential in a Secret only its subjects may read, in six writes and one Event', async (t) => {
  const w = await world();
  await w.pass();
  const dar = w.dar();
  t.is(dar.status?.phase, RequestPhase.Approved);
  t.is(conditionOf(dar, ConditionType.Available)?.status, 'True');
  t.deepEqual(w.live(), [dar.status!.lease!.id]);
  const secret = w.secret()!;
  t.is(secret.metadata?.annotations?.[Annotations.leaseId], dar.status!.lease!.id);
  t.truthy(secret.data?.password);
  t.deepEqual(w.kube.object<{ rules?: unknown; metadata?: object }>(ROLES, NS, secret.metadata!.name!)?.rules, [
    { apiGroups: [''], resources: ['secrets'], resourceNames: [secret.metadata!.name], verbs: ['get'] },
  ]);
  t.truthy(w.kube.object(ROLE_BINDINGS, NS, secret.metadata!.name!));
  // The finalizer, the checkpoint, the Secret, the Role, the RoleBinding, the lease record; and one Event.
  const writes = w.kube.writes().map((r) => `${r.verb} ${r.resource}${r.subresource ? `/${r.subresource}` : ''}`);
  t.deepEqual(
    writes.filter((x) => !x.includes('events')),
    [
      'patch databaseaccessrequests',
      'patch databaseaccessrequests/status',
      'create secrets',
      'create roles',
      'create rolebindings',
      'patch databaseaccessrequests/status',
    ],
  );
  t.deepEqual(w.events.summary(dar), ['Normal SuccessfullyIssuedCredential']);
  t.regex(w.events.about(dar)[0]!.message, /requested by alice; approved by bob/);
});

test('a second pass over an issued request writes nothing', async (t) => {
  const w = await world();
  await w.pass();
  w.kube.resetRequests();
  await w.pass();
  t.deepEqual(w.kube.writes(), []);
});

test('a request waiting for approval issues nothing and says who may approve it', async (t) => {
  const w = await world({ approved: false });
  await w.pass();
  t.is(w.dar().status?.phase, RequestPhase.WaitingForApproval);
  t.regex(
    conditionOf(w.dar(), ConditionType.Available)?.message ?? '',
    /approve" verb on PostgresRole demo\/psql-role/,
  );
  t.deepEqual(w.live(), []);
  t.deepEqual(w.events.warnings(w.dar()), []);
});

test('a template problem issues nothing, and says which key and why', async (t) => {
  const w = await world({ request: { secretTemplate: { uri: 'postgresql://<%nope%>@host' } } });
  const r = await w.tryPass();
  t.true(
    r instanceof RetryableError && r.retryAfterMs === 60_000,
    'looked at again in a minute (a database AppBinding appearing wakes nothing)',
  );
  t.deepEqual(w.live(), []);
  t.is(w.vault.calls.issueCredential, 0);
  const available = conditionOf(w.dar(), ConditionType.Available);
  t.is(available?.reason, Reason.InvalidSecretTemplate);
  t.regex(available?.message ?? '', /unknown variable "nope"/);
  t.deepEqual(w.events.summary(w.dar()), ['Warning InvalidSecretTemplate']);
});

test('a refused renewal rotates into the same Secret, and the old lease is revoked after the grace period', async (t) => {
  const w = await world();
  await w.pass();
  const first = w.dar();
  const secretName = first.status!.secret!.name;
  w.clock.advance(50 * 60_000); // past the renewal point of a 1 h lease
  w.vault.fail('renewLease', 'Invalid', { times: 1, detail: 'lease is not renewable' });
  await w.pass();
  const after = w.dar();
  t.not(after.status!.lease!.id, first.status!.lease!.id);
  t.is(after.status!.secret!.name, secretName);
  t.is(after.status!.rotation?.reason, 'RenewalRefused');
  t.is(w.secret()!.metadata?.annotations?.[Annotations.leaseId], after.status!.lease!.id);
  t.deepEqual(
    after.status!.previousLeases?.map((p) => p.id),
    [first.status!.lease!.id],
  );
  t.true(w.events.summary(after).includes('Normal CredentialRotated'));
  w.clock.advance(61_000); // the default grace period is 60 s
  await w.pass();
  t.deepEqual(w.live(), [after.status!.lease!.id]);
  t.is(w.dar().status!.previousLeases, undefined);
});

test('a truncated renewal rotates before the lease reaches its max TTL', async (t) => {
  const w = await world({ role: { defaultTTL: '1h', maxTTL: '90m' } });
  await w.pass();
  const first = w.dar().status!.lease!.id!;
  w.clock.advance(50 * 60_000);
  await w.pass(); // Vault grants 40 min of the 60 asked: max TTL near
  const after = w.dar();
  t.is(after.status!.rotation?.reason, 'RenewalTruncated');
  t.not(after.status!.lease!.id, first);
  t.true(w.live().includes(after.status!.lease!.id!));
});

test('a renewal that succeeds records the new expiry and makes one status write', async (t) => {
  const w = await world();
  await w.pass();
  const before = w.dar().status!.lease!;
  w.clock.advance(50 * 60_000);
  w.kube.resetRequests();
  await w.pass();
  const lease = w.dar().status!.lease!;
  t.is(lease.id, before.id);
  t.truthy(lease.lastRenewalTime);
  t.true(Date.parse(lease.expiresAt!) > Date.parse(before.expiresAt!));
  t.is(w.kube.writes({ resource: 'databaseaccessrequests' }).length, 1);
});

test('deleting a request while Vault is down keeps the finalizer, and says once that deletion waits for Vault', async (t) => {
  const w = await world();
  await w.pass();
  const leaseId = w.dar().status!.lease!.id!;
  w.kube.remove(DATABASE_ACCESS_REQUESTS, NS, KEY.name);
  w.events.clear();
  w.vault.down();
  for (let i = 0; i < 3; i++) {
    const err = await w.tryPass();
    t.true(err instanceof RetryableError, String(err));
  }
  const dar = w.dar();
  t.deepEqual(dar.metadata.finalizers, [FINALIZER]);
  const revoked = conditionOf(dar, ConditionType.Revoked);
  t.is(revoked?.status, 'False');
  t.is(revoked?.reason, Reason.VaultUnreachable);
  t.regex(revoked?.message ?? '', /deletion waits for Vault/);
  t.deepEqual(w.events.summary(dar), ['Warning VaultUnreachable']);
  w.vault.up();
  await w.pass();
  t.is(w.kube.object(DATABASE_ACCESS_REQUESTS, NS, KEY.name), undefined);
  t.deepEqual(w.live(), []);
  t.false(w.vault.liveLeases().some((l) => l.id === leaseId));
});

test("a deleted request whose lease Vault could not revoke keeps its finalizer with Vault's words, retried with a growing delay", async (t) => {
  const w = await world();
  await w.pass();
  w.vault.refuseRevocation(() => true);
  w.kube.remove(DATABASE_ACCESS_REQUESTS, NS, KEY.name);
  const first = await w.tryPass();
  const second = await w.tryPass();
  t.true(first instanceof RetryableError && second instanceof RetryableError);
  t.true((second as RetryableError).retryAfterMs! > (first as RetryableError).retryAfterMs!);
  const revoked = conditionOf(w.dar(), ConditionType.Revoked);
  t.is(revoked?.reason, Reason.RevocationFailed);
  t.regex(revoked?.message ?? '', /some objects depend on it/);
  t.is(w.events.warnings(w.dar()).length, 1);
});

test('revoke-now keeps the phase until Vault revoked the lease; then the request is Revoked and its Secret empty', async (t) => {
  const w = await world();
  await w.pass();
  const stop = w.vault.refuseRevocation(() => true);
  w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
    o.metadata.annotations = { ...o.metadata.annotations, [Annotations.revokeNow]: 'now' };
  });
  t.true((await w.tryPass()) instanceof RetryableError);
  t.is(w.dar().status?.phase, RequestPhase.Approved);
  stop();
  await w.pass();
  t.is(w.dar().status?.phase, RequestPhase.Revoked);
  t.deepEqual(w.live(), []);
  t.deepEqual(w.secret()?.data ?? {}, {});
});

test('a request approved by its own requester is refused before anything is issued', async (t) => {
  const w = await world();
  w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
    o.status = { conditions: [{ ...approvedByBob, message: 'This was approved by: alice' }] } as never;
  });
  t.true((await w.tryPass()) instanceof TerminalError);
  t.is(w.dar().status?.phase, RequestPhase.Failed);
  t.is(conditionOf(w.dar(), ConditionType.Failed)?.reason, Reason.SelfApprovalForbidden);
  t.deepEqual(w.live(), []);
});

// ---- crashes: every point of issuance ---------------------------------------------------------------------------

/**
 * Makes the k-th side effect of the operator (a Kubernetes write or a Vault lease call) never return, as if the
 * process died there; returns a function that stops it.
 */
function crashAt(w: FakeWorld, k: number): () => void {
  let n = 0;
  let crashed = false;
  const hang = <T>() => new Promise<T>(() => undefined);
  const kube = w.kube as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const vault = w.vault as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const restore: Array<() => void> = [];
  const wrap = (target: Record<string, (...a: unknown[]) => Promise<unknown>>, method: string) => {
    const original = target[method]!;
    target[method] = function (this: unknown, ...args: unknown[]) {
      if (crashed || ++n === k) {
        crashed = true;
        return hang();
      }
      return original.apply(this, args);
    };
    restore.push(() => {
      target[method] = original;
    });
  };
  for (const m of ['create', 'replace', 'patch', 'delete']) wrap(kube, m);
  for (const m of ['issueCredential', 'renewLease', 'revokeLease']) wrap(vault, m);
  return () => restore.forEach((r) => r());
}

for (let k = 1; k <= 7; k++) {
  test(`an operator that dies at side effect ${k} of issuing leaves, after a restart, exactly one live lease: the recorded one`, async (t) => {
    const w = await world({ request: { ttl: '30m' } });
    const stop = crashAt(w, k);
    void w.pass().catch(() => undefined); // never settles once it reaches side effect k
    await new Promise((r) => setTimeout(r, 20));
    stop();
    w.restart();
    for (let i = 0; i < 4; i++) await w.tryPass();
    const dar = w.dar();
    t.is(conditionOf(dar, ConditionType.Available)?.status, 'True');
    t.deepEqual(w.live(), [dar.status!.lease!.id]);
    t.is(w.secret()?.metadata?.annotations?.[Annotations.leaseId], dar.status!.lease!.id);
  });
}

test("a pass on caches that lag behind the operator's own writes issues nothing twice and creates nothing twice", async (t) => {
  const w = await world();
  w.kube.pauseWatch(); // the watch delivers nothing: the caches stay as they were before the grant
  await w.pass();
  w.kube.resetRequests();
  const calls = w.vault.calls.issueCredential;
  const r = await w.tryPass();
  t.false(r instanceof Error, `the pass goes on from what this process wrote, not the stale cache: ${String(r)}`);
  t.is(w.vault.calls.issueCredential, calls);
  t.deepEqual(
    w.kube.writes().map((r) => `${r.verb} ${r.resource}`),
    [],
  );
  w.kube.resumeWatch();
  await w.pass();
  t.deepEqual(w.live(), [w.dar().status!.lease!.id]);
});

test('someone editing the request while its credential is recorded, and a Secret cache that lags, still leave one live lease', async (t) => {
  const w = await world();
  const kube = w.kube as unknown as { create: (...a: unknown[]) => Promise<unknown> };
  const create = kube.create.bind(w.kube);
  let once = true;
  kube.create = async (...a: unknown[]) => {
    const r = await create(...a);
    if ((a[0] as { plural: string }).plural === 'secrets' && once) {
      once = false;
      w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
        o.metadata.labels = { team: 'x' };
      });
    }
    return r;
  };
  await w.tryPass();
  const secrets = w.caches.secrets as unknown as { get: (ns: string, name: string) => unknown };
  const get = secrets.get.bind(w.caches.secrets);
  secrets.get = (ns, name) => (name.startsWith(`${KEY.name}-`) ? undefined : get(ns, name));
  await w.tryPass();
  secrets.get = get;
  await w.tryPass();
  const dar = w.dar();
  t.deepEqual(w.live(), [dar.status!.lease!.id]);
  t.is(w.secret()?.metadata?.annotations?.[Annotations.leaseId], dar.status!.lease!.id);
});

test('revoke-now while an issuance is unfinished revokes whatever lease it got before saying Revoked', async (t) => {
  const w = await world();
  w.vault.fail('issueCredential', { network: 'ECONNRESET' }, { times: 1, after: true }); // issued, the answer lost
  await w.tryPass();
  t.is(w.live().length, 1);
  w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
    o.metadata.annotations = { ...o.metadata.annotations, [Annotations.revokeNow]: 'now' };
  });
  await w.pass();
  t.is(w.dar().status?.phase, RequestPhase.Revoked);
  t.deepEqual(w.live(), []);
});

test('revoke-now says so in one Event', async (t) => {
  const w = await world();
  await w.pass();
  w.events.clear();
  w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
    o.metadata.annotations = { ...o.metadata.annotations, [Annotations.revokeNow]: 'now' };
  });
  await w.pass();
  t.deepEqual(w.events.summary(w.dar()), ['Normal RevokedOnDemand']);
});

test('a previous lease whose Vault AppBinding is gone is said to be left to expire once, and leaves status', async (t) => {
  const w = await world();
  await w.pass();
  w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
    o.metadata.annotations = { ...o.metadata.annotations, [Annotations.rotateNow]: 'r1' };
  });
  await w.pass();
  w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
    o.status!.previousLeases![0]!.vaultAppBinding = { namespace: NS, name: 'old-vault' };
  });
  w.clock.advance(120_000);
  w.events.clear();
  for (let i = 0; i < 3; i++) {
    await w.tryPass();
    w.clock.advance(1000);
  }
  t.deepEqual(w.events.summary(w.dar()), ['Warning LeaseNotRevoked']);
  t.is(w.dar().status?.previousLeases, undefined);
});

// ---- the approval policy: N-of-M, the access-time cap ---------------------------------------------------------

const approvalBy = (username: string) => ({ username, approvedAt: '2026-03-01T11:59:00Z' });

test('two approvals required: one issues nothing and says "1 of 2"; the second has the operator approve and issue, naming both', async (t) => {
  const w = await world({ role: { approval: { approvals: 2 } }, approved: false });
  w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
    o.status = { approvals: [approvalBy('bob')] } as never;
  });
  await w.pass();
  t.is(w.dar().status?.phase, RequestPhase.WaitingForApproval);
  t.regex(conditionOf(w.dar(), ConditionType.Available)?.message ?? '', /^1 of 2 approvals \(bob\); waiting/);
  t.deepEqual(w.live(), []);
  w.kube.edit<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, NS, KEY.name, (o) => {
    o.status!.approvals = [...(o.status!.approvals ?? []), approvalBy('carol')];
  });
  await w.pass();
  t.is(conditionOf(w.dar(), ConditionType.Approved)?.reason, Reason.RequiredApprovalsReached);
  await w.pass();
  t.is(w.live().length, 1);
  t.is(w.dar().status?.phase, RequestPhase.Approved);
  const audits = w.audit.records;
  t.deepEqual(
    audits.filter((a) => a.action === 'ApprovalRecorded').map((a) => a.message),
    ['approval by bob', 'approval by carol'],
  );
  t.deepEqual(audits.find((a) => a.action === 'SuccessfullyIssuedCredential')?.approvals, ['bob', 'carol']);
});

test('maxAccessDuration ends access on time: no renewal past it, then the lease is revoked and the request Expired', async (t) => {
  const w = await world({ role: { approval: { maxAccessDuration: '20s' } }, request: { renew: true } });
  const result = await w.pass();
  const dar = w.dar();
  t.is(dar.status?.grant?.accessEndsAt, '2026-03-01T12:00:20Z');
  // The lease is asked for no longer than the access lasts.
  t.true(Date.parse(dar.status!.lease!.expiresAt!) <= Date.parse('2026-03-01T12:00:20Z'));
  // Looked at again when access ends.
  t.true(result.kind === 'requeueAfter' && result.delayMs <= 20_100, JSON.stringify(result));
  w.clock.advance(20_500);
  await w.pass();
  t.is(w.dar().status?.phase, RequestPhase.Expired);
  t.is(conditionOf(w.dar(), ConditionType.Expired)?.reason, Reason.AccessDurationReached);
  t.deepEqual(w.live(), []);
  t.deepEqual(w.secret()?.data ?? {}, {});
  t.true(w.audit.records.some((r) => r.action === 'AccessDurationReached'));
});
