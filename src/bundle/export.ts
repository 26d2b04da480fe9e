import type { Logger } from 'pino';
import { isDigest } from '../lib/digest.ts';
import { SatelliteError } from '../lib/errors.ts';
import { splitReference } from '../oci/names.ts';
import { loadOrCreateSigningKey } from '../lib/ed25519.ts';
import type { DesiredState } from '../protocol/desired-state.ts';
import type { Store } from '../store/index.ts';
import { desiredRefs } from '../sync/desired-state.ts';
import { StoreSource } from '../trust/stored.ts';
import { createBundle, type CreateBundleReport } from './create.ts';
import type { BundleSigner } from './signature.ts';

export interface ExportOptions {
  /** REPO:TAG or REPO@DIGEST, as stored; empty with `all`. */
  images: string[];
  /** Every tagged image the store holds (cosign signature tags travel with their images), and the desired state's pinned digests. */
  all: boolean;
  outDir: string;
  partSize?: number | undefined;
  /** Signs bundle.json: an operator's Ed25519 key (a satellite has no Ground Control key). */
  signer?: BundleSigner | undefined;
  log: Logger;
}

export interface ExportReport extends CreateBundleReport {
  /** The generation of the desired state carried, null when none (a partial export, or one not fully applied). */
  generation: number | null;
}

/** cosign tag-scheme signatures: carried with the image they sign, not as images of their own. */
const SIGNATURE_TAG = /^sha256-[0-9a-f]{64}\.sig$/;
const isSignatureTag = (tag: string) => SIGNATURE_TAG.test(tag);


/**
 * The desired state a full export carries: the one in force when every reference of it is applied
 * (what the store holds is then that state), without the upstream password, the site's peer secret
 * and trust material for bundles (an importer takes none of it from a stick anyway).
 */
function carriedDesired(store: Store): DesiredState | undefined {
  const records = store.syncState();
  const desired = records.desired();
  if (!desired || records.applied()?.generation !== desired.generation) return undefined;
  const { bundleKeys: _k, site, ...rest } = desired;
  const { password: _p, ...upstream } = desired.upstream;
  const out: DesiredState = { ...rest, upstream };
  if (site) {
    const { secret: _s, ...plain } = site;
    out.site = plain;
  }
  return out;
}

/** Writes a bundle of images from this satellite's store (docs/bundles.md, "Export from a satellite"). */
export async function exportBundle(store: Store, opts: ExportOptions): Promise<ExportReport> {
  const refs = new Map<string, { repository: string; reference: string }>();
  const add = (r: { repository: string; reference: string }) => refs.set(`${r.repository}\0${r.reference}`, r);
  let desired: DesiredState | undefined;
  if (opts.all) {
    for (const repository of store.listRepositories()) {
      for (const tag of store.tagsOf(repository).keys()) if (!isSignatureTag(tag)) add({ repository, reference: tag });
    }
    desired = carriedDesired(store);
    const held = store.syncState().desired();
    for (const r of held ? desiredRefs(held) : []) if (isDigest(r.reference) && store.getManifest(r.repository, r.reference)) add(r);
  }
  for (const text of opts.images) {
    const r = splitReference(text);
    if (!store.getManifest(r.repository, r.reference)) throw new SatelliteError('NOT_FOUND', `${text} is not in this satellite's store`);
    add(r);
  }
  if (refs.size === 0) throw new SatelliteError('NOT_FOUND', 'nothing to export: the store holds no tagged image');
  if (!opts.all && opts.images.length > 0) opts.log.debug('partial export: no desired state carried');
  const report = await createBundle({
    source: new StoreSource(store),
    images: [...refs.values()],
    outDir: opts.outDir,
    log: opts.log,
    // The satellite keeps only some platforms of an index: the others are not in the store, nor the bundle.
    absentChildren: 'skip',
    createdBy: 'satellite',
    ...(opts.partSize ? { partSize: opts.partSize } : {}),
    ...(opts.signer ? { signer: opts.signer } : {}),
    ...(desired ? { desired } : {}),
  });
  return { ...report, generation: desired?.generation ?? null };
}

/** An export as asked over the admin socket or the CLI: paths absolute, the key by file. */
export interface ExportRequest {
  outDir: string;
  images: string[];
  all: boolean;
  partSize?: number | undefined;
  /** Ed25519 private key (PKCS#8 PEM) to sign bundle.json with. */
  keyFile?: string | undefined;
}

/** Reads the signing key (if any) and exports. */
export async function exportFromStore(store: Store, req: ExportRequest, log: Logger): Promise<ExportReport> {
  const signer = req.keyFile ? await loadOrCreateSigningKey(req.keyFile, { create: false }) : undefined;
  return exportBundle(store, { images: req.images, all: req.all, outDir: req.outDir, partSize: req.partSize, signer, log });
}
