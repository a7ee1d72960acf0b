// The API in one import: every kind's definition, types and schema, the shared names in meta.ts, and the
// words status and Events are written in (vocabulary.ts).
import { ACCESS_NOTIFIER } from './accessnotifier.ts';
import { APP_BINDING } from './appbinding.ts';
import { CLUSTER_ACCESS_NOTIFIER } from './clusteraccessnotifier.ts';
import type { KindDefinition } from './crd.ts';
import { DATABASE_ACCESS_REQUEST } from './databaseaccessrequest.ts';
import { MARIADB_ROLE, MYSQL_ROLE } from './mysqlrole.ts';
import { POSTGRES_ROLE } from './postgresrole.ts';
import { REDIS_ROLE } from './redisrole.ts';
import { SECRET_ENGINE } from './secretengine.ts';

export * from './accessnotifier.ts';
export * from './appbinding.ts';
export * from './clusteraccessnotifier.ts';
export * from './databaseaccessrequest.ts';
export * from './duration.ts';
export * from './meta.ts';
export * from './mysqlrole.ts';
export * from './postgresrole.ts';
export * from './redisrole.ts';
export * from './role.ts';
export * from './secretengine.ts';
export * from './vocabulary.ts';
export type { KindDefinition, PrinterColumn } from './crd.ts';

/** Every kind Leasehold serves, in the order their CRDs are listed. */
export const KINDS: readonly KindDefinition[] = [
  APP_BINDING,
  SECRET_ENGINE,
  POSTGRES_ROLE,
  MYSQL_ROLE,
  MARIADB_ROLE,
  REDIS_ROLE,
  DATABASE_ACCESS_REQUEST,
  ACCESS_NOTIFIER,
  CLUSTER_ACCESS_NOTIFIER,
];
