import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** How a peer process ended: exit code, or the signal that killed it. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnPeerOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Lines of stdout+stderr kept for error messages and logs(); default 200. */
  maxLines?: number;
  /** Shown in error messages; default the command's base name. */
  name?: string;
}

// setpriv --pdeathsig makes the kernel kill the peer when the test process dies (crash, runner
// timeout, SIGKILL), so no registry or containerd outlives its test. Optional: util-linux ships it.
const SETPRIV = '/usr/bin/setpriv';
const hasSetpriv = (() => {
  try {
    accessSync(SETPRIV, constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();

/**
 * A running peer (registry, containerd, satellite) with its stdout and stderr captured line by line
 * into a ring buffer. Both streams share one buffer, in arrival order.
 */
export class PeerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  #lines: string[] = [];
  #firstSeq = 0; // sequence number of #lines[0]
  #maxLines: number;
  #listeners = new Set<(line: string, seq: number) => void>();
  #exit: ExitInfo | undefined;
  #spawnError: Error | undefined;

  constructor(command: string, args: readonly string[], opts: SpawnPeerOptions = {}) {
    this.name = opts.name ?? command.split('/').pop() ?? command;
    this.#maxLines = opts.maxLines ?? 200;
    const [file, argv] = hasSetpriv
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]]
      : [command, [...args]];
    this.child = spawn(file, argv, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.#push(line);
      });
      stream?.on('end', () => {
        if (partial) this.#push(partial);
        partial = '';
      });
    }
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.child.once('error', (err) => {
        this.#spawnError = err;
        this.#exit = { code: null, signal: null };
        resolve(this.#exit);
      });
      // 'exit' rather than 'close': a daemon's children (containerd shims) may keep the pipes open.
      this.child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        // Give the pipes a moment to deliver the last lines, which usually say why it exited.
        const done = () => resolve({ code, signal });
        const timer = setTimeout(done, 200);
        this.child.once('close', () => {
          clearTimeout(timer);
          done();
        });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Exit status once exited, else undefined. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** Sequence number the next output line will get; pass to waitForLine to ignore older lines. */
  get nextLine(): number {
    return this.#firstSeq + this.#lines.length;
  }

  /** The buffered lines (the last maxLines). */
  lines(): string[] {
    return [...this.#lines];
  }

  /** The buffered output as one string. */
  output(): string {
    return this.#lines.join('\n');
  }

  /** One paragraph for an error message: who, how it ended, and the last lines it printed. */
  describe(): string {
    const status = this.#spawnError
      ? `failed to start: ${this.#spawnError.message}`
      : this.#exit
        ? `exited (code ${this.#exit.code}, signal ${this.#exit.signal})`
        : `running (pid ${this.pid})`;
    const tail = this.#lines.slice(-50).join('\n');
    return `${this.name} ${status}; last output:\n${tail || '(none)'}`;
  }

  /** Sends a signal (if still running) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitInfo> {
    if (!this.#exit) this.child.kill(signal);
    return this.exited;
  }

  /** SIGTERM, then SIGKILL after timeoutMs; resolves when the process has exited. */
  async stop(timeoutMs = 5000): Promise<ExitInfo> {
    if (this.#exit) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.#exit) this.child.kill('SIGKILL');
    }, timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Calls listener for every line from now on; returns the unsubscribe function. */
  onLine(listener: (line: string, seq: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #push(line: string): void {
    const seq = this.nextLine;
    this.#lines.push(line);
    if (this.#lines.length > this.#maxLines) {
      this.#lines.shift();
      this.#firstSeq++;
    }
    for (const listener of this.#listeners) listener(line, seq);
  }

  /** Buffered lines with their sequence numbers, from seq `from` on. */
  linesSince(from: number): Array<[string, number]> {
    const start = Math.max(0, from - this.#firstSeq);
    return this.#lines.slice(start).map((line, i) => [line, this.#firstSeq + start + i]);
  }
}

/** Spawns a peer with captured output; see PeerProcess. */
export function spawnPeer(command: string, args: readonly string[], opts?: SpawnPeerOptions): PeerProcess {
  return new PeerProcess(command, args, opts);
}

/**
 * Resolves with the first output line matching `regex` (buffered lines count, from sequence
 * number `fromLine` on); rejects with the process's recent output when it exits or time runs out.
 */
export async function waitForLine(
  proc: PeerProcess,
  regex: RegExp,
  timeoutMs: number,
  fromLine = 0,
): Promise<RegExpExecArray> {
  for (const [line] of proc.linesSince(fromLine)) {
    const match = regex.exec(line);
    if (match) return match;
  }
  return new Promise<RegExpExecArray>((resolve, reject) => {
    const finish = (err: Error | undefined, match?: RegExpExecArray) => {
      clearTimeout(timer);
      unsubscribe();
      if (err) reject(err);
      else resolve(match as RegExpExecArray);
    };
    const unsubscribe = proc.onLine((line, seq) => {
      if (seq < fromLine) return;
      const match = regex.exec(line);
      if (match) finish(undefined, match);
    });
    const timer = setTimeout(
      () => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${regex} from ${proc.describe()}`)),
      timeoutMs,
    );
    void proc.exited.then(() =>
      finish(new Error(`gave up waiting for ${regex}: ${proc.describe()}`)),
    );
  });
}

/** One GET; resolves with the status of any HTTP response, rejects on connection errors. */
export function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls `url` until it answers with any HTTP status (401 counts: the server is up) and returns
 * that status. Fails fast, with its output, if `proc` exits meanwhile.
 */
export async function waitForHttp(url: string, timeoutMs: number, proc?: PeerProcess): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (proc?.exitInfo) throw new Error(`${url} never answered: ${proc.describe()}`);
    try {
      return await httpStatus(url, Math.min(2000, Math.max(100, deadline - Date.now())));
    } catch (err) {
      lastError = err;
    }
    await sleep(50);
  }
  const why = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${why})${proc ? `: ${proc.describe()}` : ''}`);
}

/** Polls until 127.0.0.1:port accepts a TCP connection (a TLS server, which waitForHttp cannot probe). */
export async function waitForTcp(port: number, timeoutMs: number, proc?: PeerProcess): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.exitInfo) throw new Error(`127.0.0.1:${port} never answered: ${proc.describe()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`127.0.0.1:${port} did not accept a connection within ${timeoutMs} ms${proc ? `: ${proc.describe()}` : ''}`);
}
