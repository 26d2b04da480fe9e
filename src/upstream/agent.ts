import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent } from 'undici';
import { SatelliteError } from '../lib/errors.ts';
import type { UpstreamConfig } from './config-schema.ts';

/**
 * The undici Agent for one upstream (and the token realm and object storage it sends us to):
 * bounded connections per origin, kept alive and reused (HTTP/2 where offered), and every phase
 * timed out (STYLE §4).
 */
export function createAgent(config: UpstreamConfig): Agent {
  let ca: string[] | undefined;
  if (config.caFile !== undefined) {
    let pem: string;
    try {
      pem = readFileSync(config.caFile, 'utf8');
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', `upstream.caFile: cannot read ${config.caFile}`, { cause: err });
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new SatelliteError('CONFIG_INVALID', `upstream.caFile: ${config.caFile} holds no PEM certificate`);
    }
    // Passing `ca` replaces Node's bundled roots; keep them so public upstreams still verify.
    ca = [...rootCertificates, pem];
  }
  return new Agent({
    connections: config.maxConnections,
    // A satellite link pays a round trip (two with TLS) per new connection: idle ones are kept
    // between requests and between runs, not dropped after undici's default 4 s.
    keepAliveTimeout: config.keepAliveMs,
    keepAliveMaxTimeout: Math.max(config.keepAliveMs, 600_000),
    // HTTP/2 when a TLS upstream offers it (ALPN): every request of a run on one connection.
    allowH2: config.http2,
    connectTimeout: config.connectTimeoutMs,
    headersTimeout: config.headersTimeoutMs,
    bodyTimeout: config.bodyIdleTimeoutMs,
    connect: {
      timeout: config.connectTimeoutMs,
      rejectUnauthorized: config.insecureSkipVerify !== true,
      ...(ca ? { ca } : {}),
    },
  });
}
