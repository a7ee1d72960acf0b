// A small generic Kubernetes REST client over client-node's own transport (KubeConfig auth + undici dispatcher).
// Generic because the runtime addresses every kind, core ones included, by {group, version, plural}: the
// generated CustomObjectsApi cannot reach the core group, and typed APIs differ per kind. Errors come back
// classified (KubeApiError) with a message that never carries headers or request bodies, and every write is
// counted in kube_writes_total so an idle operator can be shown to write nothing.
import {
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  RequestContext,
  Watch,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { reuseConnections } from './connection-reuse.ts';
import type { Metrics } from './metrics.ts';
import type { ResourceType } from './types.ts';

export const PatchType = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategicMerge: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];

/** An HTTP error from the apiserver, reduced to what is safe to log: status code and the Status reason/message. */
export class KubeApiError extends Error {
  readonly statusCode: number;
  /** The Kubernetes Status reason (`NotFound`, `Conflict`, `Expired`, ...), if the server sent one. */
  readonly reason: string;
  constructor(statusCode: number, reason: string, message: string) {
    super(`HTTP ${statusCode}${reason ? ` ${reason}` : ''}${message ? `: ${message}` : ''}`);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = reason;
  }
  /** Read by describeError. */
  get safeMessage(): string {
    return this.message;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.statusCode === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.statusCode === 409;
}

export function isGone(err: unknown): boolean {
  return err instanceof KubeApiError && err.statusCode === 410;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Per-request timeout; 30 s by default. */
  timeoutMs?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** 30 s by default. */
  timeoutMs?: number;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  signal?: AbortSignal;
}

/** What a watch stream calls: each event's type and object, then once how the stream ended (null: cleanly). */
export interface WatchCallbacks {
  onEvent(type: string, object: unknown): void;
  onDone(err: unknown): void;
}

export interface WatchOptions {
  /** A stream that delivers nothing for this long fails with a TimeoutError. */
  inactivityTimeoutMs: number;
}

export interface ListPage<T> {
  items: T[];
  resourceVersion: string;
  continue?: string;
}

/** `/api/v1/namespaces/ns/configmaps/name/status` and friends. */
export function resourcePath(resource: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  let p = resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`;
  if ((resource.namespaced ?? true) && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${resource.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

const WRITE_VERBS: Partial<Record<HttpMethod, string>> = {
  [HttpMethod.POST]: 'create',
  [HttpMethod.PUT]: 'update',
  [HttpMethod.PATCH]: 'patch',
  [HttpMethod.DELETE]: 'delete',
};

/**
 * How long the headers and connection pool client-node chose for a request are reused for the next ones.
 * client-node works them out afresh for every request: it reads the CA, client certificate and key files (or
 * decodes them), asks the authenticator for a token, and the connection reuse wrapper hashes the TLS material
 * to find its pool: most of a millisecond per request on a busy node. client-go re-reads a token file once a
 * minute; ten seconds keeps a rotated token, certificate or CA file in use within seconds, and an answer of 401
 * (an exec or OIDC token that ran out inside the window) drops the cached copy at once.
 */
const AUTH_REUSE_MS = 10_000;

interface Auth {
  at: number;
  headers: Record<string, string>;
  dispatcher: ReturnType<RequestContext['getDispatcher']>;
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  private readonly http = new IsomorphicFetchHttpLibrary();
  private readonly metrics: Metrics | undefined;
  private auth: Auth | undefined;
  /** `verb resource` → increments its kube_requests_total (and kube_writes_total) series: prom-client's labels() hashes per call. */
  private readonly counters = new Map<string, () => void>();

  constructor(kubeConfig: KubeConfig, opts: { metrics?: Metrics } = {}) {
    // Keep-alive connections for this client and for every watch made from the same KubeConfig.
    reuseConnections(kubeConfig);
    this.kubeConfig = kubeConfig;
    this.metrics = opts.metrics;
  }

  async get<T extends KubernetesObject>(
    resource: ResourceType,
    namespace: string,
    name: string,
    opts: CallOptions = {},
  ): Promise<T> {
    return this.request<T>(HttpMethod.GET, resourcePath(resource, namespace, name), opts, resource);
  }

  /** Like get, but undefined for 404. */
  async tryGet<T extends KubernetesObject>(
    resource: ResourceType,
    namespace: string,
    name: string,
    opts: CallOptions = {},
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(resource, namespace, name, opts);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list<T extends KubernetesObject>(resource: ResourceType, opts: ListOptions = {}): Promise<ListPage<T>> {
    const list = await this.request<{ items?: T[]; metadata?: { resourceVersion?: string; continue?: string } }>(
      HttpMethod.GET,
      resourcePath(resource, opts.namespace),
      {
        signal: opts.signal,
        timeoutMs: 60_000,
        query: {
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
          limit: opts.limit,
          continue: opts.continue,
          resourceVersion: opts.resourceVersion,
        },
      },
      resource,
    );
    return {
      items: list.items ?? [],
      resourceVersion: list.metadata?.resourceVersion ?? '',
      continue: list.metadata?.continue || undefined,
    };
  }

  async create<T extends KubernetesObject>(
    resource: ResourceType,
    namespace: string,
    body: T,
    opts: CallOptions & { fieldManager?: string } = {},
  ): Promise<T> {
    return this.request<T>(
      HttpMethod.POST,
      resourcePath(resource, namespace),
      { body, signal: opts.signal, timeoutMs: opts.timeoutMs, query: { fieldManager: opts.fieldManager } },
      resource,
    );
  }

  /** PUT; include metadata.resourceVersion in `body` for optimistic concurrency (409 on a stale write). */
  async replace<T extends KubernetesObject>(
    resource: ResourceType,
    namespace: string,
    name: string,
    body: T,
    opts: CallOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.request<T>(
      HttpMethod.PUT,
      resourcePath(resource, namespace, name, opts.subresource),
      { body, signal: opts.signal, timeoutMs: opts.timeoutMs },
      resource,
    );
  }

  async patch<T extends KubernetesObject>(
    resource: ResourceType,
    namespace: string,
    name: string,
    patch: unknown,
    type: PatchType,
    opts: CallOptions & { subresource?: string; fieldManager?: string; force?: boolean } = {},
  ): Promise<T> {
    return this.request<T>(
      HttpMethod.PATCH,
      resourcePath(resource, namespace, name, opts.subresource),
      {
        body: patch,
        contentType: type,
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
        query: { fieldManager: opts.fieldManager, force: opts.force },
      },
      resource,
    );
  }

  /** Deletes; resolves false if the object was already gone. */
  async delete(
    resource: ResourceType,
    namespace: string,
    name: string,
    opts: {
      signal?: AbortSignal;
      preconditions?: { uid?: string; resourceVersion?: string };
      propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
    } = {},
  ): Promise<boolean> {
    const body =
      opts.preconditions || opts.propagationPolicy
        ? {
            apiVersion: 'v1',
            kind: 'DeleteOptions',
            preconditions: opts.preconditions,
            propagationPolicy: opts.propagationPolicy,
          }
        : undefined;
    try {
      await this.request(
        HttpMethod.DELETE,
        resourcePath(resource, namespace, name),
        { body, signal: opts.signal },
        resource,
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * One request to `path`, JSON in and out. Throws KubeApiError for non-2xx answers. `countAs` names the
   * resource in kube_requests_total (and, for writes, kube_writes_total).
   */
  async request<T>(method: HttpMethod, path: string, opts: RequestOptions = {}, countAs?: ResourceType): Promise<T> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), method);
    await this.authenticate(ctx);
    ctx.setHeaderParam('Accept', 'application/json');
    if (opts.body !== undefined) {
      ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(opts.body));
    }
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    ctx.setSignal(opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout);
    if (countAs && this.metrics) this.count(method, url, countAs.plural, this.metrics);
    const { status, text } = await this.send(ctx, url);
    if (status === 401) this.auth = undefined;
    if (status < 200 || status > 299) throw toApiError(status, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private count(method: HttpMethod, url: URL, plural: string, metrics: Metrics): void {
    const write = WRITE_VERBS[method];
    const verb =
      write ??
      (method === HttpMethod.GET ? (url.pathname.endsWith(`/${plural}`) ? 'list' : 'get') : method.toLowerCase());
    const key = `${verb} ${plural}`;
    let inc = this.counters.get(key);
    if (!inc) {
      const requests = metrics.kubeRequests.labels(verb, plural);
      const writes = write ? metrics.kubeWrites.labels(write, plural) : undefined;
      inc = () => {
        requests.inc();
        writes?.inc();
      };
      this.counters.set(key, inc);
    }
    inc();
  }

  /** Headers (Authorization…) and connection pool from client-node, reused for AUTH_REUSE_MS. */
  private async authenticate(ctx: RequestContext): Promise<void> {
    const now = Date.now();
    let auth = this.auth;
    if (!auth || now - auth.at >= AUTH_REUSE_MS || now < auth.at) {
      const probe = new RequestContext(ctx.getUrl(), ctx.getHttpMethod());
      await this.kubeConfig.applySecurityAuthentication(probe);
      auth = { at: now, headers: { ...probe.getHeaders() }, dispatcher: probe.getDispatcher() };
      this.auth = auth;
    }
    for (const [k, v] of Object.entries(auth.headers)) ctx.setHeaderParam(k, v);
    if (auth.dispatcher) ctx.setDispatcher(auth.dispatcher);
  }

  /**
   * Opens a watch (`GET path?watch=true&…`) and streams its events: one JSON object a line, `{type, object}`.
   * Resolves with a controller that ends the stream (onDone is then not called); connection failures and
   * non-200 answers (a KubeApiError carrying `statusCode`, 410 included) reach `onDone`, once. Same contract
   * as client-node's `Watch.watch`, which is used when client-node chose no dispatcher (plain HTTP without TLS
   * options): that one decodes through fetch, web streams and readline, and restarts a timer on every chunk,
   * most of what a watch event cost the operator in a burst; this reads the socket's stream and splits lines
   * itself.
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    cb: WatchCallbacks,
    opts: WatchOptions,
  ): Promise<AbortController> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    url.searchParams.set('watch', 'true');
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await this.authenticate(ctx);
    const dispatcher = ctx.getDispatcher() as unknown as RequestDispatcher | undefined;
    if (typeof dispatcher?.request !== 'function') {
      const w = new Watch(this.kubeConfig);
      // client-node's own inactivity timer (a private field, hence the guarded cast).
      const timer = w as unknown as { requestTimeoutMs?: number };
      if (typeof timer.requestTimeoutMs === 'number') timer.requestTimeoutMs = opts.inactivityTimeoutMs;
      return w.watch(
        path,
        query,
        (type, obj) => cb.onEvent(type, obj),
        (err) => cb.onDone(err),
      );
    }
    const controller = new AbortController();
    let done = false;
    const finish = (err: unknown) => {
      if (done) return;
      done = true;
      if (!controller.signal.aborted) controller.abort();
      cb.onDone(err);
    };
    controller.signal.addEventListener('abort', () => (done = true), { once: true });
    dispatcher
      .request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { ...ctx.getHeaders(), Accept: 'application/json' },
        signal: controller.signal,
        headersTimeout: 30_000,
        bodyTimeout: opts.inactivityTimeoutMs,
      })
      .then(
        async (res) => {
          if (res.statusCode !== 200) {
            if (res.statusCode === 401) this.auth = undefined;
            return finish(toApiError(res.statusCode, await res.body.text()));
          }
          const body = res.body;
          body.setEncoding('utf8');
          let rest = '';
          body.on('data', (chunk: string) => {
            if (done) return;
            const text = rest + chunk;
            let start = 0;
            for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
              const line = text.slice(start, nl);
              start = nl + 1;
              if (line.trim() === '') continue;
              let event: { type?: string; object?: unknown };
              try {
                event = JSON.parse(line) as typeof event;
              } catch {
                continue; // as client-node does: a line that isn't JSON is skipped
              }
              cb.onEvent(event.type ?? '', event.object);
              if (done) return;
            }
            rest = text.slice(start);
          });
          body.on('end', () => finish(null));
          body.on('close', () => finish(null));
          body.on('error', (err: unknown) => finish(timeoutAware(err)));
        },
        (err: unknown) => finish(timeoutAware(err)),
      );
    return controller;
  }

  /**
   * Sends through the connection pool client-node chose for this request (its undici dispatcher: auth, TLS,
   * proxy) with the dispatcher's own `request`, not `fetch`: the WHATWG layer (Request/Response and Headers
   * objects, web streams for the body, a dependent AbortSignal per call) was a third of the CPU a Kubernetes call
   * cost the operator, and none of it is needed for a JSON request and answer. Without a dispatcher (plain
   * HTTP, no TLS options) client-node's fetch is used as before. Transport failures keep fetch's shape,
   * `TypeError('fetch failed', { cause })`, so callers (the kubectl plugin's messages) see what they saw.
   */
  private async send(ctx: RequestContext, url: URL): Promise<{ status: number; text: string }> {
    const dispatcher = ctx.getDispatcher() as unknown as RequestDispatcher | undefined;
    if (typeof dispatcher?.request !== 'function') {
      const resp = await this.http.send(ctx).toPromise();
      return { status: resp.httpStatusCode, text: await resp.body.text() };
    }
    const signal = ctx.getSignal();
    try {
      const res = await dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: ctx.getHttpMethod(),
        headers: ctx.getHeaders(),
        body: ctx.getBody() as string | undefined,
        signal,
      });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new TypeError('fetch failed', { cause: err });
    }
  }
}

/** The part of an undici Dispatcher (what client-node's KubeConfig builds per connection set-up) used here. */
interface RequestDispatcher {
  request(opts: {
    origin: string;
    path: string;
    method: string;
    headers: Record<string, string>;
    body?: string;
    signal?: AbortSignal;
    headersTimeout?: number;
    bodyTimeout?: number;
  }): Promise<{ statusCode: number; body: NodeJS.ReadableStream & { text(): Promise<string> } }>;
}

/** undici's header and body timeouts as the TimeoutError a watch's caller looks for (a stale stream). */
function timeoutAware(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return Object.assign(new Error('the watch sent nothing in time', { cause: err }), { name: 'TimeoutError' });
  }
  return err;
}

/** Keeps only the Status reason and message of an error body: never the request, headers or other fields. */
export function toApiError(statusCode: number, body: string): KubeApiError {
  let reason = '';
  let message = '';
  try {
    const st = JSON.parse(body) as { kind?: string; reason?: unknown; message?: unknown };
    if (st?.kind === 'Status') {
      if (typeof st.reason === 'string') reason = st.reason;
      if (typeof st.message === 'string') message = st.message.slice(0, 512);
    }
  } catch {
    // Not JSON (a proxy's HTML page, say): the status code alone says enough.
  }
  return new KubeApiError(statusCode, reason, message);
}
