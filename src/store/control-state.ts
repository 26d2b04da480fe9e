import type { Database } from 'lmdb';
import type { CommandArgs } from '../protocol/messages.ts';
import type { DiskSpace } from './free-space.ts';
import { durableTransaction, scan, type IndexDb } from './index-db.ts';

/**
 * The LMDB databases the control plane keeps (names and key shapes are on-disk format: data dirs
 * written by earlier versions open unchanged; test/store/ownership.test.ts pins them).
 */
export const CONTROL_DBS = { outbox: 'meta:control-outbox', counters: 'meta:control-meta', commands: 'meta:control-commands' } as const;

/** One queued outgoing message: state reports supersede each other, results and events never do. */
export interface OutboxRecord {
  kind: 'state' | 'result' | 'event';
  topic: string;
  /** The encoded JSON payload. */
  payload: string;
  retain: boolean;
  /** When it was written (ms since the epoch). */
  at: number;
}

/** What is remembered per command id: its run state and, once done, its outcome. */
export interface CommandRecord {
  /** A CommandName, or the name of a command this satellite refused (unknown or invalid). */
  name: string;
  args?: CommandArgs;
  status: 'running' | 'done';
  receivedAt: number;
  finishedAt?: number;
  ok?: boolean;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/** Counters in control-meta: messages the full outbox dropped, the last state report's seq. */
export type ControlCounter = 'outboxDropped' | 'stateSeq';

/**
 * The control plane's records in the store's index: the outbox (integer key -> message), the
 * commands log (id -> record) and counters. Writes made inside `transaction` commit together and
 * durably; a write outside one is lmdb-js's own batched write (what the outbox's post-PUBACK
 * removal wants: a power cut then only means one message is sent again).
 */
export class ControlState {
  readonly #db: IndexDb;
  readonly #disk: DiskSpace;
  readonly #outbox: Database<OutboxRecord, number>;
  readonly #counters: Database<number, string>;
  readonly #commands: Database<CommandRecord, string>;

  constructor(db: IndexDb, disk: DiskSpace) {
    this.#db = db;
    this.#disk = disk;
    this.#outbox = db.root.openDB<OutboxRecord, number>({ name: CONTROL_DBS.outbox });
    this.#counters = db.root.openDB<number, string>({ name: CONTROL_DBS.counters });
    this.#commands = db.root.openDB<CommandRecord, string>({ name: CONTROL_DBS.commands });
  }

  /** Runs `fn` in one durable write transaction (refused with DISK_FULL / STORE_READ_ONLY first). */
  transaction<T>(fn: () => T): Promise<T> {
    return this.#disk.guard('metadata', 0, () => durableTransaction(this.#db, fn));
  }

  /** Queued messages in key order (only the keys and kinds: what the outbox keeps in memory). */
  outboxKeys(): Array<{ key: number; kind: OutboxRecord['kind'] }> {
    return [...scan(this.#outbox.getRange())].map(({ key, value }) => ({ key, kind: value.kind }));
  }
  outboxItem(key: number): OutboxRecord | undefined {
    return this.#outbox.get(key);
  }
  putOutboxItem(key: number, item: OutboxRecord): void {
    void this.#outbox.put(key, item);
  }
  removeOutboxItem(key: number): Promise<boolean> {
    return this.#outbox.remove(key);
  }

  counter(name: ControlCounter): number | undefined {
    return this.#counters.get(name);
  }
  setCounter(name: ControlCounter, value: number): void {
    void this.#counters.put(name, value);
  }

  command(id: string): CommandRecord | undefined {
    return this.#commands.get(id);
  }
  commands(): Array<{ id: string; record: CommandRecord }> {
    return [...scan(this.#commands.getRange())].map(({ key, value }) => ({ id: key, record: value }));
  }
  putCommand(id: string, record: CommandRecord): void {
    void this.#commands.put(id, record);
  }
  removeCommand(id: string): void {
    void this.#commands.remove(id);
  }
}
