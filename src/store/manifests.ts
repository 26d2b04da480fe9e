import { durableTransaction, scan } from './index-db.ts';
import { digestOf, isDigest, parseDigest } from '../lib/digest.ts';
import { effectiveArtifactType, parseManifest, type ParsedManifest } from '../oci/manifest.ts';
import { linkBlobInTxn } from './blobs.ts';
import { addBlobRefsInTxn } from './blob-refs.ts';
import type { StoreContext } from './context.ts';
import { StoreErrorCode, storeError } from './errors.ts';
import type { ManifestRecord, ReferrerRecord } from './index-db.ts';
import { prefixRange } from './index-db.ts';

export interface StoredManifest {
  digest: string;
  record: ManifestRecord;
  content: Buffer;
}

export interface PutManifestOptions {
  /** An index may list platforms this store filtered out (sync with a platform filter). */
  allowMissingChildren?: boolean;
  /**
   * Blobs may be absent (the pull-through cache stores a manifest before its blobs, which it
   * fetches on demand). They are linked to the repository anyway, so they become visible there
   * as soon as they arrive.
   */
  allowMissingBlobs?: boolean;
  /**
   * Blobs the store holds for any repository are linked into this one. Only for content the
   * caller fetched for this repository from its own source (sync commits what the upstream's
   * manifest lists, and skips downloads the store already has). A client push never gets this:
   * a pushed manifest may reference only blobs pushed or mounted into its repository, as in
   * distribution, or it could read any other repository's blobs by naming their digests.
   */
  linkStoredBlobs?: boolean;
}

/** Resolves a tag or digest inside one repository. */
export function resolveManifest(ctx: StoreContext, repo: string, reference: string): string | undefined {
  if (isDigest(reference)) return ctx.db.repoManifests.get([repo, reference]) === undefined ? undefined : reference;
  return ctx.db.tags.get([repo, reference]);
}

export function getManifest(ctx: StoreContext, repo: string, reference: string): StoredManifest | undefined {
  const digest = resolveManifest(ctx, repo, reference);
  if (!digest) return undefined;
  const record = ctx.db.manifests.get(digest);
  const content = ctx.db.manifestData.get(digest);
  if (!record || !content) return undefined;
  return { digest, record, content };
}

interface PreparedManifest {
  digest: string;
  content: Buffer;
  parsed: ParsedManifest;
  record: ManifestRecord;
}

/** Parses and digests a manifest outside any transaction (the expensive, failure-prone part). */
function prepare(content: Buffer, contentType: string | undefined, expectedDigest?: string): PreparedManifest {
  const digest = digestOf(content, expectedDigest ? parseDigest(expectedDigest).algorithm : 'sha256');
  if (expectedDigest && digest !== expectedDigest) {
    throw storeError(StoreErrorCode.digestInvalid, `manifest digest ${digest} does not match ${expectedDigest}`);
  }
  const parsed = parseManifest(content, contentType);
  const artifactType = effectiveArtifactType(parsed);
  const record: ManifestRecord = {
    mediaType: parsed.mediaType,
    size: content.length,
    blobs: parsed.blobs.map((d) => d.digest),
    children: parsed.manifests.map((d) => d.digest),
    createdAt: Date.now(),
    ...(parsed.subject ? { subject: parsed.subject.digest } : {}),
    ...(artifactType !== undefined ? { artifactType } : {}),
    ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
  };
  return { digest, content, parsed, record };
}

