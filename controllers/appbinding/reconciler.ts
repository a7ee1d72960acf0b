// AppBinding: says in status whether its target answers — Vault through sys/health, a login and the issuer
// token; PostgreSQL, MySQL, MariaDB and Redis through a login with the AppBinding's Secret (./database-health.ts
// decides which) — and, when not, why (DNS, TLS, refused,
// authentication), without ever repeating a secret. Checks are made when the AppBinding (or its Secret)
// changes, every 30 s while it fails (nothing else would tell that Vault or the database is back: a failed check
// is thrown as a RetryableError with that fixed delay), and hourly; a resync of an unchanged, healthy AppBinding
// costs no call. The intervals are api/vocabulary.ts Interval's.
//
// A Vault AppBinding is what every lease issued through it is revoked through, and what SecretEngines and
// PostgresRoles clean Vault up through: it holds the in-use finalizer, and so does the token Secret it names.
// Deleted, it waits (condition Terminating, naming them) until no request holds a lease through it and no
// SecretEngine or PostgresRole has Vault left to clean up through it; then it is released, and its token Secret
// with it. See ../shared/dependents.ts for the whole order.
import {
  ConditionType,
  IN_USE_FINALIZER,
  Interval,
  Reason,
  WAITING_REASONS,
  type AppBinding,
  type ConditionReason,
} from '../../api/index.ts';
import {
  DONE,
  RetryableError,
  addFinalizer,
  hasFinalizer,
  removeFinalizer,
  requeueAfter,
  type ConditionInput,
  type ObjectKey,
  type ReconcileContext,
  type Reconciler,
  type Result,
} from '../../lib/runtime/index.ts';
import { VaultRequestError } from '../../lib/vault/errors.ts';
import { applySecretTransforms, decodeSecretData } from '../shared/appbinding.ts';
import type { ControllerContext } from '../shared/context.ts';
import {
  APPBINDINGS_BY_SECRET,
  Dependencies,
  SECRET_ENGINES_BY_APPBINDING,
  describeDependents,
  type Dependent,
} from '../shared/dependents.ts';
import { explain, report, terminating } from '../shared/report.ts';
import { APP_BINDINGS, SECRETS } from '../shared/resources.ts';
import {
  DATABASE_CHECKS,
  REAL_PROBES,
  describeTarget,
  isDatabase,
  targetKind,
  type DatabaseKind,
  type DatabaseProbes,
  type TargetKind,
} from './database-health.ts';

interface Check {
  ok: boolean;
  reason: ConditionReason;
  message: string;
  extra?: ConditionInput<ConditionReason>;
}

export class AppBindingReconciler implements Reconciler {
  private readonly lastCheck = new Map<string, { version: string; ok: boolean; atMs: number }>();
  private readonly dependencies: Dependencies;
  /** Uids of token Secrets whose deletion was told (one Event) to wait. */
  private readonly heldSecrets = new Set<string>();

