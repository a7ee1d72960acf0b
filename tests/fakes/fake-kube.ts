// An in-memory API server behind the operator's KubeClient, for reconcile-level unit tests. FakeKube *is* a
// KubeClient: it replaces the one method everything goes through, `request(method, path, …)`, so get/tryGet/list/
// create/replace/patch/delete and the runtime's helpers (patchStatus, addFinalizer, events) run their real code and
// see the answers the API server gives:
//   - every write bumps resourceVersion (one counter, as etcd's revision); a write carrying a stale one (a PUT's
//     metadata.resourceVersion, a merge patch's, a JSON patch `test` on it) is refused: 409 Conflict, or 422 Invalid
//     for a failed `test` op;
//   - the status subresource: a write to /status changes only status, a write to the object never changes status
//     (for kinds registered with one: the four CRDs, Deployments…); metadata.generation moves on spec changes only;
//   - delete with finalizers sets deletionTimestamp; the write removing the last finalizer then deletes; no new
//     finalizer may be added to an object being deleted (422);
//   - an object whose owners are all gone is deleted too (background garbage collection, done at once);
//   - 404 NotFound, 409 AlreadyExists, errors built by toApiError from a Status body, as the real client builds them.
// Every request is logged (verb, resource, namespace, name, subresource) so a test can count apiserver requests,
// and failures can be injected per request. Watchers (FakeWatchCache) are told of every change synchronously, as an
// informer would be shortly after; pauseWatch() holds the news back to test a stale cache.
import crypto from 'node:crypto';
import { HttpMethod, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { KINDS } from '../../api/index.ts';
import { rfc3339 } from '../../lib/runtime/conditions.ts';
import { KubeClient, PatchType, toApiError, type RequestOptions } from '../../lib/runtime/kube.ts';
import { deepEqual } from '../../lib/runtime/status.ts';
import type { ResourceType } from '../../lib/runtime/types.ts';

export type Verb = 'get' | 'list' | 'create' | 'update' | 'patch' | 'delete';
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One request as the API server saw it. */
export interface KubeRequest {
  verb: Verb;
  /** The plural (`secrets`, `databaseaccessrequests`). */
  resource: string;
  group: string;
  namespace: string;
  name: string;
  subresource: string;
  /** For patches: `json`, `merge`, `strategicMerge`, `apply`. */
  patchType?: string;
  /** The HTTP status answered. */
  code: number;
}

export interface RequestMatch {
  verb?: Verb | Verb[];
  resource?: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** An injected failure: an API Status (code, reason, message) or a transport failure. */
export type KubeFault = { code: number; reason?: string; message?: string } | 'Unreachable';

export type WatchListener = (resource: ResourceType, type: WatchEventType, obj: KubernetesObject) => void;

interface Registered {
  resource: ResourceType;
  /** Has a status subresource. */
  status: boolean;
  /** Keeps metadata.generation (custom resources and workloads do; Secrets, Events, RBAC objects don't). */
  generation: boolean;
}

type Obj = KubernetesObject & { status?: unknown; data?: Record<string, string>; stringData?: Record<string, string> };

const CORE = (plural: string, kind: string, namespaced = true): ResourceType => ({
  group: '',
  version: 'v1',
  plural,
  kind,
  namespaced,
});
const APPS = (plural: string, kind: string): ResourceType => ({
  group: 'apps',
  version: 'v1',
  plural,
  kind,
  namespaced: true,
});
const RBAC = (plural: string, kind: string): ResourceType => ({
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  plural,
  kind,
  namespaced: true,
});

/** What FakeKube serves unless told more: Leasehold's kinds, and the built-in ones the operator touches. */
export const DEFAULT_RESOURCES: ReadonlyArray<{ resource: ResourceType; status: boolean }> = [
  ...KINDS.map((k) => ({
    resource: {
      group: k.group,
      version: k.version,
      plural: k.plural,
      kind: k.kind,
      namespaced: k.namespaced,
    } as ResourceType,
    status: true,
  })),
  { resource: CORE('secrets', 'Secret'), status: false },
  { resource: CORE('configmaps', 'ConfigMap'), status: false },
  { resource: CORE('events', 'Event'), status: false },
  { resource: CORE('serviceaccounts', 'ServiceAccount'), status: false },
  { resource: CORE('pods', 'Pod'), status: true },
  { resource: CORE('namespaces', 'Namespace', false), status: true },
  { resource: RBAC('roles', 'Role'), status: false },
  { resource: RBAC('rolebindings', 'RoleBinding'), status: false },
  { resource: APPS('deployments', 'Deployment'), status: true },
  { resource: APPS('statefulsets', 'StatefulSet'), status: true },
  { resource: APPS('daemonsets', 'DaemonSet'), status: true },
  {
    resource: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
    status: false,
  },
];

const WRITE_VERBS: readonly Verb[] = ['create', 'update', 'patch', 'delete'];
const PATCH_NAMES: Record<string, string> = {
  [PatchType.json]: 'json',
  [PatchType.merge]: 'merge',
  [PatchType.strategicMerge]: 'strategicMerge',
  [PatchType.apply]: 'apply',
};

/** An answer of the fake API server: thrown inside, turned into a KubeApiError the way the real client does. */
class StatusAnswer extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const resourceName = (r: ResourceType) => (r.group ? `${r.plural}.${r.group}` : r.plural);
const notFound = (r: ResourceType, name: string) =>
  new StatusAnswer(404, 'NotFound', `${resourceName(r)} "${name}" not found`);
const conflict = (r: ResourceType, name: string) =>
  new StatusAnswer(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${resourceName(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
  );
const invalid = (message: string) => new StatusAnswer(422, 'Invalid', message);

function fakeKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: 'https://fake-apiserver.invalid', skipTLSVerify: true }],
    users: [{ name: 'fake', token: 'not-a-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
    currentContext: 'fake',
  });
  return kc;
}

export interface FakeKubeOptions {
  /** Milliseconds since the epoch, for creation and deletion timestamps (a FakeClock's `now`). Default Date.now. */
  now?: () => number;
  /** Delete objects whose owners are all gone (background propagation). Default true. */
  garbageCollection?: boolean;
}

export class FakeKube extends KubeClient {
  private readonly now: () => number;
  private readonly gc: boolean;
  private readonly registry = new Map<string, Registered>();
  /** resource key → `namespace/name` → object. */
  private readonly store = new Map<string, Map<string, Obj>>();
  private revision = 0;
  private readonly listeners = new Set<WatchListener>();
  private held: Array<() => void> | undefined;
  /** `after`: the request takes effect, then its answer is lost (a timeout, the operator dying right after the write). */
  private readonly faults: Array<{ match: RequestMatch; fault: KubeFault; remaining: number; after: boolean }> = [];
  /** Every request made through the client (not the test-side helpers below), in order. */
  readonly requests: KubeRequest[] = [];

  constructor(opts: FakeKubeOptions = {}) {
    super(fakeKubeConfig());
    this.now = opts.now ?? Date.now;
    this.gc = opts.garbageCollection ?? true;
    for (const r of DEFAULT_RESOURCES) this.register(r.resource, { status: r.status });
  }

  /** Serves another kind (a custom resource of a test, say); `generation` defaults to `status`. */
  register(resource: ResourceType, opts: { status?: boolean; generation?: boolean } = {}): void {
    const status = opts.status ?? false;
    this.registry.set(regKey(resource.group, resource.plural), {
      resource,
      status,
      generation: opts.generation ?? status,
    });
  }

  // ---- the one method KubeClient sends everything through ------------------------------------------------------

  override async request<T>(method: HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    // Like a round trip: the caller's code after `await` runs later, never synchronously.
    await Promise.resolve();
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    const target = this.parse(method, path, opts);
    const entry: KubeRequest = {
      verb: target.verb,
      resource: target.plural,
      group: target.group,
      namespace: target.namespace,
      name: target.name,
      subresource: target.subresource,
      code: 200,
      ...(target.verb === 'patch' ? { patchType: PATCH_NAMES[opts.contentType ?? ''] ?? opts.contentType } : {}),
    };
    this.requests.push(entry);
    try {
      const injected = this.injected(entry);
      if (injected && !injected.after) throwFault(injected.fault);
      const { code, body } = this.serve(target, opts);
      entry.code = code;
      if (injected) throwFault(injected.fault);
      return structuredClone(body) as T;
    } catch (err) {
      if (!(err instanceof StatusAnswer)) throw err;
      entry.code = err.code;
      throw toApiError(
        err.code,
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: err.reason,
          message: err.message,
          code: err.code,
        }),
      );
    }
  }

  // ---- faults, requests, watch -------------------------------------------------------------------------------------

  /**
   * Fails the requests matching `match` with `fault` (an API Status, or 'Unreachable'), the next `times` of them or
   * until the returned function (or clearFaults) is called.
   */
  fail(match: RequestMatch, fault: KubeFault, opts: { times?: number; after?: boolean } = {}): () => void {
    const f = { match, fault, remaining: opts.times ?? Infinity, after: opts.after ?? false };
    this.faults.push(f);
    return () => {
      const i = this.faults.indexOf(f);
      if (i >= 0) this.faults.splice(i, 1);
    };
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Requests matching `match` (all of them without one). */
  requestsMatching(match: RequestMatch = {}): KubeRequest[] {
    return this.requests.filter((r) => matches(r, match));
  }

  /** The writes (create, update, patch, delete) among the requests, optionally narrowed further. */
  writes(match: Omit<RequestMatch, 'verb'> = {}): KubeRequest[] {
    return this.requestsMatching({ ...match, verb: [...WRITE_VERBS] });
  }

  resetRequests(): void {
    this.requests.length = 0;
  }

  /** Tells `listener` of every change from now on; returns a function that stops it. */
  onChange(listener: WatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Holds watch news back (caches go stale) until resumeWatch, which delivers it in order. */
  pauseWatch(): void {
    this.held ??= [];
  }

  resumeWatch(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const deliver of held) deliver();
  }

  // ---- the test's own hands (not logged as requests, never refused by faults) ---------------------------------------

  /** The stored object (a copy), or undefined. */
  object<T extends KubernetesObject = Obj>(resource: ResourceType, namespace: string, name: string): T | undefined {
    const o = this.bucket(resource).get(`${namespace}/${name}`);
    return o && (structuredClone(o) as unknown as T);
  }

  /** Stored objects of a kind (copies), in one namespace or all. */
  objects<T extends KubernetesObject = Obj>(resource: ResourceType, namespace?: string): T[] {
    return [...this.bucket(resource).values()]
      .filter((o) => namespace === undefined || (o.metadata?.namespace ?? '') === namespace)
      .map((o) => structuredClone(o) as unknown as T);
  }

  /** Creates `obj`, or replaces it whole (status included) whatever its resourceVersion: a person's `kubectl apply`. */
  put<T extends KubernetesObject>(resource: ResourceType, obj: T): T {
    const reg = this.registered(resource);
    const ns = reg.resource.namespaced === false ? '' : (obj.metadata?.namespace ?? 'default');
    const current = this.bucket(resource).get(`${ns}/${obj.metadata?.name}`);
    const body = structuredClone(obj) as Obj;
    if (!current) return this.doCreate(reg, ns, body, true) as unknown as T;
    body.metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion };
    return this.doWrite(reg, current, body, 'all') as unknown as T;
  }

  /** Changes a stored object as another client would (spec, metadata and status alike); bumps its resourceVersion. */
  edit<T extends KubernetesObject>(
    resource: ResourceType,
    namespace: string,
    name: string,
    change: (obj: T) => void,
  ): T {
    const reg = this.registered(resource);
    const current = this.bucket(resource).get(`${namespace}/${name}`);
    if (!current) throw new Error(`FakeKube: no ${resourceName(resource)} ${namespace}/${name} to edit`);
    const next = structuredClone(current) as unknown as T;
    change(next);
    return this.doWrite(reg, current, next as unknown as Obj, 'all') as unknown as T;
  }

  /** Deletes as a person would (finalizers honoured): sets deletionTimestamp, or removes the object. */
  remove(resource: ResourceType, namespace: string, name: string): void {
    const reg = this.registered(resource);
    const current = this.bucket(resource).get(`${namespace}/${name}`);
    if (current) this.doDelete(reg, current, {});
  }

  // ---- the API server ----------------------------------------------------------------------------------------------

  private serve(t: Target, opts: RequestOptions): { code: number; body: unknown } {
    const reg = t.registered;
    const bucket = this.bucket(reg.resource);
    const key = `${t.namespace}/${t.name}`;
    const current = bucket.get(key);
    if (t.subresource && !(t.subresource === 'status' && reg.status)) {
      throw new StatusAnswer(
        404,
        'NotFound',
        `the server could not find the requested resource (${t.verb} ${resourceName(reg.resource)}/${t.subresource})`,
      );
    }
    switch (t.verb) {
      case 'list':
        return { code: 200, body: this.listObjects(reg, t.namespace, opts.query ?? {}) };
      case 'get':
        if (!current) throw notFound(reg.resource, t.name);
        return { code: 200, body: current };
      case 'create': {
        if (t.subresource)
          throw new StatusAnswer(
            405,
            'MethodNotAllowed',
            'the server does not allow this method on the requested resource',
          );
        return { code: 201, body: this.doCreate(reg, t.namespace, structuredClone(opts.body) as Obj, false) };
      }
      case 'update': {
        if (!current) throw notFound(reg.resource, t.name);
        const body = structuredClone(opts.body) as Obj;
        if (body.metadata?.name && body.metadata.name !== t.name)
          throw new StatusAnswer(400, 'BadRequest', 'the name of the object does not match the name on the URL');
        const rv = body.metadata?.resourceVersion;
        if (rv && rv !== current.metadata?.resourceVersion) throw conflict(reg.resource, t.name);
        body.metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion };
        return { code: 200, body: this.doWrite(reg, current, body, t.subresource ? 'status' : 'main') };
      }
      case 'patch': {
        if (!current) throw notFound(reg.resource, t.name);
        const next = applyPatch(current, opts.body, opts.contentType ?? PatchType.merge);
        // A resourceVersion the patch carries (or set) is a precondition, as for an update.
        if (next.metadata?.resourceVersion !== current.metadata?.resourceVersion) throw conflict(reg.resource, t.name);
        return { code: 200, body: this.doWrite(reg, current, next, t.subresource ? 'status' : 'main') };
      }
      case 'delete': {
        if (!current) throw notFound(reg.resource, t.name);
        const o = (opts.body ?? {}) as {
          preconditions?: { uid?: string; resourceVersion?: string };
          propagationPolicy?: string;
        };
        const pre = o.preconditions;
        if (
          (pre?.uid && pre.uid !== current.metadata?.uid) ||
          (pre?.resourceVersion && pre.resourceVersion !== current.metadata?.resourceVersion)
        ) {
          throw conflict(reg.resource, t.name);
        }
        const remaining = this.doDelete(reg, current, { orphan: o.propagationPolicy === 'Orphan' });
        return {
          code: 200,
          body: remaining ?? {
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Success',
            details: { name: t.name, kind: reg.resource.plural, uid: current.metadata?.uid },
          },
        };
      }
    }
  }

  private listObjects(reg: Registered, namespace: string, query: Record<string, unknown>): unknown {
    const labels = parseSelector(typeof query.labelSelector === 'string' ? query.labelSelector : '');
    const fields = parseFieldSelector(typeof query.fieldSelector === 'string' ? query.fieldSelector : '');
    const items = [...this.bucket(reg.resource).values()].filter(
      (o) => (!namespace || o.metadata?.namespace === namespace) && labels(o.metadata?.labels ?? {}) && fields(o),
    );
    return {
      apiVersion: reg.resource.group ? `${reg.resource.group}/${reg.resource.version}` : reg.resource.version,
      kind: `${reg.resource.kind}List`,
      metadata: { resourceVersion: String(this.revision) },
      items,
    };
  }

  private doCreate(reg: Registered, namespace: string, body: Obj, byTest: boolean): Obj {
    const r = reg.resource;
    const md = body.metadata ?? {};
    if (!byTest && r.namespaced !== false && md.namespace && md.namespace !== namespace) {
      throw new StatusAnswer(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    let name = md.name;
    if (!name && md.generateName) name = `${md.generateName}${crypto.randomBytes(3).toString('hex').slice(0, 5)}`;
    if (!name)
      throw invalid(`${r.kind} "" is invalid: metadata.name: Required value: name or generateName is required`);
    // The storage layer refuses it (a plain error, hence 500), whatever the kind.
    if (!byTest && md.resourceVersion)
      throw new StatusAnswer(500, 'InternalError', 'resourceVersion should not be set on objects to be created');
    const bucket = this.bucket(r);
    const ns = r.namespaced === false ? '' : namespace;
    if (bucket.has(`${ns}/${name}`))
      throw new StatusAnswer(409, 'AlreadyExists', `${resourceName(r)} "${name}" already exists`);
    const obj: Obj = {
      ...body,
      apiVersion: body.apiVersion ?? (r.group ? `${r.group}/${r.version}` : r.version),
      kind: body.kind ?? r.kind,
      metadata: {
        ...md,
        name,
        ...(ns ? { namespace: ns } : {}),
        uid: crypto.randomUUID(),
        resourceVersion: String(++this.revision),
        generation: 1,
        creationTimestamp: rfc3339(new Date(this.now())) as unknown as Date,
      },
    };
    delete obj.metadata!.deletionTimestamp;
    if (!reg.generation) delete obj.metadata!.generation;
    // The status subresource: status is not set on create (a test's put keeps it, as a seed).
    if (reg.status && !byTest) delete obj.status;
    normalizeSecret(r, obj);
    bucket.set(`${ns}/${name}`, obj);
    this.notify(r, 'ADDED', obj);
    return obj;
  }

  /**
   * Stores `next` in place of `current`: through the object (`main`: status kept), the status subresource
   * (`status`: only status taken) or by the test (`all`). Identity fields are the server's; generation moves with
   * the spec; a no-op write changes nothing (no new resourceVersion, no watch event).
   */
  private doWrite(reg: Registered, current: Obj, next: Obj, via: 'main' | 'status' | 'all'): Obj {
    const r = reg.resource;
    let obj: Obj;
    if (via === 'status') obj = { ...structuredClone(current), status: next.status };
    else if (via === 'main' && reg.status) obj = { ...next, status: structuredClone(current.status) };
    else obj = next;
    if (obj.status === undefined) delete obj.status;
    normalizeSecret(r, obj);
    const cm = current.metadata!;
    const added = (obj.metadata?.finalizers ?? []).filter((f) => !(cm.finalizers ?? []).includes(f));
    if (cm.deletionTimestamp && added.length > 0) {
      throw invalid(
        `${r.kind} "${cm.name}" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`,
      );
    }
    obj.metadata = {
      ...obj.metadata,
      name: cm.name,
      namespace: cm.namespace,
      uid: cm.uid,
      creationTimestamp: cm.creationTimestamp,
      deletionTimestamp: cm.deletionTimestamp,
      resourceVersion: cm.resourceVersion,
      generation: cm.generation,
    };
    if (!obj.metadata.deletionTimestamp) delete obj.metadata.deletionTimestamp;
    if (obj.metadata.finalizers?.length === 0) delete obj.metadata.finalizers;
    if (deepEqual(obj, current)) return current;
    if (reg.generation && !deepEqual(specOf(obj), specOf(current))) obj.metadata.generation = (cm.generation ?? 1) + 1;
    if (!reg.generation) delete obj.metadata.generation;
    obj.metadata.resourceVersion = String(++this.revision);
    const key = `${cm.namespace ?? ''}/${cm.name}`;
    this.bucket(r).set(key, obj);
    this.notify(r, 'MODIFIED', obj);
    if (obj.metadata.deletionTimestamp && !obj.metadata.finalizers?.length) this.purge(reg, obj, false);
    return obj;
  }

  /** Deletes, or marks for deletion while finalizers remain; returns the object still stored, if any. */
  private doDelete(reg: Registered, current: Obj, opts: { orphan?: boolean }): Obj | undefined {
    if (current.metadata?.finalizers?.length) {
      if (current.metadata.deletionTimestamp) return current;
      const obj = structuredClone(current);
      obj.metadata!.deletionTimestamp = rfc3339(new Date(this.now())) as unknown as Date;
      obj.metadata!.deletionGracePeriodSeconds = 0;
      obj.metadata!.resourceVersion = String(++this.revision);
      this.bucket(reg.resource).set(`${obj.metadata!.namespace ?? ''}/${obj.metadata!.name}`, obj);
      this.notify(reg.resource, 'MODIFIED', obj);
      return obj;
    }
    this.purge(reg, current, !!opts.orphan);
    return undefined;
  }

  /** Removes an object for good, then (unless orphaning) what it alone owned. */
  private purge(reg: Registered, obj: Obj, orphan: boolean): void {
    this.bucket(reg.resource).delete(`${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`);
    this.notify(reg.resource, 'DELETED', {
      ...obj,
      metadata: { ...obj.metadata, resourceVersion: String(++this.revision) },
    });
    if (!this.gc || orphan) return;
    const uid = obj.metadata?.uid;
    const live = new Set<string>();
    for (const b of this.store.values()) for (const o of b.values()) if (o.metadata?.uid) live.add(o.metadata.uid);
    for (const other of this.registry.values()) {
      for (const o of [...this.bucket(other.resource).values()]) {
        const owners = o.metadata?.ownerReferences ?? [];
        if (owners.some((ref) => ref.uid === uid) && owners.every((ref) => !live.has(ref.uid))) {
          const still = this.bucket(other.resource).get(`${o.metadata?.namespace ?? ''}/${o.metadata?.name}`);
          if (still) this.doDelete(other, still, {});
        }
      }
    }
  }

  private notify(resource: ResourceType, type: WatchEventType, obj: Obj): void {
    const copy = structuredClone(obj);
    const deliver = () => {
      for (const l of this.listeners) l(resource, type, structuredClone(copy));
    };
    if (this.held) this.held.push(deliver);
    else deliver();
  }

  private injected(req: KubeRequest): { fault: KubeFault; after: boolean } | undefined {
    for (let i = this.faults.length - 1; i >= 0; i--) {
      const f = this.faults[i]!;
      if (!matches(req, f.match)) continue;
      if (--f.remaining <= 0) this.faults.splice(i, 1);
      return f;
    }
    return undefined;
  }

  private registered(resource: ResourceType): Registered {
    const reg = this.registry.get(regKey(resource.group, resource.plural));
    if (!reg) throw new Error(`FakeKube: ${resourceName(resource)} is not registered (FakeKube.register)`);
    return reg;
  }

  private bucket(resource: ResourceType): Map<string, Obj> {
    const key = regKey(resource.group, resource.plural);
    let b = this.store.get(key);
    if (!b) this.store.set(key, (b = new Map()));
    return b;
  }

  /** `/api/v1/namespaces/ns/secrets/name/status` → what it addresses; 404 for what this server doesn't serve. */
  private parse(method: HttpMethod, path: string, opts: RequestOptions): Target {
    const segs = path.split('?')[0]!.split('/').filter(Boolean).map(decodeURIComponent);
    let group: string;
    let rest: string[];
    if (segs[0] === 'api') {
      group = '';
      rest = segs.slice(2);
    } else if (segs[0] === 'apis') {
      group = segs[1] ?? '';
      rest = segs.slice(3);
    } else {
      throw toApiError(
        404,
        JSON.stringify({
          kind: 'Status',
          reason: 'NotFound',
          message: `the server could not find the requested resource (${path})`,
        }),
      );
    }
    let namespace = '';
    if (
      rest[0] === 'namespaces' &&
      rest.length >= 3 &&
      this.registry.get(regKey(group, rest[2]!))?.resource.namespaced !== false
    ) {
      namespace = rest[1]!;
      rest = rest.slice(2);
    }
    const [plural = '', name = '', subresource = ''] = rest;
    const registered = this.registry.get(regKey(group, plural));
    const verb: Verb =
      method === HttpMethod.GET
        ? name
          ? 'get'
          : 'list'
        : method === HttpMethod.POST
          ? 'create'
          : method === HttpMethod.PUT
            ? 'update'
            : method === HttpMethod.PATCH
              ? 'patch'
              : 'delete';
    if (!registered) {
      this.requests.push({ verb, resource: plural, group, namespace, name, subresource, code: 404 });
      throw toApiError(
        404,
        JSON.stringify({
          kind: 'Status',
          reason: 'NotFound',
          message: `the server could not find the requested resource (${path})`,
        }),
      );
    }
    if (verb === 'create' && name && !subresource)
      throw toApiError(
        405,
        JSON.stringify({ kind: 'Status', reason: 'MethodNotAllowed', message: 'POST to a named object' }),
      );
    return {
      verb,
      registered,
      group,
      plural,
      namespace,
      name: verb === 'create' && !subresource ? ((opts.body as Obj)?.metadata?.name ?? '') : name,
      subresource,
    };
  }
}

interface Target {
  verb: Verb;
  registered: Registered;
  group: string;
  plural: string;
  namespace: string;
  name: string;
  subresource: string;
}

const regKey = (group: string, plural: string) => `${group}/${plural}`;

/** An injected failure as the client sees it: a Status answer, or undici's "fetch failed" for a refused connection. */
function throwFault(fault: KubeFault): never {
  if (fault === 'Unreachable')
    throw Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    });
  throw new StatusAnswer(fault.code, fault.reason ?? '', fault.message ?? '');
}

