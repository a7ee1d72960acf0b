// `npm run stack:prepare`: finds or builds the local stack's binaries (etcd, kube-apiserver,
// kube-controller-manager, Vault, kubectl), the chart tests' helm and promtool so that later runs start in seconds.
// CI runs it as an install step. `-- --with eso` also builds External Secrets Operator's controller (the
// benchmark's peer).
import { resolveBinaries, resolveEso, resolveHelm, resolvePrometheusTools } from './binaries.ts';

const started = Date.now();
const log = (line: string) => process.stdout.write(`[stack] ${line}\n`);
const withArgs = process.argv
  .slice(2)
  .flatMap((a, i, all) =>
    a.startsWith('--with=') ? a.slice(7).split(',') : all[i - 1] === '--with' ? a.split(',') : [],
  );
const bins: Record<string, unknown> = {
  ...(await resolveBinaries(log)),
  helm: await resolveHelm(log),
  ...(await resolvePrometheusTools(log)),
};
if (withArgs.includes('eso')) bins.eso = await resolveEso(log);
process.stdout.write(
  `[stack] binaries ready in ${((Date.now() - started) / 1000).toFixed(0)}s:\n${Object.entries(bins)
    .map(([k, v]) => `  ${k}: ${v}`)
    .join('\n')}\n`,
);
