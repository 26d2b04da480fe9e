import type { Logger } from 'pino';
import { connect, type IClientOptions, type IClientReconnectOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import { backoffMs } from './registration.ts';
import { mqttUrlOptions } from '../lib/mqtt-url.ts';

export interface ControlClientOptions {
  url: string;
  clientId: string;
  username?: string | undefined;
  password?: string | undefined;
  /** PEM CA bundle for mqtts:// / wss:// with a private CA. */
  ca?: Buffer | undefined;
  keepaliveSeconds: number;
  connectTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Topics subscribed at QoS 1 (kept by the broker in the persistent session). */
  subscriptions: string[];
  /** Called before every connect attempt: the last will (its timestamp stays fresh). */
  will: () => NonNullable<IClientOptions['will']>;
  log: Logger;
  onConnect: (info: { sessionPresent: boolean }) => void;
  /** Every PUBLISH received; its PUBACK is sent only after the promise settles. */
  onMessage: (topic: string, payload: Buffer) => Promise<void>;
}

export interface ConnectionStatus {
  connected: boolean;
  /** Whether the broker kept our session at the last CONNACK (false = subscriptions re-made). */
  sessionPresent: boolean | null;
  lastConnectedAt: string | null;
  lastError: string | null;
  reconnects: number;
}

/**
 * One MQTT connection with a persistent session: fixed client id, clean=false, MQTT 3.1.1 (the
 * embedded broker and Mosquitto both speak it). Reconnects forever with doubling, jittered delays;
 * MQTT.js's own fixed-period reconnect is off. Unacknowledged QoS 1 publishes are abandoned when the
 * connection drops: the outbox (LMDB) is the only copy that matters and re-publishes them.
 */
export class ControlClient {
  readonly #opts: ControlClientOptions;
  readonly #log: Logger;
  readonly #client: MqttClient;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #closing = false;
  #subscribedOnce = false;
  #status: ConnectionStatus = { connected: false, sessionPresent: null, lastConnectedAt: null, lastError: null, reconnects: 0 };
  #warned = false;

  constructor(opts: ControlClientOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#client = connect({
      ...mqttUrlOptions(opts.url),
      clientId: opts.clientId,
      clean: false,
      protocolVersion: 4,
      keepalive: opts.keepaliveSeconds,
      connectTimeout: opts.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      manualConnect: true,
      will: opts.will(),
      ...(opts.username !== undefined ? { username: opts.username } : {}),
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      ...(opts.ca ? { ca: opts.ca, rejectUnauthorized: true } : {}),
    });
    const client = this.#client;
    client.handleMessage = (packet: IPublishPacket, done: (err?: Error) => void) => {
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      opts.onMessage(packet.topic, payload).then(
        () => done(),
        (err: unknown) => {
          // No PUBACK: the broker redelivers after the next reconnect.
          this.#log.error({ err, topic: packet.topic }, 'message not handled; left for redelivery');
          done(err as Error);
        },
      );
    };
    client.on('connect', (packet: IConnackPacket) => this.#onConnect(packet));
    client.on('close', () => this.#onClose());
    client.on('error', (err: Error) => {
      this.#status.lastError = err.message;
      if (this.#closing) return;
      // One warning per outage; the retries that follow log at debug.
      if (this.#warned) this.#log.debug({ err: err.message }, 'broker connection failed');
      else this.#log.warn({ err: err.message, url: redactUrl(opts.url) }, 'broker connection failed; retrying with backoff');
      this.#warned = true;
    });
  }

  /** Starts connecting; never waits for the broker (a satellite works offline). */
  start(): void {
    this.#log.info({ url: redactUrl(this.#opts.url), clientId: this.#opts.clientId }, 'connecting to broker');
    this.#client.connect();
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  status(): ConnectionStatus {
    return { ...this.#status, connected: this.#client.connected };
  }

  /** QoS 1 publish; resolves on PUBACK, rejects when the connection drops first or we are closing. */
  publish(topic: string, payload: Buffer | string, opts: { retain?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.publish(topic, payload, { qos: 1, retain: opts.retain ?? false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Graceful end: runs `beforeDisconnect` (flush, offline presence) while still connected, then
   * sends DISCONNECT (the broker drops the will and keeps the session). When beforeDisconnect did
   * not confirm (false, failed, or past timeoutMs) the connection is dropped without DISCONNECT
   * instead, so the broker publishes the last will and presence never stays "online".
   */
  async close(beforeDisconnect: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    let clean = false;
    if (client.connected) {
      clean = await withDeadline(beforeDisconnect(), timeoutMs).catch((err: unknown) => {
        this.#log.warn({ err }, 'could not finish before disconnecting; leaving it to the last will');
        return false;
      });
    }
    this.#abandonInFlight();
    const ended = await withDeadline(client.endAsync(!clean), 2000).then(
      () => true,
      () => false,
    );
    if (!ended) client.stream?.destroy();
  }

  #onConnect(packet: IConnackPacket): void {
    this.#attempt = 0;
    this.#warned = false;
    const sessionPresent = packet.sessionPresent === true;
    this.#status = {
      ...this.#status,
      connected: true,
      sessionPresent,
      lastConnectedAt: new Date().toISOString(),
      lastError: null,
    };
    this.#log.info({ sessionPresent }, 'connected to broker');
    // Subscribe when the broker lost (or never had) our session, and once per process: that also
    // brings the retained desired state, in case the last one was not stored before a crash.
    if (!sessionPresent || !this.#subscribedOnce) {
      const map = Object.fromEntries(this.#opts.subscriptions.map((t) => [t, { qos: 1 as const }]));
      this.#client.subscribe(map, (err, granted) => {
        if (err) {
          this.#log.warn({ err: err.message }, 'subscribe failed');
          return;
        }
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        if (refused.length > 0) this.#log.error({ topics: refused }, 'broker refused subscriptions (ACL?)');
        else this.#subscribedOnce = true;
      });
    }
    try {
      this.#opts.onConnect({ sessionPresent });
    } catch (err) {
      this.#log.error({ err }, 'connect handler failed');
    }
  }

  #onClose(): void {
    this.#abandonInFlight();
    if (this.#closing || this.#timer) return;
    if (this.#status.connected) this.#log.warn('broker connection lost; reconnecting');
    this.#status.connected = false;
    this.#attempt++;
    const delay = backoffMs(this.#attempt, this.#opts.reconnectMinMs, this.#opts.reconnectMaxMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closing) return;
      this.#status.reconnects++;
      this.#client.options.will = this.#opts.will();
      // Keep MQTT.js's stores: a fresh store would orphan in-flight callbacks.
      const stores = { incomingStore: this.#client.incomingStore, outgoingStore: this.#client.outgoingStore } as IClientReconnectOptions;
      this.#client.reconnect(stores);
    }, delay);
  }

  /** Fails every unacknowledged publish (their callbacks reject); the outbox sends them again. */
  #abandonInFlight(): void {
    for (const id of Object.keys(this.#client.outgoing)) this.#client.removeOutgoingMessage(Number(id));
  }
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** The broker URL without credentials, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}
