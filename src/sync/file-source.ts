import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { SatelliteError, errnoCode } from '../lib/errors.ts';
import { parseDesiredState, type DesiredState } from './desired-state.ts';
import type { DesiredStateSource } from './desired-state-source.ts';

/**
 * Desired state from a JSON file, re-read when it changes. Watches the directory (editors and
 * atomic writers replace the file) and also polls, since inotify is not everywhere.
 */
export class FileDesiredStateSource implements DesiredStateSource {
  readonly #path: string;
  readonly #pollMs: number;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #last = '';
  #debounce: NodeJS.Timeout | undefined;

  constructor(path: string, opts: { pollMs?: number } = {}) {
    this.#path = path;
    this.#pollMs = opts.pollMs ?? 5000;
  }

  async start(handlers: { onState: (state: DesiredState) => void; onError: (err: Error) => void }): Promise<void> {
    const check = async () => {
      let text: string;
      try {
        text = await readFile(this.#path, 'utf8');
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return; // not written yet: keep what we have
        handlers.onError(new SatelliteError('DESIRED_STATE_INVALID', `cannot read ${this.#path}`, { cause: err }));
        return;
      }
      if (text === this.#last) return;
      this.#last = text;
      try {
        handlers.onState(parseDesiredState(JSON.parse(text), this.#path));
      } catch (err) {
        const e = err instanceof SyntaxError ? new SatelliteError('DESIRED_STATE_INVALID', `${this.#path} is not valid JSON: ${err.message}`) : (err as Error);
        handlers.onError(e);
      }
    };
    const schedule = () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void check(), 100);
    };
    await check();
    try {
      this.#watcher = watch(dirname(this.#path), (_event, name) => {
        if (!name || name === basename(this.#path)) schedule();
      });
      this.#watcher.on('error', () => undefined);
    } catch {
      // No inotify: polling below still works.
    }
    this.#timer = setInterval(() => void check(), this.#pollMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    this.#watcher?.close();
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
  }
}
