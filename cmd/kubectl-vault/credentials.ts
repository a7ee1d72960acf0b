// The three shapes `kubectl vault credentials` prints a credential Secret in:
//   env  - shell assignments with libpq's variable names: eval "$(kubectl vault credentials dar NAME)" && psql
//   json - every key of the Secret, decoded
//   uri  - a postgresql:// connection URI (the Secret's `uri` key, else built from its parts)
import type { V1Secret } from '@kubernetes/client-node';
import { CommandError } from './errors.ts';
import type { OutputFormat } from './args.ts';

/** The Secret's keys, decoded from base64 (stringData never comes back from the API server). */
export function decodeSecret(secret: V1Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(secret.data ?? {}).sort()) out[key] = Buffer.from(secret.data![key]!, 'base64').toString('utf8');
  return out;
}

/** Secret key → libpq environment variable. Keys not listed are left out of the env form. */
export const ENV_NAMES: ReadonlyArray<readonly [key: string, variable: string]> = [
  ['host', 'PGHOST'],
  ['port', 'PGPORT'],
  ['dbname', 'PGDATABASE'],
  ['database', 'PGDATABASE'],
  ['username', 'PGUSER'],
  ['password', 'PGPASSWORD'],
  ['sslmode', 'PGSSLMODE'],
  ['uri', 'DATABASE_URL'],
];

/** POSIX shell quoting: bare when safe, else single quotes. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function envForm(data: Record<string, string>): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const [key, variable] of ENV_NAMES) {
    const value = data[key];
    if (value === undefined || seen.has(variable)) continue;
    seen.add(variable);
    lines.push(`export ${variable}=${shellQuote(value)}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

export function jsonForm(data: Record<string, string>): string {
  return `${JSON.stringify(data, null, 2)}\n`;
}

export function uriForm(data: Record<string, string>): string {
  if (data.uri) return `${data.uri}\n`;
  const { username, password, host } = data;
  if (!username) throw new CommandError('the credential Secret has no username, so no URI can be built');
  if (!host) {
    throw new CommandError('the credential Secret names no host (nor a uri), so no URI can be built: use -o env or -o json, ' +
      'or have the PostgresRole\'s secretTemplate add host (or uri)');
  }
  const auth = encodeURIComponent(username) + (password !== undefined ? `:${encodeURIComponent(password)}` : '');
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const port = data.port ? `:${data.port}` : '';
  const db = data.dbname ?? data.database;
  const query = data.sslmode ? `?sslmode=${encodeURIComponent(data.sslmode)}` : '';
  return `postgresql://${auth}@${hostPart}${port}/${db ? encodeURIComponent(db) : ''}${query}\n`;
}

export function formatCredentials(data: Record<string, string>, format: OutputFormat): string {
  if (Object.keys(data).length === 0) throw new CommandError('the credential Secret is empty');
  switch (format) {
    case 'env': {
      const text = envForm(data);
      if (!text) throw new CommandError(`the credential Secret has none of the keys ${[...new Set(ENV_NAMES.map(([k]) => k))].join(', ')}: use -o json`);
      return text;
    }
    case 'json':
      return jsonForm(data);
    case 'uri':
      return uriForm(data);
  }
}
