import type { Teardown } from '../../test/helpers/cleanup.ts';

/**
 * A Teardown for scripts (the test helpers want one): collects the helpers' cleanup hooks and runs
 * them once, at the end, on error or on a signal. The helpers register through defer(), which
 * already unwinds its own stack last-in first-out.
 */
export class ScriptTeardown implements Teardown {
  #hooks: Array<() => unknown> = [];
  #running: Promise<void> | undefined;

  after(fn?: (...args: never[]) => unknown): void {
    if (fn) this.#hooks.push(fn as () => unknown);
  }

  /** Runs every hook (each even if another fails); later calls return the same promise. */
  run(): Promise<void> {
    this.#running ??= (async () => {
      const errors: unknown[] = [];
      for (const hook of this.#hooks.splice(0)) {
        try {
          await hook();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, 'cleanup failed');
    })();
    return this.#running;
  }
}
