import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import type { Teardown } from './cleanup.ts';
import { makeTempDir } from './tmp.ts';
import { SiteCa } from '../../src/https-proxy/index.ts';

export interface TestServerCert {
  /** The CA certificate (PEM file) that a client must trust. */
  caFile: string;
  /** Leaf certificate then CA (PEM file), and its key, for the server. */
  certFile: string;
  keyFile: string;
}

/**
 * A private test CA (node-forge, the same code as the site CA) and a server certificate for
 * `names` (DNS names or IPs), written to a temp dir removed after the test.
 */
export async function makeServerCert(t: Teardown, names: string[], commonName = 'Harbor Satellite test CA'): Promise<TestServerCert> {
  const dir = await makeTempDir(t, 'hs-test-ca-');
  const ca = await SiteCa.open(join(dir, 'ca'), pino({ level: 'silent' }), commonName);
  const pair = ca.keyPairFor(...names);
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  await writeFile(certFile, pair.cert);
  await writeFile(keyFile, pair.key, { mode: 0o600 });
  return { caFile: join(dir, 'ca', 'ca.crt'), certFile, keyFile };
}
