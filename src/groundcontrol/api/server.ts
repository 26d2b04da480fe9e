import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SatelliteError } from '../../lib/errors.ts';
import { ConsoleAssets, CONSOLE_HEADERS } from '../console/assets.ts';
import { SessionStore } from '../console/sessions.ts';
import type { ListenConfig, RegisterLimitConfig } from '../config.ts';
import { gcError, statusOf } from '../errors.ts';
import type { FleetContext } from '../fleet/context.ts';
import type { ApiRequest } from './context.ts';
import { recordEvent } from '../fleet/events.ts';
import { GcMetrics, routeTemplate } from '../metrics.ts';
import { authenticate, type Caller } from './auth.ts';
import { readJson, sendError, sendJson } from './http.ts';
import { isPublic, matchRoute } from './routes.ts';
import { drainAndClose, listen } from '../../lib/http-server.ts';
import { clientAddress } from '../../lib/rejection-log.ts';
import { RegisterGuard } from './register-guard.ts';
import type { LiveHub } from './live.ts';

/**
 * The HTTP JSON API (node:http) and the console's static files under /console/. Every API route
 * but health, registration and the console login needs an admin token or a console session.
 */
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
  /** undefined when the console is disabled. */
  readonly #sessions: SessionStore | undefined;
  readonly #assets: ConsoleAssets | undefined;
  readonly #metrics: GcMetrics;
  readonly #live: LiveHub | undefined;

  constructor(opts: { fleet: FleetContext; log: Logger; listen: ListenConfig; maxBodyBytes: number; maxJsonDepth: number; register: RegisterLimitConfig; metrics?: GcMetrics; live?: LiveHub }) {
    this.#fleet = opts.fleet;
    this.#log = opts.log;
    this.#listen = opts.listen;
    this.#maxBodyBytes = opts.maxBodyBytes;
    this.#maxJsonDepth = opts.maxJsonDepth;
    this.#registerGuard = new RegisterGuard({ config: opts.register, log: opts.log });
    this.#live = opts.live;
    const console = opts.fleet.config.console;
    if (console.enabled) {
      this.#sessions = new SessionStore({ ttlSeconds: console.sessionTtlSeconds });
      this.#assets = new ConsoleAssets(opts.log.child({ module: 'console' }));
    }
    const sessions = this.#sessions;
    this.#metrics = opts.metrics ?? new GcMetrics(opts.fleet);
    if (sessions) this.#metrics.watchSessions(() => sessions.size);
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
    this.#live?.close();
    await drainAndClose(server, deadlineMs);
    this.#server = undefined;
    this.#registerGuard.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reqId = ++this.#seq;
    const started = process.hrtime.bigint();
    const log = this.#log.child({ reqId });
    let route = 'other';
    res.once('close', () => {
      const ns = Number(process.hrtime.bigint() - started);
      const ms = Math.round(ns / 1e5) / 10;
      log.debug({ method: req.method, path: req.url?.split('?')[0], status: res.statusCode, ms }, 'request');
      this.#metrics.observe(req.method ?? 'GET', route, res.statusCode, ns / 1e9);
    });
    // Routes that count their own refusals log them as one summary line, not one per request.
    let quiet = false;
    try {
      if (this.#draining) {
        req.resume();
        throw gcError('UNAVAILABLE', 'Ground Control is shutting down');
      }
      const url = new URL(req.url ?? '/', 'http://groundcontrol.invalid');
      if (this.#assets && (url.pathname === '/' || url.pathname === '/console' || url.pathname.startsWith('/console/'))) {
        req.resume();
        route = 'console';
        return await this.#serveConsole(req, res, url.pathname);
      }
      const match = matchRoute(url.pathname);
      if (match) route = routeTemplate(url.pathname, match.params);
      if (!match) throw gcError('NOT_FOUND', `no such endpoint: ${url.pathname.slice(0, 200)}`);
      const handler = match.route.methods[req.method ?? ''];
      if (!handler) {
        throw gcError('METHOD_NOT_ALLOWED', `${req.method} is not supported on ${url.pathname.slice(0, 200)} (allowed: ${Object.keys(match.route.methods).join(', ')})`);
      }
      quiet = match.route.aggregatesRejections === true;
      const method = req.method ?? 'GET';
      let caller: Caller | undefined;
      if (!isPublic(match.route, method)) caller = authenticate(req, this.#fleet.db, this.#sessions);
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
        caller,
        sessions: this.#sessions,
        metrics: this.#metrics,
        live: this.#live,
      };
      const out = await handler(ctx);
      if (out.streamed) return;
      req.resume();
      if (method !== 'GET' && method !== 'HEAD') {
        await this.#audit(caller?.actor ?? out.actor ?? 'anonymous', method, url.pathname, out.status, out.audit, out.satelliteId ?? match.params.id);
        // Open consoles refetch what they show (a group, an assignment, a satellite changed).
        if (!url.pathname.startsWith('/api/v1/session')) this.#live?.configChanged();
      }
      if (out.text !== undefined) sendText(res, out.status, out.text, out.headers);
      else sendJson(res, out.status, out.body, out.headers);
    } catch (err) {
      req.resume();
      const status = statusOf(err);
      const code = (err as SatelliteError).code;
      if (status === 401 && req.method === 'POST' && req.url?.split('?')[0] === '/api/v1/session') {
        await this.#audit('console login', 'POST', '/api/v1/session', status, 'console login refused: the admin token is not valid', undefined);
      }
      if (status >= 500) log.error({ err, method: req.method, path: req.url }, 'request failed');
      else log[quiet ? 'debug' : 'info']({ code, status, method: req.method, path: req.url?.split('?')[0] }, 'request rejected');
      sendError(res, err, errorHeaders(err, status));
    }
  }

  /** One line in the event and audit log per change made through the API (a failure to write it is logged, not answered). */
  async #audit(actor: string, method: string, path: string, status: number, text: string | undefined, id: string | undefined): Promise<void> {
    const action = `${method} ${path.slice(0, 200)}`;
    const satelliteId = id !== undefined && (path.startsWith('/api/v1/satellites/') || path.endsWith('/register')) ? id : null;
    try {
      await recordEvent(this.#fleet.db, this.#fleet.config.events.kept, this.#fleet.now().toISOString(), {
        kind: 'audit',
        action,
        actor,
        satelliteId,
        status,
        message: text ?? `${action} -> ${status}`,
      });
    } catch (err) {
      this.#log.error({ err, action }, 'audit log line not written');
    }
  }

  /** GET /console/ (the page), /console/app.js, /console/app.css; / and /console redirect. */
  async #serveConsole(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw gcError('METHOD_NOT_ALLOWED', `${req.method} is not supported on ${pathname.slice(0, 200)} (allowed: GET)`);
    if (pathname === '/' || pathname === '/console') {
      res.writeHead(302, { Location: '/console/', 'Content-Length': '0', ...CONSOLE_HEADERS });
      res.end();
      return;
    }
    const name = pathname === '/console/' ? 'index.html' : pathname.slice('/console/'.length);
    const found = await this.#assets?.get(name);
    if (!found) throw gcError('NOT_FOUND', `no such console file: ${pathname.slice(0, 200)}`);
    const headers = { 'Content-Type': found.type, ETag: found.etag, 'Cache-Control': 'no-cache', ...CONSOLE_HEADERS };
    if (req.headers['if-none-match'] === found.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(found.body.length) });
    res.end(req.method === 'HEAD' ? undefined : found.body);
  }
}

function sendText(res: ServerResponse, status: number, text: { contentType: string; body: string }, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': text.contentType, 'Content-Length': String(Buffer.byteLength(text.body)), 'Cache-Control': 'no-store', ...headers });
  res.end(text.body);
}

function errorHeaders(err: unknown, status: number): Record<string, string> {
  const code = (err as SatelliteError).code;
  if (status === 401 && code === 'UNAUTHORIZED') return { 'WWW-Authenticate': 'Bearer realm="groundcontrol"' };
  const retryAfter = (err as SatelliteError).detail as { retryAfterSeconds?: number } | undefined;
  if ((status === 429 || status === 503) && retryAfter?.retryAfterSeconds !== undefined) return { 'Retry-After': String(retryAfter.retryAfterSeconds) };
  return {};
}
