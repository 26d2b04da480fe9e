import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { SatelliteError, isSatelliteError } from '../lib/errors.ts';
import { isRepositoryName } from '../oci/names.ts';
import type { HtpasswdAuth } from './auth.ts';
import type { BlobShedder, DeviceCredentials, Handler, MissHandler, ReadTarget, RegistryStore, RequestContext, RequestStats } from './context.ts';
import { isServerFault, registryError, sendError } from './errors.ts';
import { hasBody, sendJson } from './http.ts';
import { watchBodyRate } from './body-rate.ts';
import { BufferPool } from '../lib/buffer-pool.ts';
import { matchRoute, type RouteName } from './routes.ts';
import { getBase } from './handlers/base.ts';
import { getCatalog } from './handlers/catalog.ts';
import { getManifest } from './handlers/manifest-get.ts';
import { putManifest } from './handlers/manifest-put.ts';
import { deleteManifest } from './handlers/manifest-delete.ts';
import { getBlob } from './handlers/blob-get.ts';
import { deleteBlob } from './handlers/blob-delete.ts';
import { startUpload } from './handlers/upload-start.ts';
import { patchUpload } from './handlers/upload-patch.ts';
import { putUpload } from './handlers/upload-put.ts';
import { cancelUpload, getUploadStatus } from './handlers/upload-status.ts';
import { listTags } from './handlers/tags-list.ts';
import { getReferrers } from './handlers/referrers.ts';
import { drainAndClose, listen } from '../lib/http-server.ts';
import { handlePeer, PEER_PREFIX, type PeerEndpoint } from './peer-endpoint.ts';
import type { FinishedRequest } from './operation.ts';
import { handleHealth, type HealthProbe } from './handlers/health.ts';

export interface RegistryServerConfig {
  listen: { host: string; port: number };
  tls?: { cert: string; key: string } | undefined;
  /** Without auth, accept pushes and deletes from anyone (default false: anonymous pull only). */
  anonymousPush: boolean;
  maxConcurrentRequests: number;
  /** In flight from one remote address (below maxConcurrentRequests: one host cannot take every slot). */
  maxConcurrentRequestsPerClient: number;
  bodyMinBytesPerSecond: number;
  bodyRateWindowSeconds: number;
  maxUploadSessions: number;
  maxUploadSessionsPerClient: number;
  maxManifestBytes: number;
  idleTimeoutSeconds: number;
  headersTimeoutSeconds: number;
  /** All blob streams together buffer at most this much (chunks shrink as streams multiply). */
  sendBufferBudgetBytes: number;
  sendChunkMaxBytes: number;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const HANDLERS: Record<RouteName, Partial<Record<string, Handler>>> = {
  base: { GET: getBase, HEAD: getBase },
  catalog: { GET: getCatalog },
  manifest: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
  blob: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob },
  uploadStart: { POST: startUpload },
  upload: { GET: getUploadStatus, PATCH: patchUpload, PUT: putUpload, DELETE: cancelUpload },
  tags: { GET: listTags },
  referrers: { GET: getReferrers },
};

/** The most a relayed token answer may carry (a JWT with its access claims is a few KiB). */
const TOKEN_RELAY_CAP = 1024 * 1024;
/** Handed out while the token realm cannot be reached; no upstream accepts it. */
const OFFLINE_TOKEN = 'harbor-satellite-upstream-unreachable';

/** The OCI Distribution API over node:http(s), serving from a store. */
export class RegistryServer {
  readonly #config: RegistryServerConfig;
  readonly #store: RegistryStore;
  readonly #log: Logger;
  readonly #auth: HtpasswdAuth | undefined;
  readonly #status: (() => unknown) | undefined;
  readonly #peer: PeerEndpoint | undefined;
  readonly #pool: BufferPool;
  readonly #proxy: MissHandler | undefined;
  readonly #health: HealthProbe | undefined;
  readonly #onResponse: ((r: FinishedRequest) => void) | undefined;
  readonly #shedder: BlobShedder | undefined;
  #server: Server | undefined;
  #active = 0;
  /** Requests in flight per remote address. */
  readonly #perClient = new Map<string, number>();
  #seq = 0;
  #draining = false;

