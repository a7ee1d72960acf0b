// DatabaseAccessRequest: nothing is issued until an Approved condition appears; then exactly one leased
// credential is issued into a Secret owned by the request, readable only by spec.subjects (a Role and
// RoleBinding), renewed before it runs out and revoked when the request is deleted or revoked.
//
// Exactly once: before asking Vault, status.issuance records the attempt (with the resourceVersion
// precondition, so two passes can't both start one). The credential goes into the Secret, annotated with its
// lease id, before status records the lease. A crash between the Vault call and the Secret leaves an attempt
// that isn't `completed`: the next pass looks up the role's leases issued since the attempt started that no
// request and no Secret records, and revokes them before issuing again. Issuance is serialised per Vault role
// in the process, so the only unrecorded leases in that window are the crashed attempt's own.
import { randomUUID } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  Annotations, ConditionType, FINALIZER, KUBEVAULT_FINALIZER, Labels, MANAGED_BY, Reason, RequestPhase, formatDuration, parseDurationSeconds,
  type AppBinding, type DatabaseAccessRequest, type PostgresRole,
} from '../../api/index.ts';
import {
  DONE, RetryableError, TerminalError, addFinalizer, controllerOwnerRef, deepEqual, describeError, hasFinalizer, patchStatus, removeFinalizer,
  requeueAfter, rfc3339, type ObjectKey, type ReconcileContext, type Reconciler, type Result,
} from '../../lib/runtime/index.ts';
import type { LeasedCredential, VaultClient } from '../../lib/vault/client.ts';
import { VaultRequestError } from '../../lib/vault/errors.ts';
import { crashPoint } from '../../lib/faults.ts';
import type { ControllerContext } from '../shared/context.ts';
import { leasePrefix } from '../shared/names.ts';
import { desiredStatus, explain, report } from '../shared/report.ts';
import { DATABASE_ACCESS_REQUESTS, ROLE_BINDINGS, ROLES, SECRETS } from '../shared/resources.ts';
import { resolveRoleTarget, type RoleTarget } from '../shared/role-target.ts';
import type { VaultConnection } from '../shared/vault-connections.ts';
import { DEFAULT_RENEW_FRACTION, decide, namespaceAllowed, newSecretName, renewAtMs } from './decide.ts';

/** The Secret annotation that records which lease its credential belongs to. */
export const LEASE_ID_ANNOTATION = 'leasehold.dev/lease-id';
/** Leases issued this long before an attempt's recorded start still count as the attempt's (clock skew). */
const SWEEP_SKEW_MS = 5_000;

type Issuance = NonNullable<NonNullable<DatabaseAccessRequest['status']>['issuance']>;
type SecretMeta = KubernetesObject;

export class DatabaseAccessRequestReconciler implements Reconciler {
  private readonly roleLocks = new Map<string, Promise<unknown>>();

  constructor(private readonly c: ControllerContext) {}

  private get events() {
    return this.c.events('leasehold-databaseaccessrequest');
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    const cached = this.c.caches.requests.get(key.namespace, key.name);
    if (!cached) return DONE;
    let dar: DatabaseAccessRequest = cached;
    const decision = decide(dar, dar.metadata.annotations?.[Annotations.revokeNow]);
    if (decision.kind === 'finalize') return this.finalize(dar, ctx);

    dar = (await addFinalizer(this.c.kube, DATABASE_ACCESS_REQUESTS, dar, FINALIZER, ctx)).object;
    switch (decision.kind) {
      case 'denied':
        await this.write(dar, ctx, { phase: RequestPhase.Denied, conditions: [] });
        return DONE;
      case 'waitForApproval':
        await this.write(dar, ctx, {
          phase: RequestPhase.WaitingForApproval,
          conditions: [{ type: ConditionType.Available, status: 'False', reason: Reason.WaitingForApproval, message: 'waiting for a person to approve or deny the request (kubectl vault approve|deny databaseaccessrequest)' }],
        });
        return DONE;
      case 'finished':
        return DONE;
      case 'revokeNow':
        return this.revokeNow(dar, ctx);
      case 'approved':
        return this.serve(dar, ctx);
    }
  }

  // ---- approved: issue, keep the grants, renew ---------------------------------------------------------

