// The few API calls the plugin makes, behind an interface the commands use (and unit tests fake). Every
// failure becomes an ApiCallError naming what was asked (verb, resource, subresource, namespace, name), so the
// person at the terminal learns which permission is missing rather than reading an HTTP dump.
import { HttpMethod, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import {
  DATABASE_ACCESS_REQUEST,
  ENGINE_GROUP,
  ENGINE_VERSION,
  type DatabaseAccessRequest,
  type DatabaseRole,
} from '../../api/index.ts';
import { KubeApiError, KubeClient, PatchType, resourcePath } from '../../lib/runtime/kube.ts';
import type { ResourceType } from '../../lib/runtime/types.ts';
import { ApiCallError, CommandError, type ApiCall } from './errors.ts';

export const DAR_RESOURCE: ResourceType = {
  group: DATABASE_ACCESS_REQUEST.group,
  version: DATABASE_ACCESS_REQUEST.version,
  plural: DATABASE_ACCESS_REQUEST.plural,
  kind: DATABASE_ACCESS_REQUEST.kind,
};
export const SECRET_RESOURCE: ResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' };

/** Who the API server says the caller is (SelfSubjectReview's status.userInfo). */
export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
}

export interface PluginApi {
  /** The API server's address, for messages. */
  readonly server: string;
  getRequest(namespace: string, name: string): Promise<DatabaseAccessRequest>;
  /** Every request in `namespace`, or in all namespaces when it is undefined. */
  listRequests(namespace: string | undefined): Promise<DatabaseAccessRequest[]>;
  /** A merge patch of the request (or of its status subresource). */
  patchRequest(namespace: string, name: string, patch: unknown, subresource?: 'status'): Promise<DatabaseAccessRequest>;
  getSecret(namespace: string, name: string): Promise<V1Secret>;
  /** A role (PostgresRole, MySQLRole, MariaDBRole or RedisRole) by its kind. */
  getRole(kind: string, namespace: string, name: string): Promise<DatabaseRole>;
  whoAmI(): Promise<UserInfo>;
}

const SSR_VERSIONS = ['v1', 'v1beta1'] as const;

export class KubePluginApi implements PluginApi {
  readonly server: string;
  private readonly client: KubeClient;

  constructor(kubeConfig: KubeConfig) {
    this.client = new KubeClient(kubeConfig);
    this.server = kubeConfig.getCurrentCluster()?.server ?? '';
  }

  getRequest(namespace: string, name: string): Promise<DatabaseAccessRequest> {
    return this.call({ verb: 'get', resource: DAR_RESOURCE.plural, group: DAR_RESOURCE.group, namespace, name }, () =>
      this.client.get<DatabaseAccessRequest & { metadata: { name?: string } }>(DAR_RESOURCE, namespace, name),
    );
  }

  async listRequests(namespace: string | undefined): Promise<DatabaseAccessRequest[]> {
    const items: DatabaseAccessRequest[] = [];
    let next: string | undefined;
    do {
      const page = await this.call(
        { verb: 'list', resource: DAR_RESOURCE.plural, group: DAR_RESOURCE.group, namespace },
        () => this.client.list<DatabaseAccessRequest>(DAR_RESOURCE, { namespace, limit: 500, continue: next }),
      );
      items.push(...page.items);
      next = page.continue;
    } while (next);
    return items;
  }

  patchRequest(
    namespace: string,
    name: string,
    patch: unknown,
    subresource?: 'status',
  ): Promise<DatabaseAccessRequest> {
    return this.call(
      { verb: 'patch', resource: DAR_RESOURCE.plural, group: DAR_RESOURCE.group, subresource, namespace, name },
      () =>
        this.client.patch<DatabaseAccessRequest>(DAR_RESOURCE, namespace, name, patch, PatchType.merge, {
          subresource,
          fieldManager: 'kubectl-vault',
        }),
    );
  }

  getSecret(namespace: string, name: string): Promise<V1Secret> {
    return this.call({ verb: 'get', resource: 'secrets', group: '', namespace, name }, () =>
      this.client.get<V1Secret & { metadata: object }>(SECRET_RESOURCE, namespace, name),
    );
  }

  getRole(kind: string, namespace: string, name: string): Promise<DatabaseRole> {
    const resource: ResourceType = {
      group: ENGINE_GROUP,
      version: ENGINE_VERSION,
      plural: `${kind.toLowerCase()}s`,
      kind,
    };
    return this.call({ verb: 'get', resource: resource.plural, group: resource.group, namespace, name }, () =>
      this.client.get<DatabaseRole & { metadata: { name?: string } }>(resource, namespace, name),
    );
  }

  /** SelfSubjectReview (GA in Kubernetes 1.28; beta before). The identity is the server's word, never a flag. */
  async whoAmI(): Promise<UserInfo> {
    let last: unknown;
    for (const version of SSR_VERSIONS) {
      const resource: ResourceType = {
        group: 'authentication.k8s.io',
        version,
        plural: 'selfsubjectreviews',
        kind: 'SelfSubjectReview',
        namespaced: false,
      };
      try {
        const review = await this.call({ verb: 'create', resource: resource.plural, group: resource.group }, () =>
          this.client.request<{ status?: { userInfo?: Partial<UserInfo> } }>(HttpMethod.POST, resourcePath(resource), {
            body: { apiVersion: `${resource.group}/${version}`, kind: resource.kind },
          }),
        );
        const info = review.status?.userInfo;
        if (!info?.username) throw new Error("the API server's SelfSubjectReview named no user");
        return { username: info.username, uid: info.uid, groups: info.groups };
      } catch (err) {
        last = err;
        if (!(err instanceof ApiCallError && err.statusCode === 404)) throw err;
      }
    }
    throw last;
  }

  private async call<T>(call: ApiCall, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toCallError(call, err, this.server);
    }
  }
}

/** KubeApiError (or a transport failure) → ApiCallError. Exported for tests. */
export function toCallError(call: ApiCall, err: unknown, server: string): Error {
  if (err instanceof ApiCallError) return err;
  if (err instanceof KubeApiError) {
    // KubeApiError's message is `HTTP <code>[ <reason>][: <Status message>]`; keep the Status message.
    const prefix = `HTTP ${err.statusCode}${err.reason ? ` ${err.reason}` : ''}`;
    const detail = err.message.startsWith(prefix) ? err.message.slice(prefix.length).replace(/^: /, '') : err.message;
    return new ApiCallError(call, err.statusCode, err.reason, detail);
  }
  if (err instanceof Error && (err as { code?: unknown }).code === 'ERR_INVALID_URL') {
    return new CommandError(`the kubeconfig's server address "${server}" is not a valid URL`);
  }
  if (
    err instanceof Error &&
    (err.name === 'TypeError' || err.name === 'TimeoutError' || err.name === 'AbortError' || 'cause' in err)
  ) {
    return new ApiCallError(call, 0, '', `${server || 'the server'}: ${transportDetail(err)}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

function transportDetail(err: Error): string {
  if (err.name === 'TimeoutError') return 'no answer in time (timeout)';
  // undici wraps the socket error: TypeError('fetch failed', { cause: Error('connect ECONNREFUSED …', code) }).
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error && e.cause instanceof Error; depth++) e = e.cause;
  const inner = e instanceof Error ? e : err;
  const code = (inner as { code?: unknown }).code;
  return `${inner.message}${typeof code === 'string' && !inner.message.includes(code) ? ` (${code})` : ''}`;
}
