// Issuing a request's credential exactly once (the first and each rotation's), as the `issue` step runs it.
//
// Before asking Vault, status.issuance records the attempt (the checkpoint: written with the resourceVersion
// precondition, so two passes can't both start one). The credential goes into the Secret, annotated with its
// lease id and the attempt, before status records the lease (the pass's one status write). A crash between the
// Vault call and the Secret leaves an attempt that isn't `completed`: the next pass looks up the role's leases
// issued since the attempt started that no request, no Secret and no lease issued by this process records, and
// revokes them before issuing again (the sweep). A crash between the Secret and status is healed by adopting the
// Secret's lease, but only if the Secret names the current attempt (so a rotation never adopts the lease it is
// replacing). Per Vault role, a sweep runs alone: it waits for this process's issuing calls under that role to
// return (each lease is remembered as soon as Vault hands it over) and holds new ones back while it looks, so the
// only unrecorded leases it can find are the crashed attempt's own. Issuing calls share the role otherwise:
// requests are issued in parallel, up to --concurrency.
import { Annotations, Reason, type DatabaseAccessRequest } from '../../api/index.ts';
import {
  KubeApiError,
  RetryableError,
  TerminalError,
  controllerOwnerRef,
  isConflict,
  rfc3339,
  type ReconcileContext,
} from '../../lib/runtime/index.ts';
import type { LeasedCredential } from '../../lib/vault/client.ts';
import { crashPoint } from '../../lib/runtime/faults.ts';
import { leasePrefix } from '../shared/names.ts';
import { explain } from '../shared/report.ts';
import { SECRETS } from '../shared/resources.ts';
import { dataDigestAnnotation, encodeData } from '../shared/secret-integrity.ts';
import type { VaultConnection } from '../shared/vault-connections.ts';
import { base64Data, credentialLabels, renderCredential, type Layout, type SecretMeta } from './credential-secret.ts';
import type { LeaseOps, VaultAt } from './lease-ops.ts';
import type { IssueOrder, Issued } from './plan.ts';

/** Leases issued this long before an attempt's recorded start still count as the attempt's (clock skew). */
const SWEEP_SKEW_MS = 5_000;

type Issuance = NonNullable<NonNullable<DatabaseAccessRequest['status']>['issuance']>;

/** What issuing needs from the pass: its Vault session, lease operations, and the checkpoint write. */
export interface IssueContext {
  session: VaultConnection;
  leases: LeaseOps;
  layout: Layout;
  /** Writes status.issuance (and whatever the pass decided so far) before Vault is asked; returns the request as written. */
  checkpoint(issuance: Issuance, secretName: string): Promise<DatabaseAccessRequest>;
  /** Every lease id a request, a Secret or this process records (the sweep spares them). */
  recordedLeases(): Set<string>;
  ctx: ReconcileContext;
}

/** Runs an issue order: adopt, or sweep then checkpoint, issue, write the Secret. Returns what to record. */
export async function issueCredential(dar: DatabaseAccessRequest, order: IssueOrder, x: IssueContext): Promise<Issued> {
  const { ctx, leases } = x;
  if (order.adopt) {
    // A Secret already holding this attempt's lease (a pass stopped after writing it, before status): adopt it.
    const vault = { client: x.session.client, signal: ctx.signal };
    const info = await leases.lookup(vault, order.adopt);
    if (info) {
      const now = ctx.now();
      return {
        leaseId: order.adopt,
        durationSeconds: info.ttlSeconds,
        renewable: info.renewable,
        issuedAt: info.issueTime ?? rfc3339(now),
        expiresAt: info.expireTime ?? rfc3339(new Date(now.getTime() + info.ttlSeconds * 1000)),
        secretName: order.secretName,
        ...(order.rotatedAt ? { rotatedAt: order.rotatedAt } : {}),
        adopted: true,
      };
    }
  }
  if (order.sweep) {
    await sweep(order.sweep, {
      vault: { client: x.session.client, signal: ctx.signal },
      leases,
      recordedLeases: x.recordedLeases,
      dar,
      ctx,
    }).catch((err: unknown) => {
      // An unrecorded lease Vault didn't revoke: issuing another would leave it behind for good.
      const { reason, message } = explain(err);
      throw new RetryableError(
        reason,
        `a lease issued for this request before a restart is not revoked, so nothing new is issued yet: ${message}`,
        { cause: err },
      );
    });
  }
  dar = await x.checkpoint(order.issuance, order.secretName);

  const { client, ownedBy } = await x.session.issuingClient();
  let cred: LeasedCredential = await leases.issue(
    { client, signal: ctx.signal },
    { mount: order.issuance.mount!, vaultRole: order.issuance.role!, forUid: dar.metadata.uid ?? '' },
  );
  crashPoint('crash-after-issue'); // the window exactly-once must survive: issued, recorded nowhere
  try {
    if (order.ttlSeconds !== undefined && order.ttlSeconds !== cred.leaseDurationSeconds && cred.renewable) {
      const renewed = await x.session.client.renewLease(cred.leaseId, order.ttlSeconds, { signal: ctx.signal });
      cred = { ...cred, leaseDurationSeconds: renewed.leaseDurationSeconds };
    }
    const now = ctx.now();
    const data = renderCredential(x.layout, cred);
    await writeSecret(x, dar, order, { data, leaseId: cred.leaseId });
    crashPoint('crash-after-secret'); // the other window: in the Secret, not in status
    return {
      leaseId: cred.leaseId,
      durationSeconds: cred.leaseDurationSeconds,
      renewable: cred.renewable,
      issuedAt: rfc3339(now),
      expiresAt: rfc3339(new Date(now.getTime() + cred.leaseDurationSeconds * 1000)),
      secretName: order.secretName,
      ...(order.rotatedAt ? { rotatedAt: order.rotatedAt } : {}),
      note: ownedBy === 'login-token' ? " (owned by the operator's login token: no issuer token role in Vault)" : '',
    };
  } catch (err) {
    // Not in the Secret: give the lease back now rather than leave it to the next pass's sweep (which may take
    // it if this fails: it is no longer one this process vouches for).
    await leases.giveBack({ client: x.session.client }, cred.leaseId);
    // The API server refusing the Secret as invalid will refuse it again: not a retry (a lease each time).
    if (err instanceof KubeApiError && err.statusCode === 422) {
      throw new TerminalError(
        Reason.FailedToCreateSecret,
        `the API server refused the credential's Secret ${order.secretName}: ${err.message}`,
      );
    }
    throw err;
  }
}

