import type { Agent, Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { UpstreamErrorDetail } from './errors.ts';
import { networkError } from './network-errors.ts';
import { redactUrl } from './redirects.ts';

export type Response = Dispatcher.ResponseData;

export interface SendOptions {
  url: URL;
  method: 'GET' | 'HEAD';
  headers: Record<string, string>;
  signal?: AbortSignal | undefined;
}

/**
 * One HTTP exchange through the agent: maps transport failures to UPSTREAM_UNREACHABLE and logs
 * one debug line per request — never headers (Authorization) nor query strings (signed URLs).
 */
export class Transport {
  readonly #agent: Agent;
  readonly #log: Logger;
  readonly #userAgent: string;

  constructor(agent: Agent, log: Logger, userAgent: string) {
    this.#agent = agent;
    this.#log = log;
    this.#userAgent = userAgent;
  }

  async send(opts: SendOptions, what: string, detail: UpstreamErrorDetail): Promise<Response> {
    const started = performance.now();
    try {
      const res = await this.#agent.request({
        origin: opts.url.origin,
        path: `${opts.url.pathname}${opts.url.search}`,
        method: opts.method,
        headers: { 'user-agent': this.#userAgent, ...opts.headers },
        signal: opts.signal ?? null,
      });
      this.#log.debug(
        { method: opts.method, url: redactUrl(opts.url), status: res.statusCode, ms: Math.round(performance.now() - started) },
        'upstream request',
      );
      return res;
    } catch (err) {
      this.#log.debug({ method: opts.method, url: redactUrl(opts.url), err }, 'upstream request failed');
      throw networkError(err, what, detail);
    }
  }
}