function matches(r: KubeRequest, m: RequestMatch): boolean {
  if (m.verb !== undefined && !(Array.isArray(m.verb) ? m.verb.includes(r.verb) : m.verb === r.verb)) return false;
  return (
    (m.resource === undefined || m.resource === r.resource) &&
    (m.namespace === undefined || m.namespace === r.namespace) &&
    (m.name === undefined || m.name === r.name) &&
    (m.subresource === undefined || m.subresource === r.subresource)
  );
}

/** Everything but metadata and status: what moves metadata.generation. */
function specOf(o: Obj): unknown {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

/** A Secret's stringData is folded into data (base64) by the API server, never stored. */
function normalizeSecret(r: ResourceType, o: Obj): void {
  if (r.group !== '' || r.plural !== 'secrets' || !o.stringData) return;
  o.data = { ...(o.data ?? {}) };
  for (const [k, v] of Object.entries(o.stringData)) o.data[k] = Buffer.from(v, 'utf8').toString('base64');
  delete o.stringData;
}

// ---- patches -------------------------------------------------------------------------------------------------------

function applyPatch(current: Obj, patch: unknown, type: string): Obj {
  const base = structuredClone(current);
  switch (type) {
    case PatchType.json:
      return jsonPatch(base, patch);
    case PatchType.merge:
      return mergePatch(base, patch) as Obj;
    case PatchType.strategicMerge:
      // Taken as a merge patch: lists are replaced, not merged by key.
      return mergePatch(base, patch) as Obj;
    default:
      throw new StatusAnswer(415, 'UnsupportedMediaType', `FakeKube does not serve ${type} patches`);
  }
}

/** RFC 7386. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
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

/** RFC 6902 (add, remove, replace, move, copy, test); any failure is the API server's 422. */
function jsonPatch(doc: Obj, ops: unknown): Obj {
  if (!Array.isArray(ops))
    throw invalid('the server rejected our request due to an error in our request: a JSON patch must be an array');
  let root: unknown = doc;
  const pointer = (p: string) =>
    p === ''
      ? []
      : p
          .split('/')
          .slice(1)
          .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const parentOf = (tokens: string[]) => {
    let node: unknown = root;
    for (const t of tokens.slice(0, -1)) {
      if (node === null || typeof node !== 'object')
        throw invalid('the server rejected our request due to an error in our request');
      node = (node as Record<string, unknown>)[t];
    }
    if (node === null || typeof node !== 'object')
      throw invalid('the server rejected our request due to an error in our request');
    return node as Record<string, unknown> | unknown[];
  };
  const get = (tokens: string[]): unknown => {
    let node: unknown = root;
    for (const t of tokens) {
      if (node === null || typeof node !== 'object' || !(t in (node as object))) return undefined;
      node = (node as Record<string, unknown>)[t];
    }
    return node;
  };
  const remove = (tokens: string[]): unknown => {
    const parent = parentOf(tokens);
    const last = tokens[tokens.length - 1]!;
    if (Array.isArray(parent)) {
      const i = Number(last);
      if (!Number.isInteger(i) || i < 0 || i >= parent.length)
        throw invalid('the server rejected our request due to an error in our request: remove out of range');
      return parent.splice(i, 1)[0];
    }
    if (!(last in parent))
      throw invalid(`the server rejected our request due to an error in our request: missing member ${last}`);
    const v = parent[last];
    delete parent[last];
    return v;
  };
  const add = (tokens: string[], value: unknown) => {
    if (tokens.length === 0) {
      root = value;
      return;
    }
    const parent = parentOf(tokens);
    const last = tokens[tokens.length - 1]!;
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(i) || i < 0 || i > parent.length)
        throw invalid('the server rejected our request due to an error in our request: add out of range');
      parent.splice(i, 0, value);
    } else {
      parent[last] = value;
    }
  };
  for (const op of ops as Array<{ op: string; path: string; from?: string; value?: unknown }>) {
    const tokens = pointer(op.path);
    switch (op.op) {
      case 'test':
        if (!deepEqual(get(tokens), op.value))
          throw invalid('the server rejected our request due to an error in our request');
        break;
      case 'add':
        add(tokens, structuredClone(op.value));
        break;
      case 'remove':
        remove(tokens);
        break;
      case 'replace':
        remove(tokens);
        add(tokens, structuredClone(op.value));
        break;
      case 'move':
        add(tokens, remove(pointer(op.from ?? '')));
        break;
      case 'copy':
        add(tokens, structuredClone(get(pointer(op.from ?? ''))));
        break;
      default:
        throw invalid(`the server rejected our request due to an error in our request: unknown op ${op.op}`);
    }
  }
  return root as Obj;
}

