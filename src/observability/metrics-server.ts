import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { drainAndClose, listen } from '../lib/http-server.ts';
import { tokenChecker } from './auth.ts';

/**
 * GET /metrics on its own listener (Prometheus text format). Nothing else is served: the registry's
 * port stays free of monitoring traffic, and a token, when set, is asked on every scrape.
 */
export class MetricsServer {
  readonly #registry: Registry;
  readonly #log: Logger;
  readonly #listen: { host: string; port: number };
  readonly #authorized: ((req: IncomingMessage) => boolean) | undefined;
  #server: Server | undefined;

  constructor(opts: { registry: Registry; log: Logger; listen: { host: string; port: number }; token?: string | undefined }) {
    this.#registry = opts.registry;
    this.#log = opts.log;
    this.#listen = opts.listen;
    this.#authorized = opts.token === undefined ? undefined : tokenChecker(opts.token);
  }

  /** Listens; resolves with the address. */
  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.maxHeadersCount = 50;
    this.#server = server;
    const address = await listen(server, this.#listen.host, this.#listen.port, 'metrics');
    this.#log.info({ address: address.address, port: address.port, auth: this.#authorized !== undefined }, 'metrics listening');
    return address;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server?.listening) await drainAndClose(server, 2000);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume();
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') return plain(res, 404, 'not found; metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    if (this.#authorized && !this.#authorized(req)) {
      return plain(res, 401, 'authentication required\n', { 'WWW-Authenticate': 'Bearer realm="harbor-satellite-metrics"' });
    }
    try {
      const body = await this.#registry.metrics();
      res.writeHead(200, { 'Content-Type': this.#registry.contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      this.#log.error({ err }, 'metrics collection failed');
      plain(res, 500, 'metrics collection failed\n');
    }
  }
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
