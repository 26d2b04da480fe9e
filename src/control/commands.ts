import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import { Channel, COMMAND_NAMES, encodeMessage, topic, type CommandArgs, type CommandMessage, type CommandName, type ResultMessage } from '../protocol/index.ts';
import { clip } from './errors.ts';
import type { Outbox, OutboxItem } from './outbox.ts';
import type { CommandRecord, ControlState } from '../store/index.ts';
import type { ControlStore } from './ports.ts';

export type CommandHandlers = Record<CommandName, (args: CommandArgs) => Promise<Record<string, unknown>>>;

/** Error code of the result that answers a command this satellite does not know (a newer Ground Control's). */
export const COMMAND_UNKNOWN = 'COMMAND_UNKNOWN';
/** Error code of the result that answers a command with an id but otherwise invalid (e.g. arguments this version lacks). */
export const COMMAND_INVALID = 'COMMAND_INVALID';

export interface CommandRunnerOptions {
  satelliteId: string;
  store: ControlStore;
  outbox: Outbox;
  log: Logger;
  handlers: CommandHandlers;
  maxIds: number;
  maxAgeMs: number;
  /**
   * Commands that may take minutes (verify): each runs beside the queue instead of in it, so a
   * `report` or `sync-now` behind it is not held up. Two of the same kind at once: the handler
   * refuses the second (VERIFY_RUNNING).
   */
  beside?: readonly CommandName[];
}

/**
 * Runs commands one at a time, in arrival order, each id at most once: the id is recorded durably
 * before the PUBACK, the outcome with the result message in one transaction. A redelivered id is
 * answered with the stored outcome and `duplicate: true`; ids accepted but not finished when the
 * process stopped are run again on the next start. The memory is bounded by count and age.
 */
export class CommandRunner {
  readonly #opts: CommandRunnerOptions;
  readonly #db: ControlState;
  readonly #running = new Map<string, { duplicates: number }>();
  #tail: Promise<void> = Promise.resolve();
  #closed = false;
  #sincePrune = 0;

  constructor(opts: CommandRunnerOptions) {
    this.#opts = opts;
    this.#db = opts.store.controlState;
  }

  /** Queues the commands a previous process accepted but did not finish. */
  resume(): void {
    const unfinished = this.#db
      .commands()
      .filter(({ record }) => record.status === 'running')
      .sort((a, b) => a.record.receivedAt - b.record.receivedAt);
    for (const { id, record } of unfinished) {
      this.#opts.log.info({ commandId: id, name: record.name }, 'running a command left unfinished');
      if (isCommandName(record.name)) this.#queue(id, record.name, record.args ?? {});
    }
    void this.#prune();
  }

  /**
   * Takes one command off the wire. Resolves once it is durably accepted (or answered as a
   * duplicate): the caller acknowledges the PUBLISH then. The run itself happens later.
   */
  async accept(cmd: CommandMessage): Promise<void> {
    const log = this.#opts.log.child({ commandId: cmd.id, command: cmd.name });
    const seen = this.#db.command(cmd.id);
    if (seen?.status === 'done') {
      log.info('duplicate command; repeating its result');
      await this.#opts.outbox.enqueue(() => [this.#result(cmd.id, seen, true)]);
      return;
    }
    if (seen?.status === 'running') {
      const run = this.#running.get(cmd.id);
      if (run) run.duplicates++;
      log.info('duplicate of a running command; its result will be repeated');
      return;
    }
    const args = cmd.args ?? {};
    await this.#db.transaction(() => this.#db.putCommand(cmd.id, { name: cmd.name, ...(cmd.args ? { args } : {}), status: 'running', receivedAt: Date.now() }));
    log.info('command accepted');
    this.#queue(cmd.id, cmd.name, args);
  }

