// DatabaseAccessRequest: nothing is issued until an Approved condition appears; then a leased credential is
// issued into a Secret owned by the request, readable only by spec.subjects (a Role and RoleBinding), and kept
// alive for as long as the request exists: renewed before it runs out, rotated (a fresh credential in the same
// Secret) when Vault won't renew it any further, and revoked when the request is deleted or revoked. With
// spec.renew false the lease runs out at its TTL instead (phase Expired, credential removed from the Secret).
//
// Exactly once: before asking Vault, status.issuance records the attempt (with the resourceVersion
// precondition, so two passes can't both start one). The credential goes into the Secret, annotated with its
// lease id and the attempt, before status records the lease. A crash between the Vault call and the Secret
// leaves an attempt that isn't `completed`: the next pass looks up the role's leases issued since the attempt
// started that no request, no Secret and no lease issued by this process records, and revokes them before
// issuing again. A crash between the Secret and status is healed by adopting the Secret's lease, but only if the
// Secret names the current attempt (so a rotation never adopts the lease it is replacing). Per Vault role, a
// sweep runs alone: it waits for this process's issuing calls under that role to return (each lease is
// remembered as soon as Vault hands it over) and holds new ones back while it looks, so the only unrecorded
// leases it can find are the crashed attempt's own. Issuing calls share the role otherwise: requests are issued
// in parallel, up to --concurrency.
//
// Rotation is issuance again, with the old lease kept: one status write (resourceVersion precondition) moves
// status.lease to status.previousLeases (no revokeAt yet) and marks status.rotation under way; the issuance
// above then writes the new credential into the same Secret (annotated leasehold.dev/rotated-at). Recording it
// sets each previous lease's revokeAt to now + spec.rotationGracePeriod; a later pass revokes it then, and
// deletion revokes it too. So a rotation makes exactly one new lease, the old one is never revoked before the
// new one is in the Secret, and none is left unrecorded. Rotations happen when a renewal comes back truncated
// (max TTL), is refused, or finds the lease gone (revoked out of band); when the lease ran out or is not
// renewable; when the Secret was deleted; and once per new value of the rotate-now annotation (the value handled
// is written in the same status write that starts the rotation). rolloutRestartTargets get the rotation's time
// in a pod-template annotation afterwards; status.rotation.restartedAt records that it was done, and the value
// is the same on a retry, so a workload is restarted once per rotation.
import { randomUUID } from 'node:crypto';
import crypto from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import {
  Annotations, ConditionType, DOMAIN, FINALIZER, KUBEVAULT_FINALIZER, Labels, MANAGED_BY, Reason, RequestPhase, formatDuration, parseDurationSeconds,
  type AppBinding, type DatabaseAccessRequest, type PostgresRole,
} from '../../api/index.ts';
import {
  DONE, KeyedReadWriteLock, PatchType, RetryableError, TerminalError, addFinalizer, controllerOwnerRef, deepEqual, describeError, hasFinalizer, isConflict, isNotFound, patchStatus,
  removeFinalizer, requeueAfter, rfc3339, type ObjectKey, type ReconcileContext, type Reconciler, type ResourceType, type Result, type WatchCache,
} from '../../lib/runtime/index.ts';
import type { LeasedCredential, VaultClient } from '../../lib/vault/client.ts';
import { VaultRequestError } from '../../lib/vault/errors.ts';
import { crashPoint } from '../../lib/faults.ts';
import type { ControllerContext, Grant } from '../shared/context.ts';
import { leasePrefix } from '../shared/names.ts';
import { desiredStatus, explain, report } from '../shared/report.ts';
import { DATABASE_ACCESS_REQUESTS, ROLE_BINDINGS, ROLES, SECRETS } from '../shared/resources.ts';
import { resolveRoleTarget, type RoleTarget } from '../shared/role-target.ts';
import type { VaultConnection } from '../shared/vault-connections.ts';
import {
  DEFAULT_RENEW_FRACTION, DEFAULT_ROTATION_GRACE_SECONDS, MAX_PREVIOUS_LEASES, RotationReason, addPrevious, decide, duePrevious, earliest, leaseStep, namespaceAllowed,
  newSecretName, renewalTruncated, retirePrevious, rotateRequested, type PreviousLease,
} from './decide.ts';
import { LeaseMetrics, type RevocationReason } from './metrics.ts';
// Issue 11 (approval): the operator's part of approval lives in approval.ts; the call sites here are marked.
import { Approvals, assertMayIssue, auditingRecorder } from './approval.ts';
import {
  addressVariables, checkTemplates, databaseAddress, layoutHash, mergeTemplates, renderSecretData, templateView,
  type AddressVariables, type SecretTemplates,
} from './template.ts';

/** The Secret annotation that records which lease its credential belongs to. */
export const LEASE_ID_ANNOTATION = `${DOMAIN}/lease-id`;
/** The Secret annotation naming the issuance attempt that wrote it (status.issuance.attempt). */
export const ATTEMPT_ANNOTATION = `${DOMAIN}/attempt`;
/** The Secret annotation holding when its credential was last rotated (RFC 3339). */
export const ROTATED_AT_ANNOTATION = `${DOMAIN}/rotated-at`;
/** The Secret annotation fingerprinting its templates and address (not the credential), to re-render on change. */
export const LAYOUT_ANNOTATION = `${DOMAIN}/layout`;
/** Condition reason when a secretTemplate can't be rendered. */
export const INVALID_SECRET_TEMPLATE = 'InvalidSecretTemplate';
/** Leases issued this long before an attempt's recorded start still count as the attempt's (clock skew). */
const SWEEP_SKEW_MS = 5_000;
/** Leases this process issued are remembered this long, so a sweep never takes one the caches don't show yet. */
const ISSUED_HERE_MS = 10 * 60_000;
/** A failed renewal or rollout restart is retried after at most this long. */
const RETRY_MS = 30_000;

type Issuance = NonNullable<NonNullable<DatabaseAccessRequest['status']>['issuance']>;
type Rotation = NonNullable<NonNullable<DatabaseAccessRequest['status']>['rotation']>;
type SecretMeta = KubernetesObject;
type SecretWithData = KubernetesObject & { data?: Record<string, string>; type?: string };

const WORKLOADS: Record<string, ResourceType> = {
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet' },
  DaemonSet: { group: 'apps', version: 'v1', plural: 'daemonsets', kind: 'DaemonSet' },
};

/** How the Secret is laid out for a request: merged templates, the address they see, what's wrong with them. */
interface Layout {
  templates: SecretTemplates;
  address: AddressVariables;
  problems: string[];
  /** Fingerprint of templates + address; '' without templates. */
  hash: string;
}

/** A maintenance pass either ends with a result, or started a rotation and hands the request on to issuance. */
type Next = { done: Result } | { issue: DatabaseAccessRequest };

/** The rotate-now value as status keeps it: as is, or its hash when long. */
export function rotateRequestToken(value: string | undefined): string | undefined {
  if (!value) return undefined;
  return value.length <= 128 ? value : `sha256:${crypto.createHash('sha256').update(value).digest('hex')}`;
}

