import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from './errors.ts';
import { writeFileAtomic } from './fs-atomic.ts';

/** The `restartBackoff` config section. */
export interface RestartBackoffConfig {
  enabled: boolean;
  /** Delay before the first restart that follows a quick failure; doubles per failure in a row. */
  baseSeconds: number;
  maxSeconds: number;
  /** A run that lasted this long was healthy: its failure starts the count again. */
  healthySeconds: number;
}

export const restartBackoffConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true },
    baseSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 10 },
    maxSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 600 },
    healthySeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 300 },
  },
} as const;

/** What the last run left behind: when it started, how many quick failures preceded it, how it ended. */
interface RunState {
  startedAt: number;
  failures: number;
  clean: boolean;
}

export const RUN_STATE_FILE = 'run-state.json';

function parseRunState(text: string): RunState | undefined {
  try {
    const doc = JSON.parse(text) as Partial<RunState>;
    if (typeof doc.startedAt === 'number' && Number.isInteger(doc.failures) && (doc.failures as number) >= 0 && typeof doc.clean === 'boolean') {
      return { startedAt: doc.startedAt, failures: doc.failures as number, clean: doc.clean };
    }
  } catch {
    // fall through: a torn or foreign file counts as no history
  }
  return undefined;
}

/**
 * Exponential back-off between restarts, kept in the data dir. systemd 252 (Debian bookworm,
 * Raspberry Pi OS) restarts after a fixed RestartSec only; RestartSteps= needs 254. A run that
 * ends without a clean stop soon after it started counts as a failure in a row, and the next
 * start waits base * 2^(n-1) seconds (capped) before doing anything: a board whose disk or
 * upstream is broken does not churn every 10 s for weeks.
 */
export class RestartBackoff {
  readonly #dataDir: string;
  readonly #file: string;
  readonly #config: RestartBackoffConfig;
  #state: RunState | undefined;

  constructor(dataDir: string, config: RestartBackoffConfig) {
    this.#dataDir = dataDir;
    this.#file = join(dataDir, RUN_STATE_FILE);
    this.#config = config;
  }

  /**
   * Records this start and returns how long to wait first (0 after a clean stop, a healthy run,
   * or with no history). `damaged` is true when a state file was there but unreadable.
   */
  async begin(now = Date.now()): Promise<{ delayMs: number; failures: number; damaged: boolean }> {
    let previous: RunState | undefined;
    let damaged = false;
    try {
      previous = parseRunState(await readFile(this.#file, 'utf8'));
      damaged = previous === undefined;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') damaged = true;
    }
    const quickFailure = previous !== undefined && !previous.clean && now - previous.startedAt < this.#config.healthySeconds * 1000;
    const failures = quickFailure ? previous!.failures + 1 : 0;
    const delayMs = failures === 0 ? 0 : Math.min(this.#config.maxSeconds, this.#config.baseSeconds * 2 ** (failures - 1)) * 1000;
    this.#state = { startedAt: now, failures, clean: false };
    // A first boot: the store creates the data dir later, the record is needed now.
    await mkdir(this.#dataDir, { recursive: true, mode: 0o700 });
    await this.#write();
    return { delayMs, failures, damaged };
  }

  /** A clean stop (SIGTERM, a refused config): the next start does not wait. */
  async end(): Promise<void> {
    if (!this.#state || this.#state.clean) return;
    this.#state = { ...this.#state, clean: true };
    await this.#write();
  }

  async #write(): Promise<void> {
    await writeFileAtomic(this.#file, `${JSON.stringify(this.#state)}\n`, 0o600);
  }
}
