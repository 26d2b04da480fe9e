import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type MqttClient } from 'mqtt';
import { pino, type Logger } from 'pino';
import { createControl, controlConfigSchema, type Control, type ControlConfig } from '../../src/control/index.ts';
import { validate } from '../../src/lib/validate.ts';
import { Channel, decodeMessage, encodeMessage, parseTopic, topic, type ChannelName, type CommandName, type DesiredState } from '../../src/protocol/index.ts';
import { Store } from '../../src/store/index.ts';
import { SyncEngine, syncConfigSchema, type SyncConfig, type UpstreamPort } from '../../src/sync/index.ts';
import { defer, type Teardown } from '../helpers/cleanup.ts';

export function testLog(name: string): Logger {
  return pino({ name, level: process.env.HS_TEST_LOG ?? 'silent' });
}

/** A desired state with no images: it syncs without touching the (unreachable) upstream. */
export function emptyDesired(generation: number): DesiredState {
  return { generation, upstream: { url: 'http://127.0.0.1:9' }, images: [] };
}

/**
 * Upstream for desired states without images: the engine only pings it. Control tests are about
 * MQTT; sync against a real registry is tested in test/sync.
 */
const pingOnlyUpstream: UpstreamPort = {
  ping: async () => undefined,
  getManifest: async () => {
    throw new Error('no images expected in control tests');
  },
  fetchBlob: async () => {
    throw new Error('no images expected in control tests');
  },
  close: async () => undefined,
};

// syncConfigSchema is a section (its default sits at its root), so it is validated inside one.
const SYNC_SECTION = { type: 'object', properties: { sync: syncConfigSchema } } as const;

export interface TestSatellite {
  store: Store;
  sync: SyncEngine;
  control: Control;
  close(): Promise<void>;
}

/** Control config for tests: fast reconnects and short deadlines. */
export function controlConfig(over: Record<string, unknown>): ControlConfig {
  return validate<ControlConfig>(controlConfigSchema, { reconnectMinMs: 100, reconnectMaxMs: 400, closeTimeoutMs: 3000, reportIntervalSeconds: 3600, ...over }, 'control config');
}

/**
 * The satellite's process-side objects, started the way the daemon does: store, control (identity),
 * engine with control.source, engine start, control start. close() stops them in reverse.
 */
export async function openSatellite(
  t: Teardown,
  opts: { dataDir: string; config: Record<string, unknown>; log?: Logger; hostname?: string },
): Promise<TestSatellite> {
  const log = opts.log ?? testLog('satellite');
  const store = await Store.open({ dataDir: opts.dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  let control: Control;
  try {
    control = await createControl({ config: controlConfig(opts.config), dataDir: opts.dataDir, log, store, version: '0.1.0-test', hostname: opts.hostname ?? 'test-host' });
  } catch (err) {
    await store.close();
    throw err;
  }
  const sync = new SyncEngine({
    config: validate<{ sync: SyncConfig }>(SYNC_SECTION, { sync: { intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 200 } } }, 'sync config').sync,
    store,
    log,
    createUpstream: () => pingOnlyUpstream,
    source: control.source,
  });
  await sync.start();
  await control.start(sync);
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await control.close();
      await sync.close();
      await store.close();
    })());
  defer(t, close);
  return { store, sync, control, close };
}

export interface Received {
  topic: string;
  satelliteId: string;
  channel: ChannelName;
  retain: boolean;
  /** Parsed JSON payload (undefined when not JSON or empty). */
  body: Record<string, unknown> | undefined;
  payload: Buffer;
  /** Why decodeMessage rejected it, if it did (every message a satellite sends must decode). */
  invalid: string | undefined;
}