/** The key issuance and sweeps of one Vault role share. */
function roleKey(mount: string, vaultRole: string): string {
  return `${mount}/${vaultRole}`;
}

function pendingRotation(dar: DatabaseAccessRequest): Rotation | undefined {
  const r = dar.status?.rotation;
  return r?.requestedAt && !r.completedAt ? r : undefined;
}

export class DatabaseAccessRequestReconciler implements Reconciler {
  /** Per Vault role (mount/role): issuing calls hold it shared, a sweep alone. */
  private readonly roleGate = new KeyedReadWriteLock();
  readonly metrics: LeaseMetrics;
  private readonly approvals: Approvals;
  /** uid → when this process first saw the request approved and not yet issued (issuance latency). */
  private readonly approvalSeen = new Map<string, number>();
  /** uid → renewals failed in a row (Events on the transitions only). */
  private readonly renewalFailures = new Map<string, number>();
  /** Lease id → when this process issued it. */
  private readonly issuedHere = new Map<string, number>();

  constructor(private readonly c: ControllerContext, registry?: Registry) {
    this.metrics = new LeaseMetrics(registry);
    this.approvals = new Approvals(c.kube, this.events); // approval (issue 11)
  }

  private get events() {
    // approval (issue 11): audited Events (decisions, issuance, rotation, revocation) also make a structured log line.
    return auditingRecorder(this.c.events('leasehold-databaseaccessrequest'), this.c.log);
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    const cached = this.c.caches.requests.get(key.namespace, key.name);
    if (!cached) {
      this.metrics.forget(key.namespace, key.name);
      return DONE;
    }
    let dar: DatabaseAccessRequest = cached;
    const decision = decide(dar, dar.metadata.annotations?.[Annotations.revokeNow]);
    if (decision.kind === 'finalize') return this.finalize(dar, ctx);

    dar = (await addFinalizer(this.c.kube, DATABASE_ACCESS_REQUESTS, dar, FINALIZER, ctx)).object;
    // approval (issue 11): status.requester from the admission-recorded annotation; a new decision audited, phase set.
    dar = await this.approvals.observe(dar, ctx, (d, u) => this.write(d, ctx, u));
    switch (decision.kind) {
      case 'denied':
        await this.write(dar, ctx, { phase: RequestPhase.Denied, conditions: [] });
        return DONE;
      case 'waitForApproval':
        // approval (issue 11): expire after the role's pendingTTL, auto-approve, or wait (WaitingForApproval).
        return this.approvals.pending(dar, this.cachedRole(dar), ctx, (d, u) => this.write(d, ctx, u));
      case 'finished':
        this.forget(dar);
        return DONE;
      case 'revokeNow':
        return this.revokeNow(dar, ctx);
      case 'approved':
        return this.serve(dar, ctx);
    }
  }

  // ---- approved: issue, keep the grants, renew, rotate ---------------------------------------------------

  private async serve(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    const ns = dar.metadata.namespace ?? '';
    try {
      if (dar.status?.lease?.id && dar.status?.issuance?.completed) {
        const next = await this.maintain(dar, ctx);
        if ('done' in next) return next.done;
        dar = next.issue; // a rotation started: issue its credential in this same pass
      }
      const uid = dar.metadata.uid ?? '';
      if (!pendingRotation(dar) && !this.approvalSeen.has(uid)) this.approvalSeen.set(uid, ctx.now().getTime());
      const rotation = pendingRotation(dar);
      if (rotation?.notAfter && ctx.now().getTime() >= Date.parse(rotation.notAfter)) return await this.expire(dar, ctx);
      const role = this.role(dar);
      assertMayIssue(dar, role); // approval (issue 11): requireReason and four eyes again before the first issuance
      const target = resolveRoleTarget(role, this.c.caches, this.c.clusterName);
      const vaultRole = role.status?.vaultRole;
      if (role.status?.phase !== 'Success' || !vaultRole) {
        throw new RetryableError('RoleNotReady', `PostgresRole ${role.metadata.namespace}/${role.metadata.name} is not ready yet (phase ${role.status?.phase ?? 'unknown'})`);
      }
      const layout = this.layout(dar, role);
      if (layout.problems.length > 0) {
        // Refused before anything is issued: a Secret with an empty or wrong value would be worse than none.
        await this.reportTemplateProblems(dar, layout, ctx);
        // A change to the request or its role wakes us; a database AppBinding appearing doesn't, hence the poll.
        return requeueAfter(60_000);
      }
      const conn = await this.c.connections.forAppBinding(target.vaultAppBinding, ctx.signal);
      dar = await this.issue(dar, role, target, vaultRole, conn, layout, ctx);
      await this.ensureGrants(dar, ctx);
      dar = await this.restartTargets(dar, ctx);
      return this.wake(dar, role, ctx);
    } catch (err) {
      // A conflict means our read was stale: retry at once with fresh data (the queue's backoff), no status noise.
      if (err instanceof RetryableError && err.reason === 'Conflict') throw err;
      const rotation = pendingRotation(dar);
      if (rotation) this.metrics.rotations.labels(rotation.reason ?? 'unknown', 'error').inc();
      const explained = explain(err);
      const { message, retryable } = explained;
      // Vault refusing or failing to issue is KubeVault's FailedToGetCredential; its words stay in the message.
      const reason = explained.reason === 'VaultServer' || explained.reason === 'VaultInvalid' ? Reason.FailedToGetCredential : explained.reason;
      const terminal = err instanceof TerminalError;
      // Fresh: the pass may have written status (the issuance marker) since `dar` was read.
      await this.writeFresh(dar, ctx, (fresh) => ({
        ...(terminal ? { phase: RequestPhase.Failed } : fresh.status?.phase && fresh.status.phase !== RequestPhase.WaitingForApproval ? {} : { phase: RequestPhase.Approved }),
        conditions: [
          { type: ConditionType.Available, status: 'False', reason, message: rotation ? `rotating the credential (${rotation.reason}): ${message}` : message },
          ...(terminal ? [{ type: ConditionType.Failed, status: 'True' as const, reason, message }] : []),
        ],
      })).catch((e) => ctx.log.warn('could not record a failure in status', { error: describeError(e), namespace: ns }));
      if (terminal) throw err;
      return requeueAfter(retryable ? 10_000 : 60_000);
    }
  }

  private role(dar: DatabaseAccessRequest): PostgresRole {
    const ns = dar.metadata.namespace ?? '';
    const roleNs = dar.spec.roleRef.namespace ?? ns;
    const role = this.c.caches.postgresRoles.get(roleNs, dar.spec.roleRef.name);
    if (!role) throw new RetryableError(Reason.ReferenceNotFound, `PostgresRole ${roleNs}/${dar.spec.roleRef.name} named by spec.roleRef does not exist`);
    if (!namespaceAllowed(role, ns)) {
      throw new TerminalError(Reason.NamespaceNotAllowed, `PostgresRole ${roleNs}/${role.metadata.name} does not admit requests from namespace ${ns}: ` +
        `add "${ns}" to its spec.allowedRequestNamespaces`);
    }
    return role;
  }

