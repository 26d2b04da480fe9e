import type { Logger } from 'pino';
import { parseWwwAuthenticate } from './auth-challenge.ts';
import { readCapped, readErrorBody, type Meter } from './body.ts';
import { UpstreamErrorCode, upstreamError, type UpstreamErrorDetail } from './errors.ts';
import { statusError } from './status-errors.ts';
import { TokenCache } from './token-cache.ts';
import type { Transport } from './transport.ts';
import { redactUrl } from './redirects.ts';

const TOKEN_BODY_CAP = 1024 * 1024;
/** Scopes asked in one token request (bounded: the URL and the token grow with each). */
const PREFETCH_BATCH = 32;

type Scheme =
  | { kind: 'anonymous' }
  | { kind: 'basic' }
  | { kind: 'bearer'; realm: string; service: string | undefined };

/** The credential one request went out with; handed back to `challenged` after a 401. */
export interface Credential {
  kind: Scheme['kind'];
  /** The Authorization header value, if any (never logged). */
  header?: string;
  tokenKey?: string;
  token?: string;
  /** The token was fetched for this request, not taken from the cache. */
  fresh?: boolean;
}

/**
 * Decides what Authorization to send, learning the scheme from the upstream's challenges:
 * anonymous until challenged (credentials never go to an upstream that did not ask), then Basic,
 * or Bearer tokens from the challenge's realm (docker token spec), cached per scope.
 */
export class UpstreamAuth {
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #transport: Transport;
  readonly #log: Logger;
  readonly #meter: Meter;
  readonly #tokens = new TokenCache();
  #scheme: Scheme = { kind: 'anonymous' };
  /** A device's bearer token, sent as it came (never refreshed: the device owns it). */
  readonly #fixed: string | undefined;
  /** A device's credentials: its user name stays out of messages and logs. */
  readonly #device: boolean;
  /** The last challenge seen, even one we could not answer (relayed to devices). */
  #challenge: { kind: 'basic'; realm: string } | { kind: 'bearer'; realm: string; service: string | undefined } | undefined;

  constructor(
    creds: { username?: string; password?: string },
    transport: Transport,
    log: Logger,
    meter: Meter,
    opts: { fixedAuthorization?: string; learnedFrom?: UpstreamAuth; device?: boolean } = {},
  ) {
    this.#device = opts.device === true;
    this.#username = creds.username;
    this.#password = creds.password;
    this.#transport = transport;
    this.#log = log;
    this.#meter = meter;
    this.#fixed = opts.fixedAuthorization;
    // A device's credentials start where the satellite's own left off: no anonymous round trip.
    const learned = opts.learnedFrom ? opts.learnedFrom.#challenge : undefined;
    if (learned) this.#scheme = learned.kind === 'bearer' ? learned : { kind: 'basic' };
    this.#challenge = learned;
  }

  /**
   * What the upstream asked for (WWW-Authenticate), for a device: the challenge the upstream sent
   * us, with the repository's pull scope for bearer; undefined before any challenge.
   */
  challengeFor(scope: string | undefined): string | undefined {
    const c = this.#challenge;
    if (!c) return undefined;
    // Relayed into a response header: printable ASCII only, no quote or backslash to escape.
    const q = (v: string) => `"${v.replace(/[^\x20-\x7e]|["\\]/g, '').slice(0, 512)}"`;
    if (c.kind === 'basic') return `Basic realm=${q(c.realm)}`;
    return `Bearer realm=${q(c.realm)}${c.service !== undefined ? `,service=${q(c.service)}` : ''}${scope ? `,scope=${q(scope)}` : ''}`;
  }

  get scheme(): Scheme['kind'] {
    return this.#scheme.kind;
  }

