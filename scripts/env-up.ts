// npm run env:up [-- --json-out FILE] [--keep-dir] [--databases mariadb,redis]
// Starts the local stack, prints how to reach it, and stops everything on Ctrl-C / SIGTERM.
import fs from 'node:fs';
import { envInfo, startEnv, type StackDatabase } from './stack/env.ts';

function parseArgs(argv: string[]): { jsonOut?: string; keepDir: boolean; databases: StackDatabase[] } {
  const out: { jsonOut?: string; keepDir: boolean; databases: StackDatabase[] } = { keepDir: false, databases: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json-out') out.jsonOut = argv[++i];
    else if (a.startsWith('--json-out=')) out.jsonOut = a.slice('--json-out='.length);
    else if (a === '--keep-dir') out.keepDir = true;
    else if (a === '--databases' || a.startsWith('--databases=')) {
      const list = a === '--databases' ? (argv[++i] ?? '') : a.slice('--databases='.length);
      out.databases = list.split(',').filter(Boolean) as StackDatabase[];
    } else if (a === '-h' || a === '--help') {
      console.log('usage: npm run env:up -- [--json-out FILE] [--keep-dir] [--databases mariadb,redis]');
      process.exit(0);
    } else {
      console.error(`env:up: unknown argument ${a}`);
      process.exit(2);
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
let stopping = false;
const env = await startEnv({ keepDir: args.keepDir, databases: args.databases });
const shutdown = async (sig: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${sig}: stopping the stack…`);
  await env.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

const info = envInfo(env);
console.log(`
Kubernetes   ${info.kubernetes.server}
  export KUBECONFIG=${info.kubernetes.kubeconfig}
  non-admin users: ${Object.entries(info.kubernetes.users)
    .map(([u, v]) => `${u} (${v.kubeconfig})`)
    .join(', ')}
${info.vault.flavor.padEnd(12)} ${info.vault.addr}
  export VAULT_ADDR=${info.vault.addr} BAO_ADDR=${info.vault.addr} VAULT_CACERT=${info.vault.caFile} BAO_CACERT=${info.vault.caFile}
  root token: in ${info.dir}/vault/init.json
PostgreSQL   ${info.postgres.host}:${info.postgres.port} (user ${info.postgres.user}, database ${info.postgres.database})
  password: in the JSON written by --json-out
${info.mariadb ? `MariaDB      ${info.mariadb.host}:${info.mariadb.port} (user ${info.mariadb.user}; MySQL protocol too)\n` : ''}${info.redis ? `Redis        ${info.redis.host}:${info.redis.port} (user ${info.redis.user}, ACLs on)\n` : ''}Logs         ${info.dir}/logs
Press Ctrl-C to stop.`);
if (args.jsonOut) fs.writeFileSync(args.jsonOut, JSON.stringify(info, null, 2), { mode: 0o600 });
setInterval(() => undefined, 1 << 30);