  private cachedRole(dar: DatabaseAccessRequest): PostgresRole | undefined {
    return this.c.caches.postgresRoles.get(dar.spec.roleRef.namespace ?? dar.metadata.namespace ?? '', dar.spec.roleRef.name);
  }

  // ---- the Secret's layout ---------------------------------------------------------------------------------

  /** The database AppBinding behind a role (for host, port, dbname), or why there is none. */
  private databaseAppBinding(role: PostgresRole): { ab?: AppBinding; why: string } {
    const ns = role.metadata.namespace ?? '';
    let ref: { name: string; namespace?: string } | undefined;
    if (role.spec.secretEngineRef) {
      const engine = this.c.caches.secretEngines.get(ns, role.spec.secretEngineRef.name);
      if (!engine) return { why: `SecretEngine ${ns}/${role.spec.secretEngineRef.name} does not exist` };
      ref = engine.spec.postgres.databaseRef;
    } else {
      ref = role.spec.databaseRef;
    }
    if (!ref) return { why: `PostgresRole ${ns}/${role.metadata.name} names a Vault connection (databaseName), not a database AppBinding` };
    const abNs = ref.namespace ?? ns;
    const ab = this.c.caches.appBindings.get(abNs, ref.name);
    return ab ? { ab, why: '' } : { why: `the database AppBinding ${abNs}/${ref.name} does not exist` };
  }

  private layout(dar: DatabaseAccessRequest, role: PostgresRole): Layout {
    const templates = mergeTemplates(role.spec.secretTemplate, `${role.metadata.namespace}/${role.metadata.name}`, dar.spec.secretTemplate);
    const { ab, why } = this.databaseAppBinding(role);
    let address: AddressVariables;
    try {
      address = addressVariables(ab ? databaseAddress(ab) : undefined, why);
    } catch (err) {
      address = addressVariables(undefined, explain(err).message);
    }
    const problems = checkTemplates(templates, address);
    return { templates, address, problems, hash: Object.keys(templates.templates).length ? layoutHash(templates, address) : '' };
  }

  private async reportTemplateProblems(dar: DatabaseAccessRequest, layout: Layout, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    const message = `secretTemplate can't be rendered, so nothing is issued or rotated until it is fixed: ${layout.problems.join('; ')}`.slice(0, 4000);
    return this.write(dar, ctx, {
      phase: RequestPhase.Approved,
      conditions: [{ type: ConditionType.Available, status: 'False', reason: INVALID_SECRET_TEMPLATE, message }],
    });
  }

  // ---- issuance (first, and each rotation) -------------------------------------------------------------------

  private async issue(dar: DatabaseAccessRequest, role: PostgresRole, target: RoleTarget, vaultRole: string, conn: VaultConnection, layout: Layout, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    const name = dar.metadata.name ?? '';
    // A Secret already holding this attempt's lease (we stopped after writing it, before status): adopt it.
    const adopted = await this.adoptFromSecret(dar, conn.client, ctx);
    if (adopted) return adopted;
    const prior = dar.status?.issuance;
    if (prior?.attempt && !prior.completed) await this.sweep(dar, prior, conn.client, ctx);

    const secretName = dar.status?.secret?.name ?? newSecretName(name);
    const issuance: Issuance = {
      vaultAppBinding: { namespace: target.vaultAppBinding.metadata.namespace ?? '', name: target.vaultAppBinding.metadata.name ?? '' },
      mount: target.mount, role: vaultRole, attempt: randomUUID(), startedAt: rfc3339(ctx.now()), completed: false,
    };
    // The marker: written with the resourceVersion precondition before any Vault call.
    const marker: Record<string, unknown> = { ...(dar.status ?? {}), issuance, secret: { name: secretName } };
    dar = (await patchStatus(this.c.kube, DATABASE_ACCESS_REQUESTS, dar as never, marker, ctx)).object as DatabaseAccessRequest;
    const rotation = pendingRotation(dar);
    // A rotate-now value present before this issuance is satisfied by it.
    const rotateToken = rotateRequestToken(dar.metadata.annotations?.[Annotations.rotateNow]);

    const { client, ownedBy } = await conn.issuingClient();
    let cred: LeasedCredential = await this.roleGate.shared(roleKey(target.mount, vaultRole), async () => {
      const issued = await client.issueCredential(target.mount, vaultRole);
      this.rememberIssued(issued.leaseId, ctx.now().getTime());
      return issued;
    });
    crashPoint('crash-after-issue'); // the window exactly-once must survive: issued, recorded nowhere
    try {
      let ttl = this.requestedTtlSeconds(dar, role);
      if (rotation?.notAfter) {
        // renew: false: a rotated credential ends when the one it replaces would have.
        const left = Math.max(1, Math.floor((Date.parse(rotation.notAfter) - ctx.now().getTime()) / 1000));
        ttl = Math.min(ttl ?? cred.leaseDurationSeconds, left);
      }
      if (ttl !== undefined && ttl !== cred.leaseDurationSeconds && cred.renewable) {
        const renewed = await conn.client.renewLease(cred.leaseId, ttl);
        cred = { ...cred, leaseDurationSeconds: renewed.leaseDurationSeconds };
      }
      const now = ctx.now();
      const rotatedAt = rotation ? rfc3339(now) : undefined;
      const data = renderSecretData(layout.templates, templateView(layout.address, cred));
      await this.writeSecret(dar, secretName, data, { leaseId: cred.leaseId, attempt: issuance.attempt!, rotatedAt, layout: layout.hash, first: !prior }, ctx);
      crashPoint('crash-after-secret'); // the other window: in the Secret, not in status
      return await this.complete(dar, {
        leaseId: cred.leaseId, durationSeconds: cred.leaseDurationSeconds, renewable: cred.renewable, issuedAt: rfc3339(now),
        expiresAt: rfc3339(new Date(now.getTime() + cred.leaseDurationSeconds * 1000)), secretName, rotatedAt, rotateToken,
        note: ownedBy === 'login-token' ? ' (owned by the operator\'s login token: no issuer token role in Vault)' : '',
      }, ctx);
    } catch (err) {
      // Not recorded: give the lease back now rather than leave it to the next pass's sweep (which may take it
      // if this fails: it is no longer one this process vouches for).
      this.issuedHere.delete(cred.leaseId);
      await this.revokeCounted(conn.client, cred.leaseId, 'unrecorded').catch(() => undefined);
      throw err;
    }
  }

