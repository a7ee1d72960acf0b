// Finding the cluster the way kubectl does: --kubeconfig, else every file in $KUBECONFIG merged (the first
// file to set a value wins, missing files are skipped), else ~/.kube/config, else the in-cluster service
// account; then --context picks the context, and the namespace is -n, else the context's, else "default".
// One loader for both programs: the plugin (kubectl's order) and the operator (controller-runtime's order, which
// tries the in-cluster service account before ~/.kube/config: `inClusterFirst`).
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A kubeconfig that can't be found or used; the message says which file or context, and what to do. */
export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeconfigError';
  }
}

export interface KubeconfigOptions {
  /** One kubeconfig file (--kubeconfig): it alone is read, and it must exist. */
  kubeconfig?: string;
  /** The context to use instead of the file's current-context. */
  context?: string;
  /** The namespace to use instead of the context's. */
  namespace?: string;
  /**
   * controller-runtime's order: the in-cluster service account (when KUBERNETES_SERVICE_HOST is set) before
   * ~/.kube/config. The operator sets it; kubectl (and so the plugin) reads ~/.kube/config first.
   */
  inClusterFirst?: boolean;
}

export interface Environment {
  KUBECONFIG?: string;
  HOME?: string;
  KUBERNETES_SERVICE_HOST?: string;
  KUBERNETES_SERVICE_PORT?: string;
}

export interface LoadedConfig {
  kubeConfig: KubeConfig;
  /** The namespace to use when the command doesn't say otherwise. */
  namespace: string;
  /** Where the configuration came from, for messages. */
  source: string;
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

function readFile(file: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') throw new KubeconfigError(`kubeconfig ${file} does not exist`);
    throw new KubeconfigError(`cannot read kubeconfig ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return kc;
}

/** kubectl's merge rules: the first file that defines a name (or current-context) wins. */
export function mergeKubeconfigs(configs: readonly KubeConfig[]): KubeConfig {
  const clusters = new Map<string, Cluster>();
  const users = new Map<string, User>();
  const contexts = new Map<string, Context>();
  let currentContext = '';
  for (const kc of configs) {
    for (const c of kc.clusters) if (!clusters.has(c.name)) clusters.set(c.name, c);
    for (const u of kc.users) if (!users.has(u.name)) users.set(u.name, u);
    for (const c of kc.contexts) if (!contexts.has(c.name)) contexts.set(c.name, c);
    if (!currentContext && kc.currentContext) currentContext = kc.currentContext;
  }
  const merged = new KubeConfig();
  merged.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext,
  });
  return merged;
}

/**
 * The kubeconfig to talk to the cluster with, found as described at the top of this file. Throws a
 * KubeconfigError naming the file, variable or context at fault; never reads anything but the kubeconfig files
 * and the in-cluster service account.
 */
export function loadKubeconfig(opts: KubeconfigOptions, env: Environment): LoadedConfig {
  const { kubeConfig: kc, source } = findKubeconfig(opts, env);
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) throw new KubeconfigError(`context "${opts.context}" is not in ${source}`);
    kc.setCurrentContext(opts.context);
  }
  const contextName = kc.getCurrentContext();
  const context = contextName ? kc.getContextObject(contextName) : null;
  if (!context) {
    throw new KubeconfigError(
      contextName
        ? `the current context "${contextName}" is not defined in ${source}`
        : `${source} sets no current context: pass --context NAME`,
    );
  }
  if (!kc.getCurrentCluster())
    throw new KubeconfigError(`context "${contextName}" names cluster "${context.cluster}", which is not in ${source}`);
  return { kubeConfig: kc, namespace: opts.namespace || context.namespace || 'default', source };
}

function findKubeconfig(opts: KubeconfigOptions, env: Environment): { kubeConfig: KubeConfig; source: string } {
  if (opts.kubeconfig) return { kubeConfig: readFile(opts.kubeconfig), source: opts.kubeconfig };
  if (env.KUBECONFIG) {
    const files = [...new Set(env.KUBECONFIG.split(path.delimiter).filter((f) => f !== ''))];
    const present = files.filter((f) => fs.existsSync(f));
    if (present.length === 0)
      throw new KubeconfigError(`none of the files in KUBECONFIG exists (${files.join(path.delimiter)})`);
    return { kubeConfig: mergeKubeconfigs(present.map(readFile)), source: `KUBECONFIG=${env.KUBECONFIG}` };
  }
  const inCluster = env.KUBERNETES_SERVICE_HOST && fs.existsSync(IN_CLUSTER_TOKEN);
  const home = path.join(env.HOME || os.homedir(), '.kube', 'config');
  if (inCluster && opts.inClusterFirst) return fromCluster();
  if (fs.existsSync(home)) return { kubeConfig: readFile(home), source: home };
  if (inCluster) return fromCluster();
  throw new KubeconfigError('no kubeconfig found: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config');
}

function fromCluster(): { kubeConfig: KubeConfig; source: string } {
  const kc = new KubeConfig();
  kc.loadFromCluster();
  return { kubeConfig: kc, source: 'the in-cluster service account' };
}
