import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { errnoCode, isSatelliteError } from '../lib/errors.ts';
import { validate } from '../lib/validate.ts';
import { REGISTER_PATH, TOPIC_PREFIX, type RegisterRequest, type RegisterResponse } from '../protocol/index.ts';
import type { ControlConfig } from './config-schema.ts';
import { ControlErrorCode, clip, controlError } from './errors.ts';
import { loadIdentity, saveIdentity, type Identity } from './identity.ts';

/** Largest registration response read (it is a few hundred bytes). */
const MAX_RESPONSE_BYTES = 64 * 1024;

const str = { type: 'string' } as const;

/** RegisterResponse as the satellite accepts it (the protocol only has the request's schema). */
export const registerResponseSchema = {
  $id: 'register-response',
  type: 'object',
  required: ['satelliteId', 'mqtt', 'upstream'],
  properties: {
    satelliteId: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    name: str,
    site: { type: ['string', 'null'] },
    mqtt: {
      type: 'object',
      required: ['url', 'username', 'password'],
      properties: { url: { type: 'string', pattern: '^(mqtts?|wss?)://[^\\s]+$' }, username: str, password: str, topicPrefix: str },
    },
    upstream: {
      type: ['object', 'null'],
      required: ['url'],
      properties: { url: { type: 'string', minLength: 1 }, username: str, password: str },
    },
    bundleKey: { type: 'string', minLength: 1, maxLength: 16384 },
  },
} as const;

export interface RegisterOptions {
  groundControlUrl: string;
  token: string;
  hostname: string;
  version: string;
  timeoutMs: number;
  /** PEM CA bundle for an https Ground Control with a private CA. */
  ca?: Buffer | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * One registration attempt. Resolves with Ground Control's answer; throws REGISTRATION_FAILED when
 * Ground Control refused (4xx: detail {status, code, message} with its code, e.g. TOKEN_USED), and
 * REGISTRATION_UNAVAILABLE when it could not be asked (network, timeout, 408/429/5xx): retry those.
 */
export async function register(opts: RegisterOptions): Promise<RegisterResponse> {
  // A path prefix on the base URL is kept: https://host/gc -> https://host/gc/api/v1/register.
  const url = new URL(opts.groundControlUrl);
  url.pathname = `${url.pathname.replace(/\/$/, '')}${REGISTER_PATH}`;
  const body: RegisterRequest = { token: opts.token, hostname: opts.hostname, version: opts.version };
  const agent = new Agent({
    connections: 1,
    connectTimeout: opts.timeoutMs,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    ...(opts.ca ? { connect: { ca: opts.ca } } : {}),
  });
  const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
  try {
    let status: number;
    let text: string;
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: agent,
        signal,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
      });
      status = res.statusCode;
      text = await readCapped(res.body, MAX_RESPONSE_BYTES);
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw controlError(ControlErrorCode.registrationUnavailable, `cannot reach Ground Control at ${url.origin}: ${(err as Error).message}`, {
        cause: err,
        detail: { code: errnoCode(err) ?? (err as Error).name },
      });
    }
    const json = parseJson(text);
    if (status >= 200 && status < 300) {
      if (json === undefined) throw controlError(ControlErrorCode.registrationUnavailable, `Ground Control answered ${status} without JSON`);
      const answer = validate<RegisterResponse>(registerResponseSchema, json, 'registration response', ControlErrorCode.registrationUnavailable);
      return answer;
    }
    const e = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = typeof e?.code === 'string' ? e.code : `HTTP_${status}`;
    const message = typeof e?.message === 'string' ? e.message : clip(text, 200);
    const detail = { status, code, message };
    if (status === 408 || status === 429 || status >= 500) {
      throw controlError(ControlErrorCode.registrationUnavailable, `Ground Control answered ${status} ${code}: ${message}`, { detail });
    }
    throw controlError(ControlErrorCode.registrationFailed, `registration refused by Ground Control (${status} ${code}): ${message}`, { detail });
  } finally {
    await agent.close().catch(() => undefined);
  }
}

export interface ObtainIdentityOptions {
  config: ControlConfig;
  dataDir: string;
  log: Logger;
  version: string;
  hostname?: string | undefined;
  /** Aborts the registration retries (daemon shutdown). */
  signal?: AbortSignal | undefined;
}

/**
 * The satellite's identity: explicit config wins; else the stored identity.json; else register with
 * Ground Control (first boot) and store the answer (mode 0600). Network trouble is retried with
 * backoff until `signal` aborts; a refused token is thrown at once (REGISTRATION_FAILED).
 */
