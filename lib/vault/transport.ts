// The one way a request reaches Vault: JSON over HTTP(S) through one keep-alive agent per endpoint, cancellable by
// the caller's AbortSignal, every failure classified (errors.ts) and every call counted under a fixed operation name.
// VaultClient methods, logins and the token renewals all go through `VaultTransport.call`.
//
// No Vault client library: node-vault, used before, drops an AbortSignal (its axios wrapper forwards only method,
// url, headers, body, timeout and agents), mutates the headers it is given, and prints request bodies (passwords)
// under DEBUG=node-vault. Vault's HTTP API is plain JSON over HTTP and needs none of its extras.
// undici sends the requests: the Node core team's HTTP client (what Node's fetch is built on), already in the tree
// through @kubernetes/client-node; it gives keep-alive pools, TLS options, AbortSignal and body reading.
import { Agent, request } from 'undici';
import { VaultRequestError, classifyVaultError } from './errors.ts';

export interface VaultEndpoint {
  /** e.g. https://vault.demo.svc:8200 (http:// works too, for a local dev server). */
  address: string;
  caBundlePem?: string;
  insecureSkipTLSVerify?: boolean;
  serverName?: string;
  /** Per request; default 30 s. A timed-out request is `Unreachable` ("request timed out"). */
  timeoutMs?: number;
}

/** What every Vault call takes last: the caller's signal (a reconcile's), which cancels the HTTP request. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Something that returns a valid token for each call (the token keeper, the issuer token). */
export type TokenSource = (opts?: CallOptions) => Promise<string>;

/**
 * What each Vault call is counted and described as: one name per VaultClient method, plus the token calls the
 * operator makes for itself (`login`: an auth method's login; `lookupToken`: checking a token read from a Secret;
 * `renewToken`: auth/token/renew-self of the login or the issuer token; `createToken`: a new issuer token).
 */
export type VaultOperation =
  | 'health'
  | 'readMount'
  | 'enableMount'
  | 'tuneMount'
  | 'disableMount'
  | 'writeConnection'
  | 'deleteConnection'
  | 'writeRole'
  | 'deleteRole'
  | 'issueCredential'
  | 'renewLease'
  | 'lookupLease'
  | 'listLeases'
  | 'revokeLease'
  | 'login'
  | 'lookupToken'
  | 'renewToken'
  | 'createToken';

/** `not_found`: Vault answered that the thing asked about doesn't exist, and the caller expected that might be
 * so (a lease already gone, a mount not created yet): an answer, not an error. */
export type CallOutcome = 'success' | 'not_found' | 'error';

/** Counts calls for metrics; injected so this module stays free of the metrics registry. */
export type CallObserver = (operation: VaultOperation, outcome: CallOutcome) => void;

/** One HTTP exchange, as the transport's sender sees it: `path` is below /v1/, `token` goes in X-Vault-Token. */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';
  path: string;
  body?: unknown;
  token?: string;
  signal: AbortSignal;
}

/** Sends one request and resolves with whatever status came back; rejects only when no answer came. */
export type HttpSend = (req: HttpRequest) => Promise<{ status: number; body: unknown }>;

/** A non-2xx answer, shaped as classifyVaultError reads it: status and Vault's `errors`, never headers. */
class VaultHttpError extends Error {
  readonly response: { statusCode: number; body: { errors?: unknown[] } };
  constructor(status: number, body: unknown) {
    const errors = (body as { errors?: unknown[] } | undefined)?.errors;
    super(Array.isArray(errors) && typeof errors[0] === 'string' ? errors[0] : `Status ${status}`);
    this.response = { statusCode: status, body: { errors: Array.isArray(errors) ? errors : [] } };
  }
}

export interface CallSpec {
  method: HttpRequest['method'];
  path: string;
  body?: unknown;
  /** What the call does, in words error messages start with ("revoking lease …"). Never a secret. */
  what: string;
  /** A token, a source asked before each attempt, or none (sys/health). */
  token?: string | TokenSource;
  /**
   * Vault answered 403 to the request (not to a login): the token may be gone (revoked in Vault). Called to drop
   * it; the request is then made once more with what `token` gives next. Only with a TokenSource.
   */
  onDenied?: () => void;
  /** Resolve with the body whatever the status (sys/health answers 429/472/473/501/503 with a body). */
  anyStatus?: boolean;
}

export class VaultTransport {
  private readonly sendHttp: HttpSend;
  /** The endpoint's connections (undici keeps them alive, closes idle ones after a few seconds); made on first use. */
  private agent?: Agent;

  /** `send`: replaces the HTTP sender (tests). Otherwise one keep-alive agent serves every call to `endpoint`. */
  constructor(
    readonly endpoint: VaultEndpoint,
    private readonly observe: CallObserver = () => undefined,
    send?: HttpSend,
  ) {
    this.sendHttp = send ?? ((req) => this.undiciSend(req));
  }

