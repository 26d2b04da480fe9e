import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SatelliteError } from '../../lib/errors.ts';
import { isAdminToken } from '../admin-tokens.ts';
import type { ListenConfig, RegisterLimitConfig } from '../config.ts';
import { gcError, statusOf } from '../errors.ts';
import type { FleetContext } from '../fleet/context.ts';
import type { ApiRequest } from './context.ts';
import { bearerToken, readJson, sendError, sendJson } from './http.ts';
import { matchRoute } from './routes.ts';
import { drainAndClose, listen } from '../../lib/http-server.ts';
import { clientAddress } from '../../lib/rejection-log.ts';
import { RegisterGuard } from './register-guard.ts';

/** The HTTP JSON API (node:http). Every route but health and registration needs an admin token. */
export class ApiServer {
  readonly #fleet: FleetContext;
  readonly #log: Logger;
  readonly #listen: ListenConfig;
  readonly #maxBodyBytes: number;
  readonly #maxJsonDepth: number;
  readonly #registerGuard: RegisterGuard;
  #server: Server | undefined;
  #seq = 0;
  #draining = false;

  constructor(opts: { fleet: FleetContext; log: Logger; listen: ListenConfig; maxBodyBytes: number; maxJsonDepth: number; register: RegisterLimitConfig }) {
    this.#fleet = opts.fleet;
    this.#log = opts.log;
    this.#listen = opts.listen;
    this.#maxBodyBytes = opts.maxBodyBytes;
    this.#maxJsonDepth = opts.maxJsonDepth;
    this.#registerGuard = new RegisterGuard({ config: opts.register, log: opts.log });
  }

  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 100;
    this.#server = server;
    const address = await listen(server, this.#listen.host, this.#listen.port, 'API');
    this.#log.info({ address: address.address, port: address.port }, 'api listening');
    return address;
  }

  /** Stops accepting; requests in flight finish (open keep-alive connections get 503). */
  /** True while the API accepts connections (the watchdog's liveness check). */
  get listening(): boolean {
    return this.#server?.listening ?? false;
  }

  async close(deadlineMs = 5_000): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#draining = true;
    await drainAndClose(server, deadlineMs);
    this.#server = undefined;
    this.#registerGuard.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reqId = ++this.#seq;
    const started = process.hrtime.bigint();
    const log = this.#log.child({ reqId });
    res.once('close', () => {
      const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10;
      log.debug({ method: req.method, path: req.url?.split('?')[0], status: res.statusCode, ms }, 'request');
    });
    // Routes that count their own refusals log them as one summary line, not one per request.
    let quiet = false;
    try {
      if (this.#draining) {
        req.resume();
        throw gcError('UNAVAILABLE', 'Ground Control is shutting down');
      }
      const url = new URL(req.url ?? '/', 'http://groundcontrol.invalid');
      const match = matchRoute(url.pathname);
      if (!match) throw gcError('NOT_FOUND', `no such endpoint: ${url.pathname.slice(0, 200)}`);
      const handler = match.route.methods[req.method ?? ''];
      if (!handler) {
        throw gcError('METHOD_NOT_ALLOWED', `${req.method} is not supported on ${url.pathname.slice(0, 200)} (allowed: ${Object.keys(match.route.methods).join(', ')})`);
      }
      quiet = match.route.aggregatesRejections === true;
      if (!match.route.public) this.#authorize(req);
      const ctx: ApiRequest = {
        req,
        res,
        params: match.params,
        query: url.searchParams,
        body: () => readJson(req, this.#maxBodyBytes, this.#maxJsonDepth),
        remote: clientAddress(req.socket.remoteAddress),
        registerGuard: this.#registerGuard,
        fleet: this.#fleet,
        log,
      };
      const out = await handler(ctx);
      req.resume();
      sendJson(res, out.status, out.body);
    } catch (err) {
      req.resume();
      const status = statusOf(err);
      const code = (err as SatelliteError).code;
      if (status >= 500) log.error({ err, method: req.method, path: req.url }, 'request failed');
      else log[quiet ? 'debug' : 'info']({ code, status, method: req.method, path: req.url?.split('?')[0] }, 'request rejected');
      sendError(res, err, errorHeaders(err, status));
    }
  }

  #authorize(req: IncomingMessage): void {
    const token = bearerToken(req);
    if (!token) throw gcError('UNAUTHORIZED', 'an admin token is required: Authorization: Bearer <token>');
    if (!isAdminToken(this.#fleet.db, token)) throw gcError('UNAUTHORIZED', 'the admin token is not valid');
  }
}

function errorHeaders(err: unknown, status: number): Record<string, string> {
  const code = (err as SatelliteError).code;
  if (status === 401 && code === 'UNAUTHORIZED') return { 'WWW-Authenticate': 'Bearer realm="groundcontrol"' };
  const retryAfter = (err as SatelliteError).detail as { retryAfterSeconds?: number } | undefined;
  if (status === 429 && retryAfter?.retryAfterSeconds !== undefined) return { 'Retry-After': String(retryAfter.retryAfterSeconds) };
  return {};
}
