import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { connect, isIP, type AddressInfo, type BlockList, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { TLSSocket } from 'node:tls';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { SatelliteError } from '../lib/errors.ts';
import { listen } from '../lib/http-server.ts';
import { cidrList, inList, parseAuthority, PRIVATE_TARGETS, type Authority } from './addresses.ts';
import type { HttpsProxyConfig } from './config-schema.ts';
import type { SiteCa } from './site-ca.ts';

/** Serves one decrypted registry request (the registry server's pull-only entry). */
export type ProxiedRequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface HttpsProxyStatus {
  enabled: true;
  intercept: string[];
  tunnel: 'allow' | 'refuse';
  connections: number;
  intercepted: number;
  tunnelled: number;
  refused: number;
}

/**
 * CONNECT proxy for runtimes that take HTTPS_PROXY (docker, containerd, skopeo). Listed registry
 * hosts are answered by the satellite: TLS is terminated with a site-CA certificate and each
 * request goes to the registry handler with `?ns=<host>`. Every other host is tunnelled byte for
 * byte (or refused), so its TLS stays end to end between the client and that host.
 */
export class HttpsProxy {
  readonly #config: HttpsProxyConfig;
  readonly #log: Logger;
  readonly #ca: SiteCa;
  readonly #serve: ProxiedRequestHandler;
  readonly #clients: BlockList;
  readonly #intercept: Map<string, Authority>;
  readonly #hosts: Map<string, { host: string; port: number }>;
  readonly #sockets = new Set<Duplex>();
  /** The registry host each terminated TLS connection was opened for. */
  readonly #namespaces = new WeakMap<object, string>();
  readonly #inner: Server;
  #authHash: Buffer | undefined;
  #server: Server | undefined;
  readonly #counts = { intercepted: 0, tunnelled: 0, refused: 0 };

  constructor(opts: { config: HttpsProxyConfig; log: Logger; ca: SiteCa; serve: ProxiedRequestHandler }) {
    this.#config = opts.config;
    this.#log = opts.log;
    this.#ca = opts.ca;
    this.#serve = opts.serve;
    this.#clients = cidrList(opts.config.allowedClients, 'httpsProxy.allowedClients');
    this.#intercept = new Map();
    for (const entry of opts.config.intercept) {
      const a = parseAuthority(entry);
      if (!a) throw new SatelliteError('CONFIG_INVALID', `httpsProxy.intercept: ${JSON.stringify(entry)} is not host[:port]`);
      this.#intercept.set(a.key, a);
    }
    this.#hosts = new Map();
    for (const [name, to] of Object.entries(opts.config.hosts)) {
      const a = parseAuthority(name);
      const t = parseAuthority(to);
      if (!a || !t || isIP(t.host) === 0) throw new SatelliteError('CONFIG_INVALID', `httpsProxy.hosts: ${JSON.stringify(name)} -> ${JSON.stringify(to)} must map host[:port] to ip:port`);
      this.#hosts.set(a.key, { host: t.host, port: t.port });
    }
    // The decrypted side: an HTTP/1.1 server that never listens; terminated TLS sockets are handed to it.
    this.#inner = createServer((req, res) => this.#onInnerRequest(req, res));
    this.#inner.headersTimeout = 20_000;
    this.#inner.requestTimeout = 0;
    this.#inner.maxHeadersCount = 100;
  }

  async start(): Promise<AddressInfo> {
    const cfg = this.#config;
    if (cfg.auth) {
      const password = cfg.auth.password ?? (await readPasswordFile(cfg.auth.passwordFile!));
      this.#authHash = hash(`${cfg.auth.username}:${password}`);
    }
    const server = createServer((req, res) => this.#onPlainRequest(req, res));
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onConnect(req, socket as Socket, head));
    server.maxConnections = cfg.maxConnections;
    server.headersTimeout = 20_000;
    server.maxHeadersCount = 100;
    this.#server = server;
    const address = await listen(server, cfg.listen.host, cfg.listen.port, 'httpsProxy');
    this.#log.info(
      { address: address.address, port: address.port, intercept: [...this.#intercept.keys()], tunnel: cfg.tunnel, allowedClients: cfg.allowedClients, auth: Boolean(cfg.auth), ca: this.#ca.dir },
      'https proxy listening',
    );
    return address;
  }

  status(): HttpsProxyStatus {
    return { enabled: true, intercept: [...this.#intercept.keys()], tunnel: this.#config.tunnel, connections: this.#sockets.size, ...this.#counts };
  }

  /** Stops accepting and cuts every tunnel and terminated connection (clients retry elsewhere). */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    server.closeAllConnections();
    this.#inner.closeAllConnections();
    await closed;
  }

  /** Plain HTTP proxying (absolute-form GET) is not offered: HTTPS_PROXY only sends CONNECT. */
  #onPlainRequest(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const denied = this.#admit(req);
    if (denied) {
      res.writeHead(denied.status, denied.headers).end(`${denied.message}\n`);
      return;
    }
    res.writeHead(405, { Allow: 'CONNECT', 'Content-Type': 'text/plain' }).end('only CONNECT is supported (set HTTPS_PROXY, not HTTP_PROXY)\n');
  }

  /** 403 for clients outside allowedClients, 407 without the proxy credentials; undefined: admitted. */
  #admit(req: IncomingMessage): { status: number; message: string; headers: Record<string, string> } | undefined {
    const client = req.socket.remoteAddress ?? '';
    if (!inList(this.#clients, client)) {
      this.#counts.refused++;
      this.#log.warn({ client }, 'https proxy: client not in httpsProxy.allowedClients');
      return { status: 403, message: 'client address not allowed', headers: { Connection: 'close' } };
    }
    if (this.#authHash) {
      const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.headers['proxy-authorization'] ?? '');
      const given = m ? hash(Buffer.from(m[1]!, 'base64').toString('utf8')) : undefined;
      if (!given || !timingSafeEqual(given, this.#authHash)) {
        this.#counts.refused++;
        this.#log.warn({ client, credentials: Boolean(m) }, 'https proxy: proxy authentication failed');
        return { status: 407, message: 'proxy authentication required', headers: { 'Proxy-Authenticate': 'Basic realm="harbor-satellite"', Connection: 'close' } };
      }
    }
    return undefined;
  }

  #onConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const reply = (status: number, message: string, headers: Record<string, string> = {}) => {
      const lines = Object.entries({ ...headers, 'Content-Type': 'text/plain', 'Content-Length': String(message.length + 1), Connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`);
      socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n${lines.join('')}\r\n${message}\n`);
    };
    const denied = this.#admit(req);
    if (denied) return reply(denied.status, denied.message, denied.headers);
    const target = parseAuthority(req.url ?? '');
    if (!target) return reply(400, 'CONNECT target must be host:port');
    this.#track(socket);
    socket.setTimeout(this.#config.idleTimeoutSeconds * 1000, () => socket.destroy());
    if (this.#intercept.has(target.key)) {
      this.#terminate(socket, head, target);
      return;
    }
    if (this.#config.tunnel === 'refuse') {
      this.#counts.refused++;
      this.#log.info({ client: socket.remoteAddress, target: target.key }, 'https proxy: tunnel refused (httpsProxy.tunnel: refuse)');
      return reply(403, `${target.key} is not served here and tunnels are refused`);
    }
    void this.#tunnel(socket, head, target).catch((err: unknown) => {
      this.#counts.refused++;
      const code = (err as SatelliteError).code;
      this.#log.info({ client: socket.remoteAddress, target: target.key, err: (err as Error).message }, 'https proxy: tunnel failed');
      if (!socket.destroyed) reply(code === 'TUNNEL_FORBIDDEN' ? 403 : 502, (err as Error).message);
    });
  }

  /** Answers the CONNECT itself: TLS with a site-CA certificate for the host, HTTP to the registry. */
  #terminate(socket: Socket, head: Buffer, target: Authority): void {
    this.#counts.intercepted++;
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    const tls = new TLSSocket(socket, {
      isServer: true,
      secureContext: this.#ca.contextFor(target.host),
      // HTTP/1.1 only: the registry handler is node:http.
      ALPNProtocols: ['http/1.1'],
    });
    tls.on('error', (err) => {
      this.#log.debug({ err, target: target.key }, 'https proxy: TLS with the client failed');
      tls.destroy();
      socket.destroy();
    });
    this.#namespaces.set(tls, target.key);
    this.#track(tls);
    this.#inner.emit('connection', tls);
  }

  #onInnerRequest(req: IncomingMessage, res: ServerResponse): void {
    const ns = this.#namespaces.get(req.socket);
    if (ns === undefined) {
      req.resume();
      res.writeHead(500).end();
      return;
    }
    // The upstream is the host the client opened the tunnel to, whatever it put in ?ns= itself.
    const url = new URL(req.url ?? '/', 'https://proxied.invalid');
    url.searchParams.set('ns', ns);
    req.url = `${url.pathname}${url.search}`;
    this.#serve(req, res);
  }

  /** Byte-for-byte relay to the target; its TLS (and certificate) reach the client unchanged. */
  async #tunnel(socket: Socket, head: Buffer, target: Authority): Promise<void> {
    const to = await this.#dialAddress(target);
    const upstream = connect({ host: to.host, port: to.port });
    this.#track(upstream);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new SatelliteError('TUNNEL_FAILED', `connecting to ${target.key} timed out`)), this.#config.connectTimeoutMs);
      upstream.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      upstream.once('error', (err) => {
        clearTimeout(timer);
        reject(new SatelliteError('TUNNEL_FAILED', `cannot connect to ${target.key}: ${err.message}`, { cause: err }));
      });
      socket.once('close', () => upstream.destroy());
    }).catch((err: unknown) => {
      upstream.destroy();
      throw err;
    });
    this.#counts.tunnelled++;
    upstream.setTimeout(this.#config.idleTimeoutSeconds * 1000, () => upstream.destroy());
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    this.#log.debug({ client: socket.remoteAddress, target: target.key }, 'https proxy: tunnel open');
    const done = () => {
      socket.destroy();
      upstream.destroy();
    };
    void pipeline(socket, upstream).then(undefined, done);
    void pipeline(upstream, socket).then(undefined, done);
  }

  /** Where a tunnel dials: the `hosts` entry, the IP literal, or the first DNS answer; private targets refused. */
  async #dialAddress(target: Authority): Promise<{ host: string; port: number }> {
    const fixed = this.#hosts.get(target.key);
    if (fixed) return fixed;
    const host = isIP(target.host) !== 0 ? target.host : (await lookup(target.host)).address;
    if (!this.#config.tunnelLoopback && inList(PRIVATE_TARGETS, host)) {
      throw new SatelliteError('TUNNEL_FORBIDDEN', `${target.key} is a loopback or link-local address (httpsProxy.tunnelLoopback)`);
    }
    return { host, port: target.port };
  }

  #track(s: Duplex): void {
    this.#sockets.add(s);
    s.once('close', () => this.#sockets.delete(s));
  }
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 407: 'Proxy Authentication Required', 502: 'Bad Gateway' };

const hash = (s: string): Buffer => createHash('sha256').update(s).digest();

async function readPasswordFile(path: string): Promise<string> {
  try {
    const line = (await readFile(path, 'utf8')).split('\n')[0]!.trim();
    if (line.length < 8) throw new Error('shorter than 8 characters');
    return line;
  } catch (err) {
    throw new SatelliteError('CONFIG_INVALID', `httpsProxy.auth.passwordFile: cannot use ${path}: ${(err as Error).message}`, { cause: err });
  }
}
