import type { Readable } from 'node:stream';
import type { Agent } from 'undici';
import type { Logger } from 'pino';
import { digestOf, isDigest, parseDigest } from '../lib/digest.ts';
import type { SatelliteError } from '../lib/errors.ts';
import { ACCEPT_MANIFESTS, ALL_MANIFEST_TYPES, MediaType, bareMediaType } from '../oci/media-types.ts';
import { assertRepositoryName, assertTag } from '../oci/names.ts';
import { VERSION } from '../version.ts';
import { createAgent } from './agent.ts';
import { UpstreamAuth, type Credential } from './auth.ts';
import { abandonBody, discardBody, meteredBody, readCapped, readErrorBody, type Meter } from './body.ts';
import type { UpstreamConfig } from './config-schema.ts';
import { parseContentRange, parseUnsatisfiedRange } from '../lib/content-range.ts';
import { UpstreamErrorCode, upstreamDetail, upstreamError, type UpstreamErrorDetail } from './errors.ts';
import { MAX_REDIRECTS, isRedirect, redactUrl, redirectTarget, sameOrigin } from './redirects.ts';
import { withRetries, type RetryPolicy } from './retry.ts';
import { statusError } from './status-errors.ts';
import { Transport, type Response } from './transport.ts';
import type { ReferrersPage } from '../oci/referrers.ts';
import { filtersApplied, nextReferrersPage, parseReferrersBody } from './referrers.ts';

/** dist-spec and STYLE §4: manifests are buffered, under this cap. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface ManifestResult {
  /** Digest of the body (the reference itself when that was a digest). */
  digest: string;
  mediaType: string;
  body: Buffer;
}

export interface ResolvedTag {
  digest: string;
  mediaType: string;
  size: number;
}

export interface BlobResult {
  status: 200 | 206;
  /** Offset of the body's first byte in the blob: the requested offset for 206, 0 for 200. */
  start: number;
  /** Full blob size, when the upstream said. */
  total?: number;
  /** Consume it or destroy it; a mid-body failure errors it with UPSTREAM_UNREACHABLE (detail.bytes). */
  body: Readable;
}

export interface UpstreamClientOptions {
  /** Called with the size of every chunk read from the network (bodies only). */
  meter?: Meter;
}

/** What a device may read at the upstream with its own credentials (forDevice().checkAccess). */
export type AccessCheck = { kind: 'manifest'; reference: string } | { kind: 'blob'; digest: string } | { kind: 'tags' };

