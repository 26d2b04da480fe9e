import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import { bundleApplier, SyncRecords, type BundleApplier } from '../sync/index.ts';
import { importBundle, type ImportReport } from './import.ts';
import { isPlainLayout } from './oci-layout.ts';
import type { SignatureRequirement } from './signature.ts';

/**
 * The applier of a satellite whose sync engine is not running (start-up before the engine, or the
 * CLI with the satellite stopped): it writes the sync records; the engine reads them when it starts.
 */
export function storeApplier(store: Store, platforms: string[] | undefined): BundleApplier {
  const records = new SyncRecords(store);
  return bundleApplier({ records, store, current: () => records.desired(), setDesired: (s) => records.setDesired(s), platforms });
}

/**
 * sync.bundleDir at start-up (a flashed image's bundle or plain OCI layout, a stick mounted at boot): imported before
 * anything waits for a link, so devices can pull before the site ever connects. Importing again is
 * cheap (stored blobs are not re-read). A damaged or badly signed bundle is logged and skipped; the
 * satellite starts.
 */
export async function importBundleAtStart(store: Store, dir: string | undefined, opts: ImportLoggedOptions): Promise<void> {
  if (!dir) return;
  if (!(await stat(join(dir, 'bundle.json')).catch(() => undefined)) && !(await isPlainLayout(dir))) {
    opts.log.debug({ dir }, 'no bundle to import');
    return;
  }
  try {
    await importLogged(store, dir, opts);
  } catch (err) {
    opts.log.error({ err, dir }, 'bundle not imported');
  }
}

export interface ImportLoggedOptions {
  signatures: SignatureRequirement;
  applier: BundleApplier;
  /** Repository of a plain OCI layout's bare-tag images (sync.layoutRepository, or the CLI's --repository). */
  repository?: string | undefined;
  log: Logger;
}

/** Imports (image policies: the applier's) and logs the outcome. */
export async function importLogged(store: Store, dir: string, opts: ImportLoggedOptions): Promise<ImportReport> {
  const { log } = opts;
  const report = await importBundle(store, dir, { signatures: opts.signatures, applier: opts.applier, repository: opts.repository, log });
  log.info(
    {
      dir,
      format: report.format,
      imported: report.images.filter((i) => i.status === 'imported').length,
      refused: report.images.filter((i) => i.status === 'refused').length,
      blobsImported: report.blobsImported,
      bytesImported: report.bytesImported,
      bundleSignature: report.bundleSignature,
      desired: report.desired,
    },
    'bundle imported',
  );
  return report;
}
