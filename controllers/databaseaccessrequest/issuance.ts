// Issuance of a request's credential, the first and each rotation's (lease-keeper.ts starts those).
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
import { randomUUID } from 'node:crypto';
import {
  Annotations, ConditionType, Reason, RequestPhase, formatDuration, parseDurationSeconds,
  type DatabaseAccessRequest, type PostgresRole,
} from '../../api/index.ts';
import { KubeApiError, RetryableError, TerminalError, controllerOwnerRef, isConflict, patchStatus, rfc3339, type ReconcileContext } from '../../lib/runtime/index.ts';
import type { LeasedCredential, VaultClient } from '../../lib/vault/client.ts';
import { crashPoint } from '../../lib/faults.ts';
import { leasePrefix, metadataProblems } from '../shared/names.ts';
import { desiredStatus, explain } from '../shared/report.ts';
import { DATABASE_ACCESS_REQUESTS, SECRETS } from '../shared/resources.ts';
import type { RoleTarget } from '../shared/role-target.ts';
import { DATA_DIGEST_ANNOTATION, dataDigestAnnotation, encodeData } from '../shared/secret-integrity.ts';
import type { VaultConnection } from '../shared/vault-connections.ts';
import type { RequestControllerState } from './controller-state.ts';
import {
  ATTEMPT_ANNOTATION, LAYOUT_ANNOTATION, LEASE_ID_ANNOTATION, ROTATED_AT_ANNOTATION, credentialLabels, ownedSecret, type Layout, type SecretMeta,
} from './credential-secret.ts';
import { newSecretName, retirePrevious, rotateRequestToken } from './decide.ts';
import { extendForGrace, graceSeconds, revokeCounted } from './revocation.ts';
import { renderSecretData, templateView } from './template.ts';

/** Leases issued this long before an attempt's recorded start still count as the attempt's (clock skew). */
const SWEEP_SKEW_MS = 5_000;
/** Leases this process issued are remembered this long, so a sweep never takes one the caches don't show yet. */
const ISSUED_HERE_MS = 10 * 60_000;

type Issuance = NonNullable<NonNullable<DatabaseAccessRequest['status']>['issuance']>;
type Rotation = NonNullable<NonNullable<DatabaseAccessRequest['status']>['rotation']>;

/** The key issuance and sweeps of one Vault role share. */
function roleKey(mount: string, vaultRole: string): string {
  return `${mount}/${vaultRole}`;
}

/** The rotation under way, waiting for its credential to be issued. */
export function pendingRotation(dar: DatabaseAccessRequest): Rotation | undefined {
  const r = dar.status?.rotation;
  return r?.requestedAt && !r.completedAt ? r : undefined;
}

