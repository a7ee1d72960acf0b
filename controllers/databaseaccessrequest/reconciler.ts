// DatabaseAccessRequest: nothing is issued until an Approved condition appears; then a leased credential is
// issued into a Secret owned by the request, readable only by spec.subjects (a Role and RoleBinding), and kept
// alive for as long as the request exists: renewed before it runs out, rotated (a fresh credential in the same
// Secret) when Vault won't renew it any further, and revoked when the request is deleted or revoked. With
// spec.renew false the lease runs out at its TTL instead (phase Expired, credential removed from the Secret).
//
// This file decides what a pass does and wires the parts together; the parts are:
//   issuance.ts          issuing a credential exactly once (first issuance and each rotation), the sweep;
//   lease-keeper.ts      a recorded lease: renewal, rotation, grace periods, expiry, rollout restarts;
//   grants.ts            the Role and RoleBinding that let spec.subjects read the Secret;
//   credential-secret.ts the Secret's annotations, its layout (templates, database address), re-rendering;
//   revocation.ts        revoking leases (counted), a rotated-out lease's grace period;
//   ending.ts            revoke-now, expiry (spec.renew false) and deletion;
//   controller-state.ts  what they share: context, metrics, Events, approvals, what this process remembers.
import type { Registry } from 'prom-client';
import { Annotations, ConditionType, FINALIZER, Reason, RequestPhase, type DatabaseAccessRequest, type PostgresRole } from '../../api/index.ts';
import {
  DONE, RetryableError, TerminalError, addFinalizer, describeError, requeueAfter, type ObjectKey, type ReconcileContext, type Reconciler, type Result,
} from '../../lib/runtime/index.ts';
import type { ControllerContext } from '../shared/context.ts';
import { explain } from '../shared/report.ts';
import { DATABASE_ACCESS_REQUESTS } from '../shared/resources.ts';
import { Dependencies } from '../shared/dependents.ts';
import { ReferenceNotAllowed } from '../shared/references.ts';
import { resolveRoleTarget } from '../shared/role-target.ts';
// Issue 11 (approval): the operator's part of approval lives in approval.ts; the call sites here are marked.
import { assertMayIssue } from './approval.ts';
import { RequestControllerState } from './controller-state.ts';
import { reportTemplateProblems, secretLayout } from './credential-secret.ts';
import { decide, namespaceAllowed } from './decide.ts';
import { expire, finalize, revokeNow } from './ending.ts';
import { ensureGrants } from './grants.ts';
import { issue, pendingRotation } from './issuance.ts';
import { maintain, restartTargets, wake } from './lease-keeper.ts';
import type { LeaseMetrics } from './metrics.ts';

export class DatabaseAccessRequestReconciler implements Reconciler {
  private readonly state: RequestControllerState;
  private readonly dependencies: Dependencies;
  readonly metrics: LeaseMetrics;

  constructor(c: ControllerContext, registry?: Registry) {
    this.state = new RequestControllerState(c, registry);
    this.dependencies = new Dependencies(c.caches, c.clusterName);
    this.metrics = this.state.metrics;
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    const cached = this.state.c.caches.requests.get(key.namespace, key.name);
    if (!cached) {
      this.state.metrics.forget(key.namespace, key.name);
      return DONE;
    }
    let dar: DatabaseAccessRequest = cached;
    const decision = decide(dar, dar.metadata.annotations?.[Annotations.revokeNow]);
    if (decision.kind === 'finalize') return finalize(this.state, dar, ctx);

    dar = (await addFinalizer(this.state.c.kube, DATABASE_ACCESS_REQUESTS, dar, FINALIZER, ctx)).object;
    // approval (issue 11): status.requester from the admission-recorded annotation; a new decision audited, phase set.
    dar = await this.state.approvals.observe(dar, ctx, (d, u) => this.state.write(d, ctx, u));
    switch (decision.kind) {
      case 'denied':
        await this.state.write(dar, ctx, { phase: RequestPhase.Denied, conditions: [] });
        return DONE;
      case 'waitForApproval':
        // approval (issue 11): expire after the role's pendingTTL, auto-approve, or wait (WaitingForApproval).
        return this.state.approvals.pending(dar, this.state.cachedRole(dar), ctx, (d, u) => this.state.write(d, ctx, u));
      case 'finished':
        this.state.forget(dar);
        return DONE;
      case 'revokeNow':
        return revokeNow(this.state, dar, ctx);
      case 'approved':
        return this.serve(dar, ctx);
    }
  }

