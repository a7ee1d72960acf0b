// MySQL and MariaDB (KubeVault's MySQLRole and MariaDBRole): one engine per kind, the same variables. The address
// comes from the database AppBinding (a mysql:// URL, or the Go driver's `tcp(host:port)/db` form KubeDB writes;
// port 3306 by default; the database only if the URL names one). Variables: URI-escaped forms, and forms quoted for
// an option file (`password="<%cnfPassword%>"` in a [client] section of my.cnf).
import type { AppBinding } from '../../../api/index.ts';
import { DEFAULT_PORTS, databaseEndpoint } from '../../shared/database-connection.ts';
import type { DatabaseAddress, DatabaseEngine, TemplateVariables } from '../engine.ts';
import type { AddressVariables } from '../template.ts';
import { roleLookup, uriCredential, uriEncode, uriHost } from './common.ts';

/** An option file's double-quoted value: `\` and `"` preceded by a backslash. */
export function cnfEscape(s: string): string {
  return s.replace(/[\\"]/g, (c) => `\\${c}`);
}

export const MYSQL_TEMPLATE_VARIABLES = {
  username: 'the login name',
  password: 'the password, as is',
  urlUser: 'username, percent-encoded for a URI',
  urlPassword: 'password, percent-encoded for a URI',
  cnfUser: 'username with \\ and " escaped, for a double-quoted my.cnf value',
  cnfPassword: 'password with \\ and " escaped, for a double-quoted my.cnf value',
  host: 'the database host, from its AppBinding',
  urlHost: 'host, in brackets if it is an IPv6 address',
  port: 'the database port (3306 unless the AppBinding says otherwise)',
  dbname: 'the database the AppBinding URL names (absent if it names none)',
  urlDbname: 'dbname, percent-encoded for a URI (absent if the URL names none)',
} as const;

const ADDRESS_VARIABLES = ['host', 'urlHost', 'port', 'dbname', 'urlDbname'] as const;

export function mysqlAddress(ab: AppBinding): DatabaseAddress {
  const ep = databaseEndpoint(ab, DEFAULT_PORTS.mysql);
  return { host: ep.host, port: String(ep.port), dbname: ep.path, params: ep.params };
}

export const mysqlVariables: TemplateVariables = {
  known: MYSQL_TEMPLATE_VARIABLES,
  address(address: DatabaseAddress | undefined, whyNone: string): AddressVariables {
    if (!address) return { values: {}, unavailable: Object.fromEntries(ADDRESS_VARIABLES.map((v) => [v, whyNone])) };
    const values: Record<string, string> = { host: address.host, urlHost: uriHost(address.host), port: address.port };
    const unavailable: Record<string, string> = {};
    if (address.dbname) {
      values.dbname = address.dbname;
      values.urlDbname = uriEncode(address.dbname);
    } else {
      const why = "the database AppBinding's URL names no database (use <%#dbname%>…<%/dbname%> for an optional part)";
      unavailable.dbname = why;
      unavailable.urlDbname = why;
    }
    return { values, unavailable };
  },
  credential(cred: { username: string; password: string }): Record<string, string> {
    return {
      ...uriCredential(cred),
      cnfUser: cnfEscape(cred.username),
      cnfPassword: cnfEscape(cred.password),
    };
  },
  defaults(address: AddressVariables): Record<string, string> {
    if (address.values.host === undefined) return {};
    return {
      host: '<%host%>',
      port: '<%port%>',
      ...(address.values.dbname !== undefined ? { database: '<%dbname%>' } : {}),
      uri: 'mysql://<%urlUser%>:<%urlPassword%>@<%urlHost%>:<%port%>/<%#urlDbname%><%urlDbname%><%/urlDbname%>',
    };
  },
};

export const mysql: DatabaseEngine = { ...roleLookup('MySQLRole'), address: mysqlAddress, variables: mysqlVariables };
export const mariadb: DatabaseEngine = {
  ...roleLookup('MariaDBRole'),
  address: mysqlAddress,
  variables: mysqlVariables,
};
