import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeImage, type ImageFixture } from '../helpers/fixtures.ts';
import type { Satellite } from '../helpers/satellite.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import type { Teardown } from '../helpers/cleanup.ts';
import { layoutDigests } from './helpers.ts';

// Sites of proxy satellites sharing blobs (test/proxy/peers*.test.ts).

export const TOKEN = 'site-token-0123456789abcdef';

/** A docker-registry holding site/app:v1, behind a counting loopback link (the WAN). */
export async function upstreamWithImage(t: Teardown, seed: string, layerSizes: number[]) {
  const registry = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-proxy-peers-fixture-');
  const image = await makeImage(layout, { tag: 'v1', seed, layerSizes });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${registry.host}/site/app:v1`);
  const wan = await startFaultProxy(t, { target: registry.host });
  return { registry, image, wan };
}

/** A satellite in proxy mode (no image list) that shares blobs with the given members. */
export function siteConfig(upstreamUrl: string, port: number, id: string, members: Array<{ id: string; url: string }>, peers: Record<string, unknown> = {}) {
  return {
    registry: { listen: { host: '127.0.0.1', port } },
    proxy: { enabled: true, upstream: { url: upstreamUrl }, accessFlushSeconds: 1 },
    store: { gcGraceSeconds: 0 },
    peers: { id, advertiseUrl: `http://127.0.0.1:${port}`, static: members, token: TOKEN, ...peers },
  };
}

export const blobsOf = (image: ImageFixture) => [image.configDigest, ...image.layerDigests];
export const imageBytes = (image: ImageFixture) => image.layers.reduce((n, l) => n + l.size, image.config.length + image.size);

export async function pull(t: Teardown, sat: Satellite): Promise<{ manifest: string; blobs: string[]; seconds: number }> {
  const dir = await makeTempDir(t, 'hs-proxy-peers-pull-');
  const started = Date.now();
  await skopeoCopy(`docker://${sat.host}/site/app:v1`, `oci:${dir}:v1`);
  return { ...(await layoutDigests(dir)), seconds: (Date.now() - started) / 1000 };
}
