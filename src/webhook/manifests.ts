import type { WebhookConfig } from './config-schema.ts';

/**
 * The MutatingWebhookConfiguration for `kubectl apply -f -`: Pods on CREATE, the satellite's URL,
 * the site CA as caBundle, failurePolicy Ignore (a satellite that is down never blocks a pod),
 * reinvocationPolicy IfNeeded (images added by later webhooks are rewritten too), sideEffects None.
 */
export function webhookManifests(config: WebhookConfig, caPem: string): Record<string, unknown> {
  const { include, exclude } = config.namespaces;
  const namespaceSelector =
    include.length > 0
      ? { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: include.filter((n) => !exclude.includes(n)) }] }
      : exclude.length > 0
        ? { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: exclude }] }
        : {};
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: config.name, labels: { 'app.kubernetes.io/managed-by': 'harbor-satellite' } },
    webhooks: [
      {
        name: config.name,
        admissionReviewVersions: ['v1'],
        clientConfig: { url: config.url, caBundle: Buffer.from(caPem).toString('base64') },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        namespaceSelector,
        failurePolicy: config.failurePolicy,
        sideEffects: 'None',
        timeoutSeconds: config.timeoutSeconds,
        reinvocationPolicy: 'IfNeeded',
        matchPolicy: 'Equivalent',
      },
    ],
  };
}
