import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { mqttUrlOptions } from '../../lib/mqtt-url.ts';
import { UPSTREAM, fleetFilter, MAX_PAYLOAD_BYTES } from '../../protocol/index.ts';
import type { Publisher } from '../fleet/context.ts';

/** Messages handed to onMessage and not yet settled before the link stops reading more. */
const MAX_UNSETTLED = 2000;

export interface LinkOptions {
  url: string;
  username: string;
  password?: string | undefined;
  clientId: string;
  log: Logger;
  /**
   * Called for every message as it arrives, without waiting for the previous one (so a recorder
   * can batch them); the PUBACK of each waits for its promise (at-least-once), in arrival order.
   */
  onMessage: (topic: string, payload: Buffer) => Promise<void>;
  /** Called on every connect where the broker had no session for us (first start, lost state). */
  onFreshSession: () => void;
}

/**
 * Ground Control's own MQTT client, the same for the embedded and an external broker: a
 * persistent session (clean: false) subscribed to every satellite's upstream channels, so
 * reports sent while Ground Control was away are delivered when it is back.
 */
export class BrokerLink implements Publisher {
  readonly #opts: LinkOptions;
  #client: MqttClient | undefined;
  /** PUBACKs wait on this chain: each is sent after its message and every earlier one settled. */
  #acks: Promise<void> = Promise.resolve();
  /** Messages handed over and not yet settled. */
  #unsettled = 0;
  /** Bumped on every connect: a PUBACK held across a reconnect is dropped (the broker resends). */
  #connection = 0;

  constructor(opts: LinkOptions) {
    this.#opts = opts;
  }

  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  /** Connects and subscribes; resolves once the first subscription is acknowledged, or after timeoutMs (reconnects go on). */
  async start(timeoutMs = 15_000): Promise<void> {
    const { log } = this.#opts;
    const client = mqtt.connect({
      ...mqttUrlOptions(this.#opts.url),
      clientId: this.#opts.clientId,
      username: this.#opts.username,
      ...(this.#opts.password !== undefined ? { password: this.#opts.password } : {}),
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      keepalive: 30,
      // We subscribe on every connect where the broker has no session for us (below).
      resubscribe: false,
    });
    this.#client = client;
    // Hold each PUBACK until its report is stored: a crash before that gets it redelivered. MQTT.js
    // sends the PUBACK when handleMessage's callback runs and reads the next PUBLISH only after
    // that, one at a time; so the callback runs at once (the next PUBLISH joins the same batch)
    // and the PUBACK itself is held back here until the message's promise settles.
    const held = new Map<number, Promise<void>>();
    const internals = client as unknown as { _sendPacket(packet: { cmd: string; messageId?: number }, cb?: () => void, ...rest: unknown[]): void };
    const send = internals._sendPacket.bind(client);
    internals._sendPacket = (packet, cb, ...rest) => {
      const settled = packet.cmd === 'puback' && packet.messageId !== undefined ? held.get(packet.messageId) : undefined;
      if (!settled) return send(packet, cb, ...rest);
      held.delete(packet.messageId as number);
      const connection = this.#connection;
      this.#acks = Promise.all([this.#acks, settled]).then(() => {
        // [MQTT-4.6.0-2] in order; a PUBACK for an earlier connection's message is not sent.
        if (connection === this.#connection && client.connected) send(packet);
      });
      cb?.();
    };
    client.handleMessage = (packet: IPublishPacket, done) => {
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload);
      this.#unsettled++;
      const settled = this.#opts
        .onMessage(packet.topic, payload)
        .catch((err: unknown) => log.error({ err, topic: packet.topic }, 'message handling failed'))
        .finally(() => this.#unsettled--);
      if (packet.qos > 0 && packet.messageId !== undefined) held.set(packet.messageId, settled);
      // Bounded: past MAX_UNSETTLED the next PUBLISH waits (the broker's own in-flight limit
      // normally keeps us far below).
      if (this.#unsettled < MAX_UNSETTLED) done();
      else settled.then(() => done());
    };
    let first = true;
    let subscribed!: () => void;
    const firstSubscription = new Promise<void>((resolve) => (subscribed = resolve));
    client.on('connect', (connack) => {
      this.#connection++;
      log.info({ url: this.#opts.url, sessionPresent: connack.sessionPresent }, 'broker connected');
      if (!connack.sessionPresent || first) {
        const filters = Object.fromEntries(UPSTREAM.map((c) => [fleetFilter(c), { qos: 1 as const }]));
        client.subscribe(filters, (err) => {
          if (err) log.error({ err }, 'fleet subscription failed');
          subscribed();
        });
        this.#opts.onFreshSession();
      }
      first = false;
    });
    client.on('close', () => log.debug('broker connection closed'));
    client.on('offline', () => log.warn({ url: this.#opts.url }, 'broker offline: reconnecting'));
    client.on('error', (err) => log.warn({ err: err.message }, 'broker client error'));
    // An unreachable broker does not stop Ground Control: the API serves and MQTT.js retries.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        log.warn({ url: this.#opts.url, timeoutMs }, 'broker not reachable yet: retrying in the background');
        resolve();
      }, timeoutMs);
      // Ready once the broker acknowledged the fleet subscription: a satellite's report sent after
      // Ground Control says it is listening must not fall between connect and SUBACK.
      void firstSubscription.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  readonly published = new Map<string, { ok: number; failed: number }>();

  #count(topic: string, ok: boolean): void {
    const channel = topic.slice(topic.lastIndexOf('/') + 1) || 'other';
    const c = this.published.get(channel) ?? { ok: 0, failed: 0 };
    if (ok) c.ok++;
    else c.failed++;
    this.published.set(channel, c);
  }

  publish(topic: string, payload: Buffer, opts: { retain: boolean }): Promise<void> {
    const client = this.#client;
    if (!client) return Promise.reject(new Error('broker link not started'));
    if (payload.length > MAX_PAYLOAD_BYTES) return Promise.reject(new Error(`payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: 1, retain: opts.retain }, (err) => {
        this.#count(topic, !err);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** Waits for messages being handled, then disconnects (the session stays on the broker). */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    await this.#acks;
    await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
  }
}
