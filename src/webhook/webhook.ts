import { createServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { listen, drainAndClose } from '../lib/http-server.ts';
import type { SiteCa } from '../https-proxy/index.ts';
import type { WebhookConfig } from './config-schema.ts';
import { PodMutator, type HoldsImage } from './mutate.ts';
import { readCapped } from '../lib/read-capped.ts';

/** AdmissionReview bodies larger than this are refused (the API server sends one object). */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface WebhookStatus {
  enabled: true;
  reviews: number;
  patched: number;
  rejected: number;
}

class BadReview extends Error {}

/**
 * Mutating admission webhook (admission.k8s.io/v1, Pods): rewrites images of the listed registries
 * to the satellite. It only ever answers allowed: true; a review it cannot read gets 400, which
 * the API server treats per failurePolicy (Ignore: the pod is created unchanged).
 */
export class ImageWebhook {
  readonly #config: WebhookConfig;
  readonly #log: Logger;
  readonly #ca: SiteCa;
  readonly #mutator: PodMutator;
  readonly #counts = { reviews: 0, patched: 0, rejected: 0 };
  #server: Server | undefined;

  constructor(opts: { config: WebhookConfig; log: Logger; ca: SiteCa; holds: HoldsImage }) {
    this.#config = opts.config;
    this.#log = opts.log;
    this.#ca = opts.ca;
    this.#mutator = new PodMutator(opts.config, opts.holds);
  }

  async start(): Promise<AddressInfo> {
    const server: Server = createServer({ ...this.#ca.keyPairFor(...certificateNames(this.#config)), minVersion: 'TLSv1.2' }, (req, res) => void this.#handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.#server = server;
    const address = await listen(server, this.#config.listen.host, this.#config.listen.port, 'webhook');
    this.#log.info({ address: address.address, port: address.port, url: this.#config.url ?? null, service: this.#config.service ?? null, policy: this.#config.policy, rewrite: this.#config.rewrite }, 'webhook listening');
    return address;
  }

  status(): WebhookStatus {
    return { enabled: true, ...this.#counts };
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await drainAndClose(server, 2000);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
    };
    if (req.method !== 'POST') {
      req.resume();
      return reply(405, { error: 'POST an admission.k8s.io/v1 AdmissionReview' });
    }
    try {
      const review = parseReview(await readCapped(req, MAX_BODY_BYTES, () => new BadReview(`body larger than ${MAX_BODY_BYTES} bytes`)));
      this.#counts.reviews++;
      reply(200, this.review(review));
    } catch (err) {
      if (!(err instanceof BadReview)) {
        this.#log.error({ err }, 'webhook request failed');
        if (!res.headersSent) reply(500, { error: 'internal error' });
        return;
      }
      this.#counts.rejected++;
      this.#log.warn({ err: err.message }, 'webhook: malformed AdmissionReview');
      reply(400, { error: err.message });
    }
  }

  /** The AdmissionReview response for a parsed request (always allowed; a patch when images change). */
  review(review: Review): unknown {
    const { request } = review;
    const response: Record<string, unknown> = { uid: request.uid, allowed: true };
    const isPod = request.kind?.kind === 'Pod' && (request.kind.group ?? '') === '' && (request.operation === undefined || request.operation === 'CREATE');
    if (isPod && !this.#mutator.skipsNamespace(request.namespace)) {
      const ops = this.#mutator.patch(request.object);
      if (ops.length > 0) {
        this.#counts.patched++;
        response.patchType = 'JSONPatch';
        response.patch = Buffer.from(JSON.stringify(ops)).toString('base64');
        this.#log.info({ uid: request.uid, namespace: request.namespace, images: ops.filter((o) => o.op === 'replace').map((o) => o.value) }, 'webhook: images rewritten');
      }
    }
    return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
  }
}

/** The names the API server may call it by: the URL's host, the Service's DNS names. */
export function certificateNames(config: Pick<WebhookConfig, 'url' | 'service'>): string[] {
  const names: string[] = [];
  if (config.url) names.push(new URL(config.url).hostname.replace(/^\[|\]$/g, ''));
  if (config.service) names.push(`${config.service.name}.${config.service.namespace}.svc`, `${config.service.name}.${config.service.namespace}.svc.cluster.local`);
  return names;
}

export interface Review {
  request: { uid: string; kind?: { group?: string; kind?: string }; namespace?: string; operation?: string; object?: unknown };
}

/** The v1 contract: apiVersion, kind, request.uid; anything else is a 400. */
function parseReview(body: Buffer): Review {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadReview('body is not JSON');
  }
  const d = doc as Record<string, any>;
  if (typeof d !== 'object' || d === null || d.apiVersion !== 'admission.k8s.io/v1' || d.kind !== 'AdmissionReview') {
    throw new BadReview('expected apiVersion admission.k8s.io/v1, kind AdmissionReview');
  }
  const r = d.request as Record<string, any> | undefined;
  if (typeof r !== 'object' || r === null || typeof r.uid !== 'string' || r.uid === '') throw new BadReview('request.uid is missing');
  return { request: r as Review['request'] };
}

