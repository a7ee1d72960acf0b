// The Secret a request's credential lives in: the annotations that tie it to a lease and an issuance attempt,
// whether it is (still) there and ours, and its layout: the merged secretTemplates and the database address
// they are rendered with (the variables are the engine's), re-rendered from the credential it holds when either
// changes. Writing a new credential into it is issuance's (issuance.ts); emptying it ends a request's access.
import type { KubernetesObject } from '@kubernetes/client-node';
import { Annotations, Labels, MANAGED_BY, type DatabaseAccessRequest } from '../../api/index.ts';
import { PatchType, type KubeClient, type ReconcileContext } from '../../lib/runtime/index.ts';
import type { Caches } from '../shared/context.ts';
import { labelValue } from '../shared/names.ts';
import { explain } from '../shared/report.ts';
import { SECRETS } from '../shared/resources.ts';
import {
  dataDigestAnnotation,
  decodeData,
  encodeData,
  secretIntegrity,
  type CachedSecret,
} from '../shared/secret-integrity.ts';
import type { AccessRole, DatabaseEngine } from './engine.ts';
import type { EventIntent } from './plan.ts';
import {
  checkTemplates,
  layoutHash,
  mergeTemplates,
  renderSecretData,
  templateView,
  type AddressVariables,
  type SecretTemplates,
} from './template.ts';

export type SecretMeta = CachedSecret;
type SecretWithData = KubernetesObject & { data?: Record<string, string>; type?: string };

/** How the Secret is laid out for a request: merged templates, the address they see, what's wrong with them. */
export interface Layout {
  templates: SecretTemplates;
  address: AddressVariables;
  problems: string[];
  /** Fingerprint of templates + address; '' without templates. */
  hash: string;
  /** The engine's credential variables (username, password and their escaped forms). */
  credentialVariables: DatabaseEngine['variables']['credential'];
}

/** The labels of everything made for a request (its Secret, Role and RoleBinding): valid for any request name. */
export function credentialLabels(dar: DatabaseAccessRequest): Record<string, string> {
  return { [Labels.managedBy]: MANAGED_BY, [Labels.request]: labelValue(dar.metadata.name ?? '') };
}

/** The request's Secret from the cache, if it exists and the request owns it. */
export function ownedSecret(caches: Pick<Caches, 'secrets'>, dar: DatabaseAccessRequest): SecretMeta | undefined {
  const name = dar.status?.secret?.name;
  if (!name) return undefined;
  const s = caches.secrets.get(dar.metadata.namespace ?? '', name) as SecretMeta | undefined;
  return s && s.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid) ? s : undefined;
}

/** The request's layout: its role's templates overridden by its own, over the engine's variables for the role's database. */
export function secretLayout(
  engine: DatabaseEngine,
  caches: Caches,
  dar: DatabaseAccessRequest,
  role: AccessRole,
): Layout {
  const { appBinding, why } = engine.databaseAppBinding(role, caches);
  let address: AddressVariables;
  try {
    address = engine.variables.address(appBinding ? engine.address(appBinding) : undefined, why);
  } catch (err) {
    address = engine.variables.address(undefined, explain(err).message);
  }
  // The engine's default keys first (only over variables that have a value), then the role's, then the request's.
  const defaults = engine.variables.defaults?.(address) ?? {};
  const templates = mergeTemplates(
    { ...defaults, ...role.spec.secretTemplate },
    `${engine.roleKind} ${role.metadata.namespace}/${role.metadata.name}`,
    dar.spec.secretTemplate,
  );
  for (const key of Object.keys(defaults))
    if (!role.spec.secretTemplate?.[key] && !dar.spec.secretTemplate?.[key])
      templates.origin[key] = `${engine.roleKind}'s default`;
  const problems = checkTemplates(templates, address, engine.variables.known);
  return {
    templates,
    address,
    problems,
    credentialVariables: engine.variables.credential,
    hash: Object.keys(templates.templates).length ? layoutHash(templates, address) : '',
  };
}

