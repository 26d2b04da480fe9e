import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { defer, type Teardown } from './cleanup.ts';
import { spawnPeer, waitForLine, type ExitInfo, type PeerProcess } from './process.ts';
import { deepMerge, REPO_ROOT } from './satellite.ts';
import { makeTempDir } from './tmp.ts';

export const GC_ENTRY = join(REPO_ROOT, 'src', 'cli', 'groundcontrol.ts');
/** The admin token every test Ground Control accepts (GROUNDCONTROL_ADMIN_TOKEN). */
export const TEST_ADMIN_TOKEN = 'hsa_test-admin-token-0123456789';
/** Upstream the test config puts into desired states (nothing listens there; nobody syncs). */
export const TEST_UPSTREAM = { url: 'http://127.0.0.1:9', username: 'robot', password: 'robot-secret' };

export interface GroundControlOptions {
  /** Deep-merged over the defaults (API and embedded broker on 127.0.0.1 port 0). */
  config?: Record<string, unknown>;
  /** Reuse a data dir (restart tests). */
  dataDir?: string;
  env?: Record<string, string>;
  /** Wait for "broker listening" too (embedded broker); default true unless config.broker.url. */
  embedded?: boolean;
  readyTimeoutMs?: number;
  /** Script to run instead of src/cli/groundcontrol.ts (e.g. the esbuild bundle). */
  entry?: string;
}

export interface GroundControlProcess {
  dataDir: string;
  configFile: string;
  config: Record<string, unknown>;
  proc: PeerProcess;
  stop(timeoutMs?: number): Promise<ExitInfo>;
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
  logs(): string;
  waitForLog(regex: RegExp, timeoutMs?: number, fromLine?: number): Promise<RegExpExecArray>;
}

export interface GroundControl extends GroundControlProcess {
  /** http://127.0.0.1:PORT */
  url: string;
  apiPort: number;
  /** Embedded broker port (undefined with an external broker). */
  brokerPort: number | undefined;
  /** mqtt://127.0.0.1:PORT of the embedded broker. */
  mqttUrl: string | undefined;
  /** One API call with the admin token (or `token`; null for none). */
  api<T = any>(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: T }>;
}

/** Writes the config and spawns `node src/cli/groundcontrol.ts serve -c FILE`; stopped after the test. */
export async function spawnGroundControl(t: Teardown, opts: GroundControlOptions = {}): Promise<GroundControlProcess> {
  const dataDir = opts.dataDir ?? (await makeTempDir(t, 'hs-gc-data-'));
  const configFile = join(await makeTempDir(t, 'hs-gc-config-'), 'groundcontrol.json');
  const defaults = {
    dataDir,
    log: { level: 'info' },
    api: { listen: { host: '127.0.0.1', port: 0 } },
    upstream: TEST_UPSTREAM,
    registrationTokenTtlSeconds: 600,
  };
  const config = deepMerge(defaults, opts.config ?? {});
  const external = typeof (config.broker as { url?: unknown } | undefined)?.url === 'string';
  if (!external) config.broker = deepMerge({ embedded: { host: '127.0.0.1', port: 0 } }, (config.broker as Record<string, unknown>) ?? {});
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const env: NodeJS.ProcessEnv = { ...process.env, GROUNDCONTROL_ADMIN_TOKEN: TEST_ADMIN_TOKEN };
  delete env.NODE_TEST_CONTEXT;
  delete env.INVOCATION_ID; // no restart back-off for tests, even when the suite runs from a unit
  Object.assign(env, opts.env);
  const proc = spawnPeer(process.execPath, [opts.entry ?? GC_ENTRY, 'serve', '--config', configFile], { cwd: REPO_ROOT, env, maxLines: 10_000, name: 'groundcontrol' });
  defer(t, () => proc.stop(10_000));
  return {
    dataDir,
    configFile,
    config,
    proc,
    stop: (timeoutMs = 10_000) => proc.stop(timeoutMs),
    kill: (signal = 'SIGTERM') => proc.kill(signal),
    logs: () => proc.output(),
    waitForLog: (regex, timeoutMs = 10_000, fromLine = 0) => waitForLine(proc, regex, timeoutMs, fromLine),
  };
}

