// Any role kind (PostgresRole, MySQLRole, MariaDBRole, RedisRole; role-kinds.ts has the table) → the Vault role
// `k8s.<cluster>.<ns>.<name>` under the engine's mount. Statements go to Vault exactly as written (SQL, or Redis's
// JSON ACL rule lists): Vault's {{name}}/{{password}}/{{expiration}} are Vault's to fill in. A database (or
// SecretEngine) of another namespace that doesn't admit this one is refused, Failed/ReferenceNotAllowed, before
// anything is written (shared/role-target.ts); a role written before that namespace withdrew its consent stays
// in Vault until the PostgresRole is deleted, but nothing more is issued from it.
// A role whose SecretEngine connects to another kind of database is Failed/EngineKindMismatch.
// On deletion it waits (condition Terminating) while requests hold leases issued from it — renewing them reads
// the Vault role — then deletes the Vault role (../shared/dependents.ts has the whole order).
import crypto from 'node:crypto';
import {
  EnginePhase,
  EventOnlyReason,
  FINALIZER,
  Interval,
  KUBEVAULT_FINALIZER,
  parseDurationSeconds,
  Reason,
  type DatabaseRole,
  type RoleKind,
} from '../../api/index.ts';
import {
  DONE,
  RetryableError,
  TerminalError,
  addFinalizer,
  hasFinalizer,
  removeFinalizer,
  requeueAfter,
  type ObjectKey,
  type ReconcileContext,
  type Reconciler,
  type Result,
} from '../../lib/runtime/index.ts';
import { isVaultNotFound } from '../../lib/vault/errors.ts';
import { Dependencies, describeDependents } from '../shared/dependents.ts';
import type { DatabaseRoleSpec } from '../../lib/vault/client.ts';
import type { ControllerContext } from '../shared/context.ts';
import { vaultRoleName } from '../shared/names.ts';
import { engineFailed, engineSucceeded, explain, report, terminating } from '../shared/report.ts';
import { ROLE_KIND_INFO, type RoleKindInfo } from '../shared/role-kinds.ts';
import { MissingReference, resolveRoleTarget } from '../shared/role-target.ts';

/** The Vault role a role of any kind writes: its statements untouched, its TTLs in seconds. */
export function roleSpecForVault(role: Pick<DatabaseRole, 'spec'>, connection: string): DatabaseRoleSpec {
  return {
    dbName: connection,
    creationStatements: role.spec.creationStatements,
    revocationStatements: role.spec.revocationStatements ?? [],
    rollbackStatements: role.spec.rollbackStatements ?? [],
    renewStatements: role.spec.renewStatements ?? [],
    defaultTtlSeconds: role.spec.defaultTTL ? parseDurationSeconds(role.spec.defaultTTL) : 0,
    maxTtlSeconds: role.spec.maxTTL ? parseDurationSeconds(role.spec.maxTTL) : 0,
  };
}

/** The controller of one role kind: the same for every kind, parameterized by its row of ROLE_KIND_INFO. */
export class RoleReconciler implements Reconciler {
  /** What was last written to Vault per role, so a resync with nothing changed makes no Vault call. */
  private readonly applied = new Map<string, string>();
  private readonly dependencies: Dependencies;
  private readonly info: RoleKindInfo;