/** The Secret's data for a credential, laid out. */
export function renderCredential(layout: Layout, cred: { username: string; password: string }): Record<string, string> {
  return renderSecretData(layout.templates, templateView(layout.address, layout.credentialVariables(cred)));
}

/**
 * Renders the Secret again from the credential it holds, when its layout changed (a template or the database
 * address: the layout annotation differs) or keys other than the credential were edited, added or
 * removed by hand. Its username and password are kept only if they are what Leasehold wrote (the digest says
 * so; a Secret without a digest is trusted, as before digests); otherwise nothing is written and the Secret's
 * next event brings a pass that rotates. Returns the Event to emit, if it wrote.
 */
export async function rerenderSecret(
  kube: KubeClient,
  dar: DatabaseAccessRequest,
  layout: Layout,
  ctx: ReconcileContext,
): Promise<EventIntent | undefined> {
  const ns = dar.metadata.namespace ?? '';
  const secret = await kube.tryGet<SecretWithData>(SECRETS, ns, dar.status!.secret!.name, ctx);
  if (!secret?.data?.username || !secret.data.password) return undefined;
  const integrity = secretIntegrity(secret.metadata?.annotations?.[Annotations.dataDigest], decodeData(secret.data));
  if (integrity === 'credential') return undefined;
  const layoutChanged = (secret.metadata?.annotations?.[Annotations.layout] ?? '') !== layout.hash;
  if (!layoutChanged && integrity !== 'layout') return undefined; // the cache lagged
  const cred = {
    username: Buffer.from(secret.data.username, 'base64').toString('utf8'),
    password: Buffer.from(secret.data.password, 'base64').toString('utf8'),
  };
  const data = renderCredential(layout, cred);
  const annotations: Record<string, string> = {
    ...(secret.metadata?.annotations ?? {}),
    [Annotations.dataDigest]: dataDigestAnnotation(encodeData(data)),
  };
  if (layout.hash) annotations[Annotations.layout] = layout.hash;
  else delete annotations[Annotations.layout];
  await kube.replace(
    SECRETS,
    ns,
    secret.metadata!.name!,
    { ...secret, metadata: { ...secret.metadata, annotations }, data: base64Data(data) } as never,
    ctx,
  );
  return layoutChanged
    ? {
        type: 'Normal',
        reason: 'SecretUpdated',
        message: `Secret ${secret.metadata!.name} re-rendered: its secretTemplate or the database address changed`,
      }
    : {
        type: 'Normal',
        reason: 'SecretRepaired',
        message: `Secret ${secret.metadata!.name} was changed by hand (keys other than the credential); rendered again from its credential, which is intact`,
      };
}

/** Removes every key from the Secret: the credential and everything rendered from it (the Secret stays). */
export async function clearSecret(
  kube: KubeClient,
  caches: Pick<Caches, 'secrets'>,
  dar: DatabaseAccessRequest,
  ctx: ReconcileContext,
): Promise<void> {
  const name = dar.status?.secret?.name;
  if (!name) return;
  if (!ownedSecret(caches, dar)) {
    // The cache may lag: only a Secret the request owns is emptied.
    const live = await kube.tryGet<SecretMeta>(SECRETS, dar.metadata.namespace ?? '', name, ctx);
    if (
      !live ||
      live.metadata?.deletionTimestamp ||
      !live.metadata?.ownerReferences?.some((o) => o.uid === dar.metadata.uid)
    )
      return;
  }
  // The digest goes with the data: an emptied Secret is not a credential changed by hand.
  await kube.patch(
    SECRETS,
    dar.metadata.namespace ?? '',
    name,
    { data: null, metadata: { annotations: { [Annotations.dataDigest]: null } } },
    PatchType.merge,
    ctx,
  );
}

/** String data as a Secret's base64 `data`. */
export function base64Data(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
}
