import MemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import type { Logger } from 'pino';
import { SATELLITE_ID_RE } from '../../protocol/index.ts';
import { durable, type GcDb, type StoredPacket, type StoredSubscription } from '../db/db.ts';
import type { SecretBox } from '../secret-box.ts';

// aedes hands these around; only the fields we store are typed here.
type Packet = Parameters<MemoryPersistence['storeRetained']>[0];
type Client = Parameters<MemoryPersistence['addSubscriptions']>[0];
type Sub = Parameters<MemoryPersistence['addSubscriptions']>[1][number];

/**
 * aedes persistence that survives a restart: the in-memory implementation answers every query,
 * and each change to what a restart must keep is also written to LMDB (awaited, flushed) — retained
 * messages, the subscriptions of persistent (clean: false) sessions and their queued QoS 1/2
 * messages. setup() loads them back. QoS 2 inbound state and wills stay in memory (the contract
 * uses QoS 1; a satellite's will is re-sent by the satellite when it reconnects).
 * Payloads are sealed with the SecretBox: a desired state carries the upstream password.
 */
export class LmdbPersistence extends MemoryPersistence {
  readonly #db: GcDb;
  readonly #log: Logger;
  readonly #box: SecretBox;
  /** "clientId|brokerId|brokerCounter" -> LMDB key of the queued packet */
  readonly #outgoingKeys = new Map<string, [string, number]>();
  #seq = 0;

  constructor(db: GcDb, log: Logger, box: SecretBox) {
    super();
    this.#db = db;
    this.#log = log;
    this.#box = box;
  }

  override async setup(broker: unknown): Promise<void> {
    await super.setup(broker);
    await this.#forgetDeletedSatellites();
    let retained = 0;
    for (const { value } of this.#db.mqttRetained.getRange({})) {
      await super.storeRetained(toPacket(value, this.#box));
      retained++;
    }
    const byClient = new Map<string, Sub[]>();
    for (const { key, value } of this.#db.mqttSubscriptions.getRange({})) {
      const subs = byClient.get(key[0]) ?? [];
      subs.push({ topic: key[1], ...value } as Sub);
      byClient.set(key[0], subs);
    }
    for (const [clientId, subs] of byClient) await super.addSubscriptions({ id: clientId } as Client, subs);
    let queued = 0;
    for (const { key, value } of this.#db.mqttOutgoing.getRange({})) {
      const packet = toPacket(value, this.#box);
      await super.outgoingEnqueue({ clientId: key[0] }, packet);
      this.#outgoingKeys.set(outgoingId(key[0], value), key);
      this.#seq = Math.max(this.#seq, key[1]);
      queued++;
    }
    this.#log.info({ retained, sessions: byClient.size, queued }, 'broker sessions restored');
  }

  // Sessions of satellites deleted since: their queues would never drain.
  async #forgetDeletedSatellites(): Promise<void> {
    await durable(this.#db, () => {
      for (const key of this.#db.mqttSubscriptions.getKeys({})) if (isDeletedSatellite(this.#db, key[0])) this.#db.mqttSubscriptions.remove(key);
      for (const key of this.#db.mqttOutgoing.getKeys({})) if (isDeletedSatellite(this.#db, key[0])) this.#db.mqttOutgoing.remove(key);
    });
  }

  override async storeRetained(packet: Packet): Promise<void> {
    const p = packet as unknown as StoredPacket;
    await durable(this.#db, () => {
      if (p.payload.length === 0) this.#db.mqttRetained.remove(p.topic);
      else this.#db.mqttRetained.put(p.topic, fromPacket(p, this.#box));
    });
    await super.storeRetained(packet);
  }

  override async addSubscriptions(client: Client, subs: Sub[]): Promise<void> {
    await durable(this.#db, () => {
      for (const sub of subs) {
        const record: StoredSubscription = { qos: sub.qos };
        for (const k of ['rh', 'rap', 'nl'] as const) if (sub[k] !== undefined) Object.assign(record, { [k]: sub[k] });
        this.#db.mqttSubscriptions.put([client.id, sub.topic], record);
      }
    });
    await super.addSubscriptions(client, subs);
  }

  override async removeSubscriptions(client: Client, topics: string[]): Promise<void> {
    await durable(this.#db, () => {
      for (const t of topics) this.#db.mqttSubscriptions.remove([client.id, t]);
    });
    await super.removeSubscriptions(client, topics);
  }

  override async cleanSubscriptions(client: Client): Promise<void> {
    await durable(this.#db, () => {
      for (const key of this.#db.mqttSubscriptions.getKeys({ start: [client.id, ''], end: [client.id, '\uffff'] })) this.#db.mqttSubscriptions.remove(key);
    });
    await super.cleanSubscriptions(client);
  }

  override async outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  override async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: Packet): Promise<void> {
    const p = packet as unknown as StoredPacket;
    // Memory first: a client connecting right now must find it in its queue without waiting for
    // the disk (aedes acknowledged the publisher already and emits only after this resolves).
    const keys = subs.map((sub): [string, number] => [sub.clientId, ++this.#seq]);
    for (const [i, sub] of subs.entries()) this.#outgoingKeys.set(outgoingId(sub.clientId, p), keys[i] as [string, number]);
    await super.outgoingEnqueueCombi(subs, packet);
    await durable(this.#db, () => {
      for (const key of keys) this.#db.mqttOutgoing.put(key, fromPacket(p, this.#box));
    });
  }

  override async outgoingClearMessageId(client: Client, packet: Packet): Promise<Packet> {
    const removed = await super.outgoingClearMessageId(client, packet);
    if (removed) {
      const id = outgoingId(client.id, removed as unknown as StoredPacket);
      const key = this.#outgoingKeys.get(id);
      if (key) {
        this.#outgoingKeys.delete(id);
        await durable(this.#db, () => this.#db.mqttOutgoing.remove(key));
      }
    }
    return removed;
  }
}

function isDeletedSatellite(db: GcDb, clientId: string): boolean {
  return SATELLITE_ID_RE.test(clientId) && db.satellites.get(clientId) === undefined;
}

function outgoingId(clientId: string, p: Pick<StoredPacket, 'brokerId' | 'brokerCounter'>): string {
  return `${clientId}|${p.brokerId}|${p.brokerCounter}`;
}

function fromPacket(p: StoredPacket, box: SecretBox): StoredPacket {
  return {
    cmd: 'publish',
    topic: p.topic,
    payload: box.seal(p.payload),
    qos: p.qos,
    retain: p.retain,
    dup: p.dup ?? false,
    brokerId: p.brokerId,
    brokerCounter: p.brokerCounter,
  };
}

function toPacket(s: StoredPacket, box: SecretBox): Packet {
  return { ...s, payload: box.open(s.payload) } as unknown as Packet;
}
