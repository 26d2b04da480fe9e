import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import type { DockerRegistry } from '../helpers/docker-registry.ts';
import { makeImage, writeIndex, type ImageFixture, type IndexFixture } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { UPSTREAM_DEFAULTS, UpstreamClient, type UpstreamConfig } from '../../src/upstream/index.ts';

export const silentLog = (): Logger => pino({ level: 'silent' });

/** A debug-level logger whose JSON lines the test can read (to check what never gets logged). */
export function captureLog(): { log: Logger; text(): string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), text: () => lines.join('') };
}

export interface TestClient {
  client: UpstreamClient;
  /** Bytes counted through the meter so far. */
  metered(): number;
}

/** An UpstreamClient with default settings and a byte meter, closed after the test. */
export function upstreamClient(t: Teardown, config: Partial<UpstreamConfig> & { url: string }, log: Logger = silentLog()): TestClient {
  let metered = 0;
  const client = new UpstreamClient({ ...UPSTREAM_DEFAULTS, ...config }, log, { meter: (n) => (metered += n) });
  defer(t, () => client.close());
  return { client, metered: () => metered };
}

export interface PushedFixtures {
  layout: string;
  repo: string;
  /** Tagged v1: a config and two layers, the second ~1.5 MB. */
  image: ImageFixture;
  /** Tagged multi: an OCI index of two single-layer images. */
  index: IndexFixture;
}

/** Builds the fixture images and pushes them with skopeo (v1, and multi with --all). */
export async function pushFixtures(t: Teardown, registry: DockerRegistry, destCreds?: string, repo = 'fixtures/app'): Promise<PushedFixtures> {
  const layout = await makeTempDir(t, 'hs-upstream-layout-');
  const image = await makeImage(layout, { tag: 'v1', seed: 'upstream-app', layerSizes: [20_000, 1_500_000] });
  const index = await writeIndex(layout, {
    tag: 'multi',
    images: [
      await makeImage(layout, { seed: 'upstream-amd64', layerSizes: [30_000], platform: { os: 'linux', architecture: 'amd64' } }),
      await makeImage(layout, { seed: 'upstream-arm64', layerSizes: [40_000], platform: { os: 'linux', architecture: 'arm64' } }),
    ],
  });
  const opts = destCreds === undefined ? {} : { destCreds };
  await skopeoCopy(`oci:${layout}:v1`, `docker://${registry.host}/${repo}:v1`, opts);
  await skopeoCopy(`oci:${layout}:multi`, `docker://${registry.host}/${repo}:multi`, { ...opts, all: true });
  return { layout, repo, image, index };
}

/** The largest layer of the fixture image, and its bytes. */
export async function bigLayer(fx: PushedFixtures): Promise<{ digest: string; size: number; bytes: Buffer }> {
  const layer = [...fx.image.layers].sort((a, b) => b.size - a.size)[0]!;
  return { digest: layer.digest, size: layer.size, bytes: await readFile(layer.path) };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Reads until the end or an error; returns what arrived and the error (if any). */
export async function readUntilError(stream: Readable): Promise<{ data: Buffer; error: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return { data: Buffer.concat(chunks), error: undefined };
  } catch (error) {
    return { data: Buffer.concat(chunks), error };
  }
}

export const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** assert.rejects with a SatelliteError code; returns the error for further checks. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<Error & { code: string; detail: unknown }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isSatelliteError(err), `expected SatelliteError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return err as Error & { code: string; detail: unknown };
  }
  assert.fail(`expected rejection with ${code}`);
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface FakeServer {
  url: string;
  port: number;
  server: Server;
  requests: SeenRequest[];
}

/** A tiny HTTP server on a free 127.0.0.1 port that records every request; closed after the test. */
export async function startFakeServer(t: Teardown, handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<FakeServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, requests.length);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, port, server, requests };
}

/** Answers with a dist-spec error body. */
export function sendRegistryError(res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ code, message: code.toLowerCase().replace(/_/g, ' '), detail: null }] });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