  /** Records an issued (or adopted) credential; completes a rotation under way. */
  private async complete(dar: DatabaseAccessRequest, x: {
    leaseId: string; durationSeconds: number; renewable: boolean; issuedAt: string; expiresAt: string; secretName: string;
    rotatedAt?: string; rotateToken?: string; note?: string; adopted?: boolean;
  }, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    const now = ctx.now();
    const ns = dar.metadata.namespace ?? '';
    const rotation = pendingRotation(dar);
    const completedAt = x.rotatedAt ?? rfc3339(now);
    const previous = rotation ? retirePrevious(dar.status?.previousLeases ?? [], Date.parse(completedAt), this.graceSeconds(dar)) : undefined;
    // The leases this rotation retires (earlier ones already have their time).
    const retired = (previous ?? []).filter((p) => !(dar.status?.previousLeases ?? []).find((q) => q.id === p.id)?.revokeAt);
    const what = x.adopted ? `credential in Secret ${x.secretName} recovered after a restart` : `credential issued into Secret ${x.secretName}`;
    const status = desiredStatus(dar, {
      phase: RequestPhase.Approved,
      conditions: [{ type: ConditionType.Available, status: 'True', reason: Reason.SuccessfullyIssuedCredential,
        message: `${what}; lease ${x.leaseId} for ${formatDuration(x.durationSeconds)}${x.note ?? ''}` }],
      fields: {
        issuance: { ...dar.status!.issuance!, completed: true },
        secret: { name: x.secretName },
        lease: { id: x.leaseId, duration: formatDuration(x.durationSeconds), renewable: x.renewable, issuedAt: x.issuedAt, expiresAt: x.expiresAt },
        ...(rotation ? { rotation: { ...rotation, completedAt }, previousLeases: previous!.length ? previous : undefined } : {}),
        ...(x.rotateToken ? { lastRotateRequest: x.rotateToken } : {}),
      },
    }, now);
    dar = await this.recordWithRetry(dar, status, ctx);
    this.metrics.setExpiry(ns, dar.metadata.name ?? '', x.expiresAt);
    for (const p of retired) await this.extendForGrace(dar, p, ctx);
    const uid = dar.metadata.uid ?? '';
    if (rotation) {
      this.metrics.rotations.labels(rotation.reason ?? 'unknown', 'success').inc();
      const revokeAt = previous?.map((p) => p.revokeAt).filter(Boolean)[0];
      this.events.event(dar, 'Normal', Reason.CredentialRotated, `rotated the credential in Secret ${x.secretName} (${rotation.reason}: ${rotation.message ?? ''})` +
        (revokeAt ? `; the previous login works until ${revokeAt}` : ''));
      ctx.log.info('rotated credential', { namespace: ns, name: dar.metadata.name, leaseId: x.leaseId, reason: rotation.reason, secret: x.secretName });
    } else {
      const seen = this.approvalSeen.get(uid);
      if (seen !== undefined && !x.adopted) this.metrics.issuanceLatency.observe(Math.max(0, now.getTime() - seen) / 1000);
      this.approvalSeen.delete(uid);
      this.events.event(dar, 'Normal', Reason.SuccessfullyIssuedCredential, `${what} (lease expires in ${formatDuration(x.durationSeconds)})`);
      ctx.log.info('issued credential', { namespace: ns, name: dar.metadata.name, leaseId: x.leaseId, secret: x.secretName, adopted: !!x.adopted });
    }
    return dar;
  }

  /**
   * A retired lease is renewed to last until its revokeAt (plus a little): the grace period is a promise to the
   * clients still using it, whatever was left of its term. A lease at its max TTL can't be extended; one renewed
   * for longer than needed is shortened to the grace period, which only narrows the exposure. Best effort.
   */
  private async extendForGrace(dar: DatabaseAccessRequest, p: PreviousLease, ctx: ReconcileContext): Promise<void> {
    const left = p.revokeAt ? Math.ceil((Date.parse(p.revokeAt) - ctx.now().getTime()) / 1000) : NaN;
    if (!Number.isFinite(left) || left <= 0) return;
    try {
      const conn = await this.connectionOf(dar, ctx, p.vaultAppBinding);
      await conn?.client.renewLease(p.id, left + 5);
    } catch (err) {
      ctx.log.debug('could not extend a retired lease for its grace period', { leaseId: p.id, error: explain(err).message });
    }
  }

