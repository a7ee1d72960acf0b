// observe: everything a pass decides on, read into one plain value. Reads only: the watch caches, a live read of
// the credential Secret where the cache can't be trusted (an absence, or a digest that says it was changed: the
// cache may show a version older than the operator's own last write), and a look-up of the recorded lease in
// Vault when one is due (lease-liveness.ts). Nothing here writes; plan.ts decides on the value.
import { Annotations, FINALIZER, KUBEVAULT_FINALIZER, type DatabaseAccessRequest } from '../../api/index.ts';
import { TerminalError, hasFinalizer, type ReconcileContext } from '../../lib/runtime/index.ts';
import type { ControllerContext } from '../shared/context.ts';
import type { Dependencies } from '../shared/dependents.ts';
import { ReferenceNotAllowed } from '../shared/references.ts';
import type { RoleTarget } from '../shared/role-target.ts';
import { SECRETS } from '../shared/resources.ts';
import { decodeData, secretIntegrity, type SecretIntegrity } from '../shared/secret-integrity.ts';
import { ownedSecret, secretLayout, type Layout, type SecretMeta } from './credential-secret.ts';
import { leaseStep, renewFraction, stageOf, type Stage } from './decide.ts';
import { engineOf, type AccessRole, type DatabaseEngine } from './engine.ts';
import { LIVENESS_END_MARGIN_MS, type Liveness } from './lease-liveness.ts';
import type { RequestMemory } from './memory.ts';
import { explain } from '../shared/report.ts';

/** Why the request's role can't be issued from now: recorded in status, then retried or (terminal) given up. */
export interface Failure {
  reason: string;
  message: string;
  /** Nothing will change it but a new request: phase Failed, no retry until the object changes. */
  terminal?: boolean;
  /** Retried after this long rather than with the queue's per-key backoff: a poll where no watch would wake us. */
  retryAfterMs?: number;
}

/** The request's credential Secret as the pass sees it. */
export interface SecretView {
  /** status.secret.name. */
  name?: string;
  /** It exists and is owned by the request. */
  present: boolean;
  /** Its data against the digest Leasehold wrote: 'credential' (changed by hand), 'layout' (other keys edited). */
  drift: SecretIntegrity;
  /** The lease, issuance attempt, rotation time and layout fingerprint its annotations record. */
  leaseId?: string;
  attempt?: string;
  rotatedAt?: string;
  layout?: string;
}

export interface Observed {
  request: DatabaseAccessRequest;
  stage: Stage;
  /** The request holds the finalizer (ours or KubeVault's). */
  finalized: { ours: boolean; any: boolean };
  engine?: DatabaseEngine;
  /** "PostgresRole ns/name", for messages. */
  roleName: string;
  role?: AccessRole;
  /** Why the role can't be issued from (absent, doesn't admit the namespace, unknown kind). */
  roleProblem?: Failure;
  target?: RoleTarget;
  targetProblem?: Failure;
  /** Something on the issue path is being deleted (its description). */
  terminating?: string;
  /** A reference of the role's into another namespace is no longer admitted: nothing is renewed or issued. */
  refusal?: string;
  layout?: Layout;
  secret: SecretView;
  /** Whether the recorded lease still exists in Vault ('alive' when not looked up this pass). */
  liveness: Liveness;
  /** Vault AppBindings (ns/name) that leases recorded in status were issued through and that are still in the cache. */
  vaultAppBindings: ReadonlySet<string>;
  /** When each recorded lease's next revocation try is due (after a failure), by lease id. */
  revocationRetryAt: Readonly<Record<string, number>>;
  /** A renewal's answer, when the pass already asked (plan again with it). */
  renewal?: RenewalAnswer;
}

/** What Vault answered to a renewal (lease-keeping plans on it: renewed, rotate, or retry). */
export type RenewalAnswer =
  | { kind: 'renewed'; grantedSeconds: number; askedSeconds: number; termSeconds: number; failuresBefore: number }
  | { kind: 'refused'; detail: string }
  | { kind: 'gone' }
  | { kind: 'failed'; message: string; failures: number };

export interface ObserveDeps {
  c: ControllerContext;
  dependencies: Dependencies;
  memory: RequestMemory;
}

/** "ns/name" of a reference, defaulting the namespace. */
export function refKeyOf(ref: { namespace?: string; name: string }, defaultNamespace: string): string {
  return `${ref.namespace || defaultNamespace}/${ref.name}`;
}

