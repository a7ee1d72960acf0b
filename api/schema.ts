// A small typed builder for structural OpenAPI v3 schemas (the dialect of apiextensions.k8s.io/v1).
// Each builder returns the JSON schema and carries, as a phantom type, the TypeScript type of the values it
// admits, so `Static<typeof schema>` is the type controllers use: the schema and the type can't drift apart.
//
// Every builder requires a description: it is what `kubectl explain` shows, and the only documentation most
// users of a CRD ever read.

/** One `x-kubernetes-validations` entry (a CEL rule). */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** Where the error points, relative to the schema node carrying the rule, e.g. `.spec.subjects`. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** The subset of JSONSchemaProps that structural CRD schemas use, with the real JSON field names. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  pattern?: string;
  enum?: readonly (string | number | boolean)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  additionalProperties?: JSONSchemaProps;
  'x-kubernetes-validations'?: ValidationRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-embedded-resource'?: true;
}

declare const valueType: unique symbol;

/** A schema whose admitted values have type T (T exists only at compile time). */
export type Schema<T> = JSONSchemaProps & { readonly [valueType]?: T };

/** The TypeScript type of the values a schema admits. */
export type Static<S> = S extends Schema<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] };

type AnySchema = Schema<unknown>;

interface Common {
  description: string;
  rules?: ValidationRule[];
}

function common(o: Common): JSONSchemaProps {
  return { description: o.description, ...(o.rules?.length ? { 'x-kubernetes-validations': o.rules } : {}) };
}

export interface StringOptions extends Common {
  pattern?: string;
  format?: 'date-time' | 'byte';
  minLength?: number;
  /** Required: CEL cost estimates treat an unbounded string as huge, and a bound documents intent. */
  maxLength: number;
  default?: string;
}

export function string(o: StringOptions): Schema<string> {
  return {
    type: 'string',
    ...common(o),
    ...(o.format ? { format: o.format } : {}),
    ...(o.pattern ? { pattern: o.pattern } : {}),
    ...(o.minLength !== undefined ? { minLength: o.minLength } : {}),
    maxLength: o.maxLength,
    ...(o.default !== undefined ? { default: o.default } : {}),
  };
}

export interface EnumOptions<V extends string> extends Common {
  default?: V;
}

export function enumeration<const V extends readonly string[]>(
  values: V,
  o: EnumOptions<V[number]>,
): Schema<V[number]> {
  return { type: 'string', ...common(o), enum: values, ...(o.default !== undefined ? { default: o.default } : {}) };
}

export interface NumberOptions extends Common {
  minimum?: number;
  maximum?: number;
  format?: 'int32' | 'int64' | 'double';
  default?: number;
}

export function integer(o: NumberOptions): Schema<number> {
  return numeric('integer', o);
}

export function number(o: NumberOptions): Schema<number> {
  return numeric('number', o);
}

function numeric(type: 'integer' | 'number', o: NumberOptions): JSONSchemaProps {
  return {
    type,
    ...common(o),
    ...(o.format ? { format: o.format } : {}),
    ...(o.minimum !== undefined ? { minimum: o.minimum } : {}),
    ...(o.maximum !== undefined ? { maximum: o.maximum } : {}),
    ...(o.default !== undefined ? { default: o.default } : {}),
  };
}

export function boolean(o: Common & { default?: boolean }): Schema<boolean> {
  return { type: 'boolean', ...common(o), ...(o.default !== undefined ? { default: o.default } : {}) };
}

export interface ArrayOptions extends Common {
  minItems?: number;
  /** Required for the same reason as StringOptions.maxLength. */
  maxItems: number;
  listType?: 'atomic' | 'set' | 'map';
  listMapKeys?: string[];
  default?: unknown[];
}

export function array<T>(items: Schema<T>, o: ArrayOptions): Schema<T[]> {
  return {
    type: 'array',
    ...common(o),
    items,
    ...(o.minItems !== undefined ? { minItems: o.minItems } : {}),
    maxItems: o.maxItems,
    ...(o.listType ? { 'x-kubernetes-list-type': o.listType } : {}),
    ...(o.listMapKeys ? { 'x-kubernetes-list-map-keys': o.listMapKeys } : {}),
    ...(o.default !== undefined ? { default: o.default } : {}),
  };
}

export interface MapOptions extends Common {
  maxProperties: number;
}

/** An object used as a map from string keys to `values`. */
export function stringMap<T>(values: Schema<T>, o: MapOptions): Schema<Record<string, T>> {
  return { type: 'object', ...common(o), additionalProperties: values, maxProperties: o.maxProperties };
}

type Props = Record<string, AnySchema>;
type ObjectOf<P extends Props, R extends keyof P> = Simplify<
  { [K in R]: Static<P[K]> } & { [K in Exclude<keyof P, R>]?: Static<P[K]> }
>;

export interface ObjectOptions<P extends Props, R extends keyof P> extends Common {
  properties: P;
  required?: readonly R[];
  minProperties?: number;
  /** Keep fields this schema doesn't name (e.g. parameters meant for other kinds). */
  preserveUnknownFields?: boolean;
}

export function object<P extends Props, const R extends keyof P & string = never>(
  o: ObjectOptions<P, R>,
): Schema<ObjectOf<P, R>> {
  return {
    type: 'object',
    ...common(o),
    properties: o.properties as Record<string, JSONSchemaProps>,
    ...(o.required?.length ? { required: [...o.required] } : {}),
    ...(o.minProperties !== undefined ? { minProperties: o.minProperties } : {}),
    ...(o.preserveUnknownFields ? { 'x-kubernetes-preserve-unknown-fields': true as const } : {}),
  };
}

/**
 * An embedded Kubernetes object (RawExtension with apiVersion and kind, which the API server then requires).
 * Fields named in `properties` are validated; any other field is kept as written.
 */
export function embeddedResource<P extends Props>(
  o: Common & { properties: P },
): Schema<
  Simplify<{ apiVersion: string; kind: string } & { [K in keyof P]?: Static<P[K]> } & Record<string, unknown>>
> {
  return {
    type: 'object',
    ...common(o),
    properties: o.properties as Record<string, JSONSchemaProps>,
    'x-kubernetes-embedded-resource': true,
    'x-kubernetes-preserve-unknown-fields': true,
  };
}

/** Adds CEL rules to an existing schema (keeps its type). */
export function withRules<T>(s: Schema<T>, rules: ValidationRule[]): Schema<T> {
  return { ...s, 'x-kubernetes-validations': [...(s['x-kubernetes-validations'] ?? []), ...rules] };
}

/** Replaces the description of a shared schema where it is used for something more specific. */
export function describe<T>(s: Schema<T>, description: string): Schema<T> {
  return { ...s, description };
}