/** Inside a write transaction: checks references, then links the manifest into the repository. */
function applyInTxn(ctx: StoreContext, repo: string, m: PreparedManifest, opts: PutManifestOptions): void {
  const { parsed, digest } = m;
  const missing: string[] = [];
  for (const d of parsed.blobs) {
    const stored = ctx.db.blobs.get(d.digest);
    if (!stored) {
      if (!opts.allowMissingBlobs) missing.push(d.digest);
      continue;
    }
    // A descriptor is digest and size: a wrong size would make clients fail mid-pull.
    if (stored.size !== d.size) {
      throw storeError(StoreErrorCode.sizeInvalid, `manifest says ${d.digest} has ${d.size} bytes, the blob has ${stored.size}`, {
        digest: d.digest,
        size: d.size,
        stored: stored.size,
      });
    }
    const linkAny = opts.allowMissingBlobs || opts.linkStoredBlobs;
    if (!linkAny && ctx.db.repoBlobs.get([repo, d.digest]) === undefined) missing.push(d.digest);
  }
  if (!opts.allowMissingChildren) {
    for (const child of parsed.manifests) {
      if (ctx.db.repoManifests.get([repo, child.digest]) === undefined) missing.push(child.digest);
    }
  }
  if (missing.length > 0) {
    throw storeError(StoreErrorCode.manifestBlobUnknown, `manifest references unknown content: ${missing.join(', ')}`, {
      missing,
    });
  }
  const now = Date.now();
  for (const d of parsed.blobs) linkBlobInTxn(ctx, repo, d.digest, now);
  if (!ctx.db.manifests.get(digest)) {
    ctx.db.manifests.put(digest, m.record);
    ctx.db.manifestData.put(digest, m.content);
    addBlobRefsInTxn(ctx, digest, m.record.blobs);
  }
  if (ctx.db.repoManifests.get([repo, digest]) === undefined) ctx.db.repoManifests.put([repo, digest], now);
  if (ctx.db.repos.get(repo) === undefined) ctx.db.repos.put(repo, now);
  if (parsed.subject) {
    const ref: ReferrerRecord = { mediaType: parsed.mediaType, size: m.content.length };
    if (m.record.artifactType !== undefined) ref.artifactType = m.record.artifactType;
    if (parsed.annotations) ref.annotations = parsed.annotations;
    ctx.db.referrers.put([repo, parsed.subject.digest, digest], ref);
  }
}

/**
 * Stores a manifest and, when reference is a tag, points the tag at it, in one transaction that
 * first checks every referenced blob (and child manifest) is present: a manifest is never visible
 * with something missing underneath.
 */
export async function putManifest(
  ctx: StoreContext,
  repo: string,
  reference: string,
  content: Buffer,
  contentType: string | undefined,
  opts: PutManifestOptions = {},
): Promise<{ digest: string; parsed: ParsedManifest }> {
  const byDigest = isDigest(reference);
  const m = prepare(content, contentType, byDigest ? reference : undefined);
  await durableTransaction(ctx.db, () => {
    applyInTxn(ctx, repo, m, opts);
    if (!byDigest) ctx.db.tags.put([repo, reference], m.digest);
  });
  return { digest: m.digest, parsed: m.parsed };
}

export interface ImageManifest {
  content: Buffer;
  mediaType: string;
  /** The digest the content must hash to. */
  digest: string;
}

/**
 * Commits an image (its platform manifests, then the index if any, in the given order) and moves
 * its tags, all in one transaction: the image becomes visible whole or not at all.
 */
export async function commitImage(
  ctx: StoreContext,
  repo: string,
  manifests: ImageManifest[],
  tags: string[],
  opts: PutManifestOptions = {},
): Promise<string> {
  const prepared = manifests.map((m) => prepare(m.content, m.mediaType, m.digest));
  const top = prepared[prepared.length - 1];
  if (!top) throw storeError(StoreErrorCode.manifestUnknown, 'an image needs at least one manifest');
  await durableTransaction(ctx.db, () => {
    for (const m of prepared) applyInTxn(ctx, repo, m, opts);
    for (const tag of tags) ctx.db.tags.put([repo, tag], top.digest);
  });
  return top.digest;
}

