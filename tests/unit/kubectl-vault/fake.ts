// An in-memory API server for the plugin's unit tests: resourceVersions, merge patches with the
// resourceVersion precondition (409 when stale), and per-call permission denials written the way RBAC words them.
import type { V1Secret } from '@kubernetes/client-node';
import type { DatabaseAccessRequest, DatabaseRole } from '../../../api/index.ts';
import type { PluginApi, UserInfo } from '../../../cmd/kubectl-vault/api.ts';
import type { Connection, Io } from '../../../cmd/kubectl-vault/cli.ts';
import { ApiCallError, type ApiCall } from '../../../cmd/kubectl-vault/errors.ts';

export const NOW = new Date('2026-03-01T12:00:00Z');

export function request(
  name: string,
  namespace = 'demo',
  extra: Partial<DatabaseAccessRequest> = {},
): DatabaseAccessRequest {
  return {
    apiVersion: 'engine.kubevault.com/v1alpha1',
    kind: 'DatabaseAccessRequest',
    metadata: { name, namespace, generation: 1, creationTimestamp: new Date(NOW.getTime() - 5 * 60_000) },
    spec: {
      roleRef: { kind: 'PostgresRole', name: 'psql-role' },
      subjects: [{ kind: 'ServiceAccount', name: 'demo-sa', namespace }],
    },
    ...extra,
  };
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class FakeApi implements PluginApi {
  readonly server = 'https://127.0.0.1:6443';
  readonly requests = new Map<string, DatabaseAccessRequest>();
  readonly secrets = new Map<string, V1Secret>();
  readonly patches: { namespace: string; name: string; patch: unknown; subresource?: string }[] = [];
  /** `verb resource[/sub] namespace` keys the caller may not use. */
  readonly forbidden = new Set<string>();
  identity: UserInfo = { username: 'admin', groups: ['system:masters'] };
  private rv = 100;
  /** Runs before a patch is applied: lets a test change the object "concurrently". */
  beforePatch?: (attempt: number) => void;
  private patchAttempts = 0;

  add(dar: DatabaseAccessRequest): void {
    this.requests.set(`${dar.metadata.namespace}/${dar.metadata.name}`, {
      ...structuredClone(dar),
      metadata: { ...structuredClone(dar.metadata), resourceVersion: String(++this.rv) },
    });
  }

  /** Changes a stored request as another client would (bumping its resourceVersion). */
  mutate(namespace: string, name: string, fn: (dar: DatabaseAccessRequest) => void): void {
    const dar = this.requests.get(`${namespace}/${name}`)!;
    fn(dar);
    dar.metadata.resourceVersion = String(++this.rv);
  }

  private check(call: ApiCall): void {
    const key =
      `${call.verb} ${call.resource}${call.subresource ? `/${call.subresource}` : ''} ${call.namespace ?? ''}`.trim();
    if (this.forbidden.has(key)) {
      throw new ApiCallError(
        call,
        403,
        'Forbidden',
        `${call.resource}${call.group ? `.${call.group}` : ''} "${call.name ?? ''}" is forbidden: User "${this.identity.username}" cannot ${call.verb} resource "${call.resource}${call.subresource ? `/${call.subresource}` : ''}" in API group "${call.group}" ${call.namespace ? `in the namespace "${call.namespace}"` : 'at the cluster scope'}`,
      );
    }
  }

  async getRequest(namespace: string, name: string): Promise<DatabaseAccessRequest> {
    const call: ApiCall = {
      verb: 'get',
      resource: 'databaseaccessrequests',
      group: 'engine.kubevault.com',
      namespace,
      name,
    };
    this.check(call);
    const dar = this.requests.get(`${namespace}/${name}`);
    if (!dar)
      throw new ApiCallError(call, 404, 'NotFound', `databaseaccessrequests.engine.kubevault.com "${name}" not found`);
    return structuredClone(dar);
  }

  async listRequests(namespace: string | undefined): Promise<DatabaseAccessRequest[]> {
    this.check({ verb: 'list', resource: 'databaseaccessrequests', group: 'engine.kubevault.com', namespace });
    return [...this.requests.values()]
      .filter((d) => namespace === undefined || d.metadata.namespace === namespace)
      .map((d) => structuredClone(d));
  }

  async patchRequest(
    namespace: string,
    name: string,
    patch: unknown,
    subresource?: 'status',
  ): Promise<DatabaseAccessRequest> {
    const call: ApiCall = {
      verb: 'patch',
      resource: 'databaseaccessrequests',
      group: 'engine.kubevault.com',
      subresource,
      namespace,
      name,
    };
    this.check(call);
    this.beforePatch?.(++this.patchAttempts);
    const key = `${namespace}/${name}`;
    const dar = this.requests.get(key);
    if (!dar) throw new ApiCallError(call, 404, 'NotFound', 'not found');
    const p = patch as { metadata?: { resourceVersion?: string } };
    if (p.metadata?.resourceVersion && p.metadata.resourceVersion !== dar.metadata.resourceVersion) {
      throw new ApiCallError(
        call,
        409,
        'Conflict',
        'the object has been modified; please apply your changes to the latest version and try again',
      );
    }
    this.patches.push({ namespace, name, patch: structuredClone(patch), subresource });
    const merged = mergePatch(dar, patch) as DatabaseAccessRequest;
    // The status subresource ignores everything but status; the main resource ignores status.
    const next = subresource === 'status' ? { ...dar, status: merged.status } : { ...merged, status: dar.status };
    next.metadata = { ...next.metadata, resourceVersion: String(++this.rv) };
    this.requests.set(key, next);
    return structuredClone(next);
  }

  async getSecret(namespace: string, name: string): Promise<V1Secret> {
    const call: ApiCall = { verb: 'get', resource: 'secrets', group: '', namespace, name };
    this.check(call);
    const s = this.secrets.get(`${namespace}/${name}`);
    if (!s) throw new ApiCallError(call, 404, 'NotFound', `secrets "${name}" not found`);
    return structuredClone(s);
  }

  /** Roles by "Kind ns/name"; a missing one is 404 (the plugin then proceeds without the policy). */
  readonly roles = new Map<string, DatabaseRole>();

  async getRole(kind: string, namespace: string, name: string): Promise<DatabaseRole> {
    const call: ApiCall = {
      verb: 'get',
      resource: `${kind.toLowerCase()}s`,
      group: 'engine.kubevault.com',
      namespace,
      name,
    };
    this.check(call);
    const role = this.roles.get(`${kind} ${namespace}/${name}`);
    if (!role)
      throw new ApiCallError(call, 404, 'NotFound', `${call.resource}.engine.kubevault.com "${name}" not found`);
    return structuredClone(role);
  }

  async whoAmI(): Promise<UserInfo> {
    this.check({ verb: 'create', resource: 'selfsubjectreviews', group: 'authentication.k8s.io' });
    return this.identity;
  }
}

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

export function fakeIo(
  api: FakeApi,
  opts: { namespace?: string; stdin?: string } = {},
): { io: Io; out: { stdout: string; stderr: string } } {
  const out = { stdout: '', stderr: '' };
  const io: Io = {
    stdout: (t) => void (out.stdout += t),
    stderr: (t) => void (out.stderr += t),
    readStdin: () => opts.stdin ?? '',
    env: {},
    now: () => NOW,
    connect: async (o): Promise<Connection> => ({ api, namespace: o.namespace ?? opts.namespace ?? 'demo' }),
  };
  return { io, out };
}
