// A local HTTPS receiver for notification tests: serves on 127.0.0.1 with a certificate from the stack's test CA
// (scripts/stack/pki.ts), records every POST (headers and body), and can be taken down and brought back on the
// same port, or made to answer an error status, to test retries.
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createPki, type Pki } from '../../scripts/stack/pki.ts';

export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export class HttpsReceiver {
  readonly received: Received[] = [];
  /** The status answered (200 unless a test changes it). */
  status = 200;
  private server?: https.Server;
  private port = 0;

  private constructor(private readonly pki: Pki) {}

  /** A receiver on a free port, with its own test CA (in a temporary directory). */
  static async start(pki?: Pki): Promise<HttpsReceiver> {
    const r = new HttpsReceiver(pki ?? createPki(fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-receiver-'))));
    await r.up();
    return r;
  }

  /** `https://127.0.0.1:<port><p>` */
  url(p = '/hook'): string {
    return `https://127.0.0.1:${this.port}${p}`;
  }

  /** The CA certificate as a notifier's caBundle (base64 PEM). */
  caBundle(): string {
    return Buffer.from(fs.readFileSync(this.pki.caCert)).toString('base64');
  }

  /** Listens (again, on the same port once it had one). */
  async up(): Promise<void> {
    if (this.server) return;
    const server = https.createServer(
      { cert: fs.readFileSync(this.pki.vaultCert), key: fs.readFileSync(this.pki.vaultKey) },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (this.status >= 200 && this.status < 300)
            this.received.push({
              path: req.url ?? '',
              headers: Object.fromEntries(
                Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]),
              ),
              body: Buffer.concat(chunks).toString('utf8'),
            });
          res.writeHead(this.status).end();
        });
      },
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops open connections: deliveries fail to connect until `up()`. */
  async down(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Bodies received, parsed as JSON. */
  bodies<T = Record<string, unknown>>(): T[] {
    return this.received.map((r) => JSON.parse(r.body) as T);
  }
}
