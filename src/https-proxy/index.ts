import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { HttpsProxy, type ProxiedRequestHandler } from './https-proxy.ts';
import type { HttpsProxyConfig } from './config-schema.ts';
import { CA_CERT_FILE, SiteCa } from './site-ca.ts';
import { errnoCode, SatelliteError } from '../lib/errors.ts';

export { HttpsProxy, type HttpsProxyStatus, type ProxiedRequestHandler } from './https-proxy.ts';
export { SiteCa, CA_CERT_FILE, CA_KEY_FILE } from './site-ca.ts';
export { parseAuthority } from './addresses.ts';
export { httpsProxyConfigSchema, type HttpsProxyConfig } from './config-schema.ts';

/** The site CA's directory: httpsProxy.caDir, else `<dataDir>/site-ca`. */
export function siteCaDir(config: { caDir?: string | undefined }, dataDir: string): string {
  return config.caDir ?? join(dataDir, 'site-ca');
}

/**
 * The site CA certificate (PEM) for tools run beside the daemon (runtime apply, webhook manifests).
 * They never create the CA: the daemon does, as its own user, so the key stays its file.
 */
export async function readSiteCaCert(config: { caDir?: string | undefined }, dataDir: string, enable: string): Promise<string> {
  const file = join(siteCaDir(config, dataDir), CA_CERT_FILE);
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    throw new SatelliteError('CA_MISSING', `${file} does not exist yet: start the satellite once with ${enable} (it creates the site CA)`);
  }
}

/** Opens (or creates) the site CA and starts the proxy when httpsProxy.enabled; else undefined. */
export async function startHttpsProxy(config: HttpsProxyConfig, dataDir: string, serve: ProxiedRequestHandler, log: Logger): Promise<HttpsProxy | undefined> {
  if (!config.enabled) return undefined;
  const ca = await SiteCa.open(siteCaDir(config, dataDir), log);
  const proxy = new HttpsProxy({ config, log, ca, serve });
  await proxy.start();
  return proxy;
}