/**
 * Revokes leases of the attempt's Vault role issued since it started that nothing records; throws when Vault
 * didn't revoke one (it stays live and unrecorded: the caller must not go on as if it were gone), or when the
 * leases can't be listed (not knowing is not "none left").
 */
export async function sweep(
  attempt: Issuance,
  x: {
    vault: VaultAt;
    leases: LeaseOps;
    recordedLeases: () => Set<string>;
    dar: DatabaseAccessRequest;
    ctx: ReconcileContext;
  },
): Promise<void> {
  const { vault, leases, recordedLeases, dar, ctx } = x;
  const { mount, role, startedAt } = attempt;
  if (!mount || !role || !startedAt) return;
  await leases.exclusively(mount, role, async () => {
    // Read under the gate: the leases this process issues under the role are all known by now.
    const recorded = recordedLeases();
    let ids: string[];
    try {
      ids = await vault.client.listLeases(leasePrefix(mount, role), { signal: vault.signal });
    } catch (err) {
      // The reason stays Vault's (VaultUnreachable, VaultPermissionDenied, …): that is what a person must fix.
      const { reason, message } = explain(err);
      throw new RetryableError(
        reason,
        `could not list the leases under ${leasePrefix(mount, role)} to find one issued before a restart: ${message}`,
        { cause: err },
      );
    }
    const since = Date.parse(startedAt) - SWEEP_SKEW_MS;
    for (const leaseId of ids) {
      if (recorded.has(leaseId)) continue;
      const info = await vault.client.lookupLease(leaseId, { signal: vault.signal });
      if (!info?.issueTime || Date.parse(info.issueTime) < since) continue;
      if ((await leases.revoke(vault, leaseId, 'orphan')) === 'gone') continue;
      leases.event(dar, {
        type: 'Warning',
        reason: 'OrphanLeaseRevoked',
        message: `revoked lease ${leaseId}: it was issued for this request before a restart and never recorded`,
        audit: true,
      });
      ctx.log.warn('revoked an unrecorded lease', {
        leaseId,
        namespace: dar.metadata.namespace,
        name: dar.metadata.name,
      });
    }
  });
}

/** Writes the credential into the request's Secret (created the first time), annotated with its lease and attempt. */
async function writeSecret(
  x: IssueContext,
  dar: DatabaseAccessRequest,
  order: IssueOrder,
  w: { data: Record<string, string>; leaseId: string; first?: boolean },
): Promise<void> {
  const { data, leaseId } = w;
  const first = w.first ?? order.first;
  const { ctx } = x;
  const kube = x.leases.kube;
  const ns = dar.metadata.namespace ?? '';
  const name = order.secretName;
  const existing = first ? undefined : await kube.tryGet<SecretMeta>(SECRETS, ns, name, ctx);
  if (existing && !existing.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid)) {
    throw new TerminalError(
      Reason.FailedToCreateSecret,
      `Secret ${ns}/${name} exists and is not owned by this request`,
    );
  }
  // Annotations others put on the Secret (a reloader's, say) stay; ours are replaced.
  const annotations: Record<string, string> = {
    ...(existing?.metadata?.annotations ?? {}),
    [Annotations.leaseId]: leaseId,
    [Annotations.attempt]: order.issuance.attempt!,
    // What is written, so that a change by hand is seen from the cache (shared/secret-integrity.ts).
    [Annotations.dataDigest]: dataDigestAnnotation(encodeData(data)),
  };
  if (order.rotatedAt) annotations[Annotations.rotatedAt] = order.rotatedAt;
  if (x.layout.hash) annotations[Annotations.layout] = x.layout.hash;
  else delete annotations[Annotations.layout];
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace: ns,
      labels: { ...(existing?.metadata?.labels ?? {}), ...credentialLabels(dar) },
      annotations,
      ownerReferences: [controllerOwnerRef(dar)],
      ...(existing ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
    },
    data: base64Data(data),
  };
  if (existing) {
    await kube.replace(SECRETS, ns, name, body as never, ctx);
    return;
  }
  try {
    await kube.create(SECRETS, ns, body as never, ctx);
  } catch (err) {
    // There after all (a pass that stopped before recording it): look, and write over it if it is ours.
    if (!first || !isConflict(err)) throw err;
    await writeSecret(x, dar, order, { data, leaseId, first: false });
  }
}
