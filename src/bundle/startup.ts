import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import { importBundle } from './import.ts';

/**
 * sync.bundleDir at start-up (a flashed image's bundle, a stick mounted at boot): imported before
 * anything waits for a link, so devices can pull before the site ever connects. Importing again is
 * cheap (stored blobs are not re-read). A damaged bundle is logged and skipped; the satellite starts.
 */
export async function importBundleAtStart(store: Store, dir: string | undefined, log: Logger): Promise<void> {
  if (!dir) return;
  if (!(await stat(join(dir, 'bundle.json')).catch(() => undefined))) {
    log.debug({ dir }, 'no bundle to import');
    return;
  }
  const policies = store.syncState().desired()?.trust;
  try {
    const report = await importBundle(store, dir, { policies, log });
    log.info(
      { dir, imported: report.images.filter((i) => i.status === 'imported').length, refused: report.images.filter((i) => i.status === 'refused').length, blobsImported: report.blobsImported, bytesImported: report.bytesImported },
      'bundle imported',
    );
  } catch (err) {
    log.error({ err, dir }, 'bundle not imported');
  }
}
