import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import jsonpatch from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import { startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { satelliteCli } from '../runtimes/helpers.ts';
import { quietLog, run } from '../https-proxy/helpers.ts';
import { ImageWebhook, ORIGINAL_IMAGES_ANNOTATION, webhookManifests, type WebhookConfig } from '../../src/webhook/index.ts';
import { SiteCa } from '../../src/https-proxy/index.ts';

const SATELLITE = 'satellite.site.example:8585';

/** A pod as the real kubectl renders it: the pod template of `kubectl create deployment --dry-run=client`. */
async function kubectlPod(images: string[]): Promise<Record<string, any>> {
  const r = await run('kubectl', ['create', 'deployment', 'web', ...images.map((i) => `--image=${i}`), '--dry-run=client', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const template = JSON.parse(r.stdout).spec.template;
  return { apiVersion: 'v1', kind: 'Pod', metadata: template.metadata, spec: template.spec };
}

function admissionReview(pod: unknown, uid: string, namespace = 'shop'): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      object: pod,
    },
  };
}

/** POSTs over HTTPS, trusting only the site CA; status and parsed body. */
function post(port: number, ca: string, body: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, headers: { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends the review and applies the returned JSONPatch with a JSONPatch library. */
async function mutate(port: number, ca: string, pod: Record<string, any>, uid: string): Promise<{ pod: Record<string, any>; patched: boolean }> {
  const res = await post(port, ca, JSON.stringify(admissionReview(pod, uid)));
  assert.equal(res.status, 200);
  assert.equal(res.body.apiVersion, 'admission.k8s.io/v1');
  assert.equal(res.body.response.uid, uid);
  assert.equal(res.body.response.allowed, true);
  if (!res.body.response.patch) return { pod, patched: false };
  assert.equal(res.body.response.patchType, 'JSONPatch');
  const ops = JSON.parse(Buffer.from(res.body.response.patch, 'base64').toString('utf8'));
  return { pod: jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument, patched: true };
}

const images = (pod: Record<string, any>, list = 'containers') => (pod.spec[list] as Array<{ image: string }>).map((c) => c.image);

test('webhook (policy exists): rewrites only images the satellite holds, keeps digests, is idempotent; malformed reviews get 400', async (t) => {
  const sat = await startSatellite(t, {
    config: {
      webhook: {
        enabled: true,
        listen: { host: '127.0.0.1', port: 0 },
        url: 'https://127.0.0.1:8443/mutate',
        registry: SATELLITE,
        rewrite: [{ registry: 'registry.example.com' }],
      },
    },
  });
  const port = (JSON.parse((await sat.waitForLog(/"msg":"webhook listening"/)).input) as { port: number }).port;
  const ca = await readFile(join(sat.dataDir, 'site-ca', 'ca.crt'), 'utf8');
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'webhook', layerSizes: [64 * 1024] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${sat.host}/app:v1`);

  const held = 'registry.example.com/app:v1';
  const pinned = `registry.example.com/app@${img.manifestDigest}`;
  const missing = 'registry.example.com/missing:v1';
  const other = 'docker.io/library/nginx:1.25';
  const pod = await kubectlPod([held, pinned, missing, other]);
  // kubectl names both app containers "app"; a real Pod needs unique names.
  pod.spec.containers[1].name = 'pinned';
  // kubectl has no generator for init and ephemeral containers: the same rendered container objects.
  pod.spec.initContainers = [{ ...pod.spec.containers[0], name: 'init' }];
  pod.spec.ephemeralContainers = [{ ...pod.spec.containers[1], name: 'debug' }];

  const first = await mutate(port, ca, pod, 'uid-1');
  assert.equal(first.patched, true);
  assert.deepEqual(images(first.pod), [`${SATELLITE}/app:v1`, `${SATELLITE}/app@${img.manifestDigest}`, missing, other]);
  assert.deepEqual(images(first.pod, 'initContainers'), [`${SATELLITE}/app:v1`]);
  assert.deepEqual(images(first.pod, 'ephemeralContainers'), [`${SATELLITE}/app@${img.manifestDigest}`]);
  assert.deepEqual(JSON.parse(first.pod.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION]), {
    'initContainers/init': held,
    'containers/app': held,
    'containers/pinned': pinned,
    'ephemeralContainers/debug': pinned,
  });
  assert.deepEqual(first.pod.metadata.labels, pod.metadata.labels, 'labels untouched');

  // Reinvocation (reinvocationPolicy IfNeeded): nothing left to change.
  const again = await mutate(port, ca, first.pod, 'uid-2');
  assert.equal(again.patched, false);

  // kube-system is excluded by default.
  const sys = await post(port, ca, JSON.stringify(admissionReview(pod, 'uid-3', 'kube-system')));
  assert.equal(sys.body.response.allowed, true);
  assert.equal(sys.body.response.patch, undefined);

  for (const bad of ['not json', '{"apiVersion":"v1","kind":"AdmissionReview"}', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} })]) {
    const res = await post(port, ca, bad);
    assert.equal(res.status, 400, bad);
    assert.equal(typeof res.body.error, 'string');
  }
  // Still serving after them.
  assert.equal((await mutate(port, ca, pod, 'uid-4')).patched, true);

  // The manifest generator: caBundle is the site CA, Ignore, timeout <= 5 s, IfNeeded.
  const out = await satelliteCli(['webhook', 'manifests', '--config', sat.configFile]);
  assert.equal(out.code, 0, out.stderr);
  const alias = await satelliteCli(['runtime', 'webhook-config', '--config', sat.configFile]);
  assert.equal(alias.stdout, out.stdout);
  const mwc = parseYaml(out.stdout);
  assert.equal(mwc.kind, 'MutatingWebhookConfiguration');
  const hook = mwc.webhooks[0];
  assert.equal(Buffer.from(hook.clientConfig.caBundle, 'base64').toString('utf8'), ca);
  assert.equal(hook.clientConfig.url, 'https://127.0.0.1:8443/mutate');
  assert.equal(hook.failurePolicy, 'Ignore');
  assert.ok(hook.timeoutSeconds <= 5);
  assert.equal(hook.reinvocationPolicy, 'IfNeeded');
  assert.deepEqual(hook.admissionReviewVersions, ['v1']);
  assert.deepEqual(hook.rules[0].resources, ['pods']);
  assert.deepEqual(hook.namespaceSelector.matchExpressions[0], { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] });
});

const BASE_CONFIG: WebhookConfig = {
  enabled: true,
  listen: { host: '127.0.0.1', port: 0 },
  url: 'https://127.0.0.1/mutate',
  registry: SATELLITE,
  rewrite: [{ registry: 'registry.example.com' }, { registry: 'docker.io', repositoryPrefix: 'hub' }],
  policy: 'always',
  namespaces: { include: [], exclude: ['kube-system'] },
  images: { include: [], exclude: ['*:latest'] },
  failurePolicy: 'Ignore',
  timeoutSeconds: 3,
  name: 'images.harbor-satellite.io',
};

async function startWebhookInProcess(t: TestContext, over: Partial<WebhookConfig>): Promise<{ port: number; ca: string }> {
  const dir = await makeTempDir(t, 'hs-site-ca-');
  const ca = await SiteCa.open(dir, quietLog);
  const config: WebhookConfig = { ...BASE_CONFIG, ...over };
  const webhook = new ImageWebhook({ config, log: quietLog, ca, holds: () => false });
  const address = await webhook.start();
  t.after(() => webhook.close());
  return { port: address.port, ca: ca.certPem };
}

test('webhook (policy always): every image of a listed registry is rewritten (air-gapped), docker.io names normalised, excluded patterns kept', async (t) => {
  const { port, ca } = await startWebhookInProcess(t, {});
  const pod = await kubectlPod(['registry.example.com/missing:v1', 'nginx:1.25', 'registry.example.com/tools:latest', 'quay.io/x/y:1']);
  const { pod: out } = await mutate(port, ca, pod, 'uid-a');
  assert.deepEqual(images(out), [`${SATELLITE}/missing:v1`, `${SATELLITE}/hub/library/nginx:1.25`, 'registry.example.com/tools:latest', 'quay.io/x/y:1']);
  // A pod with no annotations at all gets the annotation map created.
  assert.equal(typeof out.metadata.annotations[ORIGINAL_IMAGES_ANNOTATION], 'string');
  // Not a Pod: allowed, no patch.
  const res = await post(port, ca, JSON.stringify({ ...(admissionReview(pod, 'uid-b') as object), request: { uid: 'uid-b', kind: { group: 'apps', kind: 'Deployment' }, object: {} } }));
  assert.equal(res.status, 200);
  assert.equal(res.body.response.patch, undefined);
});

test('webhook.service: manifests hold a selector-less Service and Endpoints, and the certificate names the Service', async (t) => {
  const service = { name: 'satellite-webhook', namespace: 'harbor', address: '10.20.0.5' };
  const { port, ca } = await startWebhookInProcess(t, { url: undefined, service, listen: { host: '127.0.0.1', port: 0 } });
  // TLS as the API server does it: to the Service's DNS name, trusting only the caBundle.
  const { connect } = await import('node:tls');
  const verified = await new Promise<boolean>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'satellite-webhook.harbor.svc', ca }, () => {
      resolve(s.authorized);
      s.end();
    });
    s.on('error', reject);
  });
  assert.equal(verified, true);
  const docs = webhookManifests({ ...BASE_CONFIG, url: undefined, service, listen: { host: '0.0.0.0', port: 8443 } }, ca);
  assert.deepEqual(docs.map((d) => d.kind), ['Service', 'Endpoints', 'MutatingWebhookConfiguration']);
  const [svc, ep, mwc] = docs as any[];
  assert.equal(svc.spec.selector, undefined);
  assert.deepEqual(svc.spec.ports, [{ name: 'webhook', port: 443, targetPort: 8443, protocol: 'TCP' }]);
  assert.deepEqual(ep.subsets, [{ addresses: [{ ip: '10.20.0.5' }], ports: [{ name: 'webhook', port: 8443, protocol: 'TCP' }] }]);
  assert.deepEqual(mwc.webhooks[0].clientConfig.service, { name: 'satellite-webhook', namespace: 'harbor', path: '/mutate', port: 443 });
});