  constructor(
    private readonly c: ControllerContext,
    kind: RoleKind,
  ) {
    this.dependencies = new Dependencies(c.caches, c.clusterName);
    this.info = ROLE_KIND_INFO[kind];
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    const cached = this.info.cache(this.c.caches).get(key.namespace, key.name);
    if (!cached) return DONE;
    let role = cached;
    const resource = this.info.resource;
    const events = this.c.events(`leasehold-${this.info.controllerName}`);
    const vaultRole = vaultRoleName(this.c.clusterName, key.namespace, key.name);
    const appliedKey = `${role.metadata.uid}`;

    if (role.metadata.deletionTimestamp) {
      if (!hasFinalizer(role, FINALIZER) && !hasFinalizer(role, KUBEVAULT_FINALIZER)) return DONE;
      const dependents = this.dependencies.ofRole(role);
      if (dependents.length > 0) {
        await report(
          this.c.kube,
          resource,
          events,
          role,
          {
            conditions: [
              terminating(
                Reason.LeasesOutstanding,
                `deletion waits before deleting Vault role ${vaultRole}: ` +
                  `${describeDependents(dependents)}. Renewing a lease reads its Vault role; this finishes on its own once they are revoked or deleted`,
              ),
            ],
          },
          ctx.now(),
          ctx.signal,
        );
        return requeueAfter(Interval.dependentsRecheckMs);
      }
      try {
        // Cleanup even when a reference is refused (shared/references.ts): the Vault role is named after this
        // role's namespace, so deleting it touches nothing of another namespace's.
        const target = resolveRoleTarget(role, this.c.caches, this.c.clusterName, { forCleanup: true });
        const conn = await this.c.connections.forAppBinding(target.vaultAppBinding, ctx.signal);
        // A mount disabled already took its roles along (Vault answers 404 for a path under no mount).
        await conn.client.deleteRole(target.mount, vaultRole, { signal: ctx.signal }).catch((err) => {
          if (!isVaultNotFound(err)) throw err;
        });
      } catch (err) {
        if (err instanceof MissingReference) {
          // Without the Vault AppBinding there is nothing we can reach: let the object go, but say so.
          events.event(
            role,
            'Warning',
            EventOnlyReason.VaultRoleNotDeleted,
            `${err.message}; the Vault role ${vaultRole} was left in place`,
          );
        } else {
          if (err instanceof RetryableError && err.reason === Reason.Conflict) throw err;
          const { reason, message } = explain(err);
          await report(
            this.c.kube,
            resource,
            events,
            role,
            {
              conditions: [terminating(reason, `deleting Vault role ${vaultRole} failed, retried: ${message}`)],
            },
            ctx.now(),
            ctx.signal,
          );
          throw err;
        }
      }
      this.applied.delete(appliedKey);
      role = (await removeFinalizer(this.c.kube, resource, role, FINALIZER, ctx)).object;
      await removeFinalizer(this.c.kube, resource, role, KUBEVAULT_FINALIZER, ctx);
      return DONE;
    }

    try {
      const target = resolveRoleTarget(role, this.c.caches, this.c.clusterName);
      const spec = roleSpecForVault(role, target.connection);
      const fingerprint = crypto
        .createHash('sha256')
        .update(JSON.stringify([target.mount, target.vaultAppBinding.metadata.uid, spec]))
        .digest('hex');
      const going =
        hasFinalizer(role, FINALIZER) || hasFinalizer(role, KUBEVAULT_FINALIZER)
          ? undefined
          : this.dependencies.terminatingOnIssuePath(role, target.vaultAppBinding);
      // Nothing new is set up through a SecretEngine or AppBinding on its way out (it would only have to wait for it).
      if (going)
        throw new RetryableError(
          Reason.ReferenceTerminating,
          `${going} is being deleted: no new Vault role is written through it`,
        );
      role = (await addFinalizer(this.c.kube, resource, role, FINALIZER, ctx)).object;
      if (this.applied.get(appliedKey) !== fingerprint || role.status?.phase !== EnginePhase.Success) {
        const conn = await this.c.connections.forAppBinding(target.vaultAppBinding, ctx.signal);
        await conn.client.writeRole(target.mount, vaultRole, spec, { signal: ctx.signal });
        this.applied.set(appliedKey, fingerprint);
      }
      const message = `Vault role ${vaultRole} written under ${target.mount}/ (connection ${target.connection})`;
      await report(
        this.c.kube,
        resource,
        events,
        role,
        {
          phase: EnginePhase.Success,
          conditions: engineSucceeded(message),
          fields: { vaultRole, path: target.mount },
        },
        ctx.now(),
        ctx.signal,
      );
      return DONE;
    } catch (err) {
      // A conflict means our read was stale: retried at once on fresh data, no status noise.
      if (err instanceof RetryableError && err.reason === Reason.Conflict) throw err;
      const { reason, message } = explain(err);
      const why =
        err instanceof MissingReference
          ? Reason.ReferenceNotFound
          : reason === Reason.VaultInvalid
            ? Reason.FailedToCreateDatabaseRole
            : reason;
      await report(
        this.c.kube,
        resource,
        events,
        role,
        {
          phase: EnginePhase.Failed,
          conditions: engineFailed(why, message),
          fields: { vaultRole },
        },
        ctx.now(),
        ctx.signal,
      );
      if (err instanceof TerminalError) throw err;
      // Retried with the queue's backoff (quickly at first, then ever more rarely, at most every 5 minutes). What
      // fixes it usually wakes the role at once: "not found" is the mount not being there (yet), and a SecretEngine
      // enabling it wakes the role as it becomes ready (controllers/index.ts); bad SQL or a bad spec waits for an
      // edit of the role, the backoff covering a fix made in Vault by hand.
      throw new RetryableError(why, message, { cause: err });
    }
  }
}

/** The PostgresRole controller's reconciler (RoleReconciler for PostgresRole). */
export class PostgresRoleReconciler extends RoleReconciler {
  constructor(c: ControllerContext) {
    super(c, 'PostgresRole');
  }
}