/** Reads what a pass over `dar` decides on. */
export async function observe(dar: DatabaseAccessRequest, deps: ObserveDeps, ctx: ReconcileContext): Promise<Observed> {
  const { c } = deps;
  const ns = dar.metadata.namespace ?? '';
  const stage = stageOf(dar, dar.metadata.annotations?.[Annotations.revokeNow]);
  const engine = engineOf(dar);
  const roleNs = dar.spec.roleRef.namespace ?? ns;
  const roleName = `${dar.spec.roleRef.kind ?? 'PostgresRole'} ${roleNs}/${dar.spec.roleRef.name}`;
  const o: Observed = {
    request: dar,
    stage,
    engine,
    roleName,
    finalized: {
      ours: hasFinalizer(dar, FINALIZER),
      any: hasFinalizer(dar, FINALIZER) || hasFinalizer(dar, KUBEVAULT_FINALIZER),
    },
    secret: await secretView(dar, deps, ctx, stage),
    liveness: 'alive',
    vaultAppBindings: recordedVaultAppBindings(dar, c),
    revocationRetryAt: retryTimes(dar, deps.memory),
  };
  if (stage === 'finalize' || stage === 'finished' || stage === 'denied') return o;
  o.role = engine?.role(c.caches, roleNs, dar.spec.roleRef.name);
  o.roleProblem = roleProblem(o, ns);
  if (stage !== 'approved') return o;
  if (dar.status?.lease?.id && dar.status.issuance?.completed && o.secret.present && o.secret.drift !== 'credential') {
    o.liveness = await leaseLiveness(dar, o.role, deps, ctx);
  }
  if (!o.role || !engine) return o;

  const role = o.role;
  try {
    o.target = engine.target(role, c.caches, c.clusterName);
    o.terminating = deps.dependencies.terminatingOnIssuePath(role as never, o.target.vaultAppBinding);
  } catch (err) {
    const { reason, message } = explain(err);
    // A reference the other namespace doesn't admit is fixed by its opting in, which wakes the role and so this
    // request: not terminal, polled slowly meanwhile.
    o.targetProblem =
      err instanceof ReferenceNotAllowed
        ? { reason, message, retryAfterMs: 60_000 }
        : { reason, message, terminal: err instanceof TerminalError };
  }
  o.refusal = engine.referenceRefusal(role, c.caches, c.clusterName)?.message;
  if (!o.refusal) o.layout = secretLayout(engine, c.caches, dar, role);
  return o;
}

function roleProblem(o: Observed, ns: string): Failure | undefined {
  const dar = o.request;
  if (!o.engine) {
    return {
      reason: 'ReferenceNotFound',
      message: `spec.roleRef.kind ${dar.spec.roleRef.kind} is not a role kind Leasehold serves`,
      terminal: true,
    };
  }
  if (!o.role) return { reason: 'ReferenceNotFound', message: `${o.roleName} named by spec.roleRef does not exist` };
  if (!namespaceAllowed(o.role, ns)) {
    return {
      reason: 'NamespaceNotAllowed',
      terminal: true,
      message: `${o.roleName} does not admit requests from namespace ${ns}: add "${ns}" to its spec.allowedRequestNamespaces`,
    };
  }
  return undefined;
}

/** A role admits a request from its own namespace, and from those it lists in allowedRequestNamespaces. */
export function namespaceAllowed(role: AccessRole, requestNamespace: string): boolean {
  if (role.metadata.namespace === requestNamespace) return true;
  const allowed = role.spec.allowedRequestNamespaces ?? [];
  return allowed.includes('*') || allowed.includes(requestNamespace);
}

async function secretView(
  dar: DatabaseAccessRequest,
  deps: ObserveDeps,
  ctx: ReconcileContext,
  stage: Stage,
): Promise<SecretView> {
  const name = dar.status?.secret?.name;
  const cached = ownedSecret(deps.c.caches, dar);
  const view: SecretView = { name, present: !!cached, drift: 'intact', ...annotationsOf(cached) };
  if (!name) return view;
  const unfinished = !!dar.status?.issuance?.attempt && !dar.status.issuance.completed;
  if (unfinished && stage !== 'finished' && stage !== 'denied') {
    // An attempt that wasn't recorded: what its Secret holds decides between adopting its lease and sweeping,
    // and the cache may not show our own write yet. Read it.
    const live = await deps.c.kube.tryGet<SecretMeta>(SECRETS, dar.metadata.namespace ?? '', name, ctx);
    const ours =
      !!live &&
      !live.metadata?.deletionTimestamp &&
      !!live.metadata?.ownerReferences?.some((r) => r.uid === dar.metadata.uid);
    return ours
      ? { ...view, present: true, ...annotationsOf(live) }
      : { ...view, present: false, leaseId: undefined, attempt: undefined };
  }
  // Only a recorded, approved credential is checked against the live Secret; every other stage reads the cache.
  if (stage !== 'approved' || !dar.status?.lease?.id || !dar.status.issuance?.completed) return view;
  if (!cached) {
    // The cache may lag behind our own create: an absence is confirmed by a read.
    const live = await deps.c.kube.tryGet<SecretMeta>(SECRETS, dar.metadata.namespace ?? '', name, ctx);
    const ours =
      !!live &&
      !live.metadata?.deletionTimestamp &&
      !!live.metadata?.ownerReferences?.some((r) => r.uid === dar.metadata.uid);
    return ours ? { ...view, present: true, ...annotationsOf(live) } : view;
  }
  if (!cached.integrity || cached.integrity === 'intact') return view;
  // The cache's verdict says the data changed; a read confirms it (the cache may show an older version).
  const live = await deps.c.kube.tryGet<SecretMeta & { data?: Record<string, string> }>(
    SECRETS,
    dar.metadata.namespace ?? '',
    name,
    ctx,
  );
  if (!live) return view; // deleted meanwhile: its watch event brings the next pass (SecretDeleted)
  return {
    ...view,
    drift: secretIntegrity(live.metadata?.annotations?.[Annotations.dataDigest], decodeData(live.data)) ?? 'intact',
  };
}

