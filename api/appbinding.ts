// AppBinding (appcatalog.appscode.com/v1alpha1): how to reach a service and with which credentials. KubeVault
// uses one for the Vault server (its parameters say how to log in) and one per database (its secret holds the
// admin username and password Vault connects with). Same schema as kmodules' AppBinding, plus a status.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { KindDefinition } from './crd.ts';
import {
  APPCATALOG_API_VERSION,
  APPCATALOG_GROUP,
  APPCATALOG_VERSION,
  DNS1035_LABEL,
  SECRET_KEY_PATTERN,
  conditionsSchema,
  namespaceNameSchema,
  objectNameSchema,
} from './meta.ts';
import { array, boolean, embeddedResource, enumeration, integer, object, string, type Static } from './schema.ts';

const secretKey = (description: string) =>
  string({ description, pattern: SECRET_KEY_PATTERN, minLength: 1, maxLength: 253 });

export const serviceReferenceSchema = object({
  description: 'A Service to connect to; the URL becomes <scheme>://<name>.<namespace>.svc:<port>/<path>?<query>.',
  required: ['scheme', 'name', 'port'],
  properties: {
    scheme: string({
      description: 'URL scheme, e.g. https or postgresql.',
      pattern: '^[A-Za-z][A-Za-z0-9+.-]*$',
      minLength: 1,
      maxLength: 32,
    }),
    name: string({ description: 'Name of the Service.', pattern: DNS1035_LABEL, minLength: 1, maxLength: 63 }),
    namespace: namespaceNameSchema("Namespace of the Service. Defaults to the AppBinding's namespace."),
    port: integer({ description: 'Port of the Service.', format: 'int32', minimum: 1, maximum: 65535 }),
    path: string({ description: 'URL path, e.g. the database name "postgres".', maxLength: 1024 }),
    query: string({
      description: 'URL query string without the leading "?", e.g. "sslmode=disable".',
      maxLength: 2048,
    }),
  },
});

export const clientConfigSchema = object({
  description: 'How to reach the service: either url or service.',
  properties: {
    url: string({
      description:
        'The address as an absolute URL, e.g. https://vault.example.com:8200; for MySQL and MariaDB also the Go ' +
        "driver's form KubeDB writes, tcp(host:port)/database.",
      maxLength: 2048,
      rules: [
        {
          rule: "(isURL(self) && url(self).getScheme() != '' && url(self).getHost() != '') || self.matches(r'^tcp\\([^()@/]+\\)/[^/]*$')",
          message:
            'must be an absolute URL with a scheme and a host, e.g. https://vault.example.com:8200 (or, for MySQL, tcp(host:port)/)',
        },
      ],
    }),
    service: serviceReferenceSchema,
    caBundle: string({
      description: "PEM CA certificates (base64 in the manifest) that sign the server's certificate.",
      format: 'byte',
      maxLength: 262144,
    }),
    insecureSkipTLSVerify: boolean({ description: "Skip verifying the server's certificate. For tests only." }),
    serverName: string({
      description: "Name to verify the server's certificate against, when it differs from the host.",
      maxLength: 253,
    }),
  },
  rules: [{ rule: 'has(self.url) != has(self.service)', message: 'set exactly one of url and service' }],
});

export const secretTransformSchema = object({
  description: "One change to the credential Secret's keys before use; exactly one field is set.",
  properties: {
    renameKey: object({
      description: 'Renames a key.',
      required: ['from', 'to'],
      properties: { from: secretKey('Key to rename.'), to: secretKey('New name.') },
    }),
    addKey: object({
      description: 'Adds a key with a fixed value: value (base64) or stringValue.',
      required: ['key'],
      properties: {
        key: secretKey('Key to add.'),
        value: string({ description: 'The value, base64-encoded.', format: 'byte', maxLength: 65536 }),
        stringValue: string({ description: 'The value as plain text.', maxLength: 65536 }),
      },
      rules: [
        { rule: 'has(self.value) != has(self.stringValue)', message: 'set exactly one of value and stringValue' },
      ],
    }),
    addKeysFrom: object({
      description: 'Adds every key of another Secret.',
      required: ['secretRef'],
      properties: {
        secretRef: object({
          description: 'The Secret to copy keys from.',
          required: ['name'],
          properties: {
            name: objectNameSchema('Name of the Secret.'),
            namespace: namespaceNameSchema(
              "Namespace of the Secret (KubeVault 2021). Defaults to the AppBinding's namespace.",
            ),
          },
        }),
      },
    }),
    removeKey: object({
      description: 'Removes a key.',
      required: ['key'],
      properties: { key: secretKey('Key to remove.') },
    }),
  },
  rules: [
    {
      rule: '(has(self.renameKey) ? 1 : 0) + (has(self.addKey) ? 1 : 0) + (has(self.addKeysFrom) ? 1 : 0) + (has(self.removeKey) ? 1 : 0) == 1',
      message: 'set exactly one of renameKey, addKey, addKeysFrom and removeKey',
    },
  ],
});

const str = (description: string) => string({ description, maxLength: 253 });
const preserved = { preserveUnknownFields: true } as const;

