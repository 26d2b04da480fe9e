import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { SatelliteError } from './errors.ts';

export type Algorithm = 'sha256' | 'sha512';

// OCI image-spec descriptor digests: algorithm ":" encoded, with registered algorithms checked strictly.
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export interface ParsedDigest {
  algorithm: Algorithm;
  hex: string;
  digest: string;
}

/** Parses a digest string, throwing DIGEST_INVALID for anything that is not a registered, well-formed digest. */
export function parseDigest(value: string): ParsedDigest {
  if (typeof value !== 'string' || !DIGEST_RE.test(value)) {
    throw new SatelliteError('DIGEST_INVALID', `invalid digest: ${String(value).slice(0, 200)}`, { statusCode: 400 });
  }
  const idx = value.indexOf(':');
  return { algorithm: value.slice(0, idx) as Algorithm, hex: value.slice(idx + 1), digest: value };
}

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

export function digestOf(data: Buffer | string, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** A pass-through stream that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  readonly #hash: Hash;
  readonly algorithm: Algorithm;
  bytes = 0;

  constructor(algorithm: Algorithm = 'sha256', hash?: Hash) {
    super();
    this.algorithm = algorithm;
    this.#hash = hash ?? createHash(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  digest(): string {
    return `${this.algorithm}:${this.#hash.digest('hex')}`;
  }
}