export async function obtainIdentity(opts: ObtainIdentityOptions): Promise<Identity> {
  const { config, log } = opts;
  if (config.mqtt) {
    if (!config.satelliteId) throw controlError(ControlErrorCode.configInvalid, 'control.satelliteId is required with control.mqtt');
    const { url, username, password, clientId } = config.mqtt;
    return {
      satelliteId: config.satelliteId,
      mqtt: { url, ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}), ...(clientId ? { clientId } : {}) },
      upstream: null,
      source: 'config',
    };
  }
  const file = identityFile(config, opts.dataDir);
  const stored = await loadIdentity(file);
  if (stored) {
    log.info({ satelliteId: stored.satelliteId, file }, 'identity loaded');
    return stored;
  }
  if (!config.groundControlUrl) {
    throw controlError(ControlErrorCode.configInvalid, `control.groundControlUrl is required: no identity at ${file} and no control.mqtt`);
  }
  const token = await readToken(config);
  const ca = config.caFile ? await readCa(config.caFile, 'control.caFile') : undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      const answer = await register({
        groundControlUrl: config.groundControlUrl,
        token,
        hostname: opts.hostname ?? osHostname(),
        version: opts.version,
        timeoutMs: config.registrationTimeoutMs,
        ca,
        signal: opts.signal,
      });
      const identity = toIdentity(answer, config.groundControlUrl);
      if (answer.mqtt.topicPrefix !== undefined && answer.mqtt.topicPrefix !== TOPIC_PREFIX) {
        log.warn({ topicPrefix: answer.mqtt.topicPrefix, expected: TOPIC_PREFIX }, 'Ground Control names another topic prefix; using this version\'s');
      }
      await saveIdentity(file, identity);
      log.info({ satelliteId: identity.satelliteId, file }, 'registered with Ground Control');
      return identity;
    } catch (err) {
      if (!isSatelliteError(err, ControlErrorCode.registrationUnavailable)) throw err;
      const delayMs = backoffMs(attempt, config.reconnectMinMs, config.reconnectMaxMs);
      log.warn({ err: err.message, detail: err.detail, attempt, delayMs }, 'registration failed; retrying');
      await sleep(delayMs, undefined, { signal: opts.signal });
    }
  }
}

export function identityFile(config: ControlConfig, dataDir: string): string {
  return config.identityFile ?? join(dataDir, 'identity.json');
}

/** Doubling delay from min to max with ±25% jitter. */
export function backoffMs(attempt: number, minMs: number, maxMs: number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

export async function readCa(file: string, key: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw controlError(ControlErrorCode.configInvalid, `${key}: cannot read ${file} (${errnoCode(err) ?? (err as Error).message})`, { cause: err });
  }
}

async function readToken(config: ControlConfig): Promise<string> {
  if (config.registrationToken) return config.registrationToken;
  if (!config.registrationTokenFile) {
    throw controlError(ControlErrorCode.configInvalid, 'control.registrationToken or control.registrationTokenFile is required to register (first boot)');
  }
  let token: string;
  try {
    token = (await readFile(config.registrationTokenFile, 'utf8')).trim();
  } catch (err) {
    throw controlError(
      ControlErrorCode.configInvalid,
      `control.registrationTokenFile: cannot read ${config.registrationTokenFile} (${errnoCode(err) ?? (err as Error).message})`,
      { cause: err },
    );
  }
  if (token.length < 16 || token.length > 200 || /\s/.test(token)) {
    throw controlError(ControlErrorCode.configInvalid, `control.registrationTokenFile: ${config.registrationTokenFile} does not hold a token (16-200 characters)`);
  }
  return token;
}

function toIdentity(answer: RegisterResponse, groundControlUrl: string): Identity {
  return {
    satelliteId: answer.satelliteId,
    ...(answer.name !== undefined ? { name: answer.name } : {}),
    ...(answer.site !== undefined ? { site: answer.site } : {}),
    mqtt: { url: answer.mqtt.url, username: answer.mqtt.username, password: answer.mqtt.password, topicPrefix: answer.mqtt.topicPrefix },
    upstream: answer.upstream
      ? {
          url: answer.upstream.url,
          ...(answer.upstream.username !== undefined ? { username: answer.upstream.username } : {}),
          ...(answer.upstream.password !== undefined ? { password: answer.upstream.password } : {}),
        }
      : null,
    ...(answer.bundleKey !== undefined ? { bundleKey: answer.bundleKey } : {}),
    groundControlUrl,
    registeredAt: new Date().toISOString(),
    source: 'registration',
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(err?: Error): void }, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw new Error(`response larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
