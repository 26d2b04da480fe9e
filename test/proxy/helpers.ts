import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import type { Satellite } from '../helpers/satellite.ts';
import type { ProxyStatus } from '../../src/proxy/index.ts';

export const MiB = 1024 * 1024;

export interface StatusDoc {
  store: { blobs: number; bytes: number };
  proxy: ProxyStatus;
}

export async function getStatus(sat: Satellite): Promise<StatusDoc> {
  const res = await fetch(`${sat.url}/_satellite/status`);
  if (res.status !== 200) throw new Error(`status answered ${res.status}`);
  return (await res.json()) as StatusDoc;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Satellite config with the proxy on against upstreamUrl; GC without grace. */
export function proxyConfig(upstreamUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    proxy: { enabled: true, upstream: { url: upstreamUrl }, accessFlushSeconds: 1, ...extra },
    store: { gcGraceSeconds: 0 },
  };
}

export async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

export function blobFile(dataDir: string, digest: string): string {
  const hex = digest.slice(7);
  return join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** Digests of every blob in an OCI layout's index -> manifest -> config + layers, verified by hashing. */
export async function layoutDigests(dir: string): Promise<{ manifest: string; blobs: string[] }> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = index.manifests[0]!.digest;
  const path = (d: string) => join(dir, 'blobs', 'sha256', d.slice(7));
  const m = JSON.parse(await readFile(path(manifest), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
  const blobs = [m.config.digest, ...m.layers.map((l) => l.digest)];
  for (const d of [manifest, ...blobs]) {
    const actual = await hashFile(path(d));
    if (actual !== d) throw new Error(`layout blob ${d} hashes to ${actual}`);
  }
  return { manifest, blobs };
}

/** GETs url and hashes the body; status and bytes, or the error if the connection broke. */
export async function fetchHash(url: string): Promise<{ status: number; digest?: string; bytes: number; error?: string }> {
  let bytes = 0;
  try {
    const res = await fetch(url);
    const h = createHash('sha256');
    if (!res.body) return { status: res.status, bytes };
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      h.update(chunk);
      bytes += chunk.length;
    }
    return { status: res.status, digest: `sha256:${h.digest('hex')}`, bytes };
  } catch (err) {
    return { status: -1, bytes, error: String((err as Error).cause ?? err) };
  }
}

/**
 * A loopback TCP relay that paces target->client bytes at bytesPerSecond (so a test can act while
 * a fetch is in flight). Stopped after the test.
 */
export async function startThrottle(t: Teardown, target: string, bytesPerSecond: number): Promise<{ url: string; stall(on: boolean): void }> {
  let stalled = false;
  const paused = new Set<Socket>();
  const to = loopbackTarget(target, 'throttle');
  const live = new Set<Socket>();
  const server = createServer((client) => {
    if (stalled) {
      // A stalled link answers nothing, new connections included (they are accepted and stay silent).
      live.add(client);
      client.on('error', () => {});
      client.once('close', () => live.delete(client));
      return;
    }
    const up = relayPair(client, to, live);
    client.pipe(up);
    up.on('data', (chunk: Buffer) => {
      client.write(chunk);
      up.pause();
      setTimeout(() => {
        if (stalled) paused.add(up);
        else up.resume();
      }, (chunk.length / bytesPerSecond) * 1000);
    });
  });
  const p = await listenRelay(t, server, live);
  return {
    url: `http://127.0.0.1:${p}`,
    /** Stops forwarding (connections stay open, silent; new ones get nothing) until stall(false). */
    stall: (on) => {
      stalled = on;
      if (!on) for (const s of paused) s.resume();
      if (!on) paused.clear();
    },
  };
}

/**
 * A loopback TCP relay that turns every request's Range header into an unknown one, so the
 * target answers 200 with the whole blob (an upstream that ignores Range). Stopped after the test.
 */
export async function startRangeStripper(t: Teardown, target: string): Promise<{ url: string; host: string }> {
  const to = loopbackTarget(target, 'range stripper');
  const live = new Set<Socket>();
  const server = createServer((client) => {
    const up = relayPair(client, to, live);
    // Same length, so nothing else in the request moves (headers arrive in one chunk here).
    client.on('data', (chunk: Buffer) => up.write(Buffer.from(chunk.toString('latin1').replace(/\r\nrange:/gi, '\r\nx-nop:'), 'latin1')));
    up.pipe(client);
  });
  const p = await listenRelay(t, server, live);
  return { url: `http://127.0.0.1:${p}`, host: `127.0.0.1:${p}` };
}

/** host and port of a loopback `host:port` relay target (never anything else). */
function loopbackTarget(target: string, what: string): { host: string; port: number } {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  if (host !== '127.0.0.1') throw new Error(`${what} target must be loopback`);
  return { host, port: Number(target.slice(i + 1)) };
}

/** Opens the upstream side for `client`; either side closing closes both. Both are tracked in `live`. */
function relayPair(client: Socket, to: { host: string; port: number }, live: Set<Socket>): Socket {
  const up = connect(to);
  for (const s of [client, up]) {
    live.add(s);
    s.on('error', () => {});
    s.once('close', () => {
      live.delete(s);
      client.destroy();
      up.destroy();
    });
  }
  return up;
}

/** Listens on a free loopback port; after the test, every live socket is destroyed and the server closed. */
async function listenRelay(t: Teardown, server: Server, live: Set<Socket>): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => new Promise<void>((resolve) => {
    for (const s of live) s.destroy();
    server.close(() => resolve());
  }));
  return (server.address() as AddressInfo).port;
}
