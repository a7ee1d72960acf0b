// The Secret a request's credential lives in: the annotations that tie it to a lease and an issuance attempt,
// whether it is (still) there and ours, and its layout: the merged secretTemplates and the database address
// they are rendered with, re-rendered from the credential it holds when either changes. Writing a new
// credential into it is issuance's (issuance.ts); emptying it is the end of a request's (ending.ts).
import type { KubernetesObject } from '@kubernetes/client-node';
import { ConditionType, DOMAIN, Labels, MANAGED_BY, RequestPhase, type AppBinding, type DatabaseAccessRequest, type PostgresRole } from '../../api/index.ts';
import type { ReconcileContext } from '../../lib/runtime/index.ts';
import { labelValue } from '../shared/names.ts';
import { explain } from '../shared/report.ts';
import { SECRETS } from '../shared/resources.ts';
import { DATA_DIGEST_ANNOTATION, dataDigestAnnotation, decodeData, encodeData, secretIntegrity, type CachedSecret, type SecretIntegrity } from '../shared/secret-integrity.ts';
import type { RequestControllerState } from './controller-state.ts';
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

export type SecretMeta = CachedSecret;
type SecretWithData = KubernetesObject & { data?: Record<string, string>; type?: string };

/** How the Secret is laid out for a request: merged templates, the address they see, what's wrong with them. */
export interface Layout {
  templates: SecretTemplates;
  address: AddressVariables;
  problems: string[];
  /** Fingerprint of templates + address; '' without templates. */
  hash: string;
}

/** The labels of everything made for a request (its Secret, Role and RoleBinding): valid for any request name. */
export function credentialLabels(dar: DatabaseAccessRequest): Record<string, string> {
  return { [Labels.managedBy]: MANAGED_BY, [Labels.request]: labelValue(dar.metadata.name ?? '') };
}

export function ownedSecret(state: RequestControllerState, dar: DatabaseAccessRequest): SecretMeta | undefined {
  const name = dar.status?.secret?.name;
  if (!name) return undefined;
  const s = state.c.caches.secrets.get(dar.metadata.namespace ?? '', name) as SecretMeta | undefined;
  return s && s.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid) ? s : undefined;
}

/** The Secret exists and is ours: the cache says so, and a live read confirms an absence (the cache may lag). */
export async function secretPresent(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<boolean> {
  if (ownedSecret(state, dar)) return true;
  const name = dar.status?.secret?.name;
  if (!name) return false;
  const live = await state.c.kube.tryGet<SecretMeta>(SECRETS, dar.metadata.namespace ?? '', name, ctx);
  return !!live && !live.metadata?.deletionTimestamp && !!live.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid);
}

// ---- the Secret's layout ---------------------------------------------------------------------------------

/** The database AppBinding behind a role (for host, port, dbname), or why there is none. */
function databaseAppBinding(state: RequestControllerState, role: PostgresRole): { ab?: AppBinding; why: string } {
  const ns = role.metadata.namespace ?? '';
  let ref: { name: string; namespace?: string } | undefined;
  if (role.spec.secretEngineRef) {
    const engine = state.c.caches.secretEngines.get(ns, role.spec.secretEngineRef.name);
    if (!engine) return { why: `SecretEngine ${ns}/${role.spec.secretEngineRef.name} does not exist` };
    ref = engine.spec.postgres.databaseRef;
  } else {
    ref = role.spec.databaseRef;
  }
  if (!ref) return { why: `PostgresRole ${ns}/${role.metadata.name} names a Vault connection (databaseName), not a database AppBinding` };
  const abNs = ref.namespace ?? ns;
  const ab = state.c.caches.appBindings.get(abNs, ref.name);
  return ab ? { ab, why: '' } : { why: `the database AppBinding ${abNs}/${ref.name} does not exist` };
}

export function secretLayout(state: RequestControllerState, dar: DatabaseAccessRequest, role: PostgresRole): Layout {
  const templates = mergeTemplates(role.spec.secretTemplate, `${role.metadata.namespace}/${role.metadata.name}`, dar.spec.secretTemplate);
  const { ab, why } = databaseAppBinding(state, role);
  let address: AddressVariables;
  try {
    address = addressVariables(ab ? databaseAddress(ab) : undefined, why);
  } catch (err) {
    address = addressVariables(undefined, explain(err).message);
  }
  const problems = checkTemplates(templates, address);
  return { templates, address, problems, hash: Object.keys(templates.templates).length ? layoutHash(templates, address) : '' };
}

