import { ScriptTeardown } from './teardown.ts';

export interface BenchScript<O> {
  usage: string;
  /** Parsed options, or undefined when --help was asked for; throws on bad arguments. */
  parse: (argv: string[]) => O | undefined;
  /** A hard bound on the whole run, whatever hangs. */
  budgetSec: (opts: O) => number;
  /** Runs the benchmark and returns the report (Markdown) for stdout. */
  run: (t: ScriptTeardown, opts: O) => Promise<string>;
  progress: (msg: string) => void;
}

/**
 * The life cycle every benchmark script shares: parse options, run under a watchdog, and stop
 * every process and remove every temp dir at the end, on error, on a signal or on the watchdog.
 */
export async function runBenchScript<O>(script: BenchScript<O>, argv = process.argv.slice(2)): Promise<number> {
  let opts: O | undefined;
  try {
    opts = script.parse(argv);
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${script.usage}`);
    return 2;
  }
  if (!opts) {
    console.log(script.usage);
    return 0;
  }
  const t = new ScriptTeardown();
  let stopping = false;
  const abort = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    script.progress(`${why}: stopping every process, removing temp dirs`);
    void t.run().finally(() => process.exit(code));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => abort(signal, 130));
  const budgetSec = script.budgetSec(opts);
  const watchdog = setTimeout(() => abort(`still running after ${budgetSec} s`, 1), budgetSec * 1000);
  try {
    const text = await script.run(t, opts);
    console.log(`\n${text}`);
    return 0;
  } catch (err) {
    if (!stopping) console.error(err);
    return 1;
  } finally {
    clearTimeout(watchdog);
    if (!stopping) {
      script.progress('cleaning up');
      await t.run();
    }
  }
}
