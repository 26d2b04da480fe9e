import type { WebhookConfig } from './config-schema.ts';

/**
 * The objects for `kubectl apply -f -` (with webhook.service: a Service and Endpoints first), then
 * the MutatingWebhookConfiguration: Pods on CREATE, the satellite's URL or Service,
 * the site CA as caBundle, failurePolicy Ignore (a satellite that is down never blocks a pod),
 * reinvocationPolicy IfNeeded (images added by later webhooks are rewritten too), sideEffects None.
 */
export function webhookManifests(config: WebhookConfig, caPem: string): Array<Record<string, unknown>> {
  const { include, exclude } = config.namespaces;
  const namespaceSelector =
    include.length > 0
      ? { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: include.filter((n) => !exclude.includes(n)) }] }
      : exclude.length > 0
        ? { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: exclude }] }
        : {};
  const labels = { 'app.kubernetes.io/managed-by': 'harbor-satellite' };
  const svc = config.service;
  const out: Array<Record<string, unknown>> = [];
  if (svc) {
    // A selector-less Service and its Endpoints: the satellite runs outside the cluster's pods.
    const metadata = { name: svc.name, namespace: svc.namespace, labels };
    out.push({ apiVersion: 'v1', kind: 'Service', metadata, spec: { ports: [{ name: 'webhook', port: 443, targetPort: config.listen.port, protocol: 'TCP' }] } });
    out.push({ apiVersion: 'v1', kind: 'Endpoints', metadata, subsets: [{ addresses: [{ ip: svc.address }], ports: [{ name: 'webhook', port: config.listen.port, protocol: 'TCP' }] }] });
  }
  const path = config.url ? new URL(config.url).pathname : '/mutate';
  const clientConfig = svc
    ? { service: { name: svc.name, namespace: svc.namespace, path, port: 443 }, caBundle: Buffer.from(caPem).toString('base64') }
    : { url: config.url, caBundle: Buffer.from(caPem).toString('base64') };
  out.push({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: config.name, labels },
    webhooks: [
      {
        name: config.name,
        admissionReviewVersions: ['v1'],
        clientConfig,
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        namespaceSelector,
        failurePolicy: config.failurePolicy,
        sideEffects: 'None',
        timeoutSeconds: config.timeoutSeconds,
        reinvocationPolicy: 'IfNeeded',
        matchPolicy: 'Equivalent',
      },
    ],
  });
  return out;
}
