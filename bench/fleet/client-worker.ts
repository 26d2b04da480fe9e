// A child process of bench/fleet.ts holding a slice of the simulated satellites: raw MQTT 3.1.1
// (mqtt-packet, the codec under both MQTT.js and aedes) over one net.Socket each, so thousands fit
// in one process and leave the CPU to Ground Control and mosquitto. Each speaks the real contract:
// client id satellite-<id>, clean: false, QoS 1 subscriptions to its desired and commands topics,
// retained presence with a last will, and a StateMessage acknowledging every desired generation.
import { connect as netConnect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import { topic, type PresenceMessage, type StateMessage } from '../../src/protocol/index.ts';
import type { FromWorker, SimSatellite, Timing, ToWorker } from './ipc.ts';

/** Seconds; PINGREQs go out well within it (mosquitto drops a client after 1.5 × keepalive). */
const KEEPALIVE_SEC = 120;
const PING_EVERY_MS = 45_000;
/** CONNACK return code 5: mosquitto has not re-read the password file since the registration. */
const NOT_AUTHORIZED = 5;

const send = (msg: FromWorker) => process.send?.(msg);

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

class SimClient {
  readonly sat: SimSatellite;
  readonly desiredTopic: string;
  readonly stateTopic: string;
  readonly presenceTopic: string;
  socket: Socket | undefined;
  connected = false;
  #seq = 0;
  #nextId = 1;
  #waiters = new Map<number, (p: Packet) => void>();
  #connack: ((p: Packet) => void) | undefined;
  /** messageId of an in-flight state publish -> the generation it acknowledges */
  #statePubs = new Map<number, number>();

  constructor(sat: SimSatellite) {
    this.sat = sat;
    this.desiredTopic = topic(sat.id, 'desired');
    this.stateTopic = topic(sat.id, 'state');
    this.presenceTopic = topic(sat.id, 'presence');
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = id >= 0xffff ? 1 : id + 1;
    return id;
  }

  #expect(id: number, timeoutMs: number, what: string): Promise<Packet> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        reject(new Error(`${this.sat.id}: no ${what} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(id, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
    });
  }

  /** One login attempt: CONNECT, SUBSCRIBE, presence online. 'refused' = not authorized (yet). */
  async connect(port: number, timeoutMs: number, version: string): Promise<'ok' | 'refused'> {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    this.socket = socket;
    const parser = mqttParser({ protocolVersion: 4 });
    parser.on('packet', (p: Packet) => this.#onPacket(p));
    parser.on('error', (err: Error) => socket.destroy(err));
    socket.on('data', (buf) => parser.parse(buf));
    const closed = new Promise<never>((_, reject) => {
      socket.once('close', () => {
        const was = this.connected;
        this.connected = false;
        if (was) send({ op: 'error', message: `${this.sat.id}: connection closed by the broker` });
        reject(new Error(`${this.sat.id}: connection closed`));
      });
    });
    closed.catch(() => undefined);
    socket.on('error', () => undefined); // 'close' follows and says it
    try {
      const connack = new Promise<Packet>((resolve) => (this.#connack = resolve));
      const will: PresenceMessage = { type: 'presence', satelliteId: this.sat.id, online: false, at: new Date().toISOString(), version };
      socket.write(
        generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: `satellite-${this.sat.id}`,
          clean: false,
          keepalive: KEEPALIVE_SEC,
          username: this.sat.id,
          password: Buffer.from(this.sat.password),
          will: { topic: this.presenceTopic, payload: Buffer.from(JSON.stringify(will)), qos: 1, retain: true },
        }),
      );
      const ack = await withTimeout(Promise.race([connack, closed]), timeoutMs, `${this.sat.id}: no CONNACK in ${timeoutMs} ms`);
      if (ack.cmd !== 'connack' || ack.returnCode !== 0) {
        socket.destroy();
        if (ack.cmd === 'connack' && ack.returnCode === NOT_AUTHORIZED) return 'refused';
        throw new Error(`${this.sat.id}: CONNACK ${ack.cmd === 'connack' ? ack.returnCode : ack.cmd}`);
      }
      const subId = this.#id();
      socket.write(
        generate({
          cmd: 'subscribe',
          messageId: subId,
          subscriptions: [
            { topic: this.desiredTopic, qos: 1 },
            { topic: topic(this.sat.id, 'commands'), qos: 1 },
          ],
        }),
      );
      const suback = await Promise.race([this.#expect(subId, timeoutMs, 'SUBACK'), closed]);
      if (suback.cmd !== 'suback' || suback.granted.some((g) => g !== 1)) throw new Error(`${this.sat.id}: subscription refused: ${JSON.stringify(suback)}`);
      this.connected = true;
      const online: PresenceMessage = { type: 'presence', satelliteId: this.sat.id, online: true, at: new Date().toISOString(), version };
      const pubId = this.#id();
      socket.write(generate({ cmd: 'publish', messageId: pubId, qos: 1, dup: false, retain: true, topic: this.presenceTopic, payload: Buffer.from(JSON.stringify(online)) }));
      await Promise.race([this.#expect(pubId, timeoutMs, 'PUBACK for presence'), closed]);
      return 'ok';
    } catch (err) {
      this.connected = false;
      socket.destroy();
      throw err;
    }
  }

  #onPacket(p: Packet): void {
    switch (p.cmd) {
      case 'connack':
        this.#connack?.(p);
        this.#connack = undefined;
        return;
      case 'suback':
      case 'puback': {
        const id = p.messageId ?? 0;
        const generation = this.#statePubs.get(id);
        if (generation !== undefined) {
          this.#statePubs.delete(id);
          const t = timingOf(this, generation);
          if (Number.isNaN(t[2])) t[2] = Date.now();
          return;
        }
        this.#waiters.get(id)?.(p);
        this.#waiters.delete(id);
        return;
      }
      case 'publish':
        this.#onPublish(p.topic, typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload, p.qos, p.messageId);
        return;
      default:
        return; // pingresp
    }
  }

  /** A desired state: acknowledge at once (PUBACK and the state report in one write). */
  #onPublish(topicName: string, payload: Buffer, qos: number, messageId: number | undefined): void {
    const received = Date.now();
    const out: Buffer[] = [];
    if (qos === 1) out.push(generate({ cmd: 'puback', messageId: messageId ?? 0 }));
    if (topicName === this.desiredTopic && payload.length > 0) {
      let generation: number | undefined;
      try {
        generation = (JSON.parse(payload.toString('utf8')) as { state?: { generation?: number } }).state?.generation;
      } catch {
        generation = undefined;
      }
      if (typeof generation === 'number') {
        const t = timingOf(this, generation);
        // A redelivery (same generation) is acknowledged again but keeps the first timings.
        if (Number.isNaN(t[0])) t[0] = received;
        const at = new Date().toISOString();
        const state: StateMessage = {
          type: 'state',
          satelliteId: this.sat.id,
          seq: ++this.#seq,
          at,
          version: VERSION,
          desiredGeneration: generation,
          appliedGeneration: generation,
          images: [],
          disk: { blobs: 0, bytes: 0 },
          lastSync: null,
          upstream: { reachable: null, lastError: null },
        };
        const id = this.#id();
        this.#statePubs.set(id, generation);
        out.push(generate({ cmd: 'publish', messageId: id, qos: 1, dup: false, retain: true, topic: this.stateTopic, payload: Buffer.from(JSON.stringify(state)) }));
        this.socket?.write(out.length === 1 ? out[0]! : Buffer.concat(out));
        if (Number.isNaN(t[1])) {
          t[1] = Date.now();
          countPublished(generation);
        }
        return;
      }
    }
    if (out.length > 0) this.socket?.write(out[0]!);
  }

  ping(): void {
    if (this.connected) this.socket?.write(PINGREQ);
  }

  disconnect(): void {
    if (!this.socket) return;
    this.connected = false;
    this.socket.end(DISCONNECT);
  }
}

const PINGREQ = generate({ cmd: 'pingreq' });
const DISCONNECT = generate({ cmd: 'disconnect' });
let VERSION = 'bench';
let clients: SimClient[] = [];
const indexOf = new Map<SimClient, number>();
/** generation -> one Timing per client (same order as `clients`) */
const timings = new Map<number, Timing[]>();
const published = new Map<number, number>();

function timingOf(c: SimClient, generation: number): Timing {
  let row = timings.get(generation);
  if (!row) {
    row = clients.map((): Timing => [Number.NaN, Number.NaN, Number.NaN]);
    timings.set(generation, row);
  }
  return row[indexOf.get(c)!]!;
}

function countPublished(generation: number): void {
  const n = (published.get(generation) ?? 0) + 1;
  published.set(generation, n);
  if (n === clients.length) send({ op: 'published', generation, count: n, at: Date.now() });
}

async function connectAll(msg: Extract<ToWorker, { op: 'connect' }>): Promise<void> {
  VERSION = msg.version;
  clients = msg.satellites.map((s) => new SimClient(s));
  clients.forEach((c, i) => indexOf.set(c, i));
  let next = 0;
  let connected = 0;
  let failed = 0;
  let retries = 0;
  let firstError: string | null = null;
  const deadline = Date.now() + msg.timeoutMs;
  const one = async (c: SimClient) => {
    for (;;) {
      try {
        if ((await c.connect(msg.port, 10_000, VERSION)) === 'ok') return true;
      } catch (err) {
        firstError ??= (err as Error).message;
      }
      if (Date.now() > deadline) return false;
      retries++;
      await sleep(300); // mosquitto re-reads its password file asynchronously after SIGHUP
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(msg.concurrency, clients.length) }, async () => {
      while (next < clients.length) {
        const c = clients[next++]!;
        if (await one(c)) connected++;
        else failed++;
      }
    }),
  );
  send({ op: 'connected', connected, failed, retries, firstError: failed > 0 ? firstError : null });
}

const pinger = setInterval(() => {
  for (const c of clients) c.ping();
}, PING_EVERY_MS);

process.on('message', (msg: ToWorker) => {
  switch (msg.op) {
    case 'connect':
      connectAll(msg).catch((err: unknown) => send({ op: 'error', message: String(err) }));
      return;
    case 'collect':
      send({ op: 'timings', generation: msg.generation, timings: timings.get(msg.generation) ?? clients.map((): Timing => [Number.NaN, Number.NaN, Number.NaN]) });
      return;
    case 'close':
      clearInterval(pinger);
      for (const c of clients) c.disconnect();
      // A clean DISCONNECT: no last will. Give the sockets a moment to flush it.
      setTimeout(() => {
        send({ op: 'closed' });
        process.exit(0);
      }, 200);
      return;
  }
});
// The parent died or closed the channel: nothing is left to report to.
process.on('disconnect', () => process.exit(0));
