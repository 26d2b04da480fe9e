import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { SatelliteError } from '../lib/errors.ts';
import type { AdminPorts } from './ports.ts';
import type { VerifyEvent } from './types.ts';

/** Like containerd's socket: owner and group (the operators' group) may connect, nobody else. */
export const SOCKET_MODE = 0o660;
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/**
 * The admin API: JSON over HTTP on a unix socket (never TCP), for the `satellite` CLI.
 *   GET  /v1/status            StatusReport
 *   GET  /v1/images            { images: ImageRow[] }
 *   POST /v1/sync[?wait=1]     SyncStarted, or the RunReport once the run ends
 *   POST /v1/gc[?dryRun=1]     GcReport
 *   POST /v1/verify[?repair=1] NDJSON VerifyEvent lines: progress..., then result
 *   POST /v1/bundle/import?path=/abs/dir[&repository=R]  ImportReport (the daemon reads the bundle: its user needs read access)
 *   POST /v1/bundle/export?out=/abs/dir&image=R&all=1&partSize=N&key=/abs/key  ExportReport (the daemon writes it)
 * Who may call is decided by the socket file's owner, group and mode.
 */
export class AdminServer {
  readonly #path: string;
  readonly #ports: AdminPorts;
  readonly #log: Logger;
  readonly #server: Server;
  readonly #abort = new AbortController();

  constructor(opts: { socket: string; ports: AdminPorts; log: Logger }) {
    this.#path = opts.socket;
    this.#ports = opts.ports;
    this.#log = opts.log;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  get path(): string {
    return this.#path;
  }

  /** Listens; resolves false (logged) when the path is too long for a unix socket: the satellite runs on without the CLI. */
  async start(): Promise<boolean> {
    if (Buffer.byteLength(this.#path) > MAX_SOCKET_PATH) {
      // A deep dataDir must not stop the registry; the operator sets admin.socket to a shorter path.
      this.#log.error({ socket: this.#path, maxBytes: MAX_SOCKET_PATH }, 'admin socket path too long for a unix socket: no admin socket (set admin.socket)');
      return false;
    }
    // A directory we create is private (it sits in the 0700 data dir anyway); group access comes
    // from a directory made for it, such as systemd's RuntimeDirectory (0750).
    await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
    await this.#removeStale();
    this.#server.listen(this.#path);
    await Promise.race([once(this.#server, 'listening'), once(this.#server, 'error').then(([err]) => Promise.reject(err as Error))]);
    await chmod(this.#path, SOCKET_MODE);
    this.#log.info({ socket: this.#path, mode: SOCKET_MODE.toString(8) }, 'admin socket listening');
    return true;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    if (!this.#server.listening) return;
    this.#server.closeIdleConnections();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    // A long `sync --wait` or `verify` must not hold the shutdown.
    setTimeout(() => this.#server.closeAllConnections(), 1000).unref();
    await closed;
    await unlink(this.#path).catch(() => undefined);
  }

  /** A socket file left by a crash is removed; one a live satellite answers on is an error. */
  async #removeStale(): Promise<void> {
    try {
      const st = await lstat(this.#path);
      if (!st.isSocket()) throw new SatelliteError('CONFIG_INVALID', `admin.socket: ${this.#path} exists and is not a socket`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const alive = await new Promise<boolean>((resolve) => {
      const s = connect(this.#path);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (alive) throw new SatelliteError('ADMIN_SOCKET_IN_USE', `admin.socket: another process answers on ${this.#path} (a second satellite on this data directory?)`);
    await unlink(this.#path);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const flag = (name: string) => ['1', 'true', ''].includes(url.searchParams.get(name) ?? 'absent');
    const route = `${req.method} ${url.pathname}`;
    req.resume();
    try {
      switch (route) {
        case 'GET /v1/status':
          return sendJson(res, 200, await this.#ports.status());
        case 'GET /v1/images':
          return sendJson(res, 200, { images: await this.#ports.images() });
        case 'POST /v1/sync': {
          const started = this.#ports.startSync();
          if (!flag('wait')) return sendJson(res, 202, started);
          return sendJson(res, 200, await this.#ports.waitSync());
        }
        case 'POST /v1/gc':
          return sendJson(res, 200, await this.#ports.gc(flag('dryRun')));
        case 'POST /v1/verify':
          return await this.#verify(res, flag('repair'));
        case 'POST /v1/bundle/import': {
          const path = url.searchParams.get('path') ?? '';
          if (!path.startsWith('/')) return sendJson(res, 400, { error: { code: 'BAD_REQUEST', message: 'path must be an absolute directory' } });
          const repository = url.searchParams.get('repository') ?? undefined;
          return sendJson(res, 200, await this.#ports.importBundle(path, repository));
        }
        case 'POST /v1/bundle/export': {
          const q = url.searchParams;
          const outDir = q.get('out') ?? '';
          const keyFile = q.get('key') ?? undefined;
          const partSize = q.get('partSize') === null ? undefined : Number(q.get('partSize'));
          if (!outDir.startsWith('/') || (keyFile !== undefined && !keyFile.startsWith('/')) || (partSize !== undefined && !Number.isSafeInteger(partSize))) {
            return sendJson(res, 400, { error: { code: 'BAD_REQUEST', message: 'out (and key) must be absolute paths, partSize a number of bytes' } });
          }
          return sendJson(res, 200, await this.#ports.exportBundle({ outDir, images: q.getAll('image'), all: flag('all'), partSize, keyFile }));
        }
        default:
          return sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no admin operation ${route}` } });
      }
    } catch (err) {
      const code = err instanceof SatelliteError ? err.code : 'INTERNAL';
      this.#log.warn({ err, route }, 'admin request failed');
      if (!res.headersSent) sendJson(res, code === 'INTERNAL' ? 500 : 409, { error: { code, message: (err as Error).message } });
      else res.end();
    }
  }

  /** Streams progress lines (at most ~5 a second) then the report, so the CLI can draw a bar. */
  async #verify(res: ServerResponse, repair: boolean): Promise<void> {
    const ac = new AbortController();
    const stop = () => ac.abort();
    res.once('close', stop);
    this.#abort.signal.addEventListener('abort', stop, { once: true });
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    const write = (e: VerifyEvent) => res.write(`${JSON.stringify(e)}\n`);
    let lastAt = 0;
    try {
      const report = await this.#ports.verify(
        repair,
        (p) => {
          const now = Date.now();
          if (now - lastAt < 200 && p.blobsDone < p.blobs) return;
          lastAt = now;
          write({ type: 'progress', ...p });
        },
        ac.signal,
      );
      write({ type: 'result', report });
    } catch (err) {
      write({ type: 'error', code: err instanceof SatelliteError ? err.code : 'INTERNAL', message: (err as Error).message });
    } finally {
      res.off('close', stop);
      this.#abort.signal.removeEventListener('abort', stop);
      res.end();
    }
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
  res.end(data);
}
