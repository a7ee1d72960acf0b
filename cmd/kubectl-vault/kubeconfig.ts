// Finding the cluster the way kubectl does: --kubeconfig, else every file in $KUBECONFIG merged (the first
// file to set a value wins, missing files are skipped), else ~/.kube/config, else the in-cluster service
// account; then --context picks the context, and the namespace is -n, else the context's, else "default".
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommandError } from './errors.ts';

export interface KubeconfigOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
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
    if (code === 'ENOENT') throw new CommandError(`kubeconfig ${file} does not exist`);
    throw new CommandError(`cannot read kubeconfig ${file}: ${err instanceof Error ? err.message : String(err)}`);
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
  merged.loadFromOptions({ clusters: [...clusters.values()], users: [...users.values()], contexts: [...contexts.values()], currentContext });
  return merged;
}

export function loadKubeconfig(opts: KubeconfigOptions, env: Environment): LoadedConfig {
  let kc: KubeConfig;
  let source: string;
  if (opts.kubeconfig) {
    kc = readFile(opts.kubeconfig);
    source = opts.kubeconfig;
  } else if (env.KUBECONFIG) {
    const files = [...new Set(env.KUBECONFIG.split(path.delimiter).filter((f) => f !== ''))];
    const present = files.filter((f) => fs.existsSync(f));
    if (present.length === 0) throw new CommandError(`none of the files in KUBECONFIG exists (${files.join(path.delimiter)})`);
    kc = mergeKubeconfigs(present.map(readFile));
    source = `KUBECONFIG=${env.KUBECONFIG}`;
  } else {
    const home = env.HOME || os.homedir();
    const file = path.join(home, '.kube', 'config');
    if (fs.existsSync(file)) {
      kc = readFile(file);
      source = file;
    } else if (env.KUBERNETES_SERVICE_HOST && fs.existsSync(IN_CLUSTER_TOKEN)) {
      kc = new KubeConfig();
      kc.loadFromCluster();
      source = 'the in-cluster service account';
    } else {
      throw new CommandError('no kubeconfig found: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config');
    }
  }

  if (opts.context) {
    if (!kc.getContextObject(opts.context)) throw new CommandError(`context "${opts.context}" is not in ${source}`);
    kc.setCurrentContext(opts.context);
  }
  const contextName = kc.getCurrentContext();
  const context = contextName ? kc.getContextObject(contextName) : null;
  if (!context) {
    throw new CommandError(contextName
      ? `the current context "${contextName}" is not defined in ${source}`
      : `${source} sets no current context: pass --context NAME`);
  }
  if (!kc.getCurrentCluster()) throw new CommandError(`context "${contextName}" names cluster "${context.cluster}", which is not in ${source}`);
  return { kubeConfig: kc, namespace: opts.namespace || context.namespace || 'default', source };
}