/** Ground Control as the tests play it: publishes desired state and commands, records everything else. */
export interface TestGc {
  client: MqttClient;
  received: Received[];
  /** Messages the satellite sent on `channel`, in arrival order. */
  from(satelliteId: string, channel: ChannelName): Received[];
  waitFor(label: string, match: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  publishDesired(satelliteId: string, state: DesiredState, opts?: { retain?: boolean }): Promise<void>;
  publishCommand(satelliteId: string, id: string, name: CommandName): Promise<void>;
  publishRaw(topicName: string, payload: Buffer | string, opts?: { retain?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Connects a Ground Control stand-in with a persistent session (so it misses nothing across a
 * broker restart) subscribed to every satellite's upstream channels.
 */
export async function connectGc(t: Teardown, url: string, opts: { username?: string; password?: string; ca?: Buffer } = {}): Promise<TestGc> {
  const client = connect(url, {
    clientId: `gc-test-${randomBytes(4).toString('hex')}`,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 100,
    connectTimeout: 5000,
    ...(opts.username ? { username: opts.username, password: opts.password ?? '' } : {}),
    ...(opts.ca ? { ca: opts.ca } : {}),
  });
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  client.on('message', (t2, payload, packet) => {
    const parsed = parseTopic(t2);
    if (!parsed) return;
    let body: Record<string, unknown> | undefined;
    try {
      body = payload.length > 0 ? (JSON.parse(payload.toString('utf8')) as Record<string, unknown>) : undefined;
    } catch {
      body = undefined;
    }
    let invalid: string | undefined;
    try {
      decodeMessage(t2, payload);
    } catch (err) {
      invalid = (err as Error).message;
    }
    received.push({ topic: t2, satelliteId: parsed.satelliteId, channel: parsed.channel, retain: packet.retain, body, payload, invalid });
    for (const w of waiters) w();
  });
  client.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const filters = [Channel.results, Channel.state, Channel.presence, Channel.events].map((c) => `hs/v1/satellites/+/${c}`);
  await client.subscribeAsync(Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }])));

  const publish = (topicName: string, payload: Buffer | string, retain: boolean) => client.publishAsync(topicName, payload, { qos: 1, retain }).then(() => undefined);
  const gc: TestGc = {
    client,
    received,
    from: (id, channel) => received.filter((m) => m.satelliteId === id && m.channel === channel),
    waitFor(label, match, timeoutMs = 10_000) {
      const found = received.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = received.find(match);
          if (m) finish(undefined, m);
        };
        const finish = (err?: Error, m?: Received) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (err) reject(err);
          else resolve(m as Received);
        };
        const timer = setTimeout(() => {
          const seen = received.map((m) => `${m.channel} ${JSON.stringify(m.body)?.slice(0, 300)}`).join('\n  ');
          finish(new Error(`timed out after ${timeoutMs} ms waiting for ${label}; received:\n  ${seen}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    publishDesired: (id, state, o = {}) =>
      publish(topic(id, Channel.desired), encodeMessage({ type: 'desired', satelliteId: id, issuedAt: new Date().toISOString(), state }), o.retain ?? true),
    publishCommand: (id, cmdId, name) =>
      publish(topic(id, Channel.commands), encodeMessage({ type: 'command', satelliteId: id, id: cmdId, name, issuedAt: new Date().toISOString() }), false),
    publishRaw: (topicName, payload, o = {}) => publish(topicName, payload, o.retain ?? false),
    close: async () => {
      await client.endAsync(true).catch(() => undefined);
    },
  };
  defer(t, () => gc.close());
  return gc;
}

/** Polls until `ok()` holds; fails with `describe()` when time runs out. */
export async function until(label: string, ok: () => boolean, timeoutMs = 10_000, describe?: () => unknown): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}${describe ? `: ${JSON.stringify(describe())}` : ''}`);
    await sleep(20);
  }
}

/** Reads a received message's JSON body field. */
export function field<T>(m: Received, key: string): T {
  return (m.body ?? {})[key] as T;
}

/** Every message satellites sent so far decodes against the protocol's schemas. */
export function assertAllValid(gc: TestGc): void {
  const bad = gc.received.filter((m) => m.invalid !== undefined && (m.payload.length > 0));
  if (bad.length > 0) throw new Error(`invalid messages from satellites:\n  ${bad.map((m) => `${m.topic}: ${m.invalid}`).join('\n  ')}`);
}
