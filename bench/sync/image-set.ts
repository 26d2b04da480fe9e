import { request } from 'node:http';
import { makeLayer, writeImage, type ImageFixture, type LayerBlob } from '../../test/helpers/fixtures.ts';
import { skopeoCopy } from '../../test/helpers/skopeo.ts';

const MiB = 1024 * 1024;
const TAG = 'v1';
const PLATFORM = { os: 'linux', architecture: 'amd64' };

/** One image of the set as it sits on the upstream. */
export interface SetImage {
  repository: string;
  tag: string;
  fixture: ImageFixture;
}

export interface ImageSet {
  images: SetImage[];
  /** Distinct blobs (layers + configs) plus the manifests: what a replica must hold. */
  setBytes: number;
  distinctLayers: number;
  baseBytes: number;
}

export type SetName = 'default' | 'quick' | 'five' | 'thirty';
export const SET_NAMES: readonly SetName[] = ['default', 'quick', 'five', 'thirty'];

export interface SetShape {
  /** A base layer every image shares; 0 = none. */
  baseBytes: number;
  ownBytes: number[];
  count: number;
}

/**
 * The shape of the set: one shared base layer, then each image's own layers. Default ~500 MB
 * (56 MiB base + 5 x 84 MiB own = 476 MiB); quick ~100 MB. Several layers are larger than the
 * 16 MiB cut so a client that restarts a broken layer from zero cannot get them through. The
 * long-link sets of issue 18: five (5 images, 42 MB, a shared 10 MiB base) and thirty (30 small
 * images of one 224 KiB layer each, 6.9 MB): round trips, not bytes, decide their time on a WAN.
 */
export function setShape(name: SetName | boolean): SetShape {
  const which = name === true ? 'quick' : name === false ? 'default' : name;
  switch (which) {
    case 'quick':
      return { baseBytes: 16 * MiB, ownBytes: [8 * MiB, 4 * MiB, 2 * MiB, 2 * MiB], count: 5 };
    case 'five':
      return { baseBytes: 10 * MiB, ownBytes: [4 * MiB, 2 * MiB], count: 5 };
    case 'thirty':
      return { baseBytes: 0, ownBytes: [224 * 1024], count: 30 };
    default:
      return { baseBytes: 56 * MiB, ownBytes: [36 * MiB, 24 * MiB, 12 * MiB, 8 * MiB, 4 * MiB], count: 5 };
  }
}

/** HEAD a manifest; resolves with Docker-Content-Digest, or undefined unless 200. */
export function manifestDigest(baseUrl: string, repository: string, tag: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${baseUrl}/v2/${repository}/manifests/${tag}`,
      {
        method: 'HEAD',
        agent: false,
        timeout: 10_000,
        headers: { Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
      },
      (res) => {
        res.resume();
        const digest = res.headers['docker-content-digest'];
        resolve(res.statusCode === 200 && typeof digest === 'string' ? digest : undefined);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`HEAD ${baseUrl}/v2/${repository}/manifests/${tag} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** How many of the set's images `baseUrl` serves with exactly the upstream's manifest digest. */
export async function countReplicated(baseUrl: string, set: ImageSet): Promise<number> {
  let n = 0;
  for (const img of set.images) {
    if ((await manifestDigest(baseUrl, img.repository, img.tag)) === img.fixture.manifestDigest) n++;
  }
  return n;
}

/**
 * Generates the set as an OCI layout (seeded random layers streamed to disk, gzip level 0) and
 * pushes it to the upstream with skopeo copy; checks each manifest digest came through unchanged.
 */
export async function buildImageSet(layout: string, upstreamHost: string, which: SetName | boolean): Promise<ImageSet> {
  const shape = setShape(which);
  const base = shape.baseBytes > 0 ? await makeLayer('bench/sync/base', shape.baseBytes, { dir: layout }) : undefined;
  const images: SetImage[] = [];
  const layers = new Map<string, LayerBlob>(base ? [[base.digest, base]] : []);
  let metaBytes = 0;
  for (let i = 1; i <= shape.count; i++) {
    const own: LayerBlob[] = [];
    for (const [j, bytes] of shape.ownBytes.entries()) own.push(await makeLayer(`bench/sync/img${i}/layer${j}`, bytes, { dir: layout }));
    for (const l of own) layers.set(l.digest, l);
    const fixture = await writeImage(layout, { tag: `img${i}`, layers: base ? [base, ...own] : own, platform: PLATFORM });
    metaBytes += fixture.config.length + fixture.manifest.length;
    images.push({ repository: `bench/img${i}`, tag: TAG, fixture });
  }
  for (const [i, img] of images.entries()) {
    await skopeoCopy(`oci:${layout}:img${i + 1}`, `docker://${upstreamHost}/${img.repository}:${img.tag}`, { timeoutMs: 300_000 });
    const got = await manifestDigest(`http://${upstreamHost}`, img.repository, img.tag);
    if (got !== img.fixture.manifestDigest) {
      throw new Error(`upstream ${img.repository}:${img.tag} has manifest ${String(got)}, expected ${img.fixture.manifestDigest}`);
    }
  }
  const layerBytes = [...layers.values()].reduce((sum, l) => sum + l.size, 0);
  return { images, setBytes: layerBytes + metaBytes, distinctLayers: layers.size, baseBytes: base?.size ?? 0 };
}