export async function reportTemplateProblems(state: RequestControllerState, dar: DatabaseAccessRequest, layout: Layout, ctx: ReconcileContext): Promise<DatabaseAccessRequest> {
  const message = `secretTemplate can't be rendered, so nothing is issued or rotated until it is fixed: ${layout.problems.join('; ')}`.slice(0, 4000);
  return state.write(dar, ctx, {
    phase: RequestPhase.Approved,
    conditions: [{ type: ConditionType.Available, status: 'False', reason: INVALID_SECRET_TEMPLATE, message }],
  });
}

/**
 * Whether the Secret's data is still what Leasehold last wrote into it. The cache's verdict (from the digest
 * annotation, shared/secret-integrity.ts) costs nothing; when it says otherwise, a read confirms it, since the
 * cache may still show a version older than the operator's own last write. 'intact' also for a Secret without a
 * digest (written before digests were recorded): nothing to compare with.
 */
export async function secretDrift(state: RequestControllerState, dar: DatabaseAccessRequest, ctx: ReconcileContext): Promise<SecretIntegrity> {
  const cached = ownedSecret(state, dar);
  if (!cached?.integrity || cached.integrity === 'intact') return 'intact';
  const live = await state.c.kube.tryGet<SecretWithData>(SECRETS, dar.metadata.namespace ?? '', cached.metadata!.name!, ctx);
  if (!live) return 'intact'; // deleted meanwhile: its watch event brings the next pass (SecretDeleted)
  return secretIntegrity(live.metadata?.annotations?.[DATA_DIGEST_ANNOTATION], decodeData(live.data)) ?? 'intact';
}

/**
 * Renders the Secret again from the credential it holds, when its layout changed (a template or the database
 * address: the layout annotation differs) or `repair` (keys other than the credential were edited, added or
 * removed by hand: secretDrift said 'layout'). Its username and password are kept only if they are what Leasehold
 * wrote (the digest says so; a Secret without a digest is trusted, as before digests); otherwise nothing is
 * written and the Secret's next event brings a pass that rotates.
 */
export async function rerender(state: RequestControllerState, dar: DatabaseAccessRequest, layout: Layout, ctx: ReconcileContext, repair = false): Promise<DatabaseAccessRequest> {
  const cached = ownedSecret(state, dar);
  if (!repair && (cached?.metadata?.annotations?.[LAYOUT_ANNOTATION] ?? '') === layout.hash) return dar;
  const ns = dar.metadata.namespace ?? '';
  const secret = await state.c.kube.tryGet<SecretWithData>(SECRETS, ns, dar.status!.secret!.name, ctx);
  if (!secret?.data?.username || !secret.data.password) return dar;
  const integrity = secretIntegrity(secret.metadata?.annotations?.[DATA_DIGEST_ANNOTATION], decodeData(secret.data));
  if (integrity === 'credential') return dar;
  const layoutChanged = (secret.metadata?.annotations?.[LAYOUT_ANNOTATION] ?? '') !== layout.hash;
  if (!layoutChanged && integrity !== 'layout') return dar; // the cache lagged
  const cred = { username: Buffer.from(secret.data.username, 'base64').toString('utf8'), password: Buffer.from(secret.data.password, 'base64').toString('utf8') };
  const data = renderSecretData(layout.templates, templateView(layout.address, cred));
  const annotations: Record<string, string> = { ...(secret.metadata?.annotations ?? {}), [DATA_DIGEST_ANNOTATION]: dataDigestAnnotation(encodeData(data)) };
  if (layout.hash) annotations[LAYOUT_ANNOTATION] = layout.hash;
  else delete annotations[LAYOUT_ANNOTATION];
  await state.c.kube.replace(SECRETS, ns, secret.metadata!.name!, {
    ...secret, metadata: { ...secret.metadata, annotations },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
  } as never, ctx);
  if (layoutChanged) {
    state.events.event(dar, 'Normal', 'SecretUpdated', `Secret ${secret.metadata!.name} re-rendered: its secretTemplate or the database address changed`);
  } else {
    state.events.event(dar, 'Normal', 'SecretRepaired', `Secret ${secret.metadata!.name} was changed by hand (keys other than the credential); ` +
      'rendered again from its credential, which is intact');
  }
  return dar;
}
