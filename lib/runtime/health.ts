// Probe and metrics endpoints on separate listeners (as kubebuilder scaffolds them): /healthz and /readyz on
// the health-probe address, /metrics on the metrics address. Bind addresses use Go's `host:port` form, where
// `:8080` means every interface and `0` disables the listener.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError, nullLogger, type Logger } from './logging.ts';
import type { Metrics } from './metrics.ts';

/** A named check: returns undefined when healthy, or a short reason when not. */
export type Check = () => string | undefined;

export interface BindAddress {
  host: string | undefined;
  port: number;
}

/** Parses `:8080`, `127.0.0.1:8081`, `[::1]:9000`, `8080`; `0` (or empty) means disabled → undefined. */
export function parseBindAddress(addr: string): BindAddress | undefined {
  const a = addr.trim();
  if (a === '' || a === '0') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(a.includes(':') ? a : `:${a}`);
  if (!m) throw new Error(`invalid bind address "${addr}": expected host:port, :port or 0`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port in bind address "${addr}"`);
  const host = m[1] ?? (m[2] || undefined);
  return { host, port };
}

export class HttpEndpoint {
  private readonly server: http.Server;
  private readonly bind: BindAddress;
  private readonly log: Logger;

  constructor(
    bind: BindAddress,
    handler: (path: string) => Promise<{ status: number; contentType: string; body: string }>,
    log: Logger = nullLogger(),
  ) {
    this.bind = bind;
    this.log = log;
    this.server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      handler(path).then(
        (r) =>
          res.writeHead(r.status, { 'Content-Type': r.contentType }).end(req.method === 'HEAD' ? undefined : r.body),
        (err: unknown) => {
          this.log.error('endpoint handler failed', { path, error: describeError(err) });
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('internal error\n');
        },
      );
    });
    // Probes and scrapes are short; don't let a slow client hold sockets open.
    this.server.requestTimeout = 10_000;
    this.server.keepAliveTimeout = 5_000;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.bind.port, this.bind.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** The bound port (useful with port 0). */
  port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** /healthz: the process serves HTTP and its event loop turns. /readyz: every readiness check passes. */
export function healthHandler(readiness: Record<string, Check>, liveness: Record<string, Check> = {}) {
  const run = (checks: Record<string, Check>) => {
    const failures: string[] = [];
    for (const [name, check] of Object.entries(checks)) {
      let why: string | undefined;
      try {
        why = check();
      } catch (err) {
        why = describeError(err);
      }
      if (why !== undefined) failures.push(`[-]${name} failed: ${why}`);
    }
    return failures;
  };
  return async (path: string) => {
    const checks = path === '/healthz' || path === '/livez' ? liveness : path === '/readyz' ? readiness : undefined;
    if (!checks) return { status: 404, contentType: 'text/plain', body: 'not found\n' };
    const failures = run(checks);
    return failures.length === 0
      ? { status: 200, contentType: 'text/plain', body: 'ok\n' }
      : { status: 503, contentType: 'text/plain', body: `${failures.join('\n')}\n` };
  };
}

export function metricsHandler(metrics: Metrics) {
  return async (path: string) => {
    if (path !== '/metrics') return { status: 404, contentType: 'text/plain', body: 'not found\n' };
    const { contentType, body } = await metrics.render();
    return { status: 200, contentType, body };
  };
}
