import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { errorCode, isSatelliteError } from '../lib/errors.ts';
import { parseContentRange } from '../lib/content-range.ts';
import { VERSION } from '../version.ts';
import type { PeersConfig } from './config-schema.ts';
import { PeerErrorCode, peerError } from './errors.ts';
import type { Member } from './members.ts';
import { MAX_STATE_BYTES, PEER_ID_HEADER, PEER_PATH, parsePeerBlobState, type PeerBlobState } from './wire.ts';

export interface PeerBlob {
  status: 200 | 206;
  start: number;
  total: number;
  body: Readable;
}

/**
 * HTTP client for the other satellites of the site. Every phase is timed out short (connect,
 * first byte, body idle) so a dead or hung peer costs seconds, not minutes; long-polls extend
 * only the first-byte deadline, by the wait they asked for.
 */
export class PeerClient {
  readonly #agent: Agent;
  readonly #config: PeersConfig;
  readonly #headers: Record<string, string>;
  readonly #auth: (peer: Member) => string[];

  /**
   * auth names the secrets to send to a member, best first (the site's depends on the member's
   * origin and rotates; during a rotation a member that has not got the new one yet gets the previous).
   */
  constructor(config: PeersConfig, auth: (peer: Member) => string[], selfKey: string | undefined) {
    this.#auth = auth;
    this.#config = config;
    this.#agent = new Agent({
      connections: config.maxConnections,
      connectTimeout: config.connectTimeoutMs,
      headersTimeout: config.firstByteTimeoutMs,
      bodyTimeout: config.idleTimeoutMs,
      connect: { timeout: config.connectTimeoutMs },
    });
    this.#headers = {
      'user-agent': `harbor-satellite/${VERSION} peer`,
      ...(selfKey ? { [PEER_ID_HEADER]: selfKey } : {}),
    };
  }

  /** Asks a peer whether it has (or is fetching) a blob; waitMs > 0 long-polls while it fetches. */
  async state(
    peer: Member,
    digest: string,
    q: { repo: string; size?: number | undefined; fetch: boolean; waitMs: number },
    signal: AbortSignal,
  ): Promise<PeerBlobState> {
    const params = new URLSearchParams({ repo: q.repo, ...(q.size !== undefined ? { size: String(q.size) } : {}), wait: String(q.waitMs) });
    if (q.fetch) params.set('fetch', '1');
    const url = `${peer.url}${PEER_PATH}state/${digest}?${params}`;
    const res = await this.#send(peer, url, {}, this.#config.firstByteTimeoutMs + q.waitMs, signal);
    if (res.statusCode !== 200) throw await this.#refused(peer, res, 'state');
    const text = await readCapped(res.body, MAX_STATE_BYTES, peer);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw peerError(PeerErrorCode.protocol, `peer ${peer.key}: state is not JSON`, undefined, err);
    }
    return parsePeerBlobState(doc);
  }

  /** GET of a blob's bytes from `offset` on (Range). */
  async blob(peer: Member, digest: string, offset: number, signal: AbortSignal): Promise<PeerBlob> {
    const url = `${peer.url}${PEER_PATH}blobs/${digest}`;
    const res = await this.#send(peer, url, offset > 0 ? { range: `bytes=${offset}-` } : {}, this.#config.firstByteTimeoutMs, signal);
    const status = res.statusCode;
    if (status !== 200 && status !== 206) throw await this.#refused(peer, res, 'blob');
    const header = (name: string) => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    let start = 0;
    let total: number | undefined;
    if (status === 206) {
      const range = parseContentRange(res.headers['content-range']);
      if (range) {
        start = range.start;
        total = range.total;
      }
    } else if (/^\d+$/.test(header('content-length') ?? '')) {
      total = Number(header('content-length'));
    }
    if (total === undefined || (status === 206 && start !== offset)) {
      res.body.on('error', () => {});
      res.body.destroy();
      throw peerError(PeerErrorCode.protocol, `peer ${peer.key}: blob answer ${status} without a usable length or range`);
    }
    return { status, start, total, body: res.body };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }

  async #send(peer: Member, url: string, headers: Record<string, string>, headersTimeout: number, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const secrets = this.#auth(peer);
    try {
      for (let i = 0; ; i++) {
        const secret = secrets[i];
        const res = await request(url, {
          method: 'GET',
          dispatcher: this.#agent,
          headers: { ...this.#headers, ...(secret ? { authorization: `Bearer ${secret}` } : {}), ...headers },
          headersTimeout,
          bodyTimeout: this.#config.idleTimeoutMs,
          signal,
        });
        if (res.statusCode !== 401 || i + 1 >= secrets.length) return res;
        await res.body.dump();
      }
    } catch (err) {
      if (signal.aborted) throw err;
      throw peerError(PeerErrorCode.unreachable, `peer ${peer.key} (${peer.url}): ${describe(err)}`, { errno: errorCode(err) }, err);
    }
  }

  async #refused(peer: Member, res: Dispatcher.ResponseData, what: string): Promise<Error> {
    await res.body.dump().catch(() => undefined);
    if (res.statusCode === 401 || res.statusCode === 403) return peerError(PeerErrorCode.unauthorized, `peer ${peer.key} refused our token (${res.statusCode})`);
    if (res.statusCode === 404) return peerError(PeerErrorCode.notFound, `peer ${peer.key}: ${what} not found`);
    return peerError(PeerErrorCode.protocol, `peer ${peer.key}: ${what} answered ${res.statusCode}`);
  }
}

async function readCapped(body: Dispatcher.ResponseData['body'], cap: number, peer: Member): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > cap) {
        body.destroy();
        throw peerError(PeerErrorCode.protocol, `peer ${peer.key}: state body exceeds ${cap} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (isSatelliteError(err)) throw err;
    throw peerError(PeerErrorCode.unreachable, `peer ${peer.key}: ${describe(err)}`, undefined, err);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describe(err: unknown): string {
  const code = errorCode(err);
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timed out';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'no answer in time';
  if (code === 'UND_ERR_BODY_TIMEOUT') return 'body stalled';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  return err instanceof Error ? err.message : String(err);
}