  /** Status writes after issuing retry on conflicts with a fresh read: the credential exists and must be recorded. */
  private async recordWithRetry(dar: DatabaseAccessRequest, status: Record<string, unknown>, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await patchStatus(this.c.kube, DATABASE_ACCESS_REQUESTS, dar as never, status, ctx)).object as DatabaseAccessRequest;
      } catch (err) {
        if (!(err instanceof RetryableError) || attempt >= 5) throw err;
        dar = await this.c.kube.get<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, dar.metadata.namespace ?? '', dar.metadata.name ?? '', ctx);
      }
    }
  }

  private requestedTtlSeconds(dar: DatabaseAccessRequest, role: PostgresRole): number | undefined {
    if (!dar.spec.ttl) return undefined;
    const ttl = parseDurationSeconds(dar.spec.ttl);
    const max = role.spec.maxTTL ? parseDurationSeconds(role.spec.maxTTL) : undefined;
    return max !== undefined && max > 0 ? Math.min(ttl, max) : ttl;
  }

  private graceSeconds(dar: DatabaseAccessRequest): number {
    return dar.spec.rotationGracePeriod ? parseDurationSeconds(dar.spec.rotationGracePeriod) : DEFAULT_ROTATION_GRACE_SECONDS;
  }

  private ownedSecret(dar: DatabaseAccessRequest): SecretMeta | undefined {
    const name = dar.status?.secret?.name;
    if (!name) return undefined;
    const s = this.c.caches.secrets.get(dar.metadata.namespace ?? '', name) as SecretMeta | undefined;
    return s && s.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid) ? s : undefined;
  }

  private async adoptFromSecret(dar: DatabaseAccessRequest, vault: VaultClient, ctx: ReconcileContext): Promise<DatabaseAccessRequest | undefined> {
    const secret = this.ownedSecret(dar);
    const annotations = secret?.metadata?.annotations ?? {};
    const leaseId = annotations[LEASE_ID_ANNOTATION];
    const issuance = dar.status?.issuance;
    if (!leaseId || !issuance || issuance.completed) return undefined;
    // Only this attempt's lease: during a rotation the Secret still holds the lease being replaced. (Secrets
    // written before attempts were annotated: anything but a previous lease.)
    const attempt = annotations[ATTEMPT_ANNOTATION];
    const ours = attempt ? attempt === issuance.attempt : !(dar.status?.previousLeases ?? []).some((p) => p.id === leaseId);
    if (!ours) return undefined;
    const info = await vault.lookupLease(leaseId);
    if (!info) return undefined; // gone: issue afresh
    const now = ctx.now();
    return this.complete(dar, {
      leaseId, durationSeconds: info.ttlSeconds, renewable: info.renewable, issuedAt: info.issueTime ?? rfc3339(now),
      expiresAt: info.expireTime ?? rfc3339(new Date(now.getTime() + info.ttlSeconds * 1000)), secretName: secret!.metadata!.name!,
      rotatedAt: pendingRotation(dar) ? annotations[ROTATED_AT_ANNOTATION] ?? rfc3339(now) : undefined, adopted: true,
    }, ctx);
  }

  private rememberIssued(leaseId: string, nowMs: number): void {
    this.issuedHere.set(leaseId, nowMs);
    for (const [id, at] of this.issuedHere) {
      if (nowMs - at <= ISSUED_HERE_MS) break; // insertion order: the rest are newer
      this.issuedHere.delete(id);
    }
  }

  /** Revokes leases of the role issued since an unfinished attempt started that nothing records. */
  private async sweep(dar: DatabaseAccessRequest, attempt: Issuance, vault: VaultClient, ctx: ReconcileContext): Promise<void> {
    const { mount, role, startedAt } = attempt;
    if (!mount || !role || !startedAt) return;
    await this.roleGate.exclusive(roleKey(mount, role), () => this.sweepAlone(dar, { mount, role, startedAt }, vault, ctx));
  }

  private async sweepAlone(dar: DatabaseAccessRequest, attempt: { mount: string; role: string; startedAt: string }, vault: VaultClient, ctx: ReconcileContext): Promise<void> {
    const recorded = new Set<string>(this.issuedHere.keys());
    for (const r of this.c.caches.requests.list()) {
      if (r.status?.lease?.id) recorded.add(r.status.lease.id);
      for (const p of r.status?.previousLeases ?? []) recorded.add(p.id);
    }
    for (const s of this.c.caches.secrets.list()) {
      const id = (s as SecretMeta).metadata?.annotations?.[LEASE_ID_ANNOTATION];
      if (id) recorded.add(id);
    }
    // The crashed attempt's own lease is the one thing here this process may not know.
    let leases: string[];
    try {
      leases = await vault.listLeases(leasePrefix(attempt.mount, attempt.role));
    } catch (err) {
      this.events.event(dar, 'Warning', 'LeaseSweepFailed', `could not list leases to find one issued before a restart: ${explain(err).message}`);
      return;
    }
    const since = Date.parse(attempt.startedAt) - SWEEP_SKEW_MS;
    for (const leaseId of leases) {
      if (recorded.has(leaseId)) continue;
      const info = await vault.lookupLease(leaseId);
      if (!info?.issueTime || Date.parse(info.issueTime) < since) continue;
      await vault.revokeLease(leaseId);
      this.metrics.revocations.labels('unrecorded', 'success').inc();
      this.events.event(dar, 'Warning', 'OrphanLeaseRevoked', `revoked lease ${leaseId}: it was issued for this request before a restart and never recorded`);
      ctx.log.warn('revoked an unrecorded lease', { leaseId, namespace: dar.metadata.namespace, name: dar.metadata.name });
    }
  }

  /** Writes the credential into the request's Secret; `first`: none was written before, so try creating it. */
  private async writeSecret(dar: DatabaseAccessRequest, name: string, data: Record<string, string>,
    a: { leaseId: string; attempt: string; rotatedAt?: string; layout: string; first: boolean }, ctx: ReconcileContext): Promise<void> {
    const ns = dar.metadata.namespace ?? '';
    const existing = a.first ? undefined : await this.c.kube.tryGet<SecretMeta>(SECRETS, ns, name, ctx);
    if (existing && !existing.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid)) {
      throw new TerminalError(Reason.FailedToCreateSecret, `Secret ${ns}/${name} exists and is not owned by this request`);
    }
    // Annotations others put on the Secret (a reloader's, say) stay; ours are replaced.
    const annotations: Record<string, string> = { ...(existing?.metadata?.annotations ?? {}), [LEASE_ID_ANNOTATION]: a.leaseId, [ATTEMPT_ANNOTATION]: a.attempt };
    if (a.rotatedAt) annotations[ROTATED_AT_ANNOTATION] = a.rotatedAt;
    if (a.layout) annotations[LAYOUT_ANNOTATION] = a.layout;
    else delete annotations[LAYOUT_ANNOTATION];
    const body = {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: {
        name, namespace: ns,
        labels: { ...(existing?.metadata?.labels ?? {}), [Labels.managedBy]: MANAGED_BY, [Labels.request]: dar.metadata.name ?? '' },
        annotations,
        ownerReferences: [controllerOwnerRef(dar)],
        ...(existing ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
      },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
    };
    if (existing) {
      await this.c.kube.replace(SECRETS, ns, name, body as never, ctx);
      return;
    }
    try {
      await this.c.kube.create(SECRETS, ns, body as never, ctx);
    } catch (err) {
      // There after all (a pass that stopped before recording it): look, and write over it if it is ours.
      if (!a.first || !isConflict(err)) throw err;
      await this.writeSecret(dar, name, data, { ...a, first: false }, ctx);
    }
  }

  /**
   * A Role allowing `get` on exactly the credential Secret, bound to spec.subjects; both owned by the request.
   * Compared with the watch caches (ours only, by label), so a pass whose grants are right makes no call; a
   * change or deletion of either wakes the request (controllers/index.ts) and is put right at once.
   */
  private async ensureGrants(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<void> {
    const ns = dar.metadata.namespace ?? '';
    const secretName = dar.status?.secret?.name;
    if (!secretName) return;
    const metadata = { name: secretName, namespace: ns, labels: { [Labels.managedBy]: MANAGED_BY, [Labels.request]: dar.metadata.name ?? '' }, ownerReferences: [controllerOwnerRef(dar)] };
    const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get'] }] };
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: secretName },
      subjects: dar.spec.subjects.map((s) => s.kind === 'ServiceAccount'
        ? { kind: 'ServiceAccount', name: s.name, namespace: s.namespace ?? ns }
        : { kind: s.kind, name: s.name, apiGroup: 'rbac.authorization.k8s.io' }),
    };
    await this.ensure(ROLES, this.c.caches.grantRoles, role, ['rules'], ctx);
    await this.ensure(ROLE_BINDINGS, this.c.caches.grantBindings, binding, ['roleRef', 'subjects'], ctx);
  }

  private async ensure(resource: ResourceType, cache: WatchCache<Grant>, desired: { metadata: { name: string; namespace: string } } & Record<string, unknown>,
    fields: string[], ctx: ReconcileContext): Promise<void> {
    const { name, namespace: ns } = desired.metadata;
    let existing: Grant | undefined = cache.get(ns, name);
    if (!existing) {
      try {
        await this.c.kube.create(resource, ns, desired as never, ctx);
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      // There already (the cache hadn't caught up, or someone else's object of that name): look at it.
      existing = await this.c.kube.tryGet<Grant>(resource, ns, name, ctx);
      if (!existing) throw new RetryableError('Conflict', `${resource.kind} ${ns}/${name} was being deleted as it was created`);
    }
    const current = existing as Record<string, unknown>;
    if (!fields.some((f) => !deepEqual(current[f], desired[f]))) return;
    try {
      await this.c.kube.replace(resource, ns, name, { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion } } as never, ctx);
    } catch (err) {
      if (isConflict(err)) throw new RetryableError('Conflict', `${resource.kind} ${ns}/${name} changed since it was read`, { cause: err });
      throw err;
    }
  }

  // ---- a recorded lease: keep it alive, rotate it, or let it go ------------------------------------------------

  private async maintain(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Next> {
    const lease = dar.status!.lease!;
    if (!(await this.secretPresent(dar, ctx))) {
      // Its credential left the cluster with it; running pods may still hold it, hence the usual grace period.
      return this.rotate(dar, ctx, RotationReason.SecretDeleted, `Secret ${dar.status?.secret?.name} was deleted`);
    }
    await this.ensureGrants(dar, ctx);
    dar = await this.revokeDuePrevious(dar, ctx);
    dar = await this.restartTargets(dar, ctx);
    const role = this.cachedRole(dar);
    // Without its role (or with a template that can't render) nothing new can be issued: keep the lease alive
    // as long as Vault allows and rotate once it can.
    const layout = role ? this.layout(dar, role) : undefined;
    const canIssue = !!layout && layout.problems.length === 0;
    if (layout && !canIssue) {
      dar = await this.reportTemplateProblems(dar, layout, ctx);
    } else if (layout) {
      dar = await this.rerender(dar, layout, ctx);
      dar = await this.markAvailable(dar, ctx);
    }

    const token = rotateRequestToken(dar.metadata.annotations?.[Annotations.rotateNow]);
    if (canIssue && rotateRequested(token, dar.status?.lastRotateRequest)) {
      return this.rotate(dar, ctx, RotationReason.RotateRequested, `the ${Annotations.rotateNow} annotation asked for it`, { lastRotateRequest: token });
    }
    const now = ctx.now().getTime();
    const step = leaseStep(lease, { renew: dar.spec.renew !== false, fraction: this.fraction(dar, role), uid: dar.metadata.uid ?? '', nowMs: now });
    switch (step.kind) {
      case 'expire':
        return { done: await this.expire(dar, ctx) };
      case 'rotate':
        // A lease that ran out is dead anyway; one that still works is kept until a new one can be issued.
        if (canIssue || step.reason === RotationReason.LeaseExpired) return this.rotate(dar, ctx, step.reason, step.message);
        return { done: this.wake(dar, role, ctx, now + RETRY_MS) };
      case 'renew':
        return this.renew(dar, role, step.askSeconds, canIssue, ctx);
      case 'wait':
        return { done: this.wake(dar, role, ctx) };
    }
  }

  private fraction(dar: DatabaseAccessRequest, role: PostgresRole | undefined): number {
    return dar.spec.renewFraction ?? role?.spec.renewFraction ?? DEFAULT_RENEW_FRACTION;
  }

  /** The Secret exists and is ours: the cache says so, and a live read confirms an absence (the cache may lag). */
  private async secretPresent(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<boolean> {
    if (this.ownedSecret(dar)) return true;
    const name = dar.status?.secret?.name;
    if (!name) return false;
    const live = await this.c.kube.tryGet<SecretMeta>(SECRETS, dar.metadata.namespace ?? '', name, ctx);
    return !!live && !live.metadata?.deletionTimestamp && !!live.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid);
  }

  /** Requeue at the next thing due: a renewal or expiry, a previous lease's revocation, a pending restart. */
  private wake(dar: DatabaseAccessRequest, role: PostgresRole | undefined, ctx: ReconcileContext, atMs?: number): Result {
    const now = ctx.now().getTime();
    const lease = dar.status?.lease;
    let stepAt: number | undefined;
    if (lease?.id) {
      const step = leaseStep(lease, { renew: dar.spec.renew !== false, fraction: this.fraction(dar, role), uid: dar.metadata.uid ?? '', nowMs: now });
      stepAt = step.kind === 'wait' ? step.atMs : now;
    }
    const rotation = dar.status?.rotation;
    const restartDue = rotation?.completedAt && !rotation.restartedAt && (dar.spec.rolloutRestartTargets ?? []).length > 0 ? now + RETRY_MS : undefined;
    const previous = duePrevious(dar.status?.previousLeases ?? [], now);
    const at = earliest(atMs, stepAt, previous.due.length ? now : previous.nextAtMs, restartDue);
    return at === undefined ? DONE : requeueAfter(Math.max(0, at - now));
  }

  private async renew(dar: DatabaseAccessRequest, role: PostgresRole | undefined, askSeconds: number, canIssue: boolean, ctx: ReconcileContext): Promise<Next> {
    const lease = dar.status!.lease!;
    const uid = dar.metadata.uid ?? '';
    const conn = await this.connectionOf(dar, ctx);
    if (!conn) throw new RetryableError(Reason.ReferenceNotFound, `the Vault AppBinding this request's lease was issued through is gone; cannot renew lease ${lease.id}`);
    const asked = (role ? this.requestedTtlSeconds(dar, role) : undefined) ?? askSeconds;
    let granted: number;
    try {
      granted = (await conn.client.renewLease(lease.id!, asked)).leaseDurationSeconds;
    } catch (err) {
      if (err instanceof VaultRequestError && (err.kind === 'Invalid' || err.kind === 'NotFound')) {
        this.metrics.renewals.labels('refused').inc();
        this.renewalFailures.delete(uid);
        const info = await conn.client.lookupLease(lease.id!).catch(() => null);
        if (info === undefined) {
          return this.rotate(dar, ctx, RotationReason.LeaseRevoked, `lease ${lease.id} no longer exists in Vault (revoked outside Leasehold?)`);
        }
        return this.rotate(dar, ctx, RotationReason.RenewalRefused, `Vault refused to renew lease ${lease.id} (${err.detail})`);
      }
      // Vault unreachable, sealed, or denying us: the credential still works until it expires; keep trying.
      this.metrics.renewals.labels('error').inc();
      const failures = (this.renewalFailures.get(uid) ?? 0) + 1;
      this.renewalFailures.set(uid, failures);
      if (failures === 1) this.events.event(dar, 'Warning', 'LeaseRenewalFailed', `could not renew lease ${lease.id}, retrying until it expires at ${lease.expiresAt}: ${explain(err).message}`);
      ctx.log.warn('lease renewal failed', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId: lease.id, failures, error: explain(err).message });
      const left = Date.parse(lease.expiresAt ?? '') - ctx.now().getTime();
      return { done: requeueAfter(Math.max(1000, Math.min(RETRY_MS, Number.isFinite(left) ? left / 4 : RETRY_MS))) };
    }
    const truncated = renewalTruncated(asked, granted, askSeconds);
    this.metrics.renewals.labels(truncated ? 'truncated' : 'success').inc();
    const failures = this.renewalFailures.get(uid);
    if (failures) {
      this.renewalFailures.delete(uid);
      this.events.event(dar, 'Normal', Reason.LeaseRenewed, `renewed lease ${lease.id} again after ${failures} failed attempt${failures === 1 ? '' : 's'}`);
    }
    if (truncated && canIssue) {
      return this.rotate(dar, ctx, RotationReason.RenewalTruncated, `Vault renewed lease ${lease.id} for ${granted}s of the ${asked}s asked (max TTL reached)`);
    }
    const now = ctx.now();
    const expiresAt = rfc3339(new Date(now.getTime() + granted * 1000));
    const status = desiredStatus(dar, { conditions: [], fields: { lease: { ...lease, duration: formatDuration(granted), lastRenewalTime: rfc3339(now), expiresAt } } }, now);
    dar = (await patchStatus(this.c.kube, DATABASE_ACCESS_REQUESTS, dar as never, status, ctx)).object as DatabaseAccessRequest;
    this.metrics.setExpiry(dar.metadata.namespace ?? '', dar.metadata.name ?? '', expiresAt);
    return { done: this.wake(dar, role, ctx) };
  }

  /**
   * Starts a rotation: one status write moves the lease to previousLeases (revoked a grace period after its
   * successor is in the Secret) and marks the rotation under way; the caller then issues the new credential.
   */
  private async rotate(dar: DatabaseAccessRequest, ctx: ReconcileContext, reason: RotationReason, message: string, extra: Record<string, unknown> = {}): Promise<Next> {
    const st = dar.status!;
    const lease = st.lease;
    let previous: PreviousLease[] = st.previousLeases ?? [];
    let overflow: PreviousLease[] = [];
    if (lease?.id) ({ previous, overflow } = addPrevious(previous, { id: lease.id, ...(st.issuance?.vaultAppBinding ? { vaultAppBinding: st.issuance.vaultAppBinding } : {}) }));
    for (const p of overflow) await this.revokePrevious(dar, p, ctx, 'rotation', `more than ${MAX_PREVIOUS_LEASES} rotations within a grace period`).catch(() => undefined);
    const notAfter = dar.spec.renew === false && lease?.expiresAt ? lease.expiresAt : undefined;
    const now = ctx.now();
    dar = await this.write(dar, ctx, {
      conditions: [],
      remove: ['lease'],
      fields: {
        previousLeases: previous.length ? previous : undefined,
        rotation: { reason, message: message.slice(0, 1000), requestedAt: rfc3339(now), ...(notAfter ? { notAfter } : {}) },
        issuance: { ...st.issuance!, completed: false, attempt: undefined, startedAt: undefined },
        ...extra,
      },
    });
    ctx.log.info('rotating credential', { namespace: dar.metadata.namespace, name: dar.metadata.name, reason, leaseId: lease?.id });
    return { issue: dar };
  }

  /** Revokes the previous leases whose grace period is over. */
  private async revokeDuePrevious(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    const { due, keep } = duePrevious(dar.status?.previousLeases ?? [], ctx.now().getTime());
    if (due.length === 0) return dar;
    const failed: PreviousLease[] = [];
    for (const p of due) {
      try {
        await this.revokePrevious(dar, p, ctx);
      } catch {
        failed.push(p);
      }
    }
    const left = [...keep, ...failed];
    return this.write(dar, ctx, { conditions: [], fields: { previousLeases: left.length ? left : undefined } });
  }

  /** Revokes one previous lease (gone already counts as done); throws when Vault can't be asked. */
  private async revokePrevious(dar: DatabaseAccessRequest, p: PreviousLease, ctx: ReconcileContext, reason: RevocationReason = 'rotation', why = 'the rotation\'s grace period is over'): Promise<void> {
    const conn = await this.connectionOf(dar, ctx, p.vaultAppBinding);
    if (!conn) {
      this.events.event(dar, 'Warning', 'LeaseNotRevoked', `the Vault AppBinding is gone: previous lease ${p.id} is left to expire`);
      return;
    }
    try {
      const outcome = await this.revokeCounted(conn.client, p.id, reason);
      this.events.event(dar, 'Normal', 'LeaseRevoked', `revoked the previous lease ${p.id}${outcome === 'gone' ? ' (it had already ended)' : ''}: ${why}`);
    } catch (err) {
      this.events.event(dar, 'Warning', 'LeaseRevocationFailed', `could not revoke the previous lease ${p.id}, will retry: ${explain(err).message}`);
      throw err;
    }
  }

  /** After a rotation: patch each rolloutRestartTarget's pod template with the rotation's time, once. */
  private async restartTargets(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    const rotation = dar.status?.rotation;
    const targets = dar.spec.rolloutRestartTargets ?? [];
    if (!rotation?.completedAt || rotation.restartedAt || targets.length === 0) return dar;
    const ns = dar.metadata.namespace ?? '';
    const done: string[] = [];
    for (const t of targets) {
      const resource = WORKLOADS[t.kind];
      if (!resource) continue;
      const patch = { spec: { template: { metadata: { annotations: { [Annotations.restartedAt]: rotation.completedAt } } } } };
      try {
        await this.c.kube.patch(resource, ns, t.name, patch, PatchType.merge, ctx);
        done.push(`${t.kind}/${t.name}`);
      } catch (err) {
        if (isNotFound(err)) {
          this.events.event(dar, 'Warning', 'RolloutRestartFailed', `rolloutRestartTargets: ${t.kind} ${ns}/${t.name} does not exist; not restarted`);
          continue;
        }
        this.events.event(dar, 'Warning', 'RolloutRestartFailed', `could not restart ${t.kind} ${ns}/${t.name}, will retry: ${explain(err).message}`);
        return dar; // status.rotation.restartedAt stays unset: the next pass tries again (same value: one restart)
      }
    }
    if (done.length) this.events.event(dar, 'Normal', 'RolloutRestartTriggered', `restarted ${done.join(', ')} for the credential rotated at ${rotation.completedAt}`);
    return this.write(dar, ctx, { conditions: [], fields: { rotation: { ...rotation, restartedAt: rfc3339(ctx.now()) } } });
  }

  /** A changed template or database address: render the Secret again from the credential it holds. */
  private async rerender(dar: DatabaseAccessRequest, layout: Layout, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    const cached = this.ownedSecret(dar);
    if ((cached?.metadata?.annotations?.[LAYOUT_ANNOTATION] ?? '') === layout.hash) return dar;
    const ns = dar.metadata.namespace ?? '';
    const secret = await this.c.kube.tryGet<SecretWithData>(SECRETS, ns, dar.status!.secret!.name, ctx);
    if (!secret?.data?.username || !secret.data.password) return dar;
    if ((secret.metadata?.annotations?.[LAYOUT_ANNOTATION] ?? '') === layout.hash) return dar; // the cache lagged
    const cred = { username: Buffer.from(secret.data.username, 'base64').toString('utf8'), password: Buffer.from(secret.data.password, 'base64').toString('utf8') };
    const data = renderSecretData(layout.templates, templateView(layout.address, cred));
    const annotations = { ...(secret.metadata?.annotations ?? {}) };
    if (layout.hash) annotations[LAYOUT_ANNOTATION] = layout.hash;
    else delete annotations[LAYOUT_ANNOTATION];
    await this.c.kube.replace(SECRETS, ns, secret.metadata!.name!, {
      ...secret, metadata: { ...secret.metadata, annotations },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
    } as never, ctx);
    this.events.event(dar, 'Normal', 'SecretUpdated', `Secret ${secret.metadata!.name} re-rendered: its secretTemplate or the database address changed`);
    return dar;
  }

  /** Available back to True once whatever made it False (a template, a failed rotation) is over. */
  private async markAvailable(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    const available = (dar.status?.conditions ?? []).find((c) => c.type === ConditionType.Available);
    if (available?.status === 'True') return dar;
    return this.write(dar, ctx, {
      conditions: [{ type: ConditionType.Available, status: 'True', reason: Reason.SuccessfullyIssuedCredential, message: `credential in Secret ${dar.status?.secret?.name}; lease ${dar.status?.lease?.id}` }],
    });
  }

  private async expire(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    const leaseId = dar.status?.lease?.id;
    // Vault ends the lease by its own clock, status keeps times to the second, and dropping the login in the
    // database takes a moment: revoking makes sure the login is dead once the phase says Expired. Anything
    // rotated out before is ended too.
    if (leaseId) {
      const conn = await this.connectionOf(dar, ctx);
      if (conn) await this.revokeCounted(conn.client, leaseId, 'expiry');
    }
    for (const p of dar.status?.previousLeases ?? []) await this.revokePrevious(dar, p, ctx, 'expiry', 'the request expired').catch(() => undefined);
    await this.clearSecret(dar, ctx);
    await this.write(dar, ctx, {
      phase: RequestPhase.Expired,
      remove: ['previousLeases'],
      conditions: [
        { type: ConditionType.Available, status: 'False', reason: Reason.LeaseExpired, message: 'the lease ran out (spec.renew is false); the credential was removed from the Secret' },
        { type: ConditionType.Expired, status: 'True', reason: Reason.LeaseExpired, message: `lease ${leaseId ?? ''} expired` },
      ],
    });
    this.forget(dar);
    return DONE;
  }

  private async revokeNow(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    const leaseId = dar.status?.lease?.id;
    const previous = dar.status?.previousLeases ?? [];
    if (leaseId) {
      const conn = await this.connectionOf(dar, ctx);
      if (!conn) throw new RetryableError(Reason.ReferenceNotFound, `cannot reach the Vault lease ${leaseId} was issued through`);
      await this.revokeCounted(conn.client, leaseId, 'revoke-now');
    }
    for (const p of previous) await this.revokePrevious(dar, p, ctx, 'revoke-now', 'revoked on request');
    await this.clearSecret(dar, ctx);
    await this.write(dar, ctx, {
      phase: RequestPhase.Revoked,
      remove: ['previousLeases'],
      conditions: [
        { type: ConditionType.Available, status: 'False', reason: Reason.RevokedOnDemand, message: 'the lease was revoked on request; the credential no longer works' },
        { type: ConditionType.Revoked, status: 'True', reason: Reason.RevokedOnDemand, message: leaseId ? `lease ${leaseId} revoked` : 'nothing had been issued' },
      ],
    });
    this.forget(dar);
    ctx.log.info('revoked on demand', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId });
    return DONE;
  }

  /** Removes every key from the Secret: the credential and everything rendered from it (the Secret stays). */
  private async clearSecret(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<void> {
    const name = dar.status?.secret?.name;
    if (!name || !(await this.secretPresent(dar, ctx))) return;
    await this.c.kube.patch(SECRETS, dar.metadata.namespace ?? '', name, { data: null }, PatchType.merge, ctx);
  }

  // ---- deletion -------------------------------------------------------------------------------------------

  private async finalize(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    this.forget(dar);
    if (!hasFinalizer(dar, FINALIZER) && !hasFinalizer(dar, KUBEVAULT_FINALIZER)) return DONE;
    const conn = await this.connectionOf(dar, ctx);
    const leaseIds = new Set<string>();
    if (dar.status?.lease?.id) leaseIds.add(dar.status.lease.id);
    const annotated = this.ownedSecret(dar)?.metadata?.annotations?.[LEASE_ID_ANNOTATION];
    if (annotated) leaseIds.add(annotated);
    const previous = (dar.status?.previousLeases ?? []).filter((p) => !leaseIds.has(p.id));
    if (conn) {
      for (const id of leaseIds) await this.revokeCounted(conn.client, id, 'deletion');
      const attempt = dar.status?.issuance;
      if (attempt?.attempt && !attempt.completed) await this.sweep(dar, attempt, conn.client, ctx);
      if (leaseIds.size > 0) this.events.event(dar, 'Normal', 'LeaseRevoked', `revoked lease ${[...leaseIds].join(', ')}`);
    } else if (leaseIds.size > 0) {
      this.events.event(dar, 'Warning', 'LeaseNotRevoked', `the Vault AppBinding is gone: lease ${[...leaseIds].join(', ')} is left to expire`);
    }
    for (const p of previous) await this.revokePrevious(dar, p, ctx, 'deletion', 'the request was deleted');
    const obj = (await removeFinalizer(this.c.kube, DATABASE_ACCESS_REQUESTS, dar, FINALIZER, ctx)).object;
    await removeFinalizer(this.c.kube, DATABASE_ACCESS_REQUESTS, obj, KUBEVAULT_FINALIZER, ctx);
    return DONE;
  }

  /** Drops what this process keeps about a request that ended. */
  private forget(dar: DatabaseAccessRequest): void {
    this.metrics.forget(dar.metadata.namespace ?? '', dar.metadata.name ?? '');
    this.approvalSeen.delete(dar.metadata.uid ?? '');
    this.renewalFailures.delete(dar.metadata.uid ?? '');
  }

  /** Revokes a lease, counting the outcome; a lease already gone is fine. */
  private async revokeCounted(vault: VaultClient, leaseId: string, reason: RevocationReason): Promise<'success' | 'gone'> {
    try {
      await vault.revokeLease(leaseId);
      this.metrics.revocations.labels(reason, 'success').inc();
      return 'success';
    } catch (err) {
      if (err instanceof VaultRequestError && (err.kind === 'Invalid' || err.kind === 'NotFound')) {
        this.metrics.revocations.labels(reason, 'gone').inc();
        return 'gone';
      }
      this.metrics.revocations.labels(reason, 'error').inc();
      throw err;
    }
  }

  /** The Vault connection a recorded lease lives in (from status, so it works after the role is gone). */
  private async connectionOf(dar: DatabaseAccessRequest, ctx: ReconcileContext, ref?: { namespace?: string; name: string }): Promise<VaultConnection | undefined> {
    const r = ref ?? dar.status?.issuance?.vaultAppBinding;
    if (!r) return undefined;
    const ab: AppBinding | undefined = this.c.caches.appBindings.get(r.namespace || dar.metadata.namespace || '', r.name);
    return ab ? this.c.connections.forAppBinding(ab, ctx.signal) : undefined;
  }

  private async write(dar: DatabaseAccessRequest, ctx: ReconcileContext, update: Parameters<typeof report>[4]): Promise<DatabaseAccessRequest> {
    return report(this.c.kube, DATABASE_ACCESS_REQUESTS, this.events, dar, update, ctx.now(), ctx.signal);
  }

  /** A status write that, on a conflict, reads the request again and retries once. */
  private async writeFresh(dar: DatabaseAccessRequest, ctx: ReconcileContext, update: (d: DatabaseAccessRequest) => Parameters<typeof report>[4]): Promise<DatabaseAccessRequest> {
    try {
      return await this.write(dar, ctx, update(dar));
    } catch (err) {
      if (!(err instanceof RetryableError && err.reason === 'Conflict')) throw err;
      const fresh = await this.c.kube.get<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, dar.metadata.namespace ?? '', dar.metadata.name ?? '', ctx);
      return this.write(fresh, ctx, update(fresh));
    }
  }

}