  // ---- approved: issue, keep the grants, renew, rotate ---------------------------------------------------

  private async serve(dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<Result> {
    const ns = dar.metadata.namespace ?? '';
    try {
      if (dar.status?.lease?.id && dar.status?.issuance?.completed) {
        const next = await maintain(this.state, dar, ctx);
        if ('done' in next) return next.done;
        dar = next.issue; // a rotation started: issue its credential in this same pass
      }
      const uid = dar.metadata.uid ?? '';
      if (!pendingRotation(dar) && !this.state.approvalSeen.has(uid)) this.state.approvalSeen.set(uid, ctx.now().getTime());
      const rotation = pendingRotation(dar);
      if (rotation?.notAfter && ctx.now().getTime() >= Date.parse(rotation.notAfter)) return await expire(this.state, dar, ctx);
      const role = this.role(dar);
      assertMayIssue(dar, role); // approval (issue 11): requireReason and four eyes again before the first issuance
      const target = resolveRoleTarget(role, this.state.c.caches, this.state.c.clusterName);
      const vaultRole = role.status?.vaultRole;
      if (role.status?.phase !== 'Success' || !vaultRole) {
        throw new RetryableError('RoleNotReady', `PostgresRole ${role.metadata.namespace}/${role.metadata.name} is not ready yet (phase ${role.status?.phase ?? 'unknown'})`);
      }
      // Deletion order (issue 15): nothing new is issued through an object on its way out; issued leases stay renewed.
      const going = this.dependencies.terminatingOnIssuePath(role, target.vaultAppBinding);
      if (going) {
        throw new RetryableError(Reason.ReferenceTerminating, `${going} is being deleted: no new credential is issued through it ` +
          '(a lease already issued is still renewed, and revoked when the request goes)');
      }
      const layout = secretLayout(this.state, dar, role);
      if (layout.problems.length > 0) {
        // Refused before anything is issued: a Secret with an empty or wrong value would be worse than none.
        await reportTemplateProblems(this.state, dar, layout, ctx);
        // A change to the request or its role wakes us; a database AppBinding appearing doesn't, hence the poll.
        return requeueAfter(60_000);
      }
      const conn = await this.state.c.connections.forAppBinding(target.vaultAppBinding, ctx.signal);
      dar = await issue(this.state, dar, role, target, vaultRole, conn, layout, ctx);
      await ensureGrants(this.state, dar, ctx);
      dar = await restartTargets(this.state, dar, ctx);
      return wake(this.state, dar, role, ctx);
    } catch (err) {
      // A conflict means our read was stale: retry at once with fresh data (the queue's backoff), no status noise.
      if (err instanceof RetryableError && err.reason === 'Conflict') throw err;
      const rotation = pendingRotation(dar);
      if (rotation) this.state.metrics.rotations.labels(rotation.reason ?? 'unknown', 'error').inc();
      const explained = explain(err);
      const { message, retryable } = explained;
      // Vault refusing or failing to issue is KubeVault's FailedToGetCredential; its words stay in the message.
      const reason = explained.reason === 'VaultServer' || explained.reason === 'VaultInvalid' ? Reason.FailedToGetCredential : explained.reason;
      // A reference the other namespace doesn't admit (shared/references.ts) is fixed by its opting in, which
      // wakes the role and so this request: no phase Failed, nothing issued meanwhile.
      const terminal = err instanceof TerminalError && !(err instanceof ReferenceNotAllowed);
      // A bug, or an answer nobody expected: the log must show it (the controller only logs errors thrown to it).
      if (explained.reason === 'InternalError') ctx.log.error('serving the request failed unexpectedly', { namespace: ns, name: dar.metadata.name, error: message });
      // Fresh: the pass may have written status (the issuance marker) since `dar` was read.
      await this.state.writeFresh(dar, ctx, (fresh) => ({
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
    const role = this.state.c.caches.postgresRoles.get(roleNs, dar.spec.roleRef.name);
    if (!role) throw new RetryableError(Reason.ReferenceNotFound, `PostgresRole ${roleNs}/${dar.spec.roleRef.name} named by spec.roleRef does not exist`);
    if (!namespaceAllowed(role, ns)) {
      throw new TerminalError(Reason.NamespaceNotAllowed, `PostgresRole ${roleNs}/${role.metadata.name} does not admit requests from namespace ${ns}: ` +
        `add "${ns}" to its spec.allowedRequestNamespaces`);
    }
    return role;
  }
}
