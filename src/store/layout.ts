import { join } from 'node:path';
import { parseDigest } from '../lib/digest.ts';

/**
 * Where things live under the data directory. Every path is built from a parsed digest or a
 * generated id, never from request text, so no request can name a path outside dataDir.
 */
export class Layout {
  readonly root: string;
  readonly blobsDir: string;
  readonly ingestDir: string;
  readonly uploadsDir: string;
  readonly indexDir: string;
  readonly partialDir: string;

  constructor(root: string) {
    this.root = root;
    this.blobsDir = join(root, 'blobs');
    this.ingestDir = join(root, 'ingest');
    this.uploadsDir = join(root, 'uploads');
    this.indexDir = join(root, 'index');
    this.partialDir = join(root, 'partial');
  }

  /** blobs/<alg>/<first two hex>/<hex> */
  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.blobsDir, algorithm, hex.slice(0, 2), hex);
  }

  /** partial/<alg>-<hex>: one resumable download per digest */
  partialPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.partialDir, `${algorithm}-${hex}`);
  }

  ingestPath(id: string): string {
    return join(this.ingestDir, `${id}.tmp`);
  }

  uploadPath(id: string): string {
    return join(this.uploadsDir, id);
  }
}

// Upload ids are UUIDs we generate; anything else is rejected before touching the disk.
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function isUploadId(id: string): boolean {
  return UUID_RE.test(id);
}
