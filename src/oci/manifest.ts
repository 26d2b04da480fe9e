import { isDigest } from '../lib/digest.ts';
import { SatelliteError } from '../lib/errors.ts';
import { INDEX_TYPES, MANIFEST_TYPES, MediaType, bareMediaType } from './media-types.ts';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** What the store needs to know about a manifest, derived once at put time. */
export interface ParsedManifest {
  mediaType: string;
  isIndex: boolean;
  /** Blobs the manifest needs (config + layers); empty for an index. */
  blobs: Descriptor[];
  /** Child manifests of an index; empty for an image manifest. */
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string): SatelliteError {
  return new SatelliteError('MANIFEST_INVALID', message, { statusCode: 400 });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseAnnotations(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw invalid(`${where}.annotations must be a map of strings`);
  }
  return v as Record<string, string>;
}

function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw invalid(`${where} must be an object`);
  const { mediaType, digest, size, artifactType, platform } = v;
  if (typeof mediaType !== 'string' || mediaType.length === 0) throw invalid(`${where}.mediaType must be a string`);
  if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(`${where}.digest is not a valid digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${where}.size must be a non-negative integer`);
  }
  const d: Descriptor = { mediaType, digest, size };
  if (artifactType !== undefined) {
    if (typeof artifactType !== 'string') throw invalid(`${where}.artifactType must be a string`);
    d.artifactType = artifactType;
  }
  const annotations = parseAnnotations(v.annotations, where);
  if (annotations) d.annotations = annotations;
  if (platform !== undefined) {
    if (!isObject(platform) || typeof platform.os !== 'string' || typeof platform.architecture !== 'string') {
      throw invalid(`${where}.platform needs os and architecture`);
    }
    d.platform = { os: platform.os, architecture: platform.architecture };
    if (typeof platform.variant === 'string') d.platform.variant = platform.variant;
  }
  return d;
}

function parseDescriptorList(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw invalid(`${where} must be an array`);
  return v.map((d, i) => parseDescriptor(d, `${where}[${i}]`));
}

/**
 * Validates a manifest body against the media type it was sent with and extracts its references.
 * contentType is the request's Content-Type; when absent, the body's mediaType field decides.
 */
export function parseManifest(body: Buffer, contentType?: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new SatelliteError('MANIFEST_INVALID', 'manifest is not valid JSON', { statusCode: 400, cause: err });
  }
  if (!isObject(doc)) throw invalid('manifest must be a JSON object');
  if (doc.schemaVersion !== 2) throw invalid('manifest schemaVersion must be 2');

  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const header = bareMediaType(contentType);
  let mediaType = header || declared;
  if (!mediaType) {
    // image-spec: mediaType is optional in OCI documents; tell an index from a manifest by its fields.
    mediaType = Array.isArray(doc.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  }
  if (declared !== undefined && header && declared !== header) {
    throw invalid(`Content-Type ${header} does not match the manifest's mediaType ${declared}`);
  }

  const parsed: ParsedManifest = { mediaType, isIndex: false, blobs: [], manifests: [] };
  if (INDEX_TYPES.includes(mediaType)) {
    parsed.isIndex = true;
    parsed.manifests = parseDescriptorList(doc.manifests, 'manifests');
  } else if (MANIFEST_TYPES.includes(mediaType)) {
    if (doc.config === undefined) throw invalid('manifest has no config descriptor');
    parsed.blobs = [parseDescriptor(doc.config, 'config'), ...parseDescriptorList(doc.layers ?? [], 'layers')];
  } else {
    throw new SatelliteError('MANIFEST_INVALID', `unsupported manifest media type: ${mediaType}`, { statusCode: 400 });
  }
  if (doc.subject !== undefined) parsed.subject = parseDescriptor(doc.subject, 'subject');
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string') throw invalid('artifactType must be a string');
    parsed.artifactType = doc.artifactType;
  }
  const annotations = parseAnnotations(doc.annotations, 'manifest');
  if (annotations) parsed.annotations = annotations;
  return parsed;
}

/** image-spec: a referrer's artifactType falls back to the config media type. */
export function effectiveArtifactType(m: ParsedManifest): string | undefined {
  return m.artifactType ?? (m.isIndex ? undefined : m.blobs[0]?.mediaType);
}
