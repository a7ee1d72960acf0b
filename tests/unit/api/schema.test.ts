// Checks on the schemas that the API server would only report one at a time (or not at all): every field is
// documented and bounded, references inside a schema point at fields that exist.
import test from 'ava';
import { objectSchema, renderCrd } from '../../../api/crd.ts';
import {
  DATABASE_ACCESS_REQUEST,
  ENGINE_PHASES,
  FINALIZER,
  KINDS,
  REQUEST_PHASES,
  RequestPhase,
  type KindDefinition,
} from '../../../api/index.ts';
import type { JSONSchemaProps } from '../../../api/schema.ts';
import type { ResourceType } from '../../../lib/runtime/types.ts';

function* walk(node: JSONSchemaProps, at: string): Generator<[string, JSONSchemaProps]> {
  yield [at, node];
  for (const [k, child] of Object.entries(node.properties ?? {})) yield* walk(child, `${at}.${k}`);
  if (node.items) yield* walk(node.items, `${at}[]`);
  if (node.additionalProperties) yield* walk(node.additionalProperties, `${at}{}`);
}

function nodes(def: KindDefinition): Array<[string, JSONSchemaProps]> {
  return [...walk(objectSchema(def), def.kind)].filter(([at]) => !at.endsWith('.metadata'));
}

test('every field has a type and a description', (t) => {
  for (const def of KINDS) {
    for (const [at, node] of nodes(def)) {
      t.truthy(node.type, `${at} has no type`);
      t.truthy(node.description?.trim(), `${at} has no description`);
    }
  }
});

test('every string and list is bounded, so CEL cost estimates stay small', (t) => {
  for (const def of KINDS) {
    for (const [at, node] of nodes(def)) {
      if (at === `${def.kind}.apiVersion` || at === `${def.kind}.kind`) continue; // the API server's own fields
      if (node.type === 'string' && !node.enum) t.truthy(node.maxLength, `${at} has no maxLength`);
      if (node.type === 'array') t.truthy(node.maxItems, `${at} has no maxItems`);
      if (node.type === 'object' && node.additionalProperties)
        t.truthy(node.maxProperties, `${at} has no maxProperties`);
    }
  }
});

test('required fields and list-map keys name fields that exist', (t) => {
  for (const def of KINDS) {
    for (const [at, node] of nodes(def)) {
      for (const r of node.required ?? [])
        t.truthy(node.properties?.[r], `${at} requires ${r}, which it doesn't define`);
      for (const key of node['x-kubernetes-list-map-keys'] ?? []) {
        const item = node.items!;
        t.true(
          item.required?.includes(key) || item.properties?.[key]?.default !== undefined,
          `${at}: map key ${key} must be required or defaulted`,
        );
      }
    }
  }
});

test('patterns compile and defaults satisfy their own schema', (t) => {
  for (const def of KINDS) {
    for (const [at, node] of nodes(def)) {
      if (node.pattern) t.notThrows(() => new RegExp(node.pattern!, 'u'), at);
      if (node.default === undefined) continue;
      if (node.enum) t.true(node.enum.includes(node.default as string), `${at}: default not in enum`);
      if (node.pattern && typeof node.default === 'string') t.regex(node.default, new RegExp(node.pattern, 'u'), at);
      if (node.type === 'array') t.true(Array.isArray(node.default), at);
    }
  }
});

test('printer columns read fields the schema defines', (t) => {
  for (const def of KINDS) {
    const schema = objectSchema(def);
    for (const col of def.printerColumns) {
      let node: JSONSchemaProps | undefined = schema;
      for (const part of col.jsonPath.split('.').slice(1))
        node =
          part === 'metadata'
            ? { type: 'object', properties: { creationTimestamp: { type: 'string' } } }
            : node?.properties?.[part];
      t.truthy(node, `${def.kind} column ${col.name} reads ${col.jsonPath}, which the schema lacks`);
    }
  }
});

