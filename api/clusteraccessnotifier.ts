// ClusterAccessNotifier (leasehold.dev/v1alpha1, cluster-scoped): an AccessNotifier (accessnotifier.ts) for
// requests of many namespaces, chosen by name or by namespace labels; its Secrets are read from the operator's
// namespace (--operator-namespace), as cert-manager's ClusterIssuer reads its Secrets from its own namespace.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  NOTIFIER_GROUP,
  NOTIFIER_VERSION,
  accessNotifierStatusSchema,
  labelSelectorSchema,
  notifierPrinterColumns,
  notifierProperties,
  type AccessNotifierStatus,
} from './accessnotifier.ts';
import type { KindDefinition } from './crd.ts';
import { namespaceNameSchema } from './meta.ts';
import { array, describe, object, type Static } from './schema.ts';

export const clusterAccessNotifierSpecSchema = object({
  description: 'Which requests of which namespaces to notify about, what about, and where to.',
  properties: {
    namespaces: array(namespaceNameSchema('A namespace.'), {
      description: 'Only requests in these namespaces. With namespaceSelector, a namespace must pass both.',
      maxItems: 256,
      listType: 'set',
    }),
    namespaceSelector: describe(
      labelSelectorSchema,
      'Only requests in namespaces whose labels match. Neither this nor namespaces: every namespace.',
    ),
    ...notifierProperties,
  },
  rules: [{ rule: 'has(self.webhook) != has(self.slack)', message: 'set exactly one of webhook and slack' }],
});
export type ClusterAccessNotifierSpec = Static<typeof clusterAccessNotifierSpecSchema>;

export interface ClusterAccessNotifier {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta;
  spec: ClusterAccessNotifierSpec;
  status?: AccessNotifierStatus;
}

export const CLUSTER_ACCESS_NOTIFIER = {
  group: NOTIFIER_GROUP,
  version: NOTIFIER_VERSION,
  kind: 'ClusterAccessNotifier',
  listKind: 'ClusterAccessNotifierList',
  plural: 'clusteraccessnotifiers',
  singular: 'clusteraccessnotifier',
  namespaced: false,
  shortNames: ['can'],
  categories: ['leasehold'],
  description:
    'ClusterAccessNotifier sends notifications about the DatabaseAccessRequests of the namespaces it selects to ' +
    'an HTTPS webhook or a Slack-compatible incoming webhook; its Secrets live in the operator’s namespace.',
  spec: clusterAccessNotifierSpecSchema,
  specRequired: true,
  status: accessNotifierStatusSchema,
  rules: [],
  printerColumns: notifierPrinterColumns,
} as const satisfies KindDefinition;
