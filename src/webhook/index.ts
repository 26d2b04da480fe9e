import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';
import { SiteCa, siteCaDir, type HttpsProxyConfig } from '../https-proxy/index.ts';
import type { WebhookConfig } from './config-schema.ts';
import { storeHolds } from './holds.ts';
import { ImageWebhook } from './webhook.ts';

export { ImageWebhook, type WebhookStatus } from './webhook.ts';
export { webhookConfigSchema, type WebhookConfig } from './config-schema.ts';
export { PodMutator, ORIGINAL_IMAGES_ANNOTATION } from './mutate.ts';
export { webhookManifests } from './manifests.ts';

/** Starts the webhook when webhook.enabled (certificate from the site CA, created if absent); else undefined. */
export async function startWebhook(
  config: WebhookConfig,
  ctx: { httpsProxy: Pick<HttpsProxyConfig, 'caDir'>; dataDir: string; store: Pick<Store, 'getManifest' | 'hasBlob'> },
  log: Logger,
): Promise<ImageWebhook | undefined> {
  if (!config.enabled) return undefined;
  const ca = await SiteCa.open(siteCaDir(ctx.httpsProxy, ctx.dataDir), log);
  const webhook = new ImageWebhook({ config, log, ca, holds: storeHolds(ctx.store) });
  await webhook.start();
  return webhook;
}
