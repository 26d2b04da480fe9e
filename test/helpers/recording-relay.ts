import { once } from 'node:events';
import { createServer, request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { defer, type Teardown } from './cleanup.ts';

/** One request the relay forwarded: what the client asked and what the target answered. */
export interface RelayedRequest {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  /** Path and query as forwarded (after `rewrite`). */
  forwarded: string;
  status: number;
}

export interface RecordingRelay {
  /** http://127.0.0.1:PORT */
  url: string;
  host: string;
  requests: RelayedRequest[];
}

/**
 * An HTTP relay on 127.0.0.1 in front of a real registry: forwards every request (bodies streamed
 * both ways) and records method, path and the target's status, so a test can assert which API a
 * client used. `rewrite` may change a request's path and query before it is forwarded (e.g. to
 * make a referrers-capable registry page small or ignore a filter, as other registries do).
 */
export async function startRecordingRelay(t: Teardown, opts: { target: string; rewrite?: (url: URL) => void }): Promise<RecordingRelay> {
  const target = new URL(opts.target);
  const requests: RelayedRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', target);
    opts.rewrite?.(url);
    const forwarded = `${url.pathname}${url.search}`;
    const headers = { ...req.headers, host: target.host };
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: forwarded, headers }, (answer) => {
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', forwarded, status: answer.statusCode ?? 0 });
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      pipeline(answer, res).catch(() => res.destroy());
    });
    out.on('error', () => {
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', forwarded, status: 502 });
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    pipeline(req, out).catch(() => out.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, requests };
}
