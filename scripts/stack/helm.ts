// The real helm CLI against the repository's chart (charts/leasehold), for the chart tests and anyone installing
// Leasehold into the local stack. Helm's own state (config, cache, data) lives in a directory of the caller's
// choosing, never in the user's home.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from './leasehold-setup.ts';

export const CHART_PATH = path.join(REPO_ROOT, 'charts/leasehold');

export interface HelmRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** One Kubernetes object as rendered. */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
} & Record<string, unknown>;

export class Helm {
  readonly home: string;

  /** `bin`: the helm binary (scripts/stack/binaries.ts resolveHelm); `home`: where helm keeps its state. */
  constructor(
    readonly bin: string,
    home?: string,
  ) {
    this.home = home ?? fs.mkdtempSync(path.join(os.tmpdir(), 'leasehold-helm-'));
  }

  /** Runs helm; never throws for a non-zero exit (the caller reads `code`). */
  run(args: string[], opts: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<HelmRun> {
    return new Promise((resolve) => {
      execFile(
        this.bin,
        args,
        {
          encoding: 'utf8',
          timeout: opts.timeoutMs ?? 120_000,
          maxBuffer: 64 << 20,
          env: {
            PATH: process.env.PATH ?? '',
            // The Kubernetes client's discovery cache goes to $HOME/.kube/cache: keep it in helm's directory too.
            HOME: this.home,
            HELM_CONFIG_HOME: path.join(this.home, 'config'),
            HELM_CACHE_HOME: path.join(this.home, 'cache'),
            HELM_DATA_HOME: path.join(this.home, 'data'),
            ...(opts.kubeconfig ? { KUBECONFIG: opts.kubeconfig } : {}),
          },
        },
        (err, stdout, stderr) => {
          if (!err) return resolve({ code: 0, stdout, stderr });
          resolve({ code: typeof err.code === 'number' ? err.code : 1, stdout, stderr: stderr || err.message });
        },
      );
    });
  }

  /**
   * `helm template <release> <chart> -n <namespace> [args]` parsed into objects (empty documents dropped). Throws
   * with helm's message when it refuses (bad values, a failed template).
   */
  async template(release: string, namespace: string, args: string[] = [], chart = CHART_PATH): Promise<K8sObject[]> {
    const r = await this.run(['template', release, chart, '--namespace', namespace, ...args]);
    if (r.code !== 0) throw new Error(`helm template exited ${r.code}: ${r.stderr.trim()}`);
    return parseObjects(r.stdout);
  }
}

/** The objects of a multi-document YAML text. */
export function parseObjects(text: string): K8sObject[] {
  return YAML.parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`unparsable YAML from helm: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => !!o);
}
