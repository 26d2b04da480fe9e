import { open, type Database, type RootDatabase } from 'lmdb';
import { LMDB_PRIVATE_OPTIONS } from '../lib/private-files.ts';

export interface BlobRecord {
  size: number;
  createdAt: number;
}

export interface ManifestRecord {
  mediaType: string;
  size: number;
  /** config + layer digests (image manifests) */
  blobs: string[];
  /** child manifest digests (indexes) */
  children: string[];
  subject?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
  createdAt: number;
}

export interface ReferrerRecord {
  mediaType: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface PartialRecord {
  /** bytes durable in the partial file */
  offset: number;
  /** expected full size (-1: unknown) */
  size: number;
  updatedAt: number;
  /** The pull-through cache's: a sync run leaves it (GC and disk pressure still remove it). */
  cache?: true;
}

export interface UploadRecord {
  repo: string;
  offset: number;
  startedAt: number;
  updatedAt: number;
  /** Remote address that opened the session (per-client caps); absent on older records. */
  client?: string;
}

/** The LMDB environment and its named databases. Only store/ touches it. */
export interface IndexDb {
  root: RootDatabase;
  /** digest -> size, for every blob file committed */
  blobs: Database<BlobRecord, string>;
  /** [repo, digest] -> linkedAt */
  repoBlobs: Database<number, [string, string]>;
  /** digest -> parsed facts about a manifest */
  manifests: Database<ManifestRecord, string>;
  /** digest -> raw manifest bytes (capped, so they live in the index, written with their record) */
  manifestData: Database<Buffer, string>;
  /** [repo, digest] -> linkedAt */
  repoManifests: Database<number, [string, string]>;
  /** [repo, tag] -> digest */
  tags: Database<string, [string, string]>;
  /** [repo, subject digest, referrer digest] -> descriptor facts */
  referrers: Database<ReferrerRecord, [string, string, string]>;
  /** upload id -> session */
  uploads: Database<UploadRecord, string>;
  /** repo -> createdAt */
  repos: Database<number, string>;
  /** digest -> progress of a resumable download */
  partials: Database<PartialRecord, string>;
  /** [blob digest, manifest digest] -> 1: which stored manifests list a blob (blob-refs.ts) */
  blobRefs: Database<1, [string, string]>;
}

export function openIndexDb(path: string, mapSizeBytes?: number): IndexDb {
  // Room for the store's databases and other domains' metadata (sync, control, monitoring).
  // 0600: the index holds the desired state, upstream credentials included (docs/security.md).
  const root = open({ path, compression: false, maxDbs: 64, ...LMDB_PRIVATE_OPTIONS, ...(mapSizeBytes ? { mapSize: mapSizeBytes } : {}) });
  return {
    root,
    blobs: root.openDB<BlobRecord, string>({ name: 'blobs' }),
    repoBlobs: root.openDB<number, [string, string]>({ name: 'repo-blobs' }),
    manifests: root.openDB<ManifestRecord, string>({ name: 'manifests' }),
    manifestData: root.openDB<Buffer, string>({ name: 'manifest-data', encoding: 'binary' }),
    repoManifests: root.openDB<number, [string, string]>({ name: 'repo-manifests' }),
    tags: root.openDB<string, [string, string]>({ name: 'tags' }),
    referrers: root.openDB<ReferrerRecord, [string, string, string]>({ name: 'referrers' }),
    uploads: root.openDB<UploadRecord, string>({ name: 'uploads' }),
    repos: root.openDB<number, string>({ name: 'repos' }),
    partials: root.openDB<PartialRecord, string>({ name: 'partials' }),
    blobRefs: root.openDB<1, [string, string]>({ name: 'blob-refs' }),
  };
}

/**
 * Range bounds for every key that starts with the given string components. Keys are arrays of
 * strings; '\uffff' sorts after any component we store (names, tags and digests are ASCII).
 */
export function prefixRange(prefix: string[]): { start: string[]; end: string[] } {
  return { start: [...prefix, ''], end: [...prefix, '\uffff'] };
}

/**
 * Runs a write transaction and resolves only once it is flushed to disk. lmdb-js resolves
 * transactions on commit (overlappingSync); a client acknowledgement, or a file unlink that depends
 * on the index change, must wait for durability or a power cut could undo it.
 */
export async function durableTransaction<T>(db: IndexDb, fn: () => T): Promise<T> {
  const result = await db.root.transaction(fn);
  await db.root.flushed;
  return result;
}

/**
 * Iterates an LMDB range so its read transaction is released on every path. lmdb-js 3.x releases
 * the cursor when iteration ends, breaks or the loop body throws, but not when the iterator's own
 * next() throws (a key too long to encode, a value that fails to decode): a for-of loop does not
 * call return() then, and the leaked read transaction pins old pages so every later write grows
 * data.mdb until restart. Use this for every getRange/getKeys in the store.
 */
export function* scan<T>(range: Iterable<T>): Generator<T, void, undefined> {
  const it = range[Symbol.iterator]();
  let finished = false;
  try {
    for (;;) {
      const step = it.next();
      if (step.done) {
        finished = true;
        return;
      }
      yield step.value;
    }
  } finally {
    if (!finished) it.return?.();
  }
}
