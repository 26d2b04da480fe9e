import { createTask, validateDetailed, type ScheduledTask } from 'node-cron';
import { SatelliteError } from '../lib/errors.ts';

/**
 * Sync windows: each cron expression (5 fields, minute resolution) names the minutes in which
 * downloads may run, e.g. "* 1-5 * * *" = every minute from 01:00 to 05:59. No expressions means
 * always open.
 */
export class SyncWindows {
  readonly #tasks: ScheduledTask[];

  constructor(expressions: readonly string[], timezone?: string) {
    this.#tasks = expressions.map((expr, i) => {
      if (expr.trim().split(/\s+/).length !== 5) {
        throw new SatelliteError('CONFIG_INVALID', `/sync/windows/${i}: "${expr}" must have 5 fields (minute resolution)`);
      }
      const check = validateDetailed(expr);
      if (!check.valid) {
        const why = check.errors?.map((e) => e.message).join('; ') ?? 'invalid';
        throw new SatelliteError('CONFIG_INVALID', `/sync/windows/${i}: "${expr}": ${why}`);
      }
      // Never started: used only to match dates.
      return createTask(expr, () => undefined, timezone ? { timezone } : {});
    });
  }

  get always(): boolean {
    return this.#tasks.length === 0;
  }

  isOpen(at: Date = new Date()): boolean {
    if (this.#tasks.length === 0) return true;
    const minute = new Date(at);
    minute.setSeconds(0, 0);
    return this.#tasks.some((t) => t.match(minute));
  }

  /** Milliseconds until the next open minute (0 if open now), looking 8 days ahead. */
  msUntilOpen(at: Date = new Date()): number | undefined {
    if (this.isOpen(at)) return 0;
    const probe = new Date(at);
    probe.setSeconds(0, 0);
    for (let i = 0; i < 8 * 24 * 60; i++) {
      probe.setTime(probe.getTime() + 60_000);
      if (this.isOpen(probe)) return probe.getTime() - at.getTime();
    }
    return undefined;
  }

  close(): void {
    for (const t of this.#tasks) void t.destroy();
  }
}
