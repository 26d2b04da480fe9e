import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { SatelliteError } from '../lib/errors.ts';
import { readTokenFile } from '../lib/token-file.ts';
import type { MetricsConfig } from './config-schema.ts';

/** True for addresses only this host can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '::ffff:127.0.0.1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * The token scrapers must send, or undefined for an open loopback listener. A listener on any
 * other address without a token is a configuration error: the LAN never reads metrics unasked.
 */
export async function loadMetricsToken(config: MetricsConfig): Promise<string | undefined> {
  let token = config.token;
  if (token === undefined && config.tokenFile !== undefined) token = await readTokenFile(config.tokenFile, 'metrics.tokenFile');
  if (config.enabled && token === undefined && !isLoopbackHost(config.listen.host)) {
    throw new SatelliteError(
      'CONFIG_INVALID',
      `invalid config:\n  /metrics/listen/host: ${config.listen.host} is not a loopback address; set /metrics/token or /metrics/tokenFile (or listen on 127.0.0.1)`,
    );
  }
  return token;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Checks `Authorization: Bearer <token>` or Basic with the token as password, in constant time. */
export function tokenChecker(token: string): (req: IncomingMessage) => boolean {
  const want = digest(token);
  return (req) => {
    const header = req.headers.authorization ?? '';
    const sp = header.indexOf(' ');
    if (sp < 0) return false;
    const scheme = header.slice(0, sp).toLowerCase();
    let given = header.slice(sp + 1).trim();
    if (scheme === 'basic') {
      const decoded = Buffer.from(given, 'base64').toString('utf8');
      given = decoded.slice(decoded.indexOf(':') + 1);
    } else if (scheme !== 'bearer') return false;
    return timingSafeEqual(digest(given), want);
  };
}
