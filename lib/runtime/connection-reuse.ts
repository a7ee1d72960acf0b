// client-node 2.0's KubeConfig.applySecurityAuthentication builds a new undici Agent for every request, so every
// API call (and every watch) opened a TCP + TLS connection of its own. In a burst of grants that handshake was
// the operator's largest CPU cost and a good part of the apiserver's (bench/README.md, "Burst"). This keeps one
// dispatcher per distinct connection set-up (server, CA, client certificate and key, proxy, TLS options) and hands
// it to every request, so connections are pooled and kept alive. A rotated client certificate or CA file gives
// different options, hence a new dispatcher; the one it replaces is closed once its requests are done.
import crypto from 'node:crypto';
import type { Cluster, KubeConfig } from '@kubernetes/client-node';

/** The shape of the private method wrapped here: present in client-node 2.x (checked by tests/unit/runtime). */
type CreateDispatcher = (
  cluster: Cluster | null,
  agentOptions: Record<string, unknown>,
) => { close?: () => Promise<void> } | undefined;

const WRAPPED = Symbol('leasehold.connectionReuse');

/** A digest of the options a dispatcher is built from; Buffers (CA, certificate, key) by content. */
function optionsKey(server: string, options: unknown): string {
  const hash = crypto.createHash('sha256').update(server);
  const visit = (value: unknown): void => {
    if (Buffer.isBuffer(value) || value instanceof Uint8Array) hash.update(`b${value.length}:`).update(value);
    else if (Array.isArray(value)) {
      hash.update('[');
      value.forEach(visit);
      hash.update(']');
    } else if (value && typeof value === 'object') {
      for (const k of Object.keys(value).sort()) {
        hash.update(`${k}=`);
        visit((value as Record<string, unknown>)[k]);
      }
    } else hash.update(`${typeof value}:${String(value)};`);
  };
  visit(options);
  return hash.digest('base64');
}

/**
 * Makes `kc` reuse one dispatcher per connection set-up. Returns false (and changes nothing) if this client-node
 * doesn't build dispatchers the way it is expected to: requests then still work, each on its own connection.
 */
export function reuseConnections(kc: KubeConfig): boolean {
  const target = kc as unknown as { createDispatcher?: CreateDispatcher; [WRAPPED]?: true };
  const original = target.createDispatcher;
  if (typeof original !== 'function' || typeof kc.createDispatcherOptions !== 'function') return false;
  if (target[WRAPPED]) return true;
  const current = new Map<string, { key: string; dispatcher: ReturnType<CreateDispatcher> }>();
  target.createDispatcher = function reusingDispatcher(cluster, agentOptions) {
    const server = cluster?.server ?? '';
    const key = optionsKey(server, kc.createDispatcherOptions(cluster, agentOptions));
    const held = current.get(server);
    if (held?.key === key) return held.dispatcher;
    const dispatcher = original.call(kc, cluster, agentOptions);
    current.set(server, { key, dispatcher });
    // Graceful: waits for the requests (watches included) still running on it.
    held?.dispatcher?.close?.().catch(() => undefined);
    return dispatcher;
  };
  target[WRAPPED] = true;
  return true;
}
