import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { defer, type Teardown } from './cleanup.ts';

/** A loopback TCP server that accepts connections and never says a word (a hung peer). Stopped after the test. */
export async function startHangingServer(t: Teardown): Promise<{ url: string; accepted: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, accepted: () => accepted };
}
