// Sends one notification to where a notifier says: reads the URL (and the webhook's signing key) from the
// notifier's Secret at each attempt — never kept, never logged, never in a message — and POSTs over HTTPS with
// undici (the operator's HTTP client), trusting the notifier's caBundle when it gives one.
//
// Errors say what failed without saying where: a Slack incoming-webhook URL is itself a credential.
import { Agent, request } from 'undici';
import { randomUUID } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { SecretKeySelector } from '../../api/index.ts';
import type { CallOptions, ResourceType } from '../../lib/runtime/index.ts';
import { SECRETS } from '../shared/resources.ts';
import { Headers, sign, slackText, type AnyNotifier, type Notification } from './notifier.ts';

/** What the sender reads Secrets through (the operator's KubeClient). */
export interface SecretReader {
  tryGet<T extends KubernetesObject>(
    resource: ResourceType,
    namespace: string,
    name: string,
    opts?: CallOptions,
  ): Promise<T | undefined>;
}

/** A delivery that didn't happen; its message is safe for status and logs. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly reason: 'SecretNotFound' | 'DeliveryFailing' = 'DeliveryFailing',
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

type SecretObject = KubernetesObject & { data?: Record<string, string> };

const TIMEOUT_MS = 10_000;
const DEFAULT_KEYS = { url: 'url', signingKey: 'signingKey' } as const;

/** Where a notifier's Secrets are: its own namespace, or the operator's for a ClusterAccessNotifier. */
export function secretNamespace(n: AnyNotifier, operatorNamespace: string): string {
  return n.clusterScoped ? operatorNamespace : (n.object.metadata.namespace ?? '');
}

/** The Secrets a notifier names (`namespace/name`), for status checks against the metadata cache. */
export function secretRefs(n: AnyNotifier): Array<{ ref: SecretKeySelector; defaultKey: string; what: string }> {
  const s = n.object.spec;
  if (s.webhook)
    return [
      { ref: s.webhook.urlSecretRef, defaultKey: DEFAULT_KEYS.url, what: 'webhook.urlSecretRef' },
      { ref: s.webhook.signingKeySecretRef, defaultKey: DEFAULT_KEYS.signingKey, what: 'webhook.signingKeySecretRef' },
    ];
  if (s.slack) return [{ ref: s.slack.urlSecretRef, defaultKey: DEFAULT_KEYS.url, what: 'slack.urlSecretRef' }];
  return [];
}

export interface SenderOptions {
  operatorNamespace: string;
  /** Unix time in seconds, for the signature's timestamp. */
  nowSeconds?: () => number;
  timeoutMs?: number;
}

export class NotificationSender {
  private readonly agents = new Map<string, Agent>();

  constructor(
    private readonly secrets: SecretReader,
    private readonly opts: SenderOptions,
  ) {}

  /** POSTs the notification; throws DeliveryError unless the receiver answered 2xx. */
  async send(n: AnyNotifier, notification: Notification, signal?: AbortSignal): Promise<void> {
    const spec = n.object.spec;
    const sink = spec.webhook ?? spec.slack;
    if (!sink) throw new DeliveryError('the notifier names neither a webhook nor a slack webhook');
    const ns = secretNamespace(n, this.opts.operatorNamespace);
    const url = await this.value(ns, sink.urlSecretRef, DEFAULT_KEYS.url, signal);
    let parsed: URL;
    try {
      parsed = new URL(url.toString('utf8').trim());
    } catch {
      throw new DeliveryError(
        `the value of key ${keyOf(sink.urlSecretRef, 'url')} in Secret ${ns}/${sink.urlSecretRef.name} is not a URL`,
      );
    }
    if (parsed.protocol !== 'https:')
      throw new DeliveryError(`the URL in Secret ${ns}/${sink.urlSecretRef.name} must be https://`);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'leasehold-notifier',
      [Headers.delivery]: notification.id,
      [Headers.event]: notification.event,
    };
    let body: string;
    if (spec.webhook) {
      const key = await this.value(ns, spec.webhook.signingKeySecretRef, DEFAULT_KEYS.signingKey, signal);
      body = JSON.stringify(notification);
      const ts = Math.floor(this.opts.nowSeconds?.() ?? Date.now() / 1000);
      headers[Headers.timestamp] = String(ts);
      headers[Headers.signature] = sign(key, ts, body);
    } else {
      body = JSON.stringify({ text: slackText(notification) });
    }
    let status: number;
    try {
      const res = await request(parsed, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent(sink.caBundle),
        ...(signal ? { signal } : {}),
      });
      status = res.statusCode;
      await res.body.dump().catch(() => undefined);
    } catch (err) {
      throw new DeliveryError(
        `could not reach the ${spec.webhook ? 'webhook' : 'slack webhook'} at ${parsed.host}: ${why(err)}`,
      );
    }
    if (status < 200 || status >= 300)
      throw new DeliveryError(
        `the ${spec.webhook ? 'webhook' : 'slack webhook'} at ${parsed.host} answered HTTP ${status}`,
      );
  }

  /** Closes the connections (operator shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close().catch(() => undefined)));
    this.agents.clear();
  }

  private agent(caBundle: string | undefined): Agent {
    const id = caBundle ?? '';
    let a = this.agents.get(id);
    if (!a) {
      const timeout = this.opts.timeoutMs ?? TIMEOUT_MS;
      const ca = caBundle ? Buffer.from(caBundle, 'base64').toString('utf8') : undefined;
      a = new Agent({ connect: { timeout, ...(ca ? { ca } : {}) }, headersTimeout: timeout, bodyTimeout: timeout });
      this.agents.set(id, a);
    }
    return a;
  }

  private async value(ns: string, ref: SecretKeySelector, defaultKey: string, signal?: AbortSignal): Promise<Buffer> {
    const key = keyOf(ref, defaultKey);
    let s: SecretObject | undefined;
    try {
      s = await this.secrets.tryGet<SecretObject>(SECRETS, ns, ref.name, signal ? { signal } : {});
    } catch {
      throw new DeliveryError(`could not read Secret ${ns}/${ref.name}`);
    }
    if (!s) throw new DeliveryError(`Secret ${ns}/${ref.name} does not exist`, 'SecretNotFound');
    const v = s.data?.[key];
    if (!v) throw new DeliveryError(`Secret ${ns}/${ref.name} has no key ${key}`, 'SecretNotFound');
    return Buffer.from(v, 'base64');
  }
}

function keyOf(ref: SecretKeySelector, fallback: string): string {
  return ref.key ?? fallback;
}

/** An HTTP client error in a few safe words: its code (ECONNREFUSED, UND_ERR_CONNECT_TIMEOUT, a TLS code…). */
function why(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  return code ?? (err instanceof Error ? err.name : 'unknown error');
}

/** A fresh notification id. */
export const newNotificationId = (): string => randomUUID();
