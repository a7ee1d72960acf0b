// What the entry point hands each controller when it builds them, and what it gets back. Controllers get
// everything through here, so none of them touches watch, queue or election code.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { Controller, ControllerOptions } from './controller.ts';
import type { EventRecorderFactory } from './events.ts';
import type { KubeClient } from './kube.ts';
import type { Logger } from './logging.ts';
import type { CacheOptions } from './manager.ts';
import type { Metrics } from './metrics.ts';
import type { ResourceType } from './types.ts';
import type { WatchCache } from './watch.ts';

export interface ControllerDeps {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Add module metrics to `metrics.registry`; count Vault calls in `metrics.vaultRequests`. */
  metrics: Metrics;
  /** Generic REST client; its writes are counted in kube_writes_total. */
  client: KubeClient;
  eventRecorder: EventRecorderFactory;
  /** The shared watch cache of a kind (namespace defaults to --namespace). */
  cache<T extends KubernetesObject>(resource: ResourceType, opts?: CacheOptions<T>): WatchCache<T>;
  /** A controller wired to the shared logger and metrics; concurrency defaults to --concurrency. */
  newController(opts: Omit<ControllerOptions, 'log' | 'metrics'>): Controller;
}

export interface ControllerRegistration {
  name: string;
  controller: Controller;
}