/** The lease, attempt, rotation time and layout a credential Secret's annotations record. */
function annotationsOf(
  secret: SecretMeta | undefined,
): Pick<SecretView, 'leaseId' | 'attempt' | 'rotatedAt' | 'layout'> {
  const a = secret?.metadata?.annotations ?? {};
  return {
    leaseId: a[Annotations.leaseId],
    attempt: a[Annotations.attempt],
    rotatedAt: a[Annotations.rotatedAt],
    layout: a[Annotations.layout],
  };
}

function recordedVaultAppBindings(dar: DatabaseAccessRequest, c: ControllerContext): Set<string> {
  const ns = dar.metadata.namespace ?? '';
  const refs = [
    dar.status?.issuance?.vaultAppBinding,
    ...(dar.status?.previousLeases ?? []).map((p) => p.vaultAppBinding),
  ];
  const present = new Set<string>();
  for (const r of refs) {
    if (r && c.caches.appBindings.get(r.namespace || ns, r.name)) present.add(refKeyOf(r, ns));
  }
  return present;
}

function retryTimes(dar: DatabaseAccessRequest, memory: RequestMemory): Record<string, number> {
  const out: Record<string, number> = {};
  const ids = [
    dar.status?.lease?.id,
    ...(dar.status?.previousLeases ?? []).map((p) => p.id),
    `sweep/${dar.metadata.uid}`,
  ];
  for (const id of ids) {
    const at = id ? memory.revocationRetries.retryAtMs(id) : undefined;
    if (id && at !== undefined) out[id] = at;
  }
  return out;
}

/**
 * Whether the recorded lease still exists in Vault, when it is due for a look (lease-liveness.ts); 'alive' when
 * not due, and when the lease's own schedule is about to ask Vault anyway (renewal, expiry). 'unknown' when Vault
 * couldn't be asked: the lease is kept, and looked at again later.
 */
async function leaseLiveness(
  dar: DatabaseAccessRequest,
  role: AccessRole | undefined,
  deps: ObserveDeps,
  ctx: ReconcileContext,
): Promise<Liveness> {
  const lease = dar.status!.lease!;
  const uid = dar.metadata.uid ?? '';
  const now = ctx.now().getTime();
  const liveness = deps.memory.liveness;
  if (!liveness.due(uid, lease.id!, now)) return 'alive';
  const step = leaseStep(lease, {
    renew: dar.spec.renew !== false,
    fraction: renewFraction(dar, role),
    uid,
    nowMs: now,
  });
  if (step.kind !== 'wait') return 'alive';
  // Near its end a lease may already be gone by Vault's clock: Vault's expiry runs ahead of status.lease.expiresAt
  // by the time issuance or renewal took to be recorded. That is the lease running out (expiry, or a rotation at
  // max TTL), the schedule's business: not a revocation behind our back.
  const expiresAtMs = Date.parse(lease.expiresAt ?? '');
  const durationMs = Number.isFinite(Date.parse(lease.issuedAt ?? ''))
    ? expiresAtMs - Date.parse(lease.issuedAt ?? '')
    : NaN;
  if (
    Number.isFinite(expiresAtMs) &&
    expiresAtMs - now <= Math.max(LIVENESS_END_MARGIN_MS, Number.isFinite(durationMs) ? durationMs * 0.1 : 0)
  )
    return 'alive';
  const ref = dar.status?.issuance?.vaultAppBinding;
  const ns = dar.metadata.namespace ?? '';
  const ab = ref ? deps.c.caches.appBindings.get(ref.namespace || ns, ref.name) : undefined;
  const session = ab ? await deps.c.connections.forAppBinding(ab, ctx.signal).catch(() => undefined) : undefined;
  if (!session || !ref) {
    liveness.retryLater(uid, lease.id!, now);
    return 'unknown';
  }
  const found = await liveness.check({ uid, leaseId: lease.id! }, session.client, {
    connectionKey: refKeyOf(ref, ns),
    nowMs: () => ctx.now().getTime(),
    signal: ctx.signal,
  });
  if (found === 'unknown')
    ctx.log.debug('could not look the lease up in Vault; will try again', {
      namespace: ns,
      name: dar.metadata.name,
      leaseId: lease.id,
    });
  return found;
}