// ---- selectors -----------------------------------------------------------------------------------------------------

/** A label selector (`a=b,c!=d,e,!f,g in (h,i),j notin (k)`) as a predicate over labels. */
export function parseSelector(selector: string): (labels: Record<string, string>) => boolean {
  const terms: Array<(l: Record<string, string>) => boolean> = [];
  for (const raw of selector.match(/(?:[^,(]+|\([^)]*\))+/g) ?? []) {
    const term = raw.trim();
    if (!term) continue;
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = list.split(',').map((v) => v.trim());
      terms.push(
        op === 'in' ? (l) => key in l && values.includes(l[key]!) : (l) => !(key in l) || !values.includes(l[key]!),
      );
    } else if ((m = /^([^!=\s]+)\s*!=\s*(\S*)$/.exec(term))) {
      const [, key, value] = m as unknown as [string, string, string];
      terms.push((l) => l[key] !== value);
    } else if ((m = /^([^!=\s]+)\s*==?\s*(\S*)$/.exec(term))) {
      const [, key, value] = m as unknown as [string, string, string];
      terms.push((l) => l[key] === value);
    } else if ((m = /^!(\S+)$/.exec(term))) {
      const key = m[1]!;
      terms.push((l) => !(key in l));
    } else {
      const key = term;
      terms.push((l) => key in l);
    }
  }
  return (labels) => terms.every((t) => t(labels));
}

/** `metadata.name=x,metadata.namespace=y` (the field selectors every kind supports). */
function parseFieldSelector(selector: string): (o: Obj) => boolean {
  const terms = selector
    .split(',')
    .filter(Boolean)
    .map((t) => {
      const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(t.trim());
      if (!m) throw new StatusAnswer(400, 'BadRequest', `invalid field selector ${t}`);
      const [, field, op, value] = m as unknown as [string, string, string, string];
      const read =
        field === 'metadata.name'
          ? (o: Obj) => o.metadata?.name
          : field === 'metadata.namespace'
            ? (o: Obj) => o.metadata?.namespace
            : undefined;
      if (!read) throw new StatusAnswer(400, 'BadRequest', `field label not supported: ${field}`);
      return (o: Obj) => (op === '!=' ? read(o) !== value : read(o) === value);
    });
  return (o) => terms.every((t) => t(o));
}