test('the names KubeVault users type still work', (t) => {
  const names = KINDS.map((d) => renderCrd(d))
    .map((crd) => (crd.metadata as { name: string }).name)
    .sort();
  t.deepEqual(names, [
    'accessnotifiers.leasehold.dev',
    'appbindings.appcatalog.appscode.com',
    'clusteraccessnotifiers.leasehold.dev',
    'databaseaccessrequests.engine.kubevault.com',
    'mariadbroles.engine.kubevault.com',
    'mysqlroles.engine.kubevault.com',
    'postgresroles.engine.kubevault.com',
    'redisroles.engine.kubevault.com',
    'secretengines.engine.kubevault.com',
  ]);
  t.deepEqual(DATABASE_ACCESS_REQUEST.shortNames, ['dar']);
  for (const def of KINDS) t.true(def.categories.includes('leasehold'), def.kind);
});

test('phase enums are the exported phase constants', (t) => {
  const phaseOf = (def: KindDefinition) => (def.status.properties?.phase?.enum ?? []) as readonly string[];
  t.deepEqual(phaseOf(DATABASE_ACCESS_REQUEST), REQUEST_PHASES);
  t.true(REQUEST_PHASES.includes(RequestPhase.WaitingForApproval));
  for (const def of KINDS.filter((d) => d.kind === 'SecretEngine' || d.kind.endsWith('Role')))
    t.deepEqual(phaseOf(def), ENGINE_PHASES);
});

test('the finalizer is domain-qualified, as the API server recommends', (t) => {
  t.regex(FINALIZER, /^[a-z0-9.-]+\/[a-z0-9-]+$/);
});

test('kind definitions address their resources for the kube client as they are', (t) => {
  const resources: readonly ResourceType[] = KINDS; // checked by tsc: no second list of plurals to keep in step
  t.deepEqual(
    resources.map((r) => `${r.plural}.${r.group}/${r.version}`),
    [
      'appbindings.appcatalog.appscode.com/v1alpha1',
      'secretengines.engine.kubevault.com/v1alpha1',
      'postgresroles.engine.kubevault.com/v1alpha1',
      'mysqlroles.engine.kubevault.com/v1alpha1',
      'mariadbroles.engine.kubevault.com/v1alpha1',
      'redisroles.engine.kubevault.com/v1alpha1',
      'databaseaccessrequests.engine.kubevault.com/v1alpha1',
      'accessnotifiers.leasehold.dev/v1alpha1',
      'clusteraccessnotifiers.leasehold.dev/v1alpha1',
    ],
  );
});

test('every role kind has the same approval, Secret layout, renewal, tenancy and TTL fields, status and columns as a PostgresRole', (t) => {
  const roles = KINDS.filter((d) => d.kind.endsWith('Role'));
  t.deepEqual(
    roles.map((d) => d.kind),
    ['PostgresRole', 'MySQLRole', 'MariaDBRole', 'RedisRole'],
  );
  const postgres = roles[0]!;
  const shared = [
    'approval',
    'secretTemplate',
    'renewFraction',
    'allowedRequestNamespaces',
    'defaultTTL',
    'maxTTL',
    'secretEngineRef',
  ];
  for (const def of roles.slice(1)) {
    for (const field of shared)
      t.deepEqual(def.spec.properties?.[field], postgres.spec.properties?.[field], `${def.kind}.spec.${field}`);
    t.deepEqual(def.status, postgres.status, `${def.kind}.status`);
    t.deepEqual(def.printerColumns, postgres.printerColumns, `${def.kind} columns`);
    t.true(def.spec.required?.includes('creationStatements'), `${def.kind} requires creationStatements`);
  }
  // KubeVault's 2021 style (vaultRef, path, databaseRef | databaseName) is PostgresRole's and MySQLRole's only.
  for (const def of roles)
    t.is(!!def.spec.properties?.vaultRef, def.kind === 'PostgresRole' || def.kind === 'MySQLRole', def.kind);
});

test("a SecretEngine connects to exactly one of the databases Leasehold serves, each under KubeVault's field", (t) => {
  const spec = KINDS.find((d) => d.kind === 'SecretEngine')!.spec;
  for (const field of ['postgres', 'mysql', 'mariadb', 'redis'])
    t.deepEqual(spec.properties?.[field]?.required, ['databaseRef'], field);
  t.false('mongodb' in (spec.properties ?? {}));
  t.true(
    spec['x-kubernetes-validations']!.some((r) =>
      /exactly one of postgres, mysql, mariadb, redis/.test(r.message ?? ''),
    ),
  );
});
