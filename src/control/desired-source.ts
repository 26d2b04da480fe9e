import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import { Channel, decodeMessage, parseDesiredState, type DesiredState } from '../protocol/index.ts';
import type { DesiredStateSource } from '../sync/desired-state-source.ts';
import { ControlErrorCode, controlError } from './errors.ts';

type Handlers = { onState: (state: DesiredState) => void; onError: (err: Error) => void };

export interface MqttDesiredStateSourceOptions {
  satelliteId: string;
  log: Logger;
  /** A rejected message: reported to Ground Control as an event. */
  onReject: (err: Error) => void;
  /** A valid desired state was handed to the engine (for the acknowledging report). */
  onAccept: (state: DesiredState) => void;
}

/**
 * Desired state from the satellite's retained `desired` topic. Every message is decoded and
 * validated whole; a bad one (malformed, oversized, another satellite's, an older generation) is
 * rejected and reported, and the last good state stays in force (the engine keeps it). Messages
 * that arrive before the engine starts the source are held (the newest one) until it does.
 */
export class MqttDesiredStateSource implements DesiredStateSource {
  readonly #opts: MqttDesiredStateSourceOptions;
  #handlers: Handlers | undefined;
  #pending: DesiredState | undefined;
  #current: () => number | undefined = () => undefined;
  #newest: number | null = null;

  constructor(opts: MqttDesiredStateSourceOptions) {
    this.#opts = opts;
  }

  async start(handlers: Handlers): Promise<void> {
    this.#handlers = handlers;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending) this.#deliver(pending);
  }

  async close(): Promise<void> {
    this.#handlers = undefined;
  }

  /** How to read the generation in force (the engine's), to refuse older ones here. */
  setCurrent(current: () => number | undefined): void {
    this.#current = current;
  }

  /** Newest generation received and accepted in this process (the acknowledgement), if any. */
  get newestGeneration(): number | null {
    return this.#newest;
  }

  /** Handles one PUBLISH on the desired topic. Never throws: a bad message is rejected and reported. */
  handle(topicName: string, payload: Buffer): void {
    if (payload.length === 0) {
      // An empty retained message only clears the retained state: nothing to apply.
      this.#opts.log.info('desired state cleared on the broker; keeping the one in force');
      return;
    }
    let state: DesiredState;
    try {
      const { message } = decodeMessage(topicName, payload, { channel: Channel.desired, satelliteId: this.#opts.satelliteId });
      // The message schema covers the document's shape; parseDesiredState adds the name, tag and digest rules.
      state = parseDesiredState(message.state, 'desired message');
    } catch (err) {
      this.#reject(isSatelliteError(err) ? err : controlError(ControlErrorCode.messageInvalid, (err as Error).message, { cause: err }));
      return;
    }
    const current = this.#current();
    if (current !== undefined && state.generation < current) {
      this.#reject(controlError(ControlErrorCode.desiredStale, `desired generation ${state.generation} is older than ${current} in force`));
      return;
    }
    this.#newest = Math.max(this.#newest ?? 0, state.generation);
    if (this.#handlers) this.#deliver(state);
    else this.#pending = state;
  }

  #deliver(state: DesiredState): void {
    try {
      this.#handlers?.onState(state);
      this.#opts.onAccept(state);
    } catch (err) {
      this.#opts.log.error({ err }, 'desired state handler failed');
    }
  }

  #reject(err: Error): void {
    this.#opts.log.warn({ err: err.message, code: (err as { code?: string }).code }, 'desired message rejected; keeping the last good state');
    try {
      this.#handlers?.onError(err);
    } catch {
      // the engine only logs
    }
    this.#opts.onReject(err);
  }
}
