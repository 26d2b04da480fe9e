import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { SatelliteError } from '../lib/errors.ts';
import type { ImportReport } from '../bundle/import.ts';
import type { ExportReport, ExportRequest } from '../bundle/export.ts';
import type { GcReport, ImageRow, RunReport, StatusReport, SyncStarted, VerifyEvent, VerifyReport } from './types.ts';

/**
 * The `satellite` CLI's side of the admin socket. Errors: ADMIN_UNREACHABLE (no satellite answers
 * on the socket), ADMIN_DENIED (the socket's mode or group keeps this user out), or the code the
 * satellite answered with.
 */
export class AdminClient {
  readonly socket: string;

  constructor(socket: string) {
    this.socket = socket;
  }

  status(): Promise<StatusReport> {
    return this.#json('GET', '/v1/status');
  }

  async images(): Promise<ImageRow[]> {
    return (await this.#json<{ images: ImageRow[] }>('GET', '/v1/images')).images;
  }

  startSync(): Promise<SyncStarted> {
    return this.#json('POST', '/v1/sync');
  }

  /** Starts (or joins) a run and resolves with its report when it ends. */
  syncAndWait(): Promise<RunReport> {
    return this.#json('POST', '/v1/sync?wait=1');
  }

  gc(dryRun: boolean): Promise<GcReport> {
    return this.#json('POST', `/v1/gc${dryRun ? '?dryRun=1' : ''}`);
  }

  /** The running satellite imports the bundle at `path` (absolute) and answers its report. */
  importBundle(path: string, repository?: string): Promise<ImportReport> {
    const q = new URLSearchParams({ path });
    if (repository) q.set('repository', repository);
    return this.#json('POST', `/v1/bundle/import?${q}`);
  }

  /** The running satellite writes a bundle of what it holds and answers its report. */
  exportBundle(req: ExportRequest): Promise<ExportReport> {
    const q = new URLSearchParams({ out: req.outDir });
    for (const i of req.images) q.append('image', i);
    if (req.all) q.set('all', '1');
    if (req.partSize !== undefined) q.set('partSize', String(req.partSize));
    if (req.keyFile) q.set('key', req.keyFile);
    return this.#json('POST', `/v1/bundle/export?${q}`);
  }

  /** Streams progress events to onEvent; resolves with the report. */
  async verify(repair: boolean, onEvent: (e: VerifyEvent) => void): Promise<VerifyReport> {
    const res = await this.#request('POST', `/v1/verify${repair ? '?repair=1' : ''}`);
    let report: VerifyReport | undefined;
    for await (const line of createInterface({ input: res, crlfDelay: Infinity })) {
      if (!line) continue;
      const event = JSON.parse(line) as VerifyEvent;
      if (event.type === 'error') throw new SatelliteError(event.code, event.message);
      if (event.type === 'result') report = event.report;
      onEvent(event);
    }
    if (!report) throw new SatelliteError('ADMIN_UNREACHABLE', 'the satellite ended the verify stream without a result (stopped?)');
    return report;
  }

  async #json<T>(method: string, path: string): Promise<T> {
    const res = await this.#request(method, path);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  }

  #request(method: string, path: string): Promise<import('node:http').IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socket, method, path, headers: { host: 'satellite' } }, (res) => {
        if ((res.statusCode ?? 500) < 400) return resolve(res);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let err = { code: 'ADMIN_ERROR', message: `the satellite answered ${res.statusCode}` };
          try {
            err = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: typeof err }).error;
          } catch {
            // not JSON: keep the status line
          }
          reject(new SatelliteError(err.code, err.message));
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EACCES' || err.code === 'EPERM') {
          reject(new SatelliteError('ADMIN_DENIED', `permission denied on ${this.socket}: run as the satellite's user or a member of its group`));
        } else if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(new SatelliteError('ADMIN_UNREACHABLE', `no satellite answers on ${this.socket}: is it running, and with this config (--config) or socket (--socket)?`));
        } else if (err.code === 'EINVAL' && Buffer.byteLength(this.socket) > 107) {
          reject(new SatelliteError('ADMIN_UNREACHABLE', `no satellite answers on ${this.socket}: the path is too long for a unix socket (set admin.socket to a shorter one)`));
        } else reject(err);
      });
      req.end();
    });
  }
}
