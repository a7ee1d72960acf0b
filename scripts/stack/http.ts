// A tiny HTTPS/HTTP JSON client for the stack's own set-up calls (readiness probes, Vault init/unseal).
// node:https is used rather than fetch because it takes a per-request CA without an extra dispatcher.
import http from 'node:http';
import https from 'node:https';

export interface HttpRequest {
  method?: string;
  url: string;
  ca?: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  text: string;
  json<T = unknown>(): T;
}

export function request(req: HttpRequest): Promise<HttpResponse> {
  const url = new URL(req.url);
  const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
  const headers: Record<string, string> = { ...req.headers };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const r = lib.request(
      url,
      { method: req.method ?? 'GET', headers, ca: req.ca, timeout: req.timeoutMs ?? 5000, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, text, json: <T>() => JSON.parse(text) as T });
        });
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error(`timed out: ${req.method ?? 'GET'} ${url.origin}${url.pathname}`)));
    r.on('error', reject);
    if (payload !== undefined) r.write(payload);
    r.end();
  });
}

/** Polls `probe` until it returns true, or fails with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      if (err instanceof FatalStartError) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A start-up failure that waiting won't fix (the process died): `waitFor` rethrows it at once. */
export class FatalStartError extends Error {
  override name = 'FatalStartError';
}