  constructor(
    private readonly c: ControllerContext,
    private readonly probes: DatabaseProbes = REAL_PROBES,
  ) {
    this.dependencies = new Dependencies(c.caches, c.clusterName);
  }

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    let ab = this.c.caches.appBindings.get(key.namespace, key.name);
    if (!ab) return DONE;
    if (ab.metadata.deletionTimestamp) return this.release(ab, ctx);
    const kind = this.kindOf(ab);
    // What live leases need is kept until they are revoked, whatever the AppBinding looks like: one that says
    // nothing of Vault (no VaultServerConfiguration, no type) but that SecretEngines, PostgresRoles or leases use
    // as their Vault is held just the same.
    if (kind === 'vault' || (kind === 'other' && this.dependencies.ofAppBinding(ab).length > 0)) {
      ab = (await addFinalizer(this.c.kube, APP_BINDINGS, ab, IN_USE_FINALIZER, ctx)).object;
      if (ab.spec.secret) await this.guardTokenSecret(key.namespace, ab.spec.secret.name, ctx);
    }
    await this.releaseFormerTokenSecrets(key.namespace, ctx);
    if (kind === 'other') return DONE;
    const secretVersion = ab.spec.secret
      ? (this.c.caches.secrets.get(key.namespace, ab.spec.secret.name)?.metadata?.resourceVersion ?? 'absent')
      : '';
    // The generation, not the resourceVersion: our own status writes and finalizer don't call for a new check. An
    // issuer token replaced or lost since the last check (revoked in Vault, found at issuance) is news too.
    const checked = ab;
    const versionNow = () =>
      `${kind}/${checked.metadata.generation ?? checked.metadata.resourceVersion}/${secretVersion}/${this.c.connections.issuerGeneration(checked)}`;
    const version = versionNow();
    const now = ctx.now().getTime();
    const last = this.lastCheck.get(ab.metadata.uid ?? '');
    if (last && last.version === version) {
      const due = last.atMs + (last.ok ? Interval.appBindingHealthyRecheckMs : Interval.appBindingFailedRecheckMs);
      if (now < due) return requeueAfter(due - now);
    }
    const check = kind === 'vault' ? await this.checkVault(ab, ctx) : await this.checkDatabase(kind, ab, ctx);
    await report(
      this.c.kube,
      APP_BINDINGS,
      this.c.events('leasehold-appbinding'),
      ab,
      {
        conditions: [
          {
            type: ConditionType.Ready,
            status: check.ok ? 'True' : 'False',
            reason: check.reason,
            message: check.message,
          },
          ...(check.extra ? [check.extra] : []),
        ],
      },
      ctx.now(),
      ctx.signal,
    );
    // Remembered only once reported: a status write lost to a conflict must be redone by the retry.
    this.lastCheck.set(ab.metadata.uid ?? '', { version: versionNow(), ok: check.ok, atMs: now });
    if (!check.ok)
      throw new RetryableError(check.reason, check.message, { retryAfterMs: Interval.appBindingFailedRecheckMs });
    return requeueAfter(Interval.appBindingHealthyRecheckMs);
  }

  private async checkVault(ab: AppBinding, ctx: ReconcileContext): Promise<Check> {
    try {
      const conn = await this.c.connections.forAppBinding(ab, ctx.signal);
      const health = await conn.client.health({ signal: ctx.signal });
      if (!health.initialized || health.sealed)
        return {
          ok: false,
          reason: Reason.VaultSealed,
          message: `Vault at ${conn.endpoint.address} is ${health.initialized ? 'sealed' : 'not initialised'}`,
        };
      // Asked of Vault, not the cache: a token revoked behind the operator's back is replaced here.
      const issuer = await conn.verifyIssuer({ signal: ctx.signal });
      const extra =
        issuer.kind === 'ready'
          ? {
              type: ConditionType.LeaseOwnership,
              status: 'True' as const,
              reason: Reason.IssuerToken,
              message: `leases are owned by an orphan periodic token from token role ${this.c.connections.issuerTokenRole}; they outlive the operator's login`,
            }
          : {
              type: ConditionType.LeaseOwnership,
              status: 'False' as const,
              reason: issuerReason(issuer.reason),
              message: issuer.message,
            };
      return {
        ok: true,
        reason: Reason.Reachable,
        message:
          `Vault ${health.version ?? ''} at ${conn.endpoint.address} answers; logged in with ${conn.authDescription}`.replace(
            '  ',
            ' ',
          ),
        extra,
      };
    } catch (err) {
      // Only a refused login drops the connection: an outage must not throw away a login that still works (in a
      // namespace being deleted it can't be made again).
      if (err instanceof VaultRequestError && err.kind === 'PermissionDenied') this.c.connections.invalidate(ab);
      const { reason, message } = explain(err);
      return { ok: false, reason, message };
    }
  }

  /**
   * An AppBinding being deleted: released (finalizer removed) once nothing depends on it; until then, a Terminating
   * condition naming its dependents, and whether the operator can still log into Vault for them.
   */
  private async release(ab: AppBinding, ctx: ReconcileContext): Promise<Result> {
    const ns = ab.metadata.namespace ?? '';
    if (!hasFinalizer(ab, IN_USE_FINALIZER)) {
      if (ab.spec.secret) await this.guardTokenSecret(ns, ab.spec.secret.name, ctx, ab);
      return DONE;
    }
    const dependents = this.dependencies.ofAppBinding(ab);
    if (dependents.length > 0) {
      const condition = await this.waiting(ab, dependents, ctx);
      await report(
        this.c.kube,
        APP_BINDINGS,
        this.c.events('leasehold-appbinding'),
        ab,
        { conditions: [condition] },
        ctx.now(),
        ctx.signal,
      );
      if (ab.spec.secret) await this.guardTokenSecret(ns, ab.spec.secret.name, ctx);
      // No login for the dependents' cleanup: a failure, retried with backoff (and woken by their changes).
      if (!WAITING_REASONS.includes(condition.reason)) throw new RetryableError(condition.reason, condition.message);
      return requeueAfter(Interval.dependentsRecheckMs);
    }
    this.lastCheck.delete(ab.metadata.uid ?? '');
    this.c.connections.invalidate(ab);
    await removeFinalizer(this.c.kube, APP_BINDINGS, ab, IN_USE_FINALIZER, ctx);
    if (ab.spec.secret) await this.guardTokenSecret(ns, ab.spec.secret.name, ctx, ab);
    await this.releaseFormerTokenSecrets(ns, ctx);
    ctx.log.info('released a Vault AppBinding: nothing depends on it any more', {
      namespace: ns,
      name: ab.metadata.name,
    });
    return DONE;
  }

  /** The Terminating condition while dependents remain: waiting for them, or unable to log in for them. */
  private async waiting(
    ab: AppBinding,
    dependents: Dependent[],
    ctx: ReconcileContext,
  ): Promise<ReturnType<typeof terminating>> {
    const who = describeDependents(dependents);
    if (!isDatabase(this.kindOf(ab))) {
      try {
        await (await this.c.connections.forAppBinding(ab, ctx.signal)).login({ signal: ctx.signal });
      } catch (err) {
        const e = explain(err);
        return terminating(e.reason, `${e.message}. Waiting on this login: ${who}`);
      }
    }
    const leases = dependents.some((d) => d.kind === 'DatabaseAccessRequest');
    return terminating(
      leases ? Reason.LeasesOutstanding : Reason.InUse,
      `deletion waits: ${who}. Revoking leases and cleaning up Vault ` +
        'go through this AppBinding, so it goes last: it is released on its own once they are gone (delete them, or revoke the requests)',
    );
  }

  /**
   * The token Secret a Vault AppBinding names (spec.secret) holds the in-use finalizer while some Vault AppBinding
   * naming it still holds its own, so that it stays readable while a login may be needed; deleted, it stays until
   * those AppBindings have no dependents. `releasing`: an AppBinding that just let go and doesn't count.
   */
  /**
   * A token Secret an AppBinding no longer names (its spec.secret moved to another) keeps the in-use finalizer it
   * was given: released here once no AppBinding holding in-use names it, so it can't stay Terminating for ever.
   */
  private async releaseFormerTokenSecrets(ns: string, ctx: ReconcileContext): Promise<void> {
    const held = this.c.caches.secrets
      .list()
      .filter((s) => (s.metadata?.namespace ?? '') === ns && hasFinalizer(s, IN_USE_FINALIZER));
    for (const s of held) {
      const name = s.metadata?.name ?? '';
      const named = this.c.caches.appBindings
        .byIndex(APPBINDINGS_BY_SECRET, `${ns}/${name}`)
        .some((a) => hasFinalizer(a, IN_USE_FINALIZER));
      if (!named) await this.guardTokenSecret(ns, name, ctx);
    }
  }

  private async guardTokenSecret(
    ns: string,
    name: string,
    ctx: ReconcileContext,
    releasing?: AppBinding,
  ): Promise<void> {
    const secret = this.c.caches.secrets.get(ns, name);
    if (!secret) return;
    const users = this.c.caches.appBindings
      .byIndex(APPBINDINGS_BY_SECRET, `${ns}/${name}`)
      .filter((a) => a.metadata.uid !== releasing?.metadata.uid && hasFinalizer(a, IN_USE_FINALIZER));
    if (!secret.metadata?.deletionTimestamp) {
      if (users.length > 0) await addFinalizer(this.c.kube, SECRETS, secret, IN_USE_FINALIZER, ctx);
      else await removeFinalizer(this.c.kube, SECRETS, secret, IN_USE_FINALIZER, ctx);
      return;
    }
    const holder = users
      .map((a) => ({ a, dependents: this.dependencies.ofAppBinding(a) }))
      .find((x) => x.dependents.length > 0);
    if (!holder) {
      this.heldSecrets.delete(secret.metadata.uid ?? '');
      await removeFinalizer(this.c.kube, SECRETS, secret, IN_USE_FINALIZER, ctx);
      return;
    }
    if (hasFinalizer(secret, IN_USE_FINALIZER) && !this.heldSecrets.has(secret.metadata.uid ?? '')) {
      this.heldSecrets.add(secret.metadata.uid ?? '');
      this.c
        .events('leasehold-appbinding')
        .event(
          secret,
          'Normal',
          Reason.InUse,
          `deletion waits: AppBinding ${ns}/${holder.a.metadata.name} ` +
            `logs into Vault with this Secret's token, for ${describeDependents(holder.dependents)}; it is released on its own once they are gone`,
        );
    }
  }

  /** What the AppBinding points at; the SecretEngines naming it as their database say which database. */
  private kindOf(ab: AppBinding): TargetKind {
    return targetKind(
      ab,
      this.c.caches.secretEngines.byIndex(
        SECRET_ENGINES_BY_APPBINDING,
        `${ab.metadata.namespace ?? ''}/${ab.metadata.name}`,
      ),
    );
  }

  private async checkDatabase(kind: DatabaseKind, ab: AppBinding, ctx: ReconcileContext): Promise<Check> {
    const ns = ab.metadata.namespace ?? '';
    const where = describeTarget(kind, ab);
    if (!ab.spec.secret)
      return {
        ok: false,
        reason: Reason.InvalidAppBinding,
        message: 'no spec.secret with the admin username and password',
      };
    const secret = await this.c.kube.tryGet<{ data?: Record<string, string>; metadata?: object }>(
      SECRETS,
      ns,
      ab.spec.secret.name,
      ctx,
    );
    if (!secret)
      return {
        ok: false,
        reason: Reason.ReferenceNotFound,
        message: `Secret ${ns}/${ab.spec.secret.name} does not exist`,
      };
    try {
      const credentials = applySecretTransforms(
        decodeSecretData(secret.data),
        ab.spec.secretTransforms,
        () => undefined,
      );
      const probe = await DATABASE_CHECKS[kind].probe({
        ab,
        credentials,
        probes: this.probes,
        where,
        signal: ctx.signal,
      });
      return probe.ok ? { ok: true, reason: Reason.Reachable, message: `${where} accepts the admin login` } : probe;
    } catch (err) {
      const e = explain(err);
      return { ok: false, reason: e.reason, message: e.message };
    }
  }
}

/** The issuer token's reason for being unavailable, in the vocabulary (lib/vault names it without knowing api/). */
function issuerReason(reason: string): ConditionReason {
  return reason === Reason.IssuerTokenRoleUnavailable ? Reason.IssuerTokenRoleUnavailable : Reason.InternalError;
}