  /**
   * Answers a command that failed decoding but carries an id (a newer Ground Control's command
   * name or argument): an error result, so Ground Control shows why instead of waiting forever.
   * Remembered like any outcome: a redelivery repeats it as a duplicate.
   */
  async refuse(id: string, name: string, error: { code: string; message: string }): Promise<void> {
    const seen = this.#db.command(id);
    if (seen?.status === 'done') {
      await this.#opts.outbox.enqueue(() => [this.#result(id, seen, true)]);
      return;
    }
    if (seen) return;
    const now = Date.now();
    const rec: CommandRecord = { name, status: 'done', receivedAt: now, finishedAt: now, ok: false, error: { code: clip(error.code, 100), message: clip(error.message, 4000) } };
    this.#opts.log.warn({ commandId: id, command: name, code: error.code }, 'command refused');
    await this.#opts.outbox.enqueue(() => {
      this.#db.putCommand(id, rec);
      return [this.#result(id, rec, false)];
    });
  }

  /** Stops taking new runs; the one in progress finishes (its record stays 'running' if we stop first). */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #queue(id: string, name: CommandName, args: CommandArgs): void {
    this.#running.set(id, { duplicates: 0 });
    const failed = (err: unknown) => this.#opts.log.error({ err, commandId: id }, 'command failed');
    if (this.#opts.beside?.includes(name)) {
      this.#run(id, name, args).catch(failed);
      return;
    }
    this.#tail = this.#tail.then(() => this.#run(id, name, args)).catch(failed);
  }

  async #run(id: string, name: CommandName, args: CommandArgs): Promise<void> {
    if (this.#closed) return;
    const log = this.#opts.log.child({ commandId: id, command: name });
    const rec: CommandRecord = { name, ...(Object.keys(args).length > 0 ? { args } : {}), status: 'done', receivedAt: this.#db.command(id)?.receivedAt ?? Date.now() };
    try {
      rec.result = await this.#opts.handlers[name](args);
      rec.ok = true;
    } catch (err) {
      rec.ok = false;
      rec.error = { code: clip(isSatelliteError(err) ? err.code : 'INTERNAL', 100), message: clip((err as Error).message ?? String(err), 4000) };
      log.warn({ err }, 'command failed');
    }
    rec.finishedAt = Date.now();
    if (this.#closed) return; // left 'running': run again after the restart
    const duplicates = this.#running.get(id)?.duplicates ?? 0;
    await this.#opts.outbox.enqueue(() => {
      this.#db.putCommand(id, rec);
      const items = [this.#result(id, rec, false)];
      for (let i = 0; i < duplicates; i++) items.push(this.#result(id, rec, true));
      return items;
    });
    this.#running.delete(id);
    log.info({ ok: rec.ok }, 'command finished');
    if (++this.#sincePrune >= 100) void this.#prune();
  }

  #result(id: string, rec: CommandRecord, duplicate: boolean): OutboxItem {
    const message: ResultMessage = {
      type: 'result',
      satelliteId: this.#opts.satelliteId,
      commandId: id,
      name: rec.name,
      ok: rec.ok ?? false,
      duplicate,
      ...(rec.result ? { result: rec.result } : {}),
      ...(rec.error ? { error: rec.error } : {}),
      at: new Date().toISOString(),
    };
    return { kind: 'result', topic: topic(this.#opts.satelliteId, Channel.results), payload: encodeMessage(message).toString('utf8'), retain: false };
  }

  /** Forgets finished ids past the count or age bound, oldest first. */
  async #prune(): Promise<void> {
    this.#sincePrune = 0;
    const edge = Date.now() - this.#opts.maxAgeMs;
    const done = this.#db
      .commands()
      .filter(({ record }) => record.status === 'done')
      .map(({ id, record }) => ({ key: id, at: record.finishedAt ?? record.receivedAt }))
      .sort((a, b) => a.at - b.at);
    const excess = Math.max(0, done.length - this.#opts.maxIds);
    const forget = done.filter((d, i) => i < excess || d.at < edge).map((d) => d.key);
    if (forget.length === 0) return;
    try {
      await this.#db.transaction(() => {
        for (const key of forget) this.#db.removeCommand(key);
      });
      this.#opts.log.debug({ forgotten: forget.length }, 'old command ids forgotten');
    } catch (err) {
      this.#opts.log.warn({ err }, 'cannot prune command ids');
    }
  }
}

export function isCommandName(name: string): name is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(name);
}
