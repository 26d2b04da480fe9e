import { join } from 'node:path';
import type { Logger } from 'pino';
import { HttpsProxy, type ProxiedRequestHandler } from './https-proxy.ts';
import type { HttpsProxyConfig } from './config-schema.ts';
import { SiteCa } from './site-ca.ts';

export { HttpsProxy, type HttpsProxyStatus, type ProxiedRequestHandler } from './https-proxy.ts';
export { SiteCa, CA_CERT_FILE, CA_KEY_FILE } from './site-ca.ts';
export { parseAuthority } from './addresses.ts';
export { httpsProxyConfigSchema, type HttpsProxyConfig } from './config-schema.ts';

/** The site CA's directory: httpsProxy.caDir, else `<dataDir>/site-ca`. */
export function siteCaDir(config: { caDir?: string | undefined }, dataDir: string): string {
  return config.caDir ?? join(dataDir, 'site-ca');
}

/** Opens (or creates) the site CA and starts the proxy when httpsProxy.enabled; else undefined. */
export async function startHttpsProxy(config: HttpsProxyConfig, dataDir: string, serve: ProxiedRequestHandler, log: Logger): Promise<HttpsProxy | undefined> {
  if (!config.enabled) return undefined;
  const ca = await SiteCa.open(siteCaDir(config, dataDir), log);
  const proxy = new HttpsProxy({ config, log, ca, serve });
  await proxy.start();
  return proxy;
}
