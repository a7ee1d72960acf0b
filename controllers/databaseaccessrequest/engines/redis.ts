// Redis (KubeVault's RedisRole). The address comes from the database AppBinding (a redis:// or rediss:// URL, or
// its service; port 6379 by default; the logical database from the URL's path, 0 if none). Variables: URI-escaped
// forms, and the scheme (rediss when the AppBinding says TLS: a rediss URL or a caBundle).
import type { AppBinding } from '../../../api/index.ts';
import { DEFAULT_PORTS, databaseEndpoint } from '../../shared/database-connection.ts';
import type { DatabaseAddress, DatabaseEngine, TemplateVariables } from '../engine.ts';
import type { AddressVariables } from '../template.ts';
import { roleLookup, uriCredential, uriHost } from './common.ts';

export const REDIS_TEMPLATE_VARIABLES = {
  username: 'the ACL user name',
  password: 'the password, as is',
  urlUser: 'username, percent-encoded for a URI',
  urlPassword: 'password, percent-encoded for a URI',
  host: 'the Redis host, from its AppBinding',
  urlHost: 'host, in brackets if it is an IPv6 address',
  port: 'the Redis port (6379 unless the AppBinding says otherwise)',
  dbname: "the logical database number (the AppBinding URL's path; 0 if none)",
  scheme: 'redis, or rediss when the AppBinding says TLS (a rediss:// URL or a caBundle)',
} as const;

const ADDRESS_VARIABLES = ['host', 'urlHost', 'port', 'dbname', 'scheme'] as const;

export function redisAddress(ab: AppBinding): DatabaseAddress {
  const ep = databaseEndpoint(ab, DEFAULT_PORTS.redis);
  const tls = ep.scheme === 'rediss' || !!ab.spec.clientConfig.caBundle;
  return { host: ep.host, port: String(ep.port), dbname: ep.path || '0', params: { scheme: tls ? 'rediss' : 'redis' } };
}

export const redisVariables: TemplateVariables = {
  known: REDIS_TEMPLATE_VARIABLES,
  address(address: DatabaseAddress | undefined, whyNone: string): AddressVariables {
    if (!address) return { values: {}, unavailable: Object.fromEntries(ADDRESS_VARIABLES.map((v) => [v, whyNone])) };
    return {
      values: {
        host: address.host,
        urlHost: uriHost(address.host),
        port: address.port,
        dbname: address.dbname,
        scheme: address.params.scheme ?? 'redis',
      },
      unavailable: {},
    };
  },
  credential(cred: { username: string; password: string }): Record<string, string> {
    return {
      ...uriCredential(cred),
    };
  },
  defaults(address: AddressVariables): Record<string, string> {
    if (address.values.host === undefined) return {};
    return {
      host: '<%host%>',
      port: '<%port%>',
      database: '<%dbname%>',
      uri: '<%scheme%>://<%urlUser%>:<%urlPassword%>@<%urlHost%>:<%port%>/<%dbname%>',
    };
  },
};

export const redis: DatabaseEngine = { ...roleLookup('RedisRole'), address: redisAddress, variables: redisVariables };