  /**
   * Closes the endpoint's connections once the requests in flight have answered. Resolves when they are closed. A
   * call made afterwards (by a caller still holding the transport) opens new ones.
   */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.close();
  }

  /** One call, counted as `op` (success or error). Resolves with Vault's JSON answer (undefined for a 204). */
  async call<T>(op: VaultOperation, spec: CallSpec, opts: CallOptions = {}): Promise<T> {
    try {
      const body = await this.send<T>(spec, opts);
      this.observe(op, 'success');
      return body;
    } catch (err) {
      this.observe(op, 'error');
      throw err;
    }
  }

  /**
   * One call whose "not found" answer is expected (`absent` says which answers mean that): resolves `undefined`
   * then, counted `not_found`.
   */
  async lookup<T>(
    op: VaultOperation,
    spec: CallSpec,
    absent: (e: VaultRequestError) => boolean,
    opts: CallOptions = {},
  ): Promise<T | undefined> {
    try {
      const body = await this.send<T>(spec, opts);
      this.observe(op, 'success');
      return body;
    } catch (err) {
      const expected = err instanceof VaultRequestError && absent(err);
      this.observe(op, expected ? 'not_found' : 'error');
      if (expected) return undefined;
      throw err;
    }
  }

  /** Counts an outcome the caller decided itself (a revocation followed by a look-up). */
  count(op: VaultOperation, outcome: CallOutcome): void {
    this.observe(op, outcome);
  }

  /**
   * One call, not counted. Throws a VaultRequestError; a token source's own failure as it is (already classified,
   * or carrying a `reason` for status); the signal's reason when the caller aborted.
   */
  async send<T>(spec: CallSpec, opts: CallOptions = {}): Promise<T> {
    const token = await this.tokenFor(spec, opts);
    try {
      return await this.request<T>(spec, token, opts);
    } catch (err) {
      if (!spec.onDenied || !(err instanceof VaultRequestError) || err.kind !== 'PermissionDenied') throw err;
      spec.onDenied();
      return this.request<T>(spec, await this.tokenFor(spec, opts), opts);
    }
  }

  private async tokenFor(spec: CallSpec, opts: CallOptions): Promise<string | undefined> {
    opts.signal?.throwIfAborted();
    if (typeof spec.token !== 'function') return spec.token;
    try {
      return await spec.token(opts);
    } catch (err) {
      opts.signal?.throwIfAborted();
      // Not this request's failure but the login's: already classified (a refused login is a VaultRequestError), or
      // the token source's own reason (no ServiceAccount token, no token Secret), which must reach status as it is.
      throw err instanceof Error && typeof (err as { reason?: unknown }).reason === 'string'
        ? err
        : classifyVaultError(spec.what, err);
    }
  }

  private async request<T>(spec: CallSpec, token: string | undefined, { signal }: CallOptions): Promise<T> {
    signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(this.endpoint.timeoutMs ?? 30_000);
    try {
      const res = await this.sendHttp({
        method: spec.method,
        path: spec.path,
        body: spec.body,
        token,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if ((res.status >= 200 && res.status < 300) || spec.anyStatus) return res.body as T;
      throw new VaultHttpError(res.status, res.body);
    } catch (err) {
      signal?.throwIfAborted();
      if (timeout.aborted && !(err instanceof VaultHttpError))
        throw classifyVaultError(spec.what, { code: 'ECONNABORTED', message: 'request timed out' });
      throw classifyVaultError(spec.what, err);
    }
  }

  /** Sends through the endpoint's agent; the signal aborts the request (its socket closed); any status resolves. */
  private async undiciSend(req: HttpRequest): Promise<{ status: number; body: unknown }> {
    const ep = this.endpoint;
    this.agent ??= new Agent({
      connections: 32,
      connect: {
        ca: ep.caBundlePem || undefined,
        rejectUnauthorized: !ep.insecureSkipTLSVerify,
        servername: ep.serverName || undefined,
      },
    });
    // LIST as GET ?list=true: the same to Vault, and no custom verb for proxies to refuse.
    const url = new URL(`${ep.address.replace(/\/+$/, '')}/v1/${req.path.replace(/^\/+/, '')}`);
    if (req.method === 'LIST') url.searchParams.set('list', 'true');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (req.token) headers['x-vault-token'] = req.token;
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    const res = await request(url, {
      dispatcher: this.agent,
      signal: req.signal,
      headers,
      method: req.method === 'LIST' ? 'GET' : req.method,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
    });
    const text = await res.body.text();
    try {
      return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
    } catch {
      // Not JSON (a proxy's error page, say): the status alone says enough; the text may echo anything.
      return { status: res.statusCode, body: undefined };
    }
  }
}
