import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { LogSink } from '../../src/lib/log-sink.ts';
import { requireBinary } from '../helpers/bin.ts';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';

/** A real FIFO: its read end (non-blocking, read only when the test does) and its write end. */
async function fifo(t: Teardown): Promise<{ readFd: number; writeFd: number; closeRead(): void }> {
  const path = join(await makeTempDir(t, 'hs-log-fifo-'), 'out');
  execFileSync(requireBinary('mkfifo'), [path]);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(path, constants.O_WRONLY);
  let readOpen = true;
  const closeRead = () => {
    if (readOpen) closeSync(readFd);
    readOpen = false;
  };
  defer(t, () => {
    closeSync(writeFd);
    closeRead();
  });
  return { readFd, writeFd, closeRead };
}

/** Reads what the FIFO holds now (non-blocking). */
function drain(fd: number): string {
  const buf = Buffer.alloc(1 << 16);
  let out = '';
  for (;;) {
    try {
      const n = readSync(fd, buf);
      if (n === 0) return out;
      out += buf.toString('utf8', 0, n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return out;
      throw err;
    }
  }
}

const line = (i: number) => `${JSON.stringify({ i, msg: 'x'.repeat(1000) })}\n`;

test('a FIFO nobody reads: the sink holds at most bufferBytes, counts every dropped line, and reports them once drained', async (t) => {
  const { readFd, writeFd } = await fifo(t);
  const sink = new LogSink({ fd: writeFd, bufferBytes: 65536 });
  const reported: number[] = [];
  sink.onRecovered = (n) => {
    reported.push(n);
    sink.write(`${JSON.stringify({ msg: `${n} log lines dropped` })}\n`);
  };
  const total = 1000; // ~1 MB: the 64 KiB FIFO plus the 64 KiB buffer take about 130 of them
  const t0 = performance.now();
  for (let i = 0; i < total; i++) assert.equal(sink.write(line(i)), true);
  const ms = performance.now() - t0;
  const held = sink.stats();
  assert.equal(held.destination, 'pipe');
  assert.equal(held.state, 'backlogged');
  assert.ok(held.bufferedBytes <= 65536, `held ${held.bufferedBytes}`);
  assert.ok(held.droppedLines > 700, `dropped ${held.droppedLines}`);
  assert.ok(ms < 1000, `1000 writes into a full pipe took ${ms.toFixed(0)} ms: something blocked`);
  assert.deepEqual(reported, []);

  // Read everything that comes: the lines kept arrive whole and in order, then the report.
  let out = '';
  for (let i = 0; i < 100 && !/log lines dropped/.test(out); i++) {
    out += drain(readFd);
    await sleep(30);
  }
  assert.deepEqual(reported, [held.droppedLines]);
  const lines = out.trimEnd().split('\n').map((l) => JSON.parse(l) as { i?: number; msg: string });
  const kept = lines.filter((l) => l.i !== undefined).map((l) => l.i!);
  assert.equal(kept.length + held.droppedLines, total, 'every line either written or counted');
  assert.deepEqual(kept, kept.toSorted((a, b) => a - b), 'in order');
  assert.equal(lines.at(-1)!.msg, `${held.droppedLines} log lines dropped`);
  assert.equal(sink.stats().state, 'ok');
});

test('the reader goes away (EPIPE): the sink closes, counts the lines and never throws', async (t) => {
  const pipe = await fifo(t);
  const sink = new LogSink({ fd: pipe.writeFd, bufferBytes: 65536 });
  // Lines of one event-loop turn go out in one write: let line 0 go before the reader leaves.
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  sink.write(line(0));
  await turn();
  pipe.closeRead();
  for (let i = 1; i <= 10; i++) sink.write(line(i));
  await turn();
  const s = sink.stats();
  assert.equal(s.state, 'closed');
  assert.equal(s.lastError, 'EPIPE');
  assert.equal(s.droppedLines, 10);
  assert.equal(s.bufferedBytes, 0);
});

test('an idle process writes its line at once: the write is not left waiting for some other event', async (t) => {
  // A process with nothing to do but a far-off timer (Ground Control between reports) logs one line
  // from an unref'd timer (a rejection summary). An unref'd setImmediate would only run once that
  // far-off timer woke the loop: the line would sit in memory for a minute.
  const sink = fileURLToPath(new URL('../../src/lib/log-sink.ts', import.meta.url));
  const script = `
    import { LogSink } from ${JSON.stringify(sink)};
    const s = new LogSink({ bufferBytes: 65536 });
    setInterval(() => {}, 120000);
    setTimeout(() => s.write('{"msg":"summary"}\\n'), 100).unref();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  defer(t, () => child.kill('SIGKILL'));
  const seen = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no line within 5 s (got ${JSON.stringify(out)})`)), 5_000);
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out);
      }
    });
  });
  assert.equal(seen, '{"msg":"summary"}\n');
});