/** The parameters of a Vault AppBinding. The fields of other kinds of parameters are kept, not checked. */
export const appBindingParametersSchema = embeddedResource({
  description:
    'Service-specific parameters: an object with apiVersion and kind. For a Vault server, a ' +
    'config.kubevault.com/v1alpha1 VaultServerConfiguration saying how to log in.',
  properties: {
    path: string({
      description: 'VaultServerConfiguration: mount path of the auth method, usually "kubernetes".',
      maxLength: 255,
    }),
    vaultRole: str('VaultServerConfiguration: the Vault role to log in with.'),
    kubernetes: object({
      description: 'VaultServerConfiguration: kubernetes auth method settings.',
      ...preserved,
      properties: {
        serviceAccountName: str("ServiceAccount whose token logs in to Vault (in the AppBinding's namespace)."),
        tokenReviewerServiceAccountName: str('ServiceAccount Vault uses to review tokens.'),
        usePodServiceAccountForCSIDriver: boolean({ description: 'Used by the CSI driver; not by Leasehold.' }),
      },
    }),
    serviceAccountName: str(
      'VaultServerConfiguration (KubeVault v0.3, flat form): same as kubernetes.serviceAccountName.',
    ),
    tokenReviewerServiceAccountName: str(
      'VaultServerConfiguration (KubeVault v0.3, flat form): same as kubernetes.tokenReviewerServiceAccountName.',
    ),
    usePodServiceAccountForCsiDriver: boolean({
      description: 'VaultServerConfiguration (KubeVault v0.3, flat form): not used by Leasehold.',
    }),
    authMethodControllerRole: str('VaultServerConfiguration (KubeVault v0.3): not used by Leasehold.'),
  },
});

export const appBindingSpecSchema = object({
  description: 'How to reach an application (Vault or a database) and with which credentials.',
  required: ['clientConfig'],
  properties: {
    type: str('Type of the application, free-form (e.g. "postgres").'),
    version: string({ description: 'Version of the application, free-form.', maxLength: 64 }),
    clientConfig: clientConfigSchema,
    secret: object({
      description:
        "The Secret, in the AppBinding's namespace, holding the credentials (for a database: the " +
        '"username" and "password" keys Vault connects with).',
      required: ['name'],
      properties: {
        name: objectNameSchema('Name of the Secret.'),
        kind: enumeration(['Secret'], { description: 'Always Secret.' }),
        apiGroup: enumeration([''], { description: 'Always "" (the core group).' }),
      },
    }),
    secretTransforms: array(secretTransformSchema, {
      description: 'Changes applied, in order, to the keys of the credential Secret before use.',
      maxItems: 32,
    }),
    parameters: appBindingParametersSchema,
    appRef: object({
      description: 'The object this AppBinding describes (newer KubeVault). Accepted; not used by Leasehold.',
      required: ['name'],
      properties: {
        apiGroup: str('API group of the object.'),
        kind: string({ description: 'Kind of the object.', maxLength: 63 }),
        name: objectNameSchema('Name of the object.'),
        namespace: namespaceNameSchema('Namespace of the object.'),
      },
    }),
    tlsSecret: object({
      description: 'Client TLS certificate Secret (newer KubeVault). Accepted; not used by Leasehold.',
      required: ['name'],
      properties: {
        name: objectNameSchema('Name of the Secret.'),
        kind: string({ description: 'Kind, "Secret".', maxLength: 63 }),
        apiGroup: str('API group, "".'),
      },
    }),
  },
});

export const appBindingStatusSchema = object({
  description: "What Leasehold last observed about the application (not part of KubeVault's AppBinding).",
  properties: {
    observedGeneration: integer({
      description: 'The metadata.generation this status describes.',
      format: 'int64',
      minimum: 0,
    }),
    conditions: conditionsSchema('Ready: the address answered when last checked.'),
  },
});

export type AppBindingSpec = Static<typeof appBindingSpecSchema>;
export type AppBindingStatus = Static<typeof appBindingStatusSchema>;
export type AppBindingParameters = Static<typeof appBindingParametersSchema>;
export type ClientConfig = Static<typeof clientConfigSchema>;
export type SecretTransform = Static<typeof secretTransformSchema>;

export interface AppBinding {
  apiVersion: typeof APPCATALOG_API_VERSION;
  kind: 'AppBinding';
  metadata: V1ObjectMeta;
  spec: AppBindingSpec;
  status?: AppBindingStatus;
}

export const APP_BINDING = {
  group: APPCATALOG_GROUP,
  version: APPCATALOG_VERSION,
  kind: 'AppBinding',
  listKind: 'AppBindingList',
  plural: 'appbindings',
  singular: 'appbinding',
  namespaced: true,
  shortNames: [],
  categories: ['catalog', 'appscode', 'all', 'leasehold'],
  description:
    'AppBinding says how to reach an application (a Vault server or a database) and which Secret ' +
    'holds the credentials to use.',
  spec: appBindingSpecSchema,
  specRequired: true,
  status: appBindingStatusSchema,
  rules: [],
  printerColumns: [
    { name: 'Type', type: 'string', jsonPath: '.spec.type', description: 'Type of the application.' },
    { name: 'Version', type: 'string', jsonPath: '.spec.version', description: 'Version of the application.' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation.' },
  ],
} as const satisfies KindDefinition;