export async function issue(state: RequestControllerState, dar: DatabaseAccessRequest, role: PostgresRole, target: RoleTarget, vaultRole: string, conn: VaultConnection, layout: Layout, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
  const name = dar.metadata.name ?? '';
  // A Secret already holding this attempt's lease (we stopped after writing it, before status): adopt it.
  const adopted = await adoptFromSecret(state, dar, conn.client, ctx);
  if (adopted) return adopted;
  const prior = dar.status?.issuance;
  if (prior?.attempt && !prior.completed) {
    await sweep(state, dar, prior, conn.client, ctx).catch((err: unknown) => {
      // An unrecorded lease Vault didn't revoke: issuing another would leave it behind for good.
      const { reason, message } = explain(err);
      throw new RetryableError(reason, `a lease issued for this request before a restart is not revoked, so nothing new is issued yet: ${message}`, { cause: err });
    });
  }

  const secretName = dar.status?.secret?.name ?? newSecretName(name);
  // Whatever the API server would refuse is refused here, before Vault issues a lease that would then be
  // revoked again on every retry.
  const problems = metadataProblems('Secret', { name: secretName, labels: credentialLabels(dar) });
  if (problems.length) throw new TerminalError(Reason.FailedToCreateSecret, `the credential's Secret can't be written: ${problems.join('; ')}`);
  const issuance: Issuance = {
    vaultAppBinding: { namespace: target.vaultAppBinding.metadata.namespace ?? '', name: target.vaultAppBinding.metadata.name ?? '' },
    mount: target.mount, connection: target.connection, role: vaultRole, attempt: randomUUID(), startedAt: rfc3339(ctx.now()), completed: false,
  };
  // The marker: written with the resourceVersion precondition before any Vault call.
  const marker: Record<string, unknown> = { ...(dar.status ?? {}), issuance, secret: { name: secretName } };
  dar = (await patchStatus(state.c.kube, DATABASE_ACCESS_REQUESTS, dar as never, marker, ctx)).object as DatabaseAccessRequest;
  const rotation = pendingRotation(dar);
  // A rotate-now value present before this issuance is satisfied by it.
  const rotateToken = rotateRequestToken(dar.metadata.annotations?.[Annotations.rotateNow]);

  const { client, ownedBy } = await conn.issuingClient();
  let cred: LeasedCredential = await state.roleGate.shared(roleKey(target.mount, vaultRole), async () => {
    const issued = await client.issueCredential(target.mount, vaultRole);
    rememberIssued(state, issued.leaseId, ctx.now().getTime());
    return issued;
  });
  crashPoint('crash-after-issue'); // the window exactly-once must survive: issued, recorded nowhere
  try {
    let ttl = requestedTtlSeconds(dar, role);
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
    await writeSecret(state, dar, secretName, data, { leaseId: cred.leaseId, attempt: issuance.attempt!, rotatedAt, layout: layout.hash, first: !prior }, ctx);
    crashPoint('crash-after-secret'); // the other window: in the Secret, not in status
    return await complete(state, dar, {
      leaseId: cred.leaseId, durationSeconds: cred.leaseDurationSeconds, renewable: cred.renewable, issuedAt: rfc3339(now),
      expiresAt: rfc3339(new Date(now.getTime() + cred.leaseDurationSeconds * 1000)), secretName, rotatedAt, rotateToken,
      note: ownedBy === 'login-token' ? ' (owned by the operator\'s login token: no issuer token role in Vault)' : '',
    }, ctx);
  } catch (err) {
    // Not recorded: give the lease back now rather than leave it to the next pass's sweep (which may take it
    // if this fails: it is no longer one this process vouches for).
    state.issuedHere.delete(cred.leaseId);
    await revokeCounted(state, conn.client, cred.leaseId, 'unrecorded').catch(() => undefined);
    // The API server refusing the Secret as invalid will refuse it again: not a retry (a lease each time).
    if (err instanceof KubeApiError && err.statusCode === 422) {
      throw new TerminalError(Reason.FailedToCreateSecret, `the API server refused the credential's Secret ${secretName}: ${err.message}`);
    }
    throw err;
  }
}

/** Records an issued (or adopted) credential; completes a rotation under way. */
async function complete(state: RequestControllerState, dar: DatabaseAccessRequest, x: {
  leaseId: string; durationSeconds: number; renewable: boolean; issuedAt: string; expiresAt: string; secretName: string;
  rotatedAt?: string; rotateToken?: string; note?: string; adopted?: boolean;
}, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
  const now = ctx.now();
  const ns = dar.metadata.namespace ?? '';
  const rotation = pendingRotation(dar);
  const completedAt = x.rotatedAt ?? rfc3339(now);
  const previous = rotation ? retirePrevious(dar.status?.previousLeases ?? [], Date.parse(completedAt), graceSeconds(dar)) : undefined;
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
  dar = await recordWithRetry(state, dar, status, ctx);
  state.liveness.alive(dar.metadata.uid ?? '', x.leaseId, now.getTime()); // just issued (or looked up): no look-up needed
  state.metrics.setExpiry(ns, dar.metadata.name ?? '', x.expiresAt);
  for (const p of retired) await extendForGrace(state, dar, p, ctx);
  const uid = dar.metadata.uid ?? '';
  if (rotation) {
    state.metrics.rotations.labels(rotation.reason ?? 'unknown', 'success').inc();
    const revokeAt = previous?.map((p) => p.revokeAt).filter(Boolean)[0];
    state.events.event(dar, 'Normal', Reason.CredentialRotated, `rotated the credential in Secret ${x.secretName} (${rotation.reason}: ${rotation.message ?? ''})` +
      (revokeAt ? `; the previous login works until ${revokeAt}` : ''));
    ctx.log.info('rotated credential', { namespace: ns, name: dar.metadata.name, leaseId: x.leaseId, reason: rotation.reason, secret: x.secretName });
  } else {
    const seen = state.approvalSeen.get(uid);
    if (seen !== undefined && !x.adopted) state.metrics.issuanceLatency.observe(Math.max(0, now.getTime() - seen) / 1000);
    state.approvalSeen.delete(uid);
    state.events.event(dar, 'Normal', Reason.SuccessfullyIssuedCredential, `${what} (lease expires in ${formatDuration(x.durationSeconds)})`);
    ctx.log.info('issued credential', { namespace: ns, name: dar.metadata.name, leaseId: x.leaseId, secret: x.secretName, adopted: !!x.adopted });
  }
  return dar;
}

