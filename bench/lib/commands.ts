import { defer, type Teardown } from '../../test/helpers/cleanup.ts';
import { requireBinary } from '../../test/helpers/bin.ts';
import { spawnPeer, type ExitInfo, type PeerProcess } from '../../test/helpers/process.ts';

export interface CommandResult {
  exit: ExitInfo;
  /** stdout and stderr, interleaved by line. */
  output: string;
  /** Wall time from spawn to exit. */
  seconds: number;
}

/**
 * Runs client commands (wrk, curl) to completion. Each is spawned with the helpers' pdeathsig
 * wrapper, so none outlives the script, and the ones still running are stopped at teardown.
 */
export class Commands {
  readonly #active = new Set<PeerProcess>();

  constructor(t: Teardown) {
    defer(t, () => Promise.all([...this.#active].map((p) => p.stop(2000))));
  }

  /** Rejects when the command exits non-zero or runs past timeoutMs. */
  async run(name: string, args: string[], timeoutMs: number): Promise<CommandResult> {
    const proc = spawnPeer(requireBinary(name), args, { name, maxLines: 1000 });
    this.#active.add(proc);
    const started = process.hrtime.bigint();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void proc.stop(2000);
    }, timeoutMs);
    try {
      const exit = await proc.exited;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (timedOut) throw new Error(`${name} ${args.join(' ')} timed out after ${timeoutMs} ms: ${proc.describe()}`);
      if (exit.code !== 0) throw new Error(`${name} ${args.join(' ')} failed: ${proc.describe()}`);
      return { exit, output: proc.output(), seconds };
    } finally {
      clearTimeout(timer);
      this.#active.delete(proc);
    }
  }
}
