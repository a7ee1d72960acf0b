// PostgreSQL (KubeVault's PostgresRole): where its roles live in Vault, the address its database AppBinding
// gives (a postgresql:// URL; port 5432 and database postgres by default), and the template variables a
// PostgreSQL client needs: URI-escaped and .pgpass-escaped forms, and libpq's sslmode.
import type { AppBinding } from '../../../api/index.ts';
import { appBindingUrl } from '../../shared/appbinding.ts';
import type { DatabaseAddress, DatabaseEngine, TemplateVariables } from '../engine.ts';
import type { AddressVariables } from '../template.ts';
import { roleLookup, uriCredential, uriEncode } from './common.ts';

/** libpq's .pgpass escaping: `\` and `:` are preceded by a backslash. */
export function pgpassEscape(s: string): string {
  return s.replace(/[\\:]/g, (c) => `\\${c}`);
}

export { uriEncode };

/** Every variable a PostgreSQL role's templates may use, with what it holds. */
export const POSTGRES_TEMPLATE_VARIABLES = {
  username: 'the login name',
  password: 'the password, as is',
  urlUser: 'username, percent-encoded for a URI',
  urlPassword: 'password, percent-encoded for a URI',
  pgpassUser: 'username with : and \\ escaped for a .pgpass line',
  pgpassPassword: 'password with : and \\ escaped for a .pgpass line',
  host: 'the database host, from its AppBinding',
  urlHost: 'host, in brackets if it is an IPv6 address',
  pgpassHost: 'host with : and \\ escaped for a .pgpass line',
  port: 'the database port (5432 unless the AppBinding says otherwise)',
  dbname: "the database name (the AppBinding URL's path; postgres if none)",
  urlDbname: 'dbname, percent-encoded for a URI',
  pgpassDbname: 'dbname with : and \\ escaped for a .pgpass line',
  sslmode: 'the sslmode query parameter of the AppBinding URL (absent if it has none)',
} as const;

const ADDRESS_VARIABLES = [
  'host',
  'urlHost',
  'pgpassHost',
  'port',
  'dbname',
  'urlDbname',
  'pgpassDbname',
  'sslmode',
] as const;

/** The database address a PostgreSQL AppBinding gives; the same reading the SecretEngine controller uses. */
export function postgresAddress(ab: AppBinding): DatabaseAddress {
  const url = appBindingUrl(ab);
  // WHATWG URL keeps IPv6 brackets in hostname; libpq and .pgpass want the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const sslmode = url.searchParams.get('sslmode') ?? undefined;
  return {
    host,
    port: url.port || '5432',
    dbname: decodeURIComponent(url.pathname.replace(/^\/+/, '')) || 'postgres',
    params: sslmode ? { sslmode } : {},
  };
}

export const postgresVariables: TemplateVariables = {
  known: POSTGRES_TEMPLATE_VARIABLES,
  address(address: DatabaseAddress | undefined, whyNone: string): AddressVariables {
    if (!address) return { values: {}, unavailable: Object.fromEntries(ADDRESS_VARIABLES.map((v) => [v, whyNone])) };
    const values: Record<string, string> = {
      host: address.host,
      urlHost: address.host.includes(':') ? `[${address.host}]` : address.host,
      pgpassHost: pgpassEscape(address.host),
      port: address.port,
      dbname: address.dbname,
      urlDbname: uriEncode(address.dbname),
      pgpassDbname: pgpassEscape(address.dbname),
    };
    const unavailable: Record<string, string> = {};
    if (address.params.sslmode !== undefined) values.sslmode = address.params.sslmode;
    else
      unavailable.sslmode =
        "the database AppBinding's URL has no sslmode parameter (use <%#sslmode%>…<%/sslmode%> for an optional part)";
    return { values, unavailable };
  },
  credential(cred: { username: string; password: string }): Record<string, string> {
    return {
      ...uriCredential(cred),
      pgpassUser: pgpassEscape(cred.username),
      pgpassPassword: pgpassEscape(cred.password),
    };
  },
};

export const postgres: DatabaseEngine = {
  ...roleLookup('PostgresRole'),
  address: postgresAddress,
  variables: postgresVariables,
};
