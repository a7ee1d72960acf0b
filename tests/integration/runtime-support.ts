// Shared pieces of the runtime integration tests: a reconciler that records every pass, a TCP proxy that can
// cut a client off the apiserver, etcd compaction, and kubeconfig plumbing.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import net from 'node:net';
import type { ObjectKey, ReconcileContext, Reconciler, Result } from '../../lib/runtime/types.ts';
import { DONE } from '../../lib/runtime/types.ts';
import { createLogger, nullLogger, type Logger, type LogLevel } from '../../lib/runtime/logging.ts';

export interface Pass {
  key: string;
  startedAt: number;
  endedAt: number;
  reconcileId: string;
}

/** Records each pass; flags any key reconciled while a pass of the same key was still running. */
export class RecordingReconciler implements Reconciler {
  readonly passes: Pass[] = [];
  readonly overlaps: string[] = [];
  private readonly running = new Set<string>();
  constructor(private readonly body: (key: ObjectKey, ctx: ReconcileContext) => Promise<Result> = async () => DONE) {}

  async reconcile(key: ObjectKey, ctx: ReconcileContext): Promise<Result> {
    const k = `${key.namespace}/${key.name}`;
    if (this.running.has(k)) this.overlaps.push(k);
    this.running.add(k);
    const startedAt = Date.now();
    try {
      return await this.body(key, ctx);
    } finally {
      this.running.delete(k);
      this.passes.push({ key: k, startedAt, endedAt: Date.now(), reconcileId: ctx.reconcileId });
    }
  }

  passesOf(key: string): Pass[] {
    return this.passes.filter((p) => p.key === key);
  }

  reconciledSince(key: string, since: number): boolean {
    return this.passes.some((p) => p.key === key && p.startedAt >= since);
  }
}

/** A copy of `kc` whose current cluster points at `server` (same credentials and CA). */
export function kubeConfigVia(kc: KubeConfig, server: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster');
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: kc.getClusters().map((c) => (c.name === cluster.name ? { ...c, server } : c)),
    users: kc.getUsers(),
    contexts: kc.getContexts(),
    currentContext: kc.getCurrentContext(),
  });
  return copy;
}

/** Forwards TCP to the apiserver; `cut()` severs every connection and refuses new ones until `restore()`. */
export class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    await this.start();
  }

  url(): string {
    return `https://127.0.0.1:${this.port}`;
  }
}

/** Compacts etcd's history up to its current revision (through the gRPC gateway), so old revisions are Gone. */
export async function compactEtcd(etcdEndpoint: string): Promise<number> {
  const range = await fetch(`${etcdEndpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
  });
  if (!range.ok) throw new Error(`etcd range: HTTP ${range.status}`);
  const revision = Number(((await range.json()) as { header: { revision: string } }).header.revision);
  const compact = await fetch(`${etcdEndpoint}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision: String(revision), physical: true }),
  });
  if (!compact.ok) throw new Error(`etcd compaction: HTTP ${compact.status} ${await compact.text()}`);
  return revision;
}

export async function createNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
}

export const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' } as const;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Silent unless RUNTIME_TEST_LOG names a level (then JSON lines go to stderr). */
export function testLogger(): Logger {
  const level = process.env.RUNTIME_TEST_LOG;
  return level ? createLogger({ level: level as LogLevel, stream: process.stderr }) : nullLogger();
}