  #basic(): string | undefined {
    if (this.#username === undefined) return undefined;
    return `Basic ${Buffer.from(`${this.#username}:${this.#password ?? ''}`).toString('base64')}`;
  }

  /** The credential for a request needing `scope` (undefined for /v2/); may fetch a token. */
  async credential(scope: string | undefined): Promise<Credential> {
    if (this.#fixed !== undefined) return { kind: 'bearer', header: this.#fixed };
    const scheme = this.#scheme;
    if (scheme.kind === 'basic') return { kind: 'basic', header: this.#basic() };
    if (scheme.kind === 'anonymous') return { kind: 'anonymous' };
    const key = TokenCache.key(scheme.realm, scheme.service, scope);
    const { token, fresh } = await this.#tokens.getOrFetch(key, () => this.#fetchToken(scheme.realm, scheme.service, scope));
    return { kind: 'bearer', header: `Bearer ${token}`, tokenKey: key, token, fresh };
  }

  /**
   * One token request for many scopes (docker token spec: `scope` repeated), cached under each:
   * a run over many repositories asks the realm once instead of once per repository. Only when
   * the upstream is known to use bearer tokens; scopes already cached are skipped. Best effort: a
   * failure is logged, and each request then fetches its own token as before.
   */
  async prefetch(scopes: readonly string[]): Promise<void> {
    const scheme = this.#scheme;
    if (scheme.kind !== 'bearer') return;
    const missing = [...new Set(scopes)].filter((s) => this.#tokens.get(TokenCache.key(scheme.realm, scheme.service, s)) === undefined);
    if (missing.length < 2) return;
    const batches: string[][] = [];
    for (let i = 0; i < missing.length; i += PREFETCH_BATCH) batches.push(missing.slice(i, i + PREFETCH_BATCH));
    await Promise.all(
      batches.map(async (batch) => {
        try {
          const { token, expiresInS } = await this.#fetchToken(scheme.realm, scheme.service, batch);
          for (const s of batch) this.#tokens.set(TokenCache.key(scheme.realm, scheme.service, s), token, expiresInS);
        } catch (err) {
          this.#log.debug({ err, scopes: batch.length }, 'batched token request failed; tokens will be asked per repository');
        }
      }),
    );
  }

  /**
   * After a 401: learns the scheme from WWW-Authenticate and says whether another attempt can
   * succeed. A refused cached token is dropped and replaced once; a refused fresh token or
   * refused Basic credentials are final.
   */
  challenged(header: string | string[] | undefined, sent: Credential): boolean {
    const challenges = parseWwwAuthenticate(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    const basicChallenge = challenges.find((c) => c.scheme === 'basic');
    if (bearer) this.#challenge = { kind: 'bearer', realm: bearer.params.realm!, service: bearer.params.service };
    else if (basicChallenge) this.#challenge = { kind: 'basic', realm: basicChallenge.params.realm ?? 'registry' };
    if (this.#fixed !== undefined) return false;
    if (bearer) {
      const realm = bearer.params.realm!;
      const service = bearer.params.service;
      const prev = this.#scheme;
      const changed = prev.kind !== 'bearer' || prev.realm !== realm || prev.service !== service;
      if (changed) this.#log.debug({ realm, service }, 'upstream uses bearer tokens');
      this.#scheme = { kind: 'bearer', realm, service };
      if (sent.kind !== 'bearer') return true;
      if (sent.tokenKey) this.#tokens.drop(sent.tokenKey, sent.token);
      return changed || !sent.fresh;
    }
    if (basicChallenge) {
      if (this.#username === undefined || sent.kind === 'basic') return false;
      this.#log.debug('upstream uses basic auth');
      this.#scheme = { kind: 'basic' };
      return true;
    }
    return false;
  }

  async #fetchToken(realm: string, service: string | undefined, scope: string | readonly string[] | undefined): Promise<{ token: string; expiresInS: number | undefined }> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      url = new URL('invalid:');
    }
    const detail: UpstreamErrorDetail = {};
    const who = this.#device ? "a device's credentials" : this.#username === undefined ? 'anonymous' : `user ${this.#username}`;
    const scopes = scope === undefined ? [] : typeof scope === 'string' ? [scope] : scope;
    const what = `token request to ${redactUrl(url)} (${who}, scope ${scopes.length > 1 ? `${scopes[0]} and ${scopes.length - 1} more` : (scopes[0] ?? 'none')})`;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw upstreamError(UpstreamErrorCode.protocol, `upstream challenge names an unusable token realm: ${realm.slice(0, 200)}`, detail);
    }
    // docker token spec: GET realm?service=...&scope=...; account names the user for Docker Hub.
    if (service !== undefined) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    if (this.#username !== undefined) url.searchParams.set('account', this.#username);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = this.#basic();
    if (basic) headers.authorization = basic;
    // The token request goes out without the caller's AbortSignal: concurrent requests share it.
    const res = await this.#transport.send({ url, method: 'GET', headers }, what, detail);
    if (res.statusCode !== 200) {
      const info = await readErrorBody(res.body, this.#meter);
      throw statusError(res.statusCode, res.headers, info, what, detail);
    }
    const length = res.headers['content-length'];
    const body = await readCapped(res.body, length === undefined ? undefined : Number(length), TOKEN_BODY_CAP, this.#meter, what, detail);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      throw upstreamError(UpstreamErrorCode.protocol, `${what}: the answer is not JSON`, detail);
    }
    // docker token spec: `token`, with `access_token` as the OAuth2-compatible alias.
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== 'string' || !token) {
      throw upstreamError(UpstreamErrorCode.protocol, `${what}: the answer has no token`, detail);
    }
    const expiresInS = typeof parsed.expires_in === 'number' && Number.isFinite(parsed.expires_in) ? parsed.expires_in : undefined;
    this.#log.debug({ realm: redactUrl(url), scope: scopes.length > 1 ? `${scopes.length} scopes` : scopes[0], expiresInS }, 'upstream token issued');
    return { token, expiresInS };
  }
}