/** Status writes after issuing retry on conflicts with a fresh read: the credential exists and must be recorded. */
async function recordWithRetry(state: RequestControllerState, dar: DatabaseAccessRequest, status: Record<string, unknown>, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await patchStatus(state.c.kube, DATABASE_ACCESS_REQUESTS, dar as never, status, ctx)).object as DatabaseAccessRequest;
    } catch (err) {
      if (!(err instanceof RetryableError) || attempt >= 5) throw err;
      dar = await state.c.kube.get<DatabaseAccessRequest>(DATABASE_ACCESS_REQUESTS, dar.metadata.namespace ?? '', dar.metadata.name ?? '', ctx);
    }
  }
}

export function requestedTtlSeconds(dar: DatabaseAccessRequest, role: PostgresRole): number | undefined {
  if (!dar.spec.ttl) return undefined;
  const ttl = parseDurationSeconds(dar.spec.ttl);
  const max = role.spec.maxTTL ? parseDurationSeconds(role.spec.maxTTL) : undefined;
  return max !== undefined && max > 0 ? Math.min(ttl, max) : ttl;
}

async function adoptFromSecret(state: RequestControllerState, dar: DatabaseAccessRequest, vault: VaultClient, ctx: ReconcileContext): Promise<DatabaseAccessRequest | undefined> {
  const secret = ownedSecret(state, dar);
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
  return complete(state, dar, {
    leaseId, durationSeconds: info.ttlSeconds, renewable: info.renewable, issuedAt: info.issueTime ?? rfc3339(now),
    expiresAt: info.expireTime ?? rfc3339(new Date(now.getTime() + info.ttlSeconds * 1000)), secretName: secret!.metadata!.name!,
    rotatedAt: pendingRotation(dar) ? annotations[ROTATED_AT_ANNOTATION] ?? rfc3339(now) : undefined, adopted: true,
  }, ctx);
}

function rememberIssued(state: RequestControllerState, leaseId: string, nowMs: number): void {
  state.issuedHere.set(leaseId, nowMs);
  for (const [id, at] of state.issuedHere) {
    if (nowMs - at <= ISSUED_HERE_MS) break; // insertion order: the rest are newer
    state.issuedHere.delete(id);
  }
}

/** Revokes leases of the role issued since an unfinished attempt started that nothing records; throws when Vault
 * didn't revoke one (it stays live and unrecorded: the caller must not go on as if it were gone). */
export async function sweep(state: RequestControllerState, dar: DatabaseAccessRequest, attempt: Issuance, vault: VaultClient, ctx: ReconcileContext): Promise<void> {
  const { mount, role, startedAt } = attempt;
  if (!mount || !role || !startedAt) return;
  await state.roleGate.exclusive(roleKey(mount, role), () => sweepAlone(state, dar, { mount, role, startedAt }, vault, ctx));
}

