// `npm run stack:prepare`: finds or builds the local stack's binaries (etcd, kube-apiserver,
// kube-controller-manager, Vault, kubectl), the chart tests' helm and promtool so that later runs start in seconds.
// CI runs it as an install step.
import { resolveBinaries, resolveHelm, resolvePrometheusTools } from './binaries.ts';

const started = Date.now();
const log = (line: string) => process.stdout.write(`[stack] ${line}\n`);
const bins = { ...(await resolveBinaries(log)), helm: await resolveHelm(log), ...(await resolvePrometheusTools(log)) };
process.stdout.write(
  `[stack] binaries ready in ${((Date.now() - started) / 1000).toFixed(0)}s:\n${Object.entries(bins)
    .map(([k, v]) => `  ${k}: ${v}`)
    .join('\n')}\n`,
);
