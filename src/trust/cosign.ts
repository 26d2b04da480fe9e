import { isDigest } from '../lib/digest.ts';
import { trustError, TrustErrorCode } from './errors.ts';

/** cosign: the signature of each simple-signing layer, base64 of an ASN.1 DER ECDSA signature. */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** cosign's OCI 1.1 referrer artifact type for signatures. */
export const COSIGN_SIGNATURE_ARTIFACT_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';

/** cosign tag scheme: the signatures of `sha256:<hex>` live at `<repo>:sha256-<hex>.sig`. */
export function signatureTag(digest: string): string {
  if (!isDigest(digest)) throw trustError(TrustErrorCode.invalid, `not a digest: ${digest}`);
  return `${digest.replace(':', '-')}.sig`;
}

export interface SignatureLayer {
  digest: string;
  size: number;
  mediaType: string;
  /** base64 signature over the layer's bytes (the payload). */
  signature: string;
}

export interface SignatureManifest {
  config: { digest: string; size: number } | undefined;
  layers: SignatureLayer[];
  /** Layers that are not simple-signing payloads with a signature (ignored, still replicated). */
  otherBlobs: Array<{ digest: string; size: number }>;
}

/** Reads a cosign signature manifest (OCI or Docker schema 2 image manifest). */
export function parseSignatureManifest(body: Buffer): SignatureManifest {
  let doc: { config?: { digest?: unknown; size?: unknown }; layers?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw trustError(TrustErrorCode.invalid, 'signature manifest is not JSON');
  }
  const blob = (d: { digest?: unknown; size?: unknown } | undefined) =>
    d && typeof d.digest === 'string' && isDigest(d.digest) && Number.isSafeInteger(d.size) && (d.size as number) >= 0
      ? { digest: d.digest, size: d.size as number }
      : undefined;
  const out: SignatureManifest = { config: blob(doc.config), layers: [], otherBlobs: [] };
  for (const raw of Array.isArray(doc.layers) ? (doc.layers as Array<Record<string, unknown>>) : []) {
    const b = blob(raw as { digest?: unknown; size?: unknown });
    if (!b) throw trustError(TrustErrorCode.invalid, 'signature manifest has a layer without a valid digest and size');
    const annotations = (raw.annotations ?? {}) as Record<string, unknown>;
    const sig = annotations[COSIGN_SIGNATURE_ANNOTATION];
    if (raw.mediaType === SIMPLE_SIGNING_MEDIA_TYPE && typeof sig === 'string' && sig.length > 0) {
      out.layers.push({ ...b, mediaType: SIMPLE_SIGNING_MEDIA_TYPE, signature: sig });
    } else out.otherBlobs.push(b);
  }
  return out;
}

/**
 * A cosign signature manifest (every layer a simple-signing payload), or an index listing only
 * signature referrers (the referrers fallback tag): content about an image, nothing a runtime can
 * run. Judged by content, never by tag name, so an image pushed under a `.sig` tag is still an image.
 */
export function isSignatureArtifact(body: Buffer): boolean {
  let doc: { mediaType?: unknown; layers?: unknown; manifests?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  if (Array.isArray(doc.layers)) {
    return doc.layers.length > 0 && (doc.layers as Array<{ mediaType?: unknown }>).every((l) => l?.mediaType === SIMPLE_SIGNING_MEDIA_TYPE);
  }
  if (Array.isArray(doc.manifests)) {
    return (doc.manifests as Array<{ artifactType?: unknown }>).every((m) => m?.artifactType === COSIGN_SIGNATURE_ARTIFACT_TYPE);
  }
  return false;
}
