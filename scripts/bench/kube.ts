// The benchmark's own Kubernetes client: JSON over one keep-alive HTTPS agent. Not the runtime's KubeClient:
// the instrument stays apart from what it measures, so a change to the operator's transport (such as
// lib/runtime/connection-reuse.ts) changes the operator's numbers only, never the load the benchmark itself puts
// on the apiserver.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import fs from 'node:fs';
import https from 'node:https';
import { resourcePath } from '../../lib/runtime/kube.ts';
import type { ResourceType } from '../../lib/runtime/types.ts';

export class KubeHttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export class BenchKube {
  private readonly agent: https.Agent;
  private readonly server: URL;
  private readonly headers: Record<string, string>;

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    const user = kc.getCurrentUser();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    const ca = cluster.caData
      ? Buffer.from(cluster.caData, 'base64')
      : cluster.caFile
        ? fs.readFileSync(cluster.caFile)
        : undefined;
    const cert = user?.certData
      ? Buffer.from(user.certData, 'base64')
      : user?.certFile
        ? fs.readFileSync(user.certFile)
        : undefined;
    const key = user?.keyData
      ? Buffer.from(user.keyData, 'base64')
      : user?.keyFile
        ? fs.readFileSync(user.keyFile)
        : undefined;
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: 64,
      ca,
      cert,
      key,
      rejectUnauthorized: !cluster.skipTLSVerify,
    });
    this.headers = { accept: 'application/json', ...(user?.token ? { authorization: `Bearer ${user.token}` } : {}) };
  }

  /** The apiserver's own Prometheus metrics (admin only). */
  async metricsText(): Promise<string> {
    return this.request<string>('GET', '/metrics', { raw: true });
  }

  request<T>(
    method: string,
    path: string,
    opts: {
      body?: unknown;
      contentType?: string;
      query?: Record<string, string | number | undefined>;
      timeoutMs?: number;
      raw?: boolean;
    } = {},
  ): Promise<T> {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    return new Promise<T>((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          agent: this.agent,
          timeout: opts.timeoutMs ?? 60_000,
          headers: {
            ...this.headers,
            ...(opts.raw ? { accept: 'text/plain' } : {}),
            ...(payload !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) {
              let message = text.slice(0, 300);
              try {
                message = (JSON.parse(text) as { message?: string }).message ?? message;
              } catch {
                // not JSON
              }
              return reject(new KubeHttpError(status, `${method} ${url.pathname}: HTTP ${status} ${message}`));
            }
            if (opts.raw) return resolve(text as T);
            try {
              resolve((text ? JSON.parse(text) : undefined) as T);
            } catch (err) {
              reject(err as Error);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname} timed out`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  get<T extends KubernetesObject>(r: ResourceType, namespace: string, name: string): Promise<T> {
    return this.request<T>('GET', resourcePath(r, namespace, name));
  }

  async tryGet<T extends KubernetesObject>(r: ResourceType, namespace: string, name: string): Promise<T | undefined> {
    try {
      return await this.get<T>(r, namespace, name);
    } catch (err) {
      if (err instanceof KubeHttpError && err.statusCode === 404) return undefined;
      throw err;
    }
  }

  create<T extends KubernetesObject>(r: ResourceType, namespace: string, body: T): Promise<T> {
    return this.request<T>('POST', resourcePath(r, namespace), { body });
  }

  patch<T extends KubernetesObject>(
    r: ResourceType,
    namespace: string,
    name: string,
    body: unknown,
    contentType: string,
    subresource?: string,
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(r, namespace, name, subresource), { body, contentType });
  }

  close(): void {
    this.agent.destroy();
  }
}
