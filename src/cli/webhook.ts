import { stringify } from 'yaml';
import type { SatelliteConfig } from '../config/index.ts';
import { isSatelliteError } from '../lib/errors.ts';
import { readSiteCaCert } from '../https-proxy/index.ts';
import { webhookManifests } from '../webhook/index.ts';

export const WEBHOOK_USAGE = `  webhook manifests  print the MutatingWebhookConfiguration (caBundle: the site CA) for kubectl apply -f -`;

/** `satellite webhook manifests` (also `satellite runtime webhook-config`); returns the exit status. */
export async function webhookCommand(sub: string | undefined, config: SatelliteConfig): Promise<number> {
  if (sub !== 'manifests') {
    console.error(`unknown command: webhook ${sub ?? ''}\n\nusage: satellite webhook manifests [--config FILE]`);
    return 2;
  }
  const w = config.webhook;
  if ((!w.url && !w.service) || !w.registry || w.rewrite.length === 0) {
    console.error('satellite webhook manifests: set webhook.url (or webhook.service), webhook.registry and webhook.rewrite in the config');
    return 78;
  }
  if (w.service && !w.listen.port) {
    console.error('satellite webhook manifests: webhook.service needs a fixed webhook.listen.port (the Endpoints name it)');
    return 78;
  }
  let caPem: string;
  try {
    caPem = await readSiteCaCert(config.httpsProxy, config.dataDir, 'webhook.enabled');
  } catch (err) {
    if (!isSatelliteError(err, 'CA_MISSING')) throw err;
    console.error(`satellite webhook manifests: ${err.message}`);
    return 1;
  }
  process.stdout.write(webhookManifests(w, caPem).map((doc) => stringify(doc)).join('---\n'));
  return 0;
}