async function sweepAlone(state: RequestControllerState, dar: DatabaseAccessRequest, attempt: { mount: string; role: string; startedAt: string }, vault: VaultClient, ctx: ReconcileContext): Promise<void> {
  const recorded = new Set<string>(state.issuedHere.keys());
  for (const r of state.c.caches.requests.list()) {
    if (r.status?.lease?.id) recorded.add(r.status.lease.id);
    for (const p of r.status?.previousLeases ?? []) recorded.add(p.id);
  }
  for (const s of state.c.caches.secrets.list()) {
    const id = (s as SecretMeta).metadata?.annotations?.[LEASE_ID_ANNOTATION];
    if (id) recorded.add(id);
  }
  // The crashed attempt's own lease is the one thing here this process may not know.
  let leases: string[];
  try {
    leases = await vault.listLeases(leasePrefix(attempt.mount, attempt.role));
  } catch (err) {
    // Not knowing is not "none left": issuing again (or letting a deleted request go) could leave a live lease
    // no request records. The callers put this on a condition and retry with backoff.
    // The reason stays Vault's (VaultUnreachable, VaultPermissionDenied, …): that is what a person must fix.
    const { reason, message } = explain(err);
    throw new RetryableError(reason, `could not list the leases under ${leasePrefix(attempt.mount, attempt.role)} to find one issued before a restart: ${message}`, { cause: err });
  }
  const since = Date.parse(attempt.startedAt) - SWEEP_SKEW_MS;
  for (const leaseId of leases) {
    if (recorded.has(leaseId)) continue;
    const info = await vault.lookupLease(leaseId);
    if (!info?.issueTime || Date.parse(info.issueTime) < since) continue;
    if ((await revokeCounted(state, vault, leaseId, 'orphan')) === 'gone') continue;
    state.events.event(dar, 'Warning', 'OrphanLeaseRevoked', `revoked lease ${leaseId}: it was issued for this request before a restart and never recorded`);
    ctx.log.warn('revoked an unrecorded lease', { leaseId, namespace: dar.metadata.namespace, name: dar.metadata.name });
  }
}

/** Writes the credential into the request's Secret; `first`: none was written before, so try creating it. */
async function writeSecret(state: RequestControllerState, dar: DatabaseAccessRequest, name: string, data: Record<string, string>,
  a: { leaseId: string; attempt: string; rotatedAt?: string; layout: string; first: boolean }, ctx: ReconcileContext): Promise<void> {
  const ns = dar.metadata.namespace ?? '';
  const existing = a.first ? undefined : await state.c.kube.tryGet<SecretMeta>(SECRETS, ns, name, ctx);
  if (existing && !existing.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid)) {
    throw new TerminalError(Reason.FailedToCreateSecret, `Secret ${ns}/${name} exists and is not owned by this request`);
  }
  // Annotations others put on the Secret (a reloader's, say) stay; ours are replaced.
  const annotations: Record<string, string> = {
    ...(existing?.metadata?.annotations ?? {}), [LEASE_ID_ANNOTATION]: a.leaseId, [ATTEMPT_ANNOTATION]: a.attempt,
    // What is written, so that a change by hand is seen from the cache (shared/secret-integrity.ts).
    [DATA_DIGEST_ANNOTATION]: dataDigestAnnotation(encodeData(data)),
  };
  if (a.rotatedAt) annotations[ROTATED_AT_ANNOTATION] = a.rotatedAt;
  if (a.layout) annotations[LAYOUT_ANNOTATION] = a.layout;
  else delete annotations[LAYOUT_ANNOTATION];
  const body = {
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
    metadata: {
      name, namespace: ns,
      labels: { ...(existing?.metadata?.labels ?? {}), ...credentialLabels(dar) },
      annotations,
      ownerReferences: [controllerOwnerRef(dar)],
      ...(existing ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
    },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
  };
  if (existing) {
    await state.c.kube.replace(SECRETS, ns, name, body as never, ctx);
    return;
  }
  try {
    await state.c.kube.create(SECRETS, ns, body as never, ctx);
  } catch (err) {
    // There after all (a pass that stopped before recording it): look, and write over it if it is ours.
    if (!a.first || !isConflict(err)) throw err;
    await writeSecret(state, dar, name, data, { ...a, first: false }, ctx);
  }
}