  constructor(opts: {
    config: RegistryServerConfig;
    store: RegistryStore;
    log: Logger;
    auth?: HtpasswdAuth | undefined;
    /** Served as JSON at GET /_satellite/status (the monitoring hook). */
    status?: () => unknown;
    /** Blob sharing with the other satellites of the site (src/peers), under /_satellite/peer/. */
    peer?: PeerEndpoint | undefined;
    /** Pull-through source consulted on manifest and blob misses. */
    proxy?: MissHandler | undefined;
    /** Told of every finished response (the metrics' request counters). */
    onResponse?: ((r: FinishedRequest) => void) | undefined;
    /** GET /healthz and /readyz, answered without auth (handlers/health.ts). */
    health?: HealthProbe | undefined;
    /** Under memory pressure, new blob GETs (local, proxied, peer) get 429; manifests and streams in flight go on. */
    shedder?: BlobShedder | undefined;
  }) {
    this.#shedder = opts.shedder;
    this.#onResponse = opts.onResponse;
    this.#health = opts.health;
    this.#proxy = opts.proxy;
    this.#config = opts.config;
    this.#status = opts.status;
    this.#peer = opts.peer;
    this.#pool = new BufferPool({
      budgetBytes: opts.config.sendBufferBudgetBytes,
      minChunkBytes: 64 * 1024,
      maxChunkBytes: opts.config.sendChunkMaxBytes,
    });
    this.#store = opts.store;
    this.#log = opts.log;
    this.#auth = opts.auth;
  }

  async start(): Promise<AddressInfo> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    let server: Server;
    if (this.#config.tls) {
      const cert = await readTlsFile(this.#config.tls.cert, 'cert');
      const key = await readTlsFile(this.#config.tls.key, 'key');
      server = createHttpsServer({ cert, key }, handler);
    } else {
      server = createHttpServer(handler);
    }
    server.headersTimeout = this.#config.headersTimeoutSeconds * 1000;
    // Uploads and large pulls may take long; idleness, not duration, is what we cut.
    server.requestTimeout = 0;
    server.keepAliveTimeout = 5000;
    server.setTimeout(this.#config.idleTimeoutSeconds * 1000, (socket) => socket.destroy());
    server.maxHeadersCount = 100;
    this.#server = server;
    const address = await listen(server, this.#config.listen.host, this.#config.listen.port, 'registry');
    // Warned before 'registry listening', the line that callers wait for.
    if (!this.#auth && this.#config.anonymousPush) {
      this.#log.warn(
        { address: address.address, port: address.port },
        'registry accepts anonymous pushes and deletes from anyone who can reach it (registry.anonymousPush: true, no registry.auth)',
      );
    }
    this.#log.info({ address: address.address, port: address.port, tls: Boolean(this.#config.tls) }, 'registry listening');
    return address;
  }

  /** Drops the idle send buffers (the memory watchdog, before it asks for a collection). */
  trimBuffers(): number {
    return this.#pool.trim();
  }

  /** True while the server accepts connections (the watchdog's liveness check). */
  get listening(): boolean {
    return this.#server?.listening ?? false;
  }

  /** Stops accepting, answers 503 to new requests on open connections, waits for in-flight ones. */
  async close(deadlineMs = 10_000): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#draining = true;
    await drainAndClose(server, deadlineMs);
    this.#server = undefined;
  }

  /**
   * A request decrypted by the HTTPS proxy (src/https-proxy), which already admitted the client
   * (allowed CIDRs, proxy credentials): pulls only, no htpasswd, no /_satellite/ endpoints.
   */
  serveProxied(req: IncomingMessage, res: ServerResponse): void {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || req.url?.startsWith('/_satellite/')) {
      req.resume();
      // Off the registry's endpoints (a token realm: containerd POSTs for OAuth first and falls back
      // to GET on 405), the method is what is not served; the body (a password) is never read.
      const offRoute = req.method !== 'GET' && req.method !== 'HEAD' && !matchRoute(new URL(req.url ?? '/', 'http://registry.invalid').pathname);
      if (offRoute) req.url = new URL(req.url ?? '/', 'http://registry.invalid').pathname;
      sendError(res, offRoute ? registryError('METHOD_UNKNOWN', 'only GET is relayed to a token realm') : registryError('DENIED', 'only pulls are served through the HTTPS proxy'), offRoute ? { Allow: 'GET' } : {});
      return;
    }
    void this.#handle(req, res, true);
  }

  async #handle(req: IncomingMessage, res: ServerResponse, viaHttpsProxy = false): Promise<void> {
    const started = process.hrtime.bigint();
    const reqId = ++this.#seq;
    const log = this.#log;
    const stats: RequestStats = {};
    res.once('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // Streamed bodies count what they sent; buffered ones sent their Content-Length if finished.
      const bytes = stats.bytes ?? (res.writableFinished && req.method !== 'HEAD' ? Number(res.getHeader('content-length') ?? 0) : 0);
      log.info(
        { reqId, method: req.method, path: req.url, status: res.statusCode, bytes, ms: Math.round(ms * 10) / 10, complete: res.writableFinished },
        'request',
      );
      this.#onResponse?.({ method: req.method ?? '', url: req.url ?? '', status: res.statusCode, bytes, seconds: ms / 1000, manifest: stats.manifest });
    });
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');

    if (this.#draining) {
      req.resume();
      sendError(res, registryError('UNAVAILABLE', 'satellite is shutting down'), { Connection: 'close', 'Retry-After': '5' });
      return;
    }
    if (handleHealth(req, res, this.#health)) return;
    if (this.#active >= this.#config.maxConcurrentRequests) {
      req.resume();
      sendError(res, registryError('TOOMANYREQUESTS', 'too many concurrent requests'), { 'Retry-After': '1' });
      return;
    }
    const client = req.socket.remoteAddress ?? '';
    const mine = this.#perClient.get(client) ?? 0;
    if (mine >= this.#config.maxConcurrentRequestsPerClient) {
      req.resume();
      // Close too: a client over its share should not keep the socket busy trickling a body.
      sendError(res, registryError('TOOMANYREQUESTS', 'too many concurrent requests from this address'), { 'Retry-After': '1', Connection: 'close' });
      return;
    }
    this.#active++;
    this.#perClient.set(client, mine + 1);
    const controller = new AbortController();
    const stopRateWatch = hasBody(req)
      ? watchBodyRate(req, { minBytesPerSecond: this.#config.bodyMinBytesPerSecond, windowSeconds: this.#config.bodyRateWindowSeconds }, (received) => {
          log.warn({ reqId, client, method: req.method, path: req.url, received, windowSeconds: this.#config.bodyRateWindowSeconds }, 'request body too slow: connection cut');
          req.socket.destroy();
        })
      : undefined;
    res.once('close', () => {
      this.#active--;
      const n = (this.#perClient.get(client) ?? 1) - 1;
      if (n <= 0) this.#perClient.delete(client);
      else this.#perClient.set(client, n);
      stopRateWatch?.();
      if (!res.writableFinished) controller.abort();
    });
    try {
      // Peers authenticate with the site's token, not with the devices' htpasswd.
      if (this.#peer && req.url?.startsWith(PEER_PREFIX)) {
        if (req.method === 'GET' && req.url.startsWith(`${PEER_PREFIX}blobs/`) && this.#shed(req, res)) return;
        await handlePeer(this.#peer, this.#context(req, res, new URL(req.url, 'http://registry.invalid'), '', '', controller.signal, stats, undefined));
        return;
      }
      if (this.#auth && !viaHttpsProxy) {
        const result = await this.#auth.authenticate(req, client);
        if (result.retryAfterSeconds !== undefined) {
          req.resume();
          sendError(res, registryError('TOOMANYREQUESTS', 'too many failed password checks from this address'), { 'Retry-After': String(result.retryAfterSeconds) });
          return;
        }
        if (!result.user) {
          req.resume();
          sendError(res, registryError('UNAUTHORIZED', 'authentication required'), { 'WWW-Authenticate': this.#auth.challenge() });
          return;
        }
      }
      // The device's own credentials for the upstream: never those checked against registry.auth.
      const device = this.#proxy?.forwardsCredentials(viaHttpsProxy) && (viaHttpsProxy || !this.#auth) ? { authorization: req.headers.authorization } : undefined;
      if (viaHttpsProxy && device && this.#proxy && req.method === 'GET' && (await this.#relayToken(req, res, device, controller.signal))) return;
      await this.#route(req, res, reqId, controller.signal, stats, device);
    } catch (err) {
      if (controller.signal.aborted) return;
      if (isServerFault(err)) log.error({ err, reqId, method: req.method, path: req.url }, 'request failed');
      else log.debug({ err, reqId }, 'request rejected');
      const challenge = isSatelliteError(err, 'UNAUTHORIZED') ? (err as { challenge?: unknown }).challenge : undefined;
      sendError(res, err, typeof challenge === 'string' ? { 'WWW-Authenticate': challenge } : {});
    }
  }

  /**
   * The upstream's token realm on the intercepted host (Harbor's /service/token): relayed with the
   * device's query and Authorization, the answer streamed back under TOKEN_RELAY_CAP, never
   * cached. The request log gets the path only (the query names the account). false: not the realm.
   */
  async #relayToken(req: IncomingMessage, res: ServerResponse, device: DeviceCredentials, signal: AbortSignal): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://registry.invalid');
    const ns = url.searchParams.get('ns');
    // Registry endpoints are never the realm: they are answered without waiting on the upstream.
    if (ns === null || matchRoute(url.pathname)) return false;
    const query = new URLSearchParams(url.search);
    // Set by the HTTPS proxy (the intercepted host), not the device's.
    query.delete('ns');
    let answer: Awaited<ReturnType<MissHandler['relayToken']>>;
    try {
      answer = await this.#proxy!.relayToken(ns, url.pathname, query, device.authorization, signal);
    } catch (err) {
      req.url = url.pathname;
      req.resume();
      if (signal.aborted) throw err;
      // The realm is unreachable (the upstream is down): a placeholder token that grants nothing
      // beyond what a request without credentials gets here (cached content of ordinary
      // repositories; restricted ones need credentials the upstream confirmed), so clients that
      // insist on a token (docker, skopeo) still pull what the satellite holds.
      this.#log.info({ err: (err as Error).message }, 'token realm unreachable: placeholder token for a device (grants what anonymous requests get)');
      const body = JSON.stringify({ token: OFFLINE_TOKEN, access_token: OFFLINE_TOKEN, expires_in: 60 });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
      res.end(body);
      return true;
    }
    if (!answer) return false;
    req.url = url.pathname;
    req.resume();
    const { status, headers, body } = answer;
    const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    if ((status < 200 || status >= 300) && (status < 400 || status >= 500)) {
      body.destroy();
      throw registryError('UNAVAILABLE', `the upstream's token realm answered ${status}`);
    }
    if (declared !== undefined && !(declared <= TOKEN_RELAY_CAP)) {
      body.destroy();
      throw registryError('UNAVAILABLE', `the upstream's token realm answered more than ${TOKEN_RELAY_CAP} bytes`);
    }
    res.writeHead(status, { ...headers, 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    let sent = 0;
    const cap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        if (sent > TOKEN_RELAY_CAP) cb(new Error('token answer over the cap'));
        else cb(null, chunk);
      },
    });
    await pipeline(body, cap, res).catch(() => {
      // Cut: the client sees an incomplete answer and asks again; nothing of it is logged.
      res.destroy();
    });
    return true;
  }

  async #route(req: IncomingMessage, res: ServerResponse, reqId: number, signal: AbortSignal, stats: RequestStats, device: DeviceCredentials | undefined): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://registry.invalid');
    if (url.pathname === '/_satellite/status' && this.#status && (req.method === 'GET' || req.method === 'HEAD')) {
      req.resume();
      sendJson(res, 200, this.#status());
      return;
    }
    const match = matchRoute(url.pathname);
    if (!match) {
      req.resume();
      throw registryError('ROUTE_UNKNOWN', `no such endpoint: ${url.pathname.slice(0, 200)}`);
    }
    const handler = HANDLERS[match.route][req.method ?? ''];
    if (!handler) {
      req.resume();
      throw registryError('METHOD_UNKNOWN', `${req.method} is not supported on this endpoint`);
    }
    // Devices only pull: without credentials to check, writes are refused unless explicitly allowed.
    // Decided on the parsed route, so no spelling of the URL (absolute form, dot segments) gets around it.
    if (!this.#auth && !this.#config.anonymousPush && WRITE_METHODS.has(req.method ?? '')) {
      req.resume();
      throw registryError('DENIED', 'anonymous pushes and deletes are disabled: configure registry.auth (or registry.anonymousPush: true)');
    }
    const name = match.name ?? '';
    if (match.name !== undefined && !isRepositoryName(name)) {
      req.resume();
      throw registryError('NAME_INVALID', `invalid repository name: ${name.slice(0, 300)}`);
    }
    const ns = url.searchParams.get('ns') ?? undefined;
    if (this.#proxy && device && match.route === 'base' && device.authorization === undefined) {
      // As the registry host the device thinks it talks to: its challenge, so the client sends credentials.
      const challenge = await this.#proxy.baseChallenge(ns);
      if (challenge) {
        req.resume();
        throw Object.assign(registryError('UNAUTHORIZED', 'authentication required'), { challenge });
      }
    }
    const target = readTarget(match.route, match.ref ?? '');
    if (this.#proxy && match.name !== undefined && target && (req.method === 'GET' || req.method === 'HEAD')) {
      await this.#proxy.guard(name, ns, target, { device, signal });
    }
    // A blob GET may start a stream of any size, or a pull-through fill: under memory pressure it
    // waits; HEAD and manifests are small and answered.
    if (match.route === 'blob' && req.method === 'GET' && this.#shed(req, res)) return;
    await handler(this.#context(req, res, url, name, match.ref ?? '', signal, stats, device));
  }

  /** True when the request was answered 429 because memory is above the soft limit. */
  #shed(req: IncomingMessage, res: ServerResponse): boolean {
    const retryAfter = this.#shedder?.shedBlobStream();
    if (retryAfter === undefined) return false;
    req.resume();
    sendError(res, registryError('TOOMANYREQUESTS', 'memory above the soft limit: new blob downloads wait', { reason: 'memory', retryAfterSeconds: retryAfter }), {
      'Retry-After': String(retryAfter),
    });
    return true;
  }

  #context(req: IncomingMessage, res: ServerResponse, url: URL, name: string, ref: string, signal: AbortSignal, stats: RequestStats, device: DeviceCredentials | undefined): RequestContext {
    return {
      req,
      res,
      url,
      name,
      ref,
      store: this.#store,
      client: req.socket.remoteAddress ?? '',
      limits: {
        maxManifestBytes: this.#config.maxManifestBytes,
        maxUploadSessions: this.#config.maxUploadSessions,
        maxUploadSessionsPerClient: this.#config.maxUploadSessionsPerClient,
      },
      log: this.#log,
      signal,
      pool: this.#pool,
      proxy: this.#proxy,
      stats,
      device,
    };
  }
}

/** What a read request touches, for the proxy's guard of restricted repositories. */
function readTarget(route: RouteName, ref: string): ReadTarget | undefined {
  if (route === 'manifest') return { kind: 'manifest', reference: ref };
  if (route === 'blob') return { kind: 'blob', digest: ref };
  if (route === 'tags' || route === 'referrers') return { kind: 'tags' };
  return undefined;
}

async function readTlsFile(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new SatelliteError('CONFIG_INVALID', `registry.tls.${what}: cannot read ${path}`, { cause: err });
  }
}
