import { listenSchema } from '../lib/listen-schema.ts';

/**
 * The `webhook` section: a Kubernetes mutating admission webhook (HTTPS on its own port, certificate
 * from the site CA) that points pods' images at the satellite. Off by default.
 */
export interface WebhookConfig {
  enabled: boolean;
  listen: { host: string; port: number };
  /** How the kube-apiserver reaches it, e.g. https://satellite.site.example:8443/mutate (its host is a name in the certificate). */
  url?: string;
  /**
   * Reached through a Service instead of `url`: `webhook manifests` prints a selector-less Service
   * and its Endpoints (`address`, the satellite's IP as the cluster reaches it).
   */
  service?: { name: string; namespace: string; address: string };
  /** The satellite registry as nodes reach it (`host:port`), the new registry of rewritten images. */
  registry?: string;
  /** Registries whose images are rewritten; repositoryPrefix is prepended (a proxy.mirrors prefix). */
  rewrite: Array<{ registry: string; repositoryPrefix?: string }>;
  /** exists: only images the satellite holds now; always: every image of a listed registry (air-gapped sites). */
  policy: 'exists' | 'always';
  /** Namespaces: include (empty = all) minus exclude. */
  namespaces: { include: string[]; exclude: string[] };
  /** Image patterns (`*` matches any run of characters) on the original reference: include (empty = all) minus exclude. */
  images: { include: string[]; exclude: string[] };
  /** For the generated MutatingWebhookConfiguration. */
  failurePolicy: 'Ignore' | 'Fail';
  timeoutSeconds: number;
  name: string;
}

const HOSTPORT = '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$';
const strings = (pattern: string) => ({ type: 'array', maxItems: 256, default: [], items: { type: 'string', minLength: 1, maxLength: 512, pattern } }) as const;

export const webhookConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    listen: listenSchema('0.0.0.0', 8443),
    url: { type: 'string', pattern: '^https://[^\\s/]+(/[^\\s?#]*)?$' },
    service: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'namespace', 'address'],
      properties: {
        name: { type: 'string', pattern: '^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$' },
        namespace: { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' },
        address: { type: 'string', pattern: '^[0-9A-Fa-f:.]+$' },
      },
    },
    registry: { type: 'string', pattern: HOSTPORT },
    rewrite: {
      type: 'array',
      maxItems: 64,
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['registry'],
        properties: {
          registry: { type: 'string', pattern: HOSTPORT },
          repositoryPrefix: { type: 'string', maxLength: 128, pattern: '^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$' },
        },
      },
    },
    policy: { enum: ['exists', 'always'], default: 'exists' },
    namespaces: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { include: strings('^[a-z0-9-]+$'), exclude: { ...strings('^[a-z0-9-]+$'), default: ['kube-system'] } },
    },
    images: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { include: strings('^\\S+$'), exclude: strings('^\\S+$') },
    },
    failurePolicy: { enum: ['Ignore', 'Fail'], default: 'Ignore' },
    // The API server's limit is 30 s; a pod create should never wait long on an edge box.
    timeoutSeconds: { type: 'integer', minimum: 1, maximum: 5, default: 3 },
    name: { type: 'string', pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$', maxLength: 200, default: 'images.harbor-satellite.io' },
  },
  if: { properties: { enabled: { const: true } }, required: ['enabled'] },
  then: {
    properties: { url: true, service: true, registry: true, rewrite: { type: 'array', minItems: 1 } },
    required: ['registry'],
    anyOf: [
      { properties: { url: true }, required: ['url'] },
      { properties: { service: true }, required: ['service'] },
    ],
  },
} as const;
