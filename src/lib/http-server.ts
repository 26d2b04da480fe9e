import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SatelliteError } from './errors.ts';

/** Listens, or fails with LISTEN_FAILED naming what could not listen where. */
export async function listen(server: Server, host: string, port: number, what: string): Promise<AddressInfo> {
  server.listen(port, host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => {
      throw new SatelliteError('LISTEN_FAILED', `${what} cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err });
    }),
  ]);
  return server.address() as AddressInfo;
}

/** Stops accepting, closes idle connections, and cuts the rest after the deadline. */
export async function drainAndClose(server: Server, deadlineMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), deadlineMs);
  await closed;
  clearTimeout(timer);
}
