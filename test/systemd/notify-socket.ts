import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import { spawnPeer, waitForLine } from '../helpers/process.ts';
import { makeTempDir } from '../helpers/tmp.ts';

/** One datagram received on the notify socket. */
export interface NotifyMessage {
  /** Arrival, ms since the epoch. */
  at: number;
  /** Sender pid from SCM_CREDENTIALS. */
  pid: number | null;
  fields: Record<string, string>;
}

export interface NotifySocket {
  /** Pass as NOTIFY_SOCKET. */
  path: string;
  messages(): NotifyMessage[];
  /** Resolves with the first message (from index `from` on) for which `ok` holds. */
  waitFor(ok: (m: NotifyMessage) => boolean, timeoutMs?: number, from?: number): Promise<NotifyMessage>;
}

/**
 * A real AF_UNIX datagram socket standing in for systemd's notify socket (test/systemd/
 * notify-socket.py, since Node has no unix datagram sockets). Stopped after the test.
 */
export async function startNotifySocket(t: Teardown): Promise<NotifySocket> {
  const dir = await makeTempDir(t, 'hs-notify-');
  const path = join(dir, 'notify.sock');
  const proc = spawnPeer('python3', [join(import.meta.dirname, 'notify-socket.py'), path], { name: 'notify-socket', maxLines: 100_000 });
  defer(t, () => proc.stop(2000));
  await waitForLine(proc, /"listening"/, 10_000);
  const messages = (): NotifyMessage[] =>
    proc
      .lines()
      .filter((l) => l.startsWith('{"t"'))
      .map((l) => {
        const r = JSON.parse(l) as { t: number; pid: number | null; fields: Record<string, string> };
        return { at: r.t * 1000, pid: r.pid, fields: r.fields };
      });
  return {
    path,
    messages,
    async waitFor(ok, timeoutMs = 10_000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = messages().slice(from).find(ok);
        if (found) return found;
        await sleep(20);
      }
      throw new Error(`no matching notify message within ${timeoutMs} ms; got:\n${messages().map((m) => JSON.stringify(m.fields)).join('\n')}`);
    },
  };
}