const header = (res: Response, name: string): string | undefined => {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

const contentLength = (res: Response): number | undefined => {
  const v = header(res, 'content-length');
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};

/**
 * Reads images from one upstream registry (Harbor or any OCI distribution registry): /v2/ ping,
 * manifests, tag resolution and resumable blob downloads, with auth, retries and redirects.
 */
export class UpstreamClient {
  readonly #config: UpstreamConfig;
  readonly #log: Logger;
  readonly #meter: Meter;
  readonly #agent: Agent;
  readonly #transport: Transport;
  readonly #auth: UpstreamAuth;
  readonly #base: URL;
  /** Path prefix of the registry (usually empty), without a trailing slash. */
  readonly #basePath: string;
  readonly #name: string;
  readonly #retryPolicy: RetryPolicy;
  /** False for a device's view (forDevice), which borrows the satellite's connections. */
  readonly #ownsAgent: boolean;
  /** For a device's view: whether its credentials were sent (the error message says so). */
  readonly #device: boolean;

  constructor(config: UpstreamConfig, log: Logger, opts: UpstreamClientOptions & { shareWith?: UpstreamClient; deviceAuthorization?: string } = {}) {
    this.#config = config;
    const base = new URL(config.url);
    this.#basePath = base.pathname.replace(/\/+$/, '');
    base.search = '';
    base.hash = '';
    this.#base = base;
    this.#name = `${base.origin}${this.#basePath}`;
    // The caller's logger already carries { module: 'upstream' } (STYLE §6); name the upstream.
    this.#log = log.child({ upstream: this.#name });
    this.#meter = opts.meter ?? (() => {});
    const parent = opts.shareWith;
    this.#ownsAgent = parent === undefined;
    this.#device = opts.deviceAuthorization !== undefined;
    this.#agent = parent ? parent.#agent : createAgent(config, this.#log);
    this.#transport = parent ? parent.#transport : new Transport(this.#agent, this.#log, config.userAgent ?? `harbor-satellite/${VERSION}`);
    this.#auth = parent && opts.deviceAuthorization !== undefined ? deviceAuth(opts.deviceAuthorization, this.#transport, this.#log, this.#meter, parent.#auth) : new UpstreamAuth(config, this.#transport, this.#log, this.#meter);
    this.#retryPolicy = { retries: config.retries, maxRetryAfterMs: config.maxRetryAfterMs, log: this.#log };
  }

  /**
   * The same upstream seen with a device's own credentials (the Authorization header it sent:
   * Basic user:password, used like configured credentials, or Bearer, sent as is), sharing this
   * client's connections. Undefined for any other scheme. Nothing of it is cached beyond the
   * returned object; the header is never logged.
   */
  forDevice(authorization: string): UpstreamClient | undefined {
    if (!/^(basic|bearer)\s+\S+$/i.test(authorization.trim())) return undefined;
    return new UpstreamClient(this.#config, this.#log, { meter: this.#meter, shareWith: this, deviceAuthorization: authorization.trim() });
  }

  /**
   * The WWW-Authenticate challenge a device should get for `repo` (the upstream's own, learned
   * from its answers to us; with the repository's pull scope for bearer tokens). When none was
   * seen yet, asks GET /v2/ once without credentials to learn it.
   */
  async challenge(repo: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const scope = repo === undefined ? undefined : pullScope(repo);
    const known = this.#auth.challengeFor(scope);
    if (known !== undefined) return known;
    const what = `${this.#name}: GET /v2/ (challenge)`;
    const res = await this.#transport.send({ url: this.#url('/v2/'), method: 'GET', headers: {}, signal }, what, {});
    await discardBody(res.body, this.#meter);
    if (res.statusCode === 401) this.#auth.challenged(res.headers['www-authenticate'], { kind: 'bearer' });
    return this.#auth.challengeFor(scope);
  }

  /**
   * A device's token request, relayed to the upstream's token realm (`url`: the realm with the
   * device's query): GET with the device's Authorization (or none) and nothing of ours, no retry,
   * no redirect followed, nothing cached. The caller streams the body back (capped) and must
   * consume or destroy it. The Authorization and the query (account=) are never logged.
   */
  async relayTokenRequest(url: URL, authorization: string | undefined, signal?: AbortSignal): Promise<{ status: number; headers: Record<string, string>; body: Readable }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (authorization !== undefined) headers.authorization = authorization;
    const what = `${this.#name}: token request relayed for a device`;
    const res = await this.#transport.send({ url, method: 'GET', headers, signal }, what, {});
    const out: Record<string, string> = {};
    const header = (name: string) => {
      const v = res.headers[name];
      return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
    };
    // Only what a token answer needs: no cookies, no Location (redirects are not followed for devices).
    for (const name of ['content-type', 'content-length', 'www-authenticate']) {
      const v = header(name);
      if (v !== undefined) out[name] = v.replace(/[^\x20-\x7e]/g, '').slice(0, 1024);
    }
    return { status: res.statusCode, headers: out, body: meteredBody(res.body, this.#meter, what, {}) };
  }

  /**
   * Whether this client's credentials may read `what` in `repo`: a HEAD (tags: GET ?n=1) without
   * retries. true on 2xx, false on 401/403; throws UPSTREAM_NOT_FOUND on 404 (which proves
   * nothing about access on registries that hide private repositories) and network errors.
   */
  async checkAccess(repo: string, what: AccessCheck, signal?: AbortSignal): Promise<boolean> {
    assertRepositoryName(repo);
    const path =
      what.kind === 'manifest' ? `/v2/${repo}/manifests/${what.reference}` : what.kind === 'blob' ? `/v2/${repo}/blobs/${parseDigest(what.digest).digest}` : `/v2/${repo}/tags/list?n=1`;
    if (what.kind === 'manifest' && !isDigest(what.reference)) assertTag(what.reference);
    const label = `${this.#name}: access check ${what.kind} in ${repo}`;
    const detail: UpstreamErrorDetail = { repo };
    let res: Response;
    try {
      ({ res } = await this.#exchange(what.kind === 'tags' ? 'GET' : 'HEAD', path, what.kind === 'manifest' ? { accept: ACCEPT_MANIFESTS } : {}, pullScope(repo), label, detail, signal));
    } catch (err) {
      if ((err as SatelliteError).code === UpstreamErrorCode.auth) return false;
      throw err;
    }
    // A blob HEAD may redirect to object storage: reaching that redirect already proves access.
    if ((res.statusCode >= 200 && res.statusCode < 300) || isRedirect(res.statusCode)) {
      await discardBody(res.body, this.#meter);
      return true;
    }
    throw res.statusCode === 404 ? (await discardBody(res.body, this.#meter), statusError(404, res.headers, {}, label, detail)) : await this.#failure(res, label, detail);
  }

  /** GET /v2/ (following the auth challenge); throws UPSTREAM_UNREACHABLE / UPSTREAM_AUTH. */
  async ping(signal?: AbortSignal): Promise<void> {
    const what = `${this.#name}: GET /v2/`;
    await withRetries(this.#retryPolicy, what, signal, async () => {
      const { res } = await this.#exchange('GET', '/v2/', {}, undefined, what, {}, signal);
      if (res.statusCode !== 200) throw await this.#failure(res, what, {});
      await discardBody(res.body, this.#meter);
    });
  }

  /**
   * Before a run over these repositories: one token request for all their pull scopes when the
   * upstream uses bearer tokens (instead of one per repository). Best effort, never throws.
   */
  async prepare(repos: readonly string[]): Promise<void> {
    await this.#auth.prefetch(repos.map(pullScope));
  }

  /**
   * GET a manifest by tag or digest with the full Accept list (distribution hides indexes
   * otherwise). Verifies the body against a digest reference and against Docker-Content-Digest.
   */
  async getManifest(repo: string, reference: string, signal?: AbortSignal): Promise<ManifestResult> {
    return (await this.#getManifest(repo, reference, undefined, signal))!;
  }

  /**
   * GET a manifest unless it is still `known` (a digest): a conditional request (If-None-Match,
   * which distribution and Harbor answer with 304 and no body), so an unchanged tag costs one
   * round trip on a kept-alive connection. Resolves undefined when unchanged (304, or a 200 whose
   * body hashes to `known` from an upstream that ignores the condition). Unlike HEAD, which undici
   * answers by closing the connection, this keeps the connection for the next request.
   */
  getManifestIfChanged(repo: string, reference: string, known: string, signal?: AbortSignal): Promise<ManifestResult | undefined> {
    parseDigest(known);
    return this.#getManifest(repo, reference, known, signal);
  }

  async #getManifest(repo: string, reference: string, known: string | undefined, signal?: AbortSignal): Promise<ManifestResult | undefined> {
    assertRepositoryName(repo);
    const wanted = isDigest(reference) ? parseDigest(reference) : (assertTag(reference), undefined);
    const what = `${this.#name}: manifest ${repo}${wanted ? '@' : ':'}${reference}`;
    const detail: UpstreamErrorDetail = { repo, reference };
    // distribution's ETag is the quoted digest.
    const headers: Record<string, string> = known ? { accept: ACCEPT_MANIFESTS, 'if-none-match': `"${known}"` } : { accept: ACCEPT_MANIFESTS };
    const got = await withRetries(this.#retryPolicy, what, signal, async () => {
      const { res } = await this.#exchange('GET', `/v2/${repo}/manifests/${reference}`, headers, pullScope(repo), what, detail, signal);
      if (known && res.statusCode === 304) {
        await discardBody(res.body, this.#meter);
        return undefined;
      }
      if (res.statusCode !== 200) throw await this.#failure(res, what, detail);
      return { res, body: await readCapped(res.body, contentLength(res), MAX_MANIFEST_BYTES, this.#meter, what, detail) };
    });
    if (!got) return undefined;
    const { body, res } = got;

    const digest = wanted ? digestOf(body, wanted.algorithm) : digestOf(body);
    if (wanted && digest !== wanted.digest) {
      throw upstreamError(UpstreamErrorCode.digestMismatch, `${what}: body hashes to ${digest}`, detail);
    }
    const announced = header(res, 'docker-content-digest');
    if (announced !== undefined) {
      if (!isDigest(announced)) {
        this.#log.debug({ repo, reference, announced: announced.slice(0, 100) }, 'ignoring malformed Docker-Content-Digest');
      } else if (digestOf(body, parseDigest(announced).algorithm) !== announced) {
        throw upstreamError(UpstreamErrorCode.digestMismatch, `${what}: Docker-Content-Digest ${announced} does not match the body`, detail);
      }
    }
    if (known !== undefined && digest === known) return undefined;
    return { digest, mediaType: manifestMediaType(header(res, 'content-type'), body), body };
  }

  /**
   * One page of the OCI 1.1 referrers API, `GET /v2/<repo>/referrers/<digest>` (dist-spec end-12a),
   * asking the registry to filter by `artifactType` (it may not: see `filtered`). `next` is the
   * page a previous answer linked. Resolves undefined on 404: the registry has no referrers API
   * (distribution 2.8), and the caller falls back to the referrers tag schema.
   */
  async getReferrers(repo: string, digest: string, opts: { artifactType?: string; next?: string } = {}, signal?: AbortSignal): Promise<ReferrersPage | undefined> {
    assertRepositoryName(repo);
    parseDigest(digest);
    const base = `/v2/${repo}/referrers/${digest}`;
    if (opts.next !== undefined && !opts.next.startsWith(`${base}?`) && opts.next !== base) throw new RangeError(`getReferrers: next page ${opts.next.slice(0, 200)} is not under ${base}`);
    const path = opts.next ?? (opts.artifactType !== undefined ? `${base}?artifactType=${encodeURIComponent(opts.artifactType)}` : base);
    const what = `${this.#name}: referrers of ${repo}@${digest}`;
    const detail: UpstreamErrorDetail = { repo, reference: digest };
    const got = await withRetries(this.#retryPolicy, what, signal, async () => {
      const { res } = await this.#exchange('GET', path, { accept: MediaType.ociIndex }, pullScope(repo), what, detail, signal);
      if (res.statusCode === 404) {
        await discardBody(res.body, this.#meter);
        return undefined;
      }
      if (res.statusCode !== 200) throw await this.#failure(res, what, detail);
      return { res, body: await readCapped(res.body, contentLength(res), MAX_MANIFEST_BYTES, this.#meter, what, detail) };
    });
    if (!got) return undefined;
    const page: ReferrersPage = { ...parseReferrersBody(got.body, what, detail), filtered: filtersApplied(got.res.headers['oci-filters-applied'], 'artifactType') };
    const next = nextReferrersPage(got.res.headers.link, this.#url(path), this.#basePath, base);
    if (next !== undefined) page.next = next;
    return page;
  }

  /** HEAD a manifest: tag -> digest from Docker-Content-Digest; GETs the manifest when the header is missing. */
  async resolveTag(repo: string, tag: string, signal?: AbortSignal): Promise<ResolvedTag> {
    assertRepositoryName(repo);
    if (!isDigest(tag)) assertTag(tag);
    const what = `${this.#name}: HEAD manifest ${repo}:${tag}`;
    const detail: UpstreamErrorDetail = { repo, reference: tag };
    const head = await withRetries(this.#retryPolicy, what, signal, async () => {
      const { res } = await this.#exchange('HEAD', `/v2/${repo}/manifests/${tag}`, { accept: ACCEPT_MANIFESTS }, pullScope(repo), what, detail, signal);
      await discardBody(res.body, this.#meter);
      if (res.statusCode !== 200) throw statusError(res.statusCode, res.headers, {}, what, detail);
      return { digest: header(res, 'docker-content-digest'), type: bareMediaType(header(res, 'content-type')), size: contentLength(res) };
    });
    if (head.digest !== undefined && isDigest(head.digest) && head.size !== undefined && ALL_MANIFEST_TYPES.includes(head.type)) {
      return { digest: head.digest, mediaType: head.type, size: head.size };
    }
    this.#log.debug({ repo, tag }, 'HEAD gave no usable digest, media type or size; falling back to GET');
    const manifest = await this.getManifest(repo, tag, signal);
    return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.body.length };
  }

  /**
   * GET a blob from `offset` (Range: bytes=offset-). Redirects are followed by hand and the
   * Authorization header goes only to the registry's own origin. Never retried here: the caller
   * resumes with a new offset. 200 means the body starts at 0 whatever offset was asked.
   */
  async fetchBlob(repo: string, digest: string, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<BlobResult> {
    assertRepositoryName(repo);
    parseDigest(digest);
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`fetchBlob: offset must be a non-negative integer, got ${offset}`);
    const signal = opts.signal;
    const what = `${this.#name}: blob ${repo}@${digest}${offset ? ` from byte ${offset}` : ''}`;
    const detail: UpstreamErrorDetail = { repo, reference: digest };
    // dist-spec: Range on blob GET.
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const path = `/v2/${repo}/blobs/${digest}`;
    let { res, credential } = await this.#exchange('GET', path, headers, pullScope(repo), what, detail, signal);
    let url = this.#url(path);
    for (let hops = 0; isRedirect(res.statusCode); hops++) {
      const next = redirectTarget(url, res.headers.location);
      await discardBody(res.body, this.#meter);
      if (hops >= MAX_REDIRECTS || !next) {
        const why = next ? `more than ${MAX_REDIRECTS} redirects` : `redirect ${res.statusCode} without a usable Location`;
        throw upstreamError(UpstreamErrorCode.protocol, `${what}: ${why}`, { ...detail, status: res.statusCode });
      }
      const hopHeaders = { ...headers };
      // Presigned object-storage URLs carry their own authorization; ours must not leak there.
      if (credential.header && sameOrigin(next, this.#base)) hopHeaders.authorization = credential.header;
      this.#log.debug({ from: redactUrl(url), to: redactUrl(next), auth: 'authorization' in hopHeaders }, 'following blob redirect');
      url = next;
      res = await this.#transport.send({ url, method: 'GET', headers: hopHeaders, signal }, what, detail);
      credential = sameOrigin(url, this.#base) ? credential : { kind: 'anonymous' };
    }
    const foreign = !sameOrigin(url, this.#base);
    const here: UpstreamErrorDetail = foreign ? { ...detail, origin: url.origin } : detail;

    if (res.statusCode === 200) {
      return { status: 200, start: 0, ...optionalTotal(contentLength(res)), body: meteredBody(res.body, this.#meter, what, here) };
    }
    if (res.statusCode === 206) {
      const range = parseContentRange(res.headers['content-range']);
      const length = contentLength(res);
      let problem: string | undefined;
      if (offset === 0) problem = 'answered 206 to a request without Range';
      else if (!range) problem = `answered 206 with an unusable Content-Range ${JSON.stringify(header(res, 'content-range') ?? null)}`;
      else if (range.start !== offset) problem = `answered 206 from byte ${range.start} instead of ${offset}`;
      else if (length !== undefined && length !== range.end - range.start + 1) problem = `answered 206 with Content-Length ${length} for range ${range.start}-${range.end}`;
      if (problem || !range) {
        abandonBody(res.body);
        throw upstreamError(UpstreamErrorCode.protocol, `${what}: ${problem}`, { ...here, status: 206 });
      }
      return { status: 206, start: range.start, ...optionalTotal(range.total), body: meteredBody(res.body, this.#meter, what, here) };
    }
    if (res.statusCode === 416) {
      const total = parseUnsatisfiedRange(res.headers['content-range']);
      await discardBody(res.body, this.#meter);
      const size = total === undefined ? '' : ` (the blob has ${total} bytes)`;
      throw upstreamError(UpstreamErrorCode.protocol, `${what}: upstream answered 416, offset ${offset} is not satisfiable${size}`, { ...here, status: 416 });
    }
    const err = await this.#failure(res, what, here);
    // A presigned URL that expired or was refused is not a credentials problem of ours.
    if (foreign && err.code === UpstreamErrorCode.auth) {
      throw upstreamError(UpstreamErrorCode.protocol, `${err.message} at redirect target ${url.origin}`, upstreamDetail(err));
    }
    throw err;
  }

  /** Closes the connections; waits up to 5 s for requests in flight, then cuts them. */
  async close(): Promise<void> {
    if (!this.#ownsAgent) return;
    const timer = setTimeout(() => void this.#agent.destroy().catch(() => {}), 5000);
    try {
      await this.#agent.close();
    } catch {
      // destroyed by the timer
    } finally {
      clearTimeout(timer);
    }
  }

  #url(path: string): URL {
    const url = new URL(`${this.#base.origin}${this.#basePath}${path}`);
    // Names and references are validated, so this cannot happen; it guards the credentials anyway.
    if (url.origin !== this.#base.origin) throw new Error(`upstream path ${path} escapes ${this.#name}`);
    return url;
  }

  /**
   * One request to the registry with the auth dance: anonymous first, then whatever the 401
   * challenge asks for; a refused cached token is replaced once. A final 401 is UPSTREAM_AUTH.
   */
  async #exchange(
    method: 'GET' | 'HEAD',
    path: string,
    headers: Record<string, string>,
    scope: string | undefined,
    what: string,
    detail: UpstreamErrorDetail,
    signal: AbortSignal | undefined,
  ): Promise<{ res: Response; credential: Credential }> {
    const url = this.#url(path);
    for (let round = 0; ; round++) {
      const credential = await this.#auth.credential(scope);
      const sent = credential.header ? { ...headers, authorization: credential.header } : headers;
      const res = await this.#transport.send({ url, method, headers: sent, signal }, what, detail);
      if (res.statusCode !== 401) return { res, credential };
      const challenge = res.headers['www-authenticate'];
      const info = method === 'HEAD' ? (await discardBody(res.body, this.#meter), {}) : await readErrorBody(res.body, this.#meter);
      if (round >= 2 || !this.#auth.challenged(challenge, credential)) {
        const tried = this.#device ? "with the device's credentials" : credential.kind === 'anonymous' ? (this.#config.username === undefined ? 'anonymously (no credentials configured)' : 'anonymously') : `with ${credential.kind} credentials`;
        const err = statusError(401, res.headers, info, what, detail);
        throw upstreamError(UpstreamErrorCode.auth, `${err.message}; tried ${tried}`, upstreamDetail(err));
      }
    }
  }

  /** Reads an error response's body and maps its status to an upstream error. */
  async #failure(res: Response, what: string, detail: UpstreamErrorDetail): Promise<SatelliteError> {
    const info = await readErrorBody(res.body, this.#meter);
    return statusError(res.statusCode, res.headers, info, what, detail);
  }
}

/** A device's Authorization: Basic is decoded and used like configured credentials, Bearer sent as is. */
function deviceAuth(authorization: string, transport: Transport, log: Logger, meter: Meter, learnedFrom: UpstreamAuth): UpstreamAuth {
  const [scheme = '', value = ''] = authorization.split(/\s+/, 2);
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const username = colon < 0 ? decoded : decoded.slice(0, colon);
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    return new UpstreamAuth({ username, password }, transport, log, meter, { learnedFrom, device: true });
  }
  return new UpstreamAuth({}, transport, log, meter, { fixedAuthorization: `Bearer ${value}`, learnedFrom, device: true });
}

/** docker token scope for reading a repository. */
function pullScope(repo: string): string {
  return `repository:${repo}:pull`;
}

function optionalTotal(total: number | undefined): { total?: number } {
  return total === undefined ? {} : { total };
}

/**
 * The manifest's media type: Content-Type when it is one we know, else the body's own mediaType
 * field (some registries answer application/json), else whatever Content-Type said.
 */
function manifestMediaType(contentType: string | undefined, body: Buffer): string {
  const type = bareMediaType(contentType);
  if (ALL_MANIFEST_TYPES.includes(type)) return type;
  try {
    const field = (JSON.parse(body.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof field === 'string' && field) return field;
  } catch {
    // not JSON: leave it to the caller's manifest parser
  }
  return type;
}
