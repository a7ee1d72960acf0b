// SecretEngine → a `database` mount at spec.path and the connection `k8s.<cluster>.<dbNs>.<db>` to the
// database (PostgreSQL, MySQL, MariaDB or Redis: shared/database-connection.ts) its AppBinding describes. Re-applied whenever the AppBinding or its Secret changes (a rotated admin
// password). On deletion: first it waits (condition Terminating) while requests hold leases through its
// connection or PostgresRoles keep Vault roles under it (../shared/dependents.ts); then the mount goes if
// Leasehold enabled it (its description says so) and no other SecretEngine still uses it — which takes the
// connection along, after revoking anything left under it through that connection — else only the connection.
//
// Tenancy (shared/references.ts): an AppBinding in another namespace (spec.vaultRef, spec.<type>.databaseRef)
// and a mount another namespace's SecretEngine enabled (spec.path) are used only if that AppBinding, or that
// SecretEngine, admits this namespace; otherwise the engine is Failed/ReferenceNotAllowed before anything is read
// from the other namespace (its admin Secret) or written to Vault.
import crypto from 'node:crypto';
import {
  EnginePhase,
  EventOnlyReason,
  FINALIZER,
  Interval,
  KUBEVAULT_FINALIZER,
  engineDatabase,
  parseDurationSeconds,
  Reason,
  type AppBinding,
  type EngineDatabase,
  type SecretEngine,
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
import { Dependencies, describeDependents } from '../shared/dependents.ts';
import type { ConnectionConfig } from '../../lib/vault/client.ts';
import { applySecretTransforms, decodeSecretData } from '../shared/appbinding.ts';
import { vaultConnectionConfig } from '../shared/database-connection.ts';
import type { ControllerContext } from '../shared/context.ts';
import { connectionName, engineMountPath, mountOwnerDescription, mountOwnerFromDescription } from '../shared/names.ts';
import {
  cacheLookup,
  checkReference,
  firstRefusal,
  mountReference,
  secretEngineReferences,
  type ReferenceNotAllowed,
} from '../shared/references.ts';
import { engineFailed, engineSucceeded, explain, report, terminating } from '../shared/report.ts';
import { SECRET_ENGINES, SECRETS } from '../shared/resources.ts';
import { MissingReference } from '../shared/role-target.ts';

type SecretWithData = { metadata?: { resourceVersion?: string }; data?: Record<string, string> };

export class SecretEngineReconciler implements Reconciler {
  /** Fingerprint of what was last applied per engine (includes the admin password's hash, never the password). */
  private readonly applied = new Map<string, string>();
  /** Per engine: the mount's owner as its description said when last read (another namespace's engine, or none). */
  private readonly mountOwners = new Map<string, { path: string; owner?: { namespace: string; name: string } }>();
  private readonly dependencies: Dependencies;

  constructor(private readonly c: ControllerContext) {
    this.dependencies = new Dependencies(c.caches, c.clusterName);
  }

  mountPath(engine: SecretEngine): string {
    return engineMountPath(this.c.clusterName, engine);
  }

  /** A reference into another namespace that namespace doesn't admit (AppBindings from the cache; the mount's owner as last read). */
  private refusal(engine: SecretEngine, path: string): ReferenceNotAllowed | undefined {
    const lookup = cacheLookup(this.c.caches);
    const refused = firstRefusal(secretEngineReferences(engine), lookup);
    if (refused) return refused;
    const known = this.mountOwners.get(engine.metadata.uid ?? '');
    return known?.path === path && known.owner ? this.mountRefusal(engine, path, known.owner) : undefined;
  }

  private mountRefusal(
    engine: SecretEngine,
    path: string,
    owner: { namespace: string; name: string },
  ): ReferenceNotAllowed | undefined {
    return checkReference(
      mountReference(engine, owner, path),
      this.c.caches.secretEngines.get(owner.namespace, owner.name),
    );
  }

  private vaultAppBinding(engine: SecretEngine): AppBinding {
    const ns = engine.spec.vaultRef.namespace ?? engine.metadata.namespace ?? '';
    const ab = this.c.caches.appBindings.get(ns, engine.spec.vaultRef.name);
    if (!ab)
      throw new MissingReference(`AppBinding ${ns}/${engine.spec.vaultRef.name} named by spec.vaultRef does not exist`);
    return ab;
  }

  private async connectionConfig(
    engine: SecretEngine,
    signal: AbortSignal,
  ): Promise<{ name: string; config: ConnectionConfig }> {
    const ns = engine.metadata.namespace ?? '';
    const database = this.database(engine);
    const ref = database.config.databaseRef;
    const dbNs = ref.namespace ?? ns;
    const db = this.c.caches.appBindings.get(dbNs, ref.name);
    if (!db)
      throw new MissingReference(
        `AppBinding ${dbNs}/${ref.name} named by spec.${database.type}.databaseRef does not exist`,
      );
    if (!db.spec.secret)
      throw new TerminalError(
        Reason.InvalidAppBinding,
        `AppBinding ${dbNs}/${ref.name} has no spec.secret with the admin username and password`,
      );
    const secret = await this.c.kube.tryGet<SecretWithData & { kind?: string }>(SECRETS, dbNs, db.spec.secret.name, {
      signal,
    });
    if (!secret)
      throw new MissingReference(
        `Secret ${dbNs}/${db.spec.secret.name} (admin login of AppBinding ${dbNs}/${ref.name}) does not exist`,
      );
    const data = applySecretTransforms(decodeSecretData(secret.data), db.spec.secretTransforms, () => undefined);
    return {
      name: connectionName(this.c.clusterName, dbNs, ref.name),
      config: vaultConnectionConfig(database, db, data),
    };
  }

  /** The engine's database configuration; the schema admits exactly one, so none is an object it never validated. */
  private database(engine: SecretEngine): EngineDatabase {
    const database = engineDatabase(engine);
    if (!database)
      throw new TerminalError(
        Reason.FailedToCreateSecretEngineConfig,
        'the SecretEngine has none of spec.postgres, spec.mysql, spec.mariadb and spec.redis',
      );
    return database;
  }

  /** The connection the engine writes, by name (none for an engine without a database configuration). */
  private connectionOf(engine: SecretEngine): string | undefined {
    const ref = engineDatabase(engine)?.config.databaseRef;
    return ref
      ? connectionName(this.c.clusterName, ref.namespace ?? engine.metadata.namespace ?? '', ref.name)
      : undefined;
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    let engine = this.c.caches.secretEngines.get(key.namespace, key.name);
    if (!engine) return DONE;
    const events = this.c.events('leasehold-secretengine');
    const path = this.mountPath(engine);
    if (engine.metadata.deletionTimestamp) return this.finalizeWhenUnused(engine, path, ctx);

    try {
      const refused = this.refusal(engine, path);
      if (refused) throw refused;
      const ab = this.vaultAppBinding(engine);
      const { name, config } = await this.connectionConfig(engine, ctx.signal);
      const tuning = {
        defaultLeaseTtlSeconds: engine.spec.defaultLeaseTTL
          ? parseDurationSeconds(engine.spec.defaultLeaseTTL)
          : undefined,
        maxLeaseTtlSeconds: engine.spec.maxLeaseTTL ? parseDurationSeconds(engine.spec.maxLeaseTTL) : undefined,
      };
      const fingerprint = crypto
        .createHash('sha256')
        .update(JSON.stringify([ab.metadata.uid, ab.metadata.resourceVersion, path, name, config, tuning]))
        .digest('hex');
      if (
        ab.metadata.deletionTimestamp &&
        !hasFinalizer(engine, FINALIZER) &&
        !hasFinalizer(engine, KUBEVAULT_FINALIZER)
      ) {
        // Nothing new is set up through an AppBinding on its way out (it would only have to wait for it).
        throw new RetryableError(
          Reason.ReferenceTerminating,
          `AppBinding ${ab.metadata.namespace}/${ab.metadata.name} is being deleted: no new mount or connection is set up through it`,
        );
      }
      engine = (await addFinalizer(this.c.kube, SECRET_ENGINES, engine, FINALIZER, ctx)).object;
      if (this.applied.get(engine.metadata.uid ?? '') !== fingerprint || engine.status?.phase !== EnginePhase.Success) {
        const vault = (await this.c.connections.forAppBinding(ab, ctx.signal)).client;
        const mount = await vault.readMount(path, { signal: ctx.signal });
        const owner = mountOwnerFromDescription(mount?.description);
        this.mountOwners.set(engine.metadata.uid ?? '', { path, owner });
        const mountRefused = owner ? this.mountRefusal(engine, path, owner) : undefined;
        if (mountRefused) throw mountRefused;
        if (!mount) {
          await vault.enableDatabaseMount(path, mountOwnerDescription(key.namespace, key.name), tuning, {
            signal: ctx.signal,
          });
        } else if (mount.type !== 'database') {
          throw new TerminalError(
            Reason.FailedToEnableSecretEngine,
            `Vault path ${path}/ already holds a "${mount.type}" secrets engine; choose another spec.path`,
          );
        } else {
          await vault.tuneMount(path, tuning, { signal: ctx.signal });
        }
        await vault.writeConnection(path, name, config, { signal: ctx.signal });
        this.applied.set(engine.metadata.uid ?? '', fingerprint);
      }
      const message = `database secrets engine at ${path}/ connected as ${name}`;
      await report(
        this.c.kube,
        SECRET_ENGINES,
        events,
        engine,
        {
          phase: EnginePhase.Success,
          conditions: engineSucceeded(message),
          fields: { path },
        },
        ctx.now(),
        ctx.signal,
      );
      return DONE;
    } catch (err) {
      // A conflict means our read was stale: retried at once on fresh data, no status noise.
      if (err instanceof RetryableError && err.reason === Reason.Conflict) throw err;
      this.applied.delete(engine.metadata.uid ?? '');
      const { reason, message } = explain(err);
      const why =
        err instanceof MissingReference
          ? Reason.ReferenceNotFound
          : reason === Reason.VaultInvalid
            ? Reason.FailedToCreateSecretEngineConfig
            : reason;
      await report(
        this.c.kube,
        SECRET_ENGINES,
        events,
        engine,
        {
          phase: EnginePhase.Failed,
          conditions: engineFailed(why, message),
          fields: { path },
        },
        ctx.now(),
        ctx.signal,
      );
      if (err instanceof TerminalError) throw err;
      // Retried with the queue's backoff. What fixes it usually happens elsewhere and wakes the engine at once:
      // the AppBindings or their Secrets (a wrong password), the database AppBinding's Ready turning True (a
      // database back up: its check polls), the other namespace's consent.
      throw new RetryableError(why, message, { cause: err });
    }
  }

  /** Deletion: waits while anything depends on this engine's connection and mount; a failed cleanup is reported and retried. */
  private async finalizeWhenUnused(engine: SecretEngine, path: string, ctx: ReconcileContext): Promise<Result> {
    if (!hasFinalizer(engine, FINALIZER) && !hasFinalizer(engine, KUBEVAULT_FINALIZER)) return DONE;
    const events = this.c.events('leasehold-secretengine');
    const dependents = this.dependencies.ofSecretEngine(engine);
    const connection = this.connectionOf(engine) ?? '(none)';
    if (dependents.length > 0) {
      const leases = dependents.some((d) => d.kind === 'DatabaseAccessRequest');
      await report(
        this.c.kube,
        SECRET_ENGINES,
        events,
        engine,
        {
          conditions: [
            terminating(
              leases ? Reason.LeasesOutstanding : Reason.InUse,
              `deletion waits before removing connection ${connection} ` +
                `and the mount at ${path}/: ${describeDependents(dependents)}. It finishes on its own once they are gone`,
            ),
          ],
        },
        ctx.now(),
        ctx.signal,
      );
      return requeueAfter(Interval.dependentsRecheckMs);
    }
    try {
      return await this.finalize(engine, path, ctx);
    } catch (err) {
      if (err instanceof RetryableError && err.reason === Reason.Conflict) throw err;
      const { reason, message } = explain(err);
      await report(
        this.c.kube,
        SECRET_ENGINES,
        events,
        engine,
        {
          conditions: [
            terminating(
              reason,
              `removing connection ${connection} and the mount at ${path}/ failed, retried: ${message}`,
            ),
          ],
        },
        ctx.now(),
        ctx.signal,
      );
      throw err;
    }
  }

  private async finalize(engine: SecretEngine, path: string, ctx: ReconcileContext): Promise<Result> {
    if (!hasFinalizer(engine, FINALIZER) && !hasFinalizer(engine, KUBEVAULT_FINALIZER)) return DONE;
    const events = this.c.events('leasehold-secretengine');
    const ns = engine.metadata.namespace ?? '';
    let ab: AppBinding | undefined;
    try {
      ab = this.vaultAppBinding(engine);
    } catch {
      events.event(
        engine,
        'Warning',
        EventOnlyReason.VaultCleanupSkipped,
        `the Vault AppBinding ${engine.spec.vaultRef.name} is gone: mount ${path}/ and its connection were left in Vault`,
      );
    }
    if (ab) {
      const vault = (await this.c.connections.forAppBinding(ab, ctx.signal)).client;
      const name = this.connectionOf(engine);
      const mount = await vault.readMount(path, { signal: ctx.signal });
      // Tenancy: in a mount that isn't its own, a refused engine never wrote; what is there isn't its to delete.
      const own = mount?.description === mountOwnerDescription(ns, engine.metadata.name ?? '');
      const owner = mountOwnerFromDescription(mount?.description);
      const refused =
        mount && !own
          ? (firstRefusal(secretEngineReferences(engine), cacheLookup(this.c.caches)) ??
            (owner ? this.mountRefusal(engine, path, owner) : undefined))
          : undefined;
      if (refused) {
        events.event(
          engine,
          'Warning',
          Reason.ReferenceNotAllowed,
          `connection ${name} in mount ${path}/ was left alone: the mount is not this SecretEngine's, and its ${refused.reference.field} is not allowed`,
        );
      } else if (mount) {
        // Other engines keep the mount only if its owner admits them: one that names the path without consent
        // (refused, never written to it) must not strand the owner's mount in Vault.
        const ownerRef = owner ?? { namespace: ns, name: engine.metadata.name ?? '' };
        const others = this.c.caches.secretEngines
          .list()
          .filter(
            (e) =>
              e.metadata.uid !== engine.metadata.uid &&
              !e.metadata.deletionTimestamp &&
              this.mountPath(e) === path &&
              !this.mountRefusal(e, path, ownerRef),
          );
        // A connection must outlive the leases issued through it: disabling the mount revokes them through it first
        // (and fails if one can't be), then takes it along. Only a mount kept for others loses just the connection.
        if (!own || others.length > 0) {
          if (name)
            await vault.deleteConnection(path, name, { signal: ctx.signal }).catch((err) => {
              const { reason, message } = explain(err); // labelled by what Vault said, not always VaultUnreachable
              throw new RetryableError(reason, `deleting connection ${name}: ${message}`);
            });
        } else {
          await vault.disableMount(path, { signal: ctx.signal });
          events.event(
            engine,
            'Normal',
            EventOnlyReason.MountDisabled,
            `disabled the database secrets engine at ${path}/ (every lease under it is revoked)`,
          );
        }
      }
    }
    this.applied.delete(engine.metadata.uid ?? '');
    this.mountOwners.delete(engine.metadata.uid ?? '');
    const after = (await removeFinalizer(this.c.kube, SECRET_ENGINES, engine, FINALIZER, ctx)).object;
    await removeFinalizer(this.c.kube, SECRET_ENGINES, after, KUBEVAULT_FINALIZER, ctx);
    return DONE;
  }
}