function portOf(line: string): number {
  const port = Number(/"port":(\d+)/.exec(line)?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in log line: ${line}`);
  return port;
}

/**
 * Starts Ground Control as a real process and resolves once it logs "api listening" (and
 * "broker listening" for the embedded broker) with the ports.
 */
export async function startGroundControl(t: Teardown, opts: GroundControlOptions = {}): Promise<GroundControl> {
  const gc = await spawnGroundControl(t, opts);
  const timeout = opts.readyTimeoutMs ?? 20_000;
  const embedded = opts.embedded ?? typeof (gc.config.broker as { url?: unknown }).url !== 'string';
  const brokerPort = embedded ? portOf((await waitForLine(gc.proc, /"msg":"broker listening"/, timeout)).input) : undefined;
  const apiPort = portOf((await waitForLine(gc.proc, /"msg":"api listening"/, timeout)).input);
  const url = `http://127.0.0.1:${apiPort}`;
  return {
    ...gc,
    url,
    apiPort,
    brokerPort,
    mqttUrl: brokerPort ? `mqtt://127.0.0.1:${brokerPort}` : undefined,
    api: (method, path, body, token) => apiCall(url, method, path, body, token === undefined ? TEST_ADMIN_TOKEN : token),
  };
}

export async function apiCall<T = any>(base: string, method: string, path: string, body?: unknown, token: string | null = TEST_ADMIN_TOKEN): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** A registered satellite: its id and MQTT credentials from POST /api/v1/register. */
export interface Registered {
  satelliteId: string;
  mqtt: { url: string; username: string; password: string; topicPrefix: string };
}

/** Creates a satellite through the API and registers it with its one-time token. */
export async function addAndRegister(gc: GroundControl, name: string, site?: string): Promise<Registered> {
  const created = await gc.api('POST', '/api/v1/satellites', { name, ...(site ? { site } : {}) });
  if (created.status !== 201) throw new Error(`create satellite: ${created.status} ${JSON.stringify(created.body)}`);
  const reg = await gc.api('POST', '/api/v1/register', { token: created.body.registration.token, hostname: name }, null);
  if (reg.status !== 200) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
  return reg.body as Registered;
}

/** A test MQTT client with an Inbox attached before it connected. */
export type TestMqttClient = MqttClient & { inbox: Inbox };

/**
 * An MQTT.js client connected (or refused); closed after the test. Its inbox listens from before
 * the CONNACK: a persistent session's queued messages can arrive in the same read as the CONNACK.
 */
export async function connectMqtt(t: Teardown, url: string, opts: IClientOptions): Promise<TestMqttClient> {
  const raw = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  const client = Object.assign(raw, { inbox: new Inbox(raw) });
  defer(t, () => new Promise<void>((resolve) => client.end(true, {}, () => resolve())));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error(`connection to ${url} closed before CONNACK`)));
  });
  return client;
}

/** Connects as a satellite: client id = username = satellite id, persistent session by default. */
export function connectSatellite(t: Teardown, url: string, reg: Registered, opts: IClientOptions = {}): Promise<TestMqttClient> {
  return connectMqtt(t, url, { clientId: reg.satelliteId, username: reg.mqtt.username, password: reg.mqtt.password, clean: false, ...opts });
}

/** Collects JSON messages per topic; `next` waits for one matching a predicate. */
export class Inbox {
  readonly messages: Array<{ topic: string; doc: any; retain: boolean }> = [];
  #waiters = new Set<() => void>();

  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      let doc: unknown;
      try {
        doc = JSON.parse(payload.toString('utf8'));
      } catch {
        doc = payload.toString('utf8');
      }
      this.messages.push({ topic, doc, retain: packet.retain });
      for (const w of this.#waiters) w();
    });
  }

  async next(match: (m: { topic: string; doc: any }) => boolean, timeoutMs = 5000, what = 'a message'): Promise<{ topic: string; doc: any }> {
    const found = () => this.messages.find(match);
    const now = found();
    if (now) return now;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.map((m) => m.topic))}`));
      }, timeoutMs);
      const check = () => {
        const m = found();
        if (!m) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(m);
      };
      this.#waiters.add(check);
    });
  }
}

/** Polls until fn returns a truthy value; fails with the last value. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

/** The environment of a `groundcontrol` CLI run against `url` with the test admin token. */
export function gcCliEnv(url: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GROUNDCONTROL_URL: url, GROUNDCONTROL_TOKEN: TEST_ADMIN_TOKEN };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

/** Runs `groundcontrol ARGS` against `url` to its end: exit code, stdout (trimmed at the end), stderr. */
export function gcCli(url: string): (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }> {
  const env = gcCliEnv(url);
  return async (...args) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [GC_ENTRY, ...args], { cwd: REPO_ROOT, env });
      return { code: 0, stdout: stdout.trimEnd(), stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
}
