import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DesiredState } from '../protocol/desired-state.ts';
import type { Store } from '../store/index.ts';
import { importBundle, type ImportReport } from './import.ts';
import type { SignatureRequirement } from './signature.ts';

/**
 * sync.bundleDir at start-up (a flashed image's bundle, a stick mounted at boot): imported before
 * anything waits for a link, so devices can pull before the site ever connects. Importing again is
 * cheap (stored blobs are not re-read). A damaged or badly signed bundle is logged and skipped; the
 * satellite starts.
 */
export async function importBundleAtStart(store: Store, dir: string | undefined, signatures: SignatureRequirement, log: Logger): Promise<void> {
  if (!dir) return;
  if (!(await stat(join(dir, 'bundle.json')).catch(() => undefined))) {
    log.debug({ dir }, 'no bundle to import');
    return;
  }
  try {
    await importWithPolicy(store, dir, signatures, log);
  } catch (err) {
    log.error({ err, dir }, 'bundle not imported');
  }
}

/** Imports under the signature policy of the desired state in force (the running satellite's, or the CLI's). */
export async function importWithPolicy(store: Store, dir: string, signatures: SignatureRequirement, log: Logger): Promise<ImportReport> {
  const policies = (store.metaDb<unknown>('sync-state').get('desired') as DesiredState | undefined)?.trust;
  const report = await importBundle(store, dir, { policies, signatures, log });
  log.info(
    {
      dir,
      imported: report.images.filter((i) => i.status === 'imported').length,
      refused: report.images.filter((i) => i.status === 'refused').length,
      blobsImported: report.blobsImported,
      bytesImported: report.bytesImported,
      bundleSignature: report.bundleSignature,
    },
    'bundle imported',
  );
  return report;
}