/** Removes a manifest from a repository with every tag pointing at it. */
export async function deleteManifest(ctx: StoreContext, repo: string, digest: string): Promise<void> {
  await durableTransaction(ctx.db, () => {
    if (ctx.db.repoManifests.get([repo, digest]) === undefined) {
      throw storeError(StoreErrorCode.manifestUnknown, `manifest ${digest} is not in ${repo}`);
    }
    // distribution 2.8 lets a listed child go and leaves a broken index; keep references intact instead.
    for (const { key } of scan(ctx.db.repoManifests.getRange(prefixRange([repo])))) {
      const parent = ctx.db.manifests.get(key[1]);
      if (parent?.children.includes(digest)) {
        throw storeError(
          StoreErrorCode.manifestReferenced,
          `manifest ${digest} is listed by index ${key[1]} in ${repo}: delete the index first`,
        );
      }
    }
    ctx.db.repoManifests.remove([repo, digest]);
    for (const { key, value } of scan(ctx.db.tags.getRange(prefixRange([repo])))) {
      if (value === digest) ctx.db.tags.remove(key);
    }
    const subject = ctx.db.manifests.get(digest)?.subject;
    if (subject) ctx.db.referrers.remove([repo, subject, digest]);
  });
}

/** dist-spec 1.1: DELETE by tag removes only the tag. */
export async function deleteTag(ctx: StoreContext, repo: string, tag: string): Promise<void> {
  const removed = await durableTransaction(ctx.db, () => {
    if (ctx.db.tags.get([repo, tag]) === undefined) return false;
    ctx.db.tags.remove([repo, tag]);
    return true;
  });
  if (!removed) throw storeError(StoreErrorCode.manifestUnknown, `tag ${tag} is not in ${repo}`);
}

export function repositoryExists(ctx: StoreContext, repo: string): boolean {
  return ctx.db.repos.get(repo) !== undefined;
}

/** Lexically ordered tags after `last`, at most n (dist-spec pagination). */
export function listTags(ctx: StoreContext, repo: string, page: { n?: number; last?: string }): string[] {
  const range = prefixRange([repo]);
  const start = page.last !== undefined ? [repo, page.last] : range.start;
  const out: string[] = [];
  if (page.n === 0) return out;
  for (const key of scan(ctx.db.tags.getKeys({ start, end: range.end }))) {
    if (page.last !== undefined && key[1] <= page.last) continue;
    out.push(key[1]);
    if (page.n !== undefined && out.length >= page.n) break;
  }
  return out;
}

export function listRepositories(ctx: StoreContext, page: { n?: number; last?: string }): string[] {
  const out: string[] = [];
  if (page.n === 0) return out;
  for (const repo of scan(ctx.db.repos.getKeys(page.last !== undefined ? { start: page.last } : {}))) {
    if (page.last !== undefined && repo <= page.last) continue;
    out.push(repo);
    if (page.n !== undefined && out.length >= page.n) break;
  }
  return out;
}

export interface Referrer extends ReferrerRecord {
  digest: string;
}

/**
 * The referrers of `subject` in `repo` (by referrer digest), optionally of one artifact type; with
 * `page`, at most `n` after the referrer digest `last` (the referrers API's own pagination).
 */
export function listReferrers(ctx: StoreContext, repo: string, subject: string, artifactType?: string, page: { n?: number; last?: string } = {}): Referrer[] {
  const out: Referrer[] = [];
  if (page.n === 0) return out;
  const range = prefixRange([repo, subject]);
  const start = page.last !== undefined ? [repo, subject, page.last] : range.start;
  for (const { key, value } of scan(ctx.db.referrers.getRange({ start, end: range.end }))) {
    if (page.last !== undefined && key[2] <= page.last) continue;
    if (artifactType !== undefined && value.artifactType !== artifactType) continue;
    out.push({ digest: key[2], ...value });
    if (page.n !== undefined && out.length >= page.n) break;
  }
  return out;
}

/** Every tag of a repository with the digest it points at. */
export function tagsOf(ctx: StoreContext, repo: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const { key, value } of scan(ctx.db.tags.getRange(prefixRange([repo])))) out.set(key[1], value);
  return out;
}

export function manifestsOf(ctx: StoreContext, repo: string): string[] {
  return [...scan(ctx.db.repoManifests.getKeys(prefixRange([repo])))].map((k) => k[1]);
}
