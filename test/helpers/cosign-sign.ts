import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/**
 * A cosign signer written from cosign's spec (SIGNATURE_SPEC.md, the tag scheme): the Debian build
 * of skopeo 1.9.3 refuses `--sign-by-sigstore-private-key` ("Debian-local change: sigstore
 * disabled") and cosign is not packaged, so tests write what `cosign sign --key` pushes:
 * - payload: simple signing JSON {critical: {identity: {docker-reference}, image:
 *   {docker-manifest-digest}, type: "cosign container image signature"}, optional}
 * - signature: ECDSA P-256 over SHA-256 of the payload, ASN.1 DER, base64, in the layer annotation
 *   dev.cosignproject.cosign/signature
 * - an OCI image manifest whose layer is the payload (application/vnd.dev.cosign.simplesigning.v1+json),
 *   pushed at `<repo>:sha256-<hex>.sig` through the Distribution API.
 */
export interface CosignKey {
  privateKey: KeyObject;
  publicKeyPem: string;
}

export function makeCosignKey(): CosignKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    }),
  );
}

export interface SignOptions {
  /** The digest the signature is stored for (its tag); default: the signed one. */
  storeFor?: string;
  /** The payload's docker-reference; default `${registry.host}/${repo}`. */
  dockerReference?: string;
  /** Replace the payload after signing (a tampered payload). */
  payload?: Buffer;
  /**
   * Store it as an OCI 1.1 referrer instead (what `cosign sign --registry-referrers-mode=oci-1-1`
   * writes): artifactType application/vnd.dev.cosign.artifact.sig.v1+json, subject = the image,
   * pushed by digest and listed in the referrers fallback tag `sha256-<hex>` (distribution 2.8 has
   * no referrers API). `fallbackTag: false`: pushed by digest only, for a registry with the
   * referrers API (it indexes the subject itself); the fallback tag is then left alone.
   */
  referrer?: { subjectSize: number; subjectMediaType: string; fallbackTag?: boolean };
}

/** Signs `digest` of `repo` with `key` and pushes the signature manifest to the registry. */
export async function pushCosignSignature(
  registry: { url: string; host: string },
  repo: string,
  digest: string,
  key: KeyObject,
  opts: SignOptions = {},
): Promise<{ tag: string; manifestDigest: string; payload: Buffer; subjectHeader?: string | undefined }> {
  const signed = simpleSigningPayload(opts.dockerReference ?? `${registry.host}/${repo}`, digest);
  const signature = sign('sha256', signed, key).toString('base64');
  const payload = opts.payload ?? signed;
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      config: {},
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: [sha256(payload)] },
    }),
  );
  await pushBlob(registry, repo, payload);
  await pushBlob(registry, repo, config);
  const ARTIFACT = 'application/vnd.dev.cosign.artifact.sig.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...(opts.referrer ? { artifactType: ARTIFACT } : {}),
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: sha256(config) },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          size: payload.length,
          digest: sha256(payload),
          annotations: { 'dev.cosignproject.cosign/signature': signature },
        },
      ],
      ...(opts.referrer ? { subject: { mediaType: opts.referrer.subjectMediaType, size: opts.referrer.subjectSize, digest: opts.storeFor ?? digest } } : {}),
    }),
  );
  if (opts.referrer) {
    const put = async (ref: string, body: Buffer, type: string) => {
      const res = await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': type }, body });
      if (res.status !== 201) throw new Error(`PUT ${ref}: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      return res.headers.get('oci-subject') ?? undefined;
    };
    const subject = await put(sha256(manifest), manifest, 'application/vnd.oci.image.manifest.v1+json');
    const tag = (opts.storeFor ?? digest).replace(':', '-');
    if (opts.referrer.fallbackTag === false) return { tag, manifestDigest: sha256(manifest), payload, subjectHeader: subject };
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifest.length, digest: sha256(manifest), artifactType: ARTIFACT }],
      }),
    );
    await put(tag, index, 'application/vnd.oci.image.index.v1+json');
    return { tag, manifestDigest: sha256(manifest), payload };
  }
  const tag = `${(opts.storeFor ?? digest).replace(':', '-')}.sig`;
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`PUT signature manifest: ${res.status} ${await res.text()}`);
  return { tag, manifestDigest: sha256(manifest), payload };
}

export async function pushBlob(registry: { url: string }, repo: string, data: Buffer): Promise<void> {
  const start = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  if (start.status !== 202) throw new Error(`POST upload: ${start.status}`);
  const location = new URL(start.headers.get('location')!, registry.url);
  location.searchParams.set('digest', sha256(data));
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status}`);
}