  private async serve(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    const ns = dar.metadata.namespace ?? '';
    try {
      const lease = dar.status?.lease;
      if (lease?.id && dar.status?.issuance?.completed) return await this.maintain(dar, ctx);
      const role = this.role(dar);
      const target = resolveRoleTarget(role, this.c.caches, this.c.clusterName);
      const vaultRole = role.status?.vaultRole;
      if (role.status?.phase !== 'Success' || !vaultRole) {
        throw new RetryableError('RoleNotReady', `PostgresRole ${role.metadata.namespace}/${role.metadata.name} is not ready yet (phase ${role.status?.phase ?? 'unknown'})`);
      }
      const conn = await this.c.connections.forAppBinding(target.vaultAppBinding, ctx.signal);
      dar = await this.withRoleLock(`${target.mount}/${vaultRole}`, () => this.issue(dar, role, target, vaultRole, conn, ctx));
      await this.ensureGrants(dar, ctx);
      return this.schedule(dar, role, ctx);
    } catch (err) {
      // A conflict means our read was stale: retry at once with fresh data (the queue's backoff), no status noise.
      if (err instanceof RetryableError && err.reason === 'Conflict') throw err;
      const { reason, message, retryable } = explain(err);
      const terminal = err instanceof TerminalError;
      await this.write(dar, ctx, {
        ...(terminal ? { phase: RequestPhase.Failed } : dar.status?.phase ? {} : { phase: RequestPhase.Approved }),
        conditions: [
          { type: ConditionType.Available, status: 'False', reason, message },
          ...(terminal ? [{ type: ConditionType.Failed, status: 'True' as const, reason, message }] : []),
        ],
      }).catch((e) => ctx.log.warn('could not record a failure in status', { error: describeError(e), namespace: ns }));
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

  private async issue(dar: DatabaseAccessRequest, role: PostgresRole, target: RoleTarget, vaultRole: string, conn: VaultConnection, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
    const name = dar.metadata.name ?? '';
    // A Secret already holding a recorded lease (we stopped after writing it, before status): adopt it.
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

    const { client, ownedBy } = await conn.issuingClient();
    let cred: LeasedCredential = await client.issueCredential(target.mount, vaultRole);
    crashPoint('crash-after-issue'); // the window exactly-once must survive: issued, recorded nowhere
    try {
      const ttl = this.requestedTtlSeconds(dar, role);
      if (ttl !== undefined && ttl !== cred.leaseDurationSeconds && cred.renewable) {
        const renewed = await conn.client.renewLease(cred.leaseId, ttl);
        cred = { ...cred, leaseDurationSeconds: renewed.leaseDurationSeconds };
      }
      await this.writeSecret(dar, secretName, cred, ctx);
      const now = ctx.now();
      const status = desiredStatus(dar, {
        phase: RequestPhase.Approved,
        conditions: [{ type: ConditionType.Available, status: 'True', reason: Reason.SuccessfullyIssuedCredential,
          message: `credential issued into Secret ${secretName}; lease ${cred.leaseId} for ${formatDuration(cred.leaseDurationSeconds)}` +
            (ownedBy === 'login-token' ? ' (owned by the operator\'s login token: no issuer token role in Vault)' : '') }],
        fields: {
          issuance: { ...issuance, completed: true },
          secret: { name: secretName },
          lease: {
            id: cred.leaseId, duration: formatDuration(cred.leaseDurationSeconds), renewable: cred.renewable,
            issuedAt: rfc3339(now), expiresAt: rfc3339(new Date(now.getTime() + cred.leaseDurationSeconds * 1000)),
          },
        },
      }, now);
      dar = await this.recordWithRetry(dar, status, ctx);
      this.events.event(dar, 'Normal', Reason.SuccessfullyIssuedCredential, `issued a credential into Secret ${secretName} (lease expires in ${formatDuration(cred.leaseDurationSeconds)})`);
      ctx.log.info('issued credential', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId: cred.leaseId, secret: secretName, owner: ownedBy });
      return dar;
    } catch (err) {
      // Not recorded: give the lease back now rather than leave it to the next pass's sweep.
      await conn.client.revokeLease(cred.leaseId).catch(() => undefined);
      throw err;
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

  private ownedSecret(dar: DatabaseAccessRequest): SecretMeta | undefined {
    const name = dar.status?.secret?.name;
    if (!name) return undefined;
    const s = this.c.caches.secrets.get(dar.metadata.namespace ?? '', name) as SecretMeta | undefined;
    return s && s.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid) ? s : undefined;
  }

  private async adoptFromSecret(dar: DatabaseAccessRequest, vault: VaultClient, ctx: ReconcileContext): Promise<DatabaseAccessRequest | undefined> {
    const secret = this.ownedSecret(dar);
    const leaseId = secret?.metadata?.annotations?.[LEASE_ID_ANNOTATION];
    const issuance = dar.status?.issuance;
    if (!leaseId || !issuance || issuance.completed) return undefined;
    const info = await vault.lookupLease(leaseId);
    if (!info) return undefined; // gone: issue afresh
    const now = ctx.now();
    const status = desiredStatus(dar, {
      phase: RequestPhase.Approved,
      conditions: [{ type: ConditionType.Available, status: 'True', reason: Reason.SuccessfullyIssuedCredential, message: `credential in Secret ${secret!.metadata!.name} recovered after a restart` }],
      fields: {
        issuance: { ...issuance, completed: true },
        lease: {
          id: leaseId, duration: formatDuration(info.ttlSeconds), renewable: info.renewable, issuedAt: info.issueTime ?? rfc3339(now),
          expiresAt: info.expireTime ?? rfc3339(new Date(now.getTime() + info.ttlSeconds * 1000)),
        },
      },
    }, now);
    return this.recordWithRetry(dar, status, ctx);
  }

  /** Revokes leases of the role issued since an unfinished attempt started that nothing records. */
  private async sweep(dar: DatabaseAccessRequest, attempt: Issuance, vault: VaultClient, ctx: ReconcileContext): Promise<void> {
    if (!attempt.mount || !attempt.role || !attempt.startedAt) return;
    const recorded = new Set<string>();
    for (const r of this.c.caches.requests.list()) if (r.status?.lease?.id) recorded.add(r.status.lease.id);
    for (const s of this.c.caches.secrets.list()) {
      const id = (s as SecretMeta).metadata?.annotations?.[LEASE_ID_ANNOTATION];
      if (id) recorded.add(id);
    }
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
      this.events.event(dar, 'Warning', 'OrphanLeaseRevoked', `revoked lease ${leaseId}: it was issued for this request before a restart and never recorded`);
      ctx.log.warn('revoked an unrecorded lease', { leaseId, namespace: dar.metadata.namespace, name: dar.metadata.name });
    }
  }

  private async writeSecret(dar: DatabaseAccessRequest, name: string, cred: LeasedCredential, ctx: ReconcileContext): Promise<void> {
    const ns = dar.metadata.namespace ?? '';
    const body = {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: {
        name, namespace: ns,
        labels: { [Labels.managedBy]: MANAGED_BY, [Labels.request]: dar.metadata.name ?? '' },
        annotations: { [LEASE_ID_ANNOTATION]: cred.leaseId },
        ownerReferences: [controllerOwnerRef(dar)],
      },
      stringData: { username: cred.username, password: cred.password },
    };
    const existing = await this.c.kube.tryGet<SecretMeta>(SECRETS, ns, name, ctx);
    if (!existing) {
      await this.c.kube.create(SECRETS, ns, body as never, ctx);
      return;
    }
    if (!existing.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid)) {
      throw new TerminalError(Reason.FailedToCreateSecret, `Secret ${ns}/${name} exists and is not owned by this request`);
    }
    await this.c.kube.replace(SECRETS, ns, name, { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } } as never, ctx);
  }

  /** A Role allowing `get` on exactly the credential Secret, bound to spec.subjects; both owned by the request. */
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
    await this.ensure(ROLES, ns, role, ['rules'], ctx);
    await this.ensure(ROLE_BINDINGS, ns, binding, ['roleRef', 'subjects'], ctx);
  }

  private async ensure(resource: typeof ROLES, ns: string, desired: { metadata: { name: string } } & Record<string, unknown>, fields: string[], ctx: ReconcileContext): Promise<void> {
    const existing = await this.c.kube.tryGet<{ metadata: { resourceVersion?: string } } & Record<string, unknown>>(resource, ns, desired.metadata.name, ctx);
    if (!existing) {
      await this.c.kube.create(resource, ns, desired as never, ctx);
    } else if (fields.some((f) => !deepEqual(existing[f], desired[f]))) {
      await this.c.kube.replace(resource, ns, desired.metadata.name, { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata.resourceVersion } } as never, ctx);
    }
  }

  // ---- a recorded lease: keep it alive, or let it go ----------------------------------------------------

  private async maintain(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    const lease = dar.status!.lease!;
    if (!this.ownedSecret(dar)) {
      // The Secret was deleted: its password is gone with it. Give the lease back and issue afresh.
      const conn = await this.connectionOf(dar, ctx);
      if (conn) await conn.client.revokeLease(lease.id!).catch(() => undefined);
      await this.write(dar, ctx, { conditions: [{ type: ConditionType.Available, status: 'False', reason: 'SecretMissing', message: `Secret ${dar.status?.secret?.name} was deleted; issuing a new credential` }], remove: ['lease'], fields: { issuance: { ...dar.status!.issuance!, completed: false, attempt: undefined, startedAt: undefined } } });
      return requeueAfter(0);
    }
    await this.ensureGrants(dar, ctx);
    const role = this.c.caches.postgresRoles.get(dar.spec.roleRef.namespace ?? dar.metadata.namespace ?? '', dar.spec.roleRef.name);
    const now = ctx.now().getTime();
    const expiresAt = lease.expiresAt ? Date.parse(lease.expiresAt) : now;
    const renew = dar.spec.renew !== false && lease.renewable;
    if (now >= expiresAt) {
      if (!renew) return this.expire(dar, ctx);
      return this.reissue(dar, ctx, 'the lease ran out');
    }
    if (!renew) return requeueAfter(expiresAt - now);
    return this.schedule(dar, role, ctx);
  }

  /** Renews when due; otherwise asks to be woken when it will be. */
  private async schedule(dar: DatabaseAccessRequest, role: PostgresRole | undefined, ctx: ReconcileContext): Promise<Result> {
    const lease = dar.status?.lease;
    if (!lease?.id || !lease.expiresAt) return DONE;
    const now = ctx.now().getTime();
    const expiresAt = Date.parse(lease.expiresAt);
    if (dar.spec.renew === false || !lease.renewable) return requeueAfter(Math.max(0, expiresAt - now));
    const from = Date.parse(lease.lastRenewalTime ?? lease.issuedAt ?? lease.expiresAt);
    const durationSeconds = Math.max(1, (expiresAt - from) / 1000);
    const fraction = dar.spec.renewFraction ?? role?.spec.renewFraction ?? DEFAULT_RENEW_FRACTION;
    const due = renewAtMs(from, durationSeconds, fraction, dar.metadata.uid ?? '');
    if (now < due) return requeueAfter(due - now);
    return this.renew(dar, role, ctx);
  }

  private async renew(dar: DatabaseAccessRequest, role: PostgresRole | undefined, ctx: ReconcileContext): Promise<Result> {
    const lease = dar.status!.lease!;
    const conn = await this.connectionOf(dar, ctx);
    if (!conn) throw new RetryableError(Reason.ReferenceNotFound, `the Vault AppBinding this request's lease was issued through is gone; cannot renew lease ${lease.id}`);
    const wanted = role ? this.requestedTtlSeconds(dar, role) : undefined;
    try {
      const renewed = await conn.client.renewLease(lease.id!, wanted ?? Math.round((Date.parse(lease.expiresAt!) - Date.parse(lease.lastRenewalTime ?? lease.issuedAt ?? lease.expiresAt!)) / 1000));
      const now = ctx.now();
      const status = desiredStatus(dar, { conditions: [], fields: { lease: { ...lease, duration: formatDuration(renewed.leaseDurationSeconds), lastRenewalTime: rfc3339(now), expiresAt: rfc3339(new Date(now.getTime() + renewed.leaseDurationSeconds * 1000)) } } }, now);
      await patchStatus(this.c.kube, DATABASE_ACCESS_REQUESTS, dar as never, status, ctx);
      // Wake up at the next renewal, or at expiry when Vault truncated the lease (max TTL reached).
      const expiresIn = renewed.leaseDurationSeconds * 1000;
      return requeueAfter(Math.max(1000, Math.min(expiresIn, expiresIn * (dar.spec.renewFraction ?? role?.spec.renewFraction ?? DEFAULT_RENEW_FRACTION))));
    } catch (err) {
      if (err instanceof VaultRequestError && (err.kind === 'Invalid' || err.kind === 'NotFound')) {
        return this.reissue(dar, ctx, `Vault refused to renew lease ${lease.id} (${err.detail})`);
      }
      this.events.event(dar, 'Warning', 'LeaseRenewalFailed', explain(err).message);
      throw err;
    }
  }

  /** Drops the recorded lease so the next pass issues a fresh credential into the same Secret. */
  private async reissue(dar: DatabaseAccessRequest, ctx: ReconcileContext, why: string): Promise<Result> {
    const conn = await this.connectionOf(dar, ctx);
    if (conn && dar.status?.lease?.id) await conn.client.revokeLease(dar.status.lease.id).catch(() => undefined);
    this.events.event(dar, 'Normal', Reason.CredentialRotated, `${why}: issuing a fresh credential into Secret ${dar.status?.secret?.name}`);
    await this.write(dar, ctx, { conditions: [], remove: ['lease'], fields: { issuance: { ...dar.status!.issuance!, completed: false, attempt: undefined, startedAt: undefined } } });
    return requeueAfter(0);
  }

  private async expire(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    await this.clearSecret(dar, ctx);
    await this.write(dar, ctx, {
      phase: RequestPhase.Expired,
      conditions: [
        { type: ConditionType.Available, status: 'False', reason: Reason.LeaseExpired, message: 'the lease ran out (spec.renew is false); the credential was removed from the Secret' },
        { type: ConditionType.Expired, status: 'True', reason: Reason.LeaseExpired, message: `lease ${dar.status?.lease?.id} expired` },
      ],
    });
    return DONE;
  }

  private async revokeNow(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    const leaseId = dar.status?.lease?.id;
    if (leaseId) {
      const conn = await this.connectionOf(dar, ctx);
      if (!conn) throw new RetryableError(Reason.ReferenceNotFound, `cannot reach the Vault lease ${leaseId} was issued through`);
      await this.revokeIgnoringGone(conn.client, leaseId);
    }
    await this.clearSecret(dar, ctx);
    await this.write(dar, ctx, {
      phase: RequestPhase.Revoked,
      conditions: [
        { type: ConditionType.Available, status: 'False', reason: Reason.RevokedOnDemand, message: 'the lease was revoked on request; the credential no longer works' },
        { type: ConditionType.Revoked, status: 'True', reason: Reason.RevokedOnDemand, message: leaseId ? `lease ${leaseId} revoked` : 'nothing had been issued' },
      ],
    });
    ctx.log.info('revoked on demand', { namespace: dar.metadata.namespace, name: dar.metadata.name, leaseId });
    return DONE;
  }

  /** Removes the credential keys from the Secret (the Secret itself stays, owned by the request). */
  private async clearSecret(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<void> {
    const name = dar.status?.secret?.name;
    if (!name || !this.ownedSecret(dar)) return;
    await this.c.kube.patch(SECRETS, dar.metadata.namespace ?? '', name, { data: { username: null, password: null } }, 'application/merge-patch+json' as never, ctx);
  }

  // ---- deletion -------------------------------------------------------------------------------------------

  private async finalize(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    if (!hasFinalizer(dar, FINALIZER) && !hasFinalizer(dar, KUBEVAULT_FINALIZER)) return DONE;
    const conn = await this.connectionOf(dar, ctx);
    const leaseIds = new Set<string>();
    if (dar.status?.lease?.id) leaseIds.add(dar.status.lease.id);
    const annotated = this.ownedSecret(dar)?.metadata?.annotations?.[LEASE_ID_ANNOTATION];
    if (annotated) leaseIds.add(annotated);
    if (conn) {
      for (const id of leaseIds) await this.revokeIgnoringGone(conn.client, id);
      const attempt = dar.status?.issuance;
      if (attempt?.attempt && !attempt.completed) await this.sweep(dar, attempt, conn.client, ctx);
      if (leaseIds.size > 0) this.events.event(dar, 'Normal', 'LeaseRevoked', `revoked lease ${[...leaseIds].join(', ')}`);
    } else if (leaseIds.size > 0) {
      this.events.event(dar, 'Warning', 'LeaseNotRevoked', `the Vault AppBinding is gone: lease ${[...leaseIds].join(', ')} is left to expire`);
    }
    const obj = (await removeFinalizer(this.c.kube, DATABASE_ACCESS_REQUESTS, dar, FINALIZER, ctx)).object;
    await removeFinalizer(this.c.kube, DATABASE_ACCESS_REQUESTS, obj, KUBEVAULT_FINALIZER, ctx);
    return DONE;
  }

  private async revokeIgnoringGone(vault: VaultClient, leaseId: string): Promise<void> {
    try {
      await vault.revokeLease(leaseId);
    } catch (err) {
      if (err instanceof VaultRequestError && (err.kind === 'Invalid' || err.kind === 'NotFound')) return; // already gone
      throw err;
    }
  }

  /** The Vault connection a recorded lease lives in (from status.issuance, so it works after the role is gone). */
  private async connectionOf(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<VaultConnection | undefined> {
    const ref = dar.status?.issuance?.vaultAppBinding;
    if (!ref) return undefined;
    const ab: AppBinding | undefined = this.c.caches.appBindings.get(ref.namespace ?? dar.metadata.namespace ?? '', ref.name);
    return ab ? this.c.connections.forAppBinding(ab, ctx.signal) : undefined;
  }

  private async write(dar: DatabaseAccessRequest, ctx: ReconcileContext, update: Parameters<typeof report>[4]): Promise<DatabaseAccessRequest> {
    return report(this.c.kube, DATABASE_ACCESS_REQUESTS, this.events, dar, update, ctx.now(), ctx.signal);
  }

  private async withRoleLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.roleLocks.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.roleLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.roleLocks.get(key) === tail) this.roleLocks.delete(key);
    }
  }
}
