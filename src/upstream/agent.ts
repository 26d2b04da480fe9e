import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent } from 'undici';
import type { Logger } from 'pino';
import { SatelliteError } from '../lib/errors.ts';
import type { UpstreamConfig } from './config-schema.ts';

/**
 * The undici Agent for one upstream (and the token realm and object storage it sends us to):
 * bounded connections per origin, kept alive and reused (HTTP/2 where offered), and every phase
 * timed out (STYLE §4).
 */
export function createAgent(config: UpstreamConfig, log?: Logger): Agent {
  const ca = trustedRoots(config, log);
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
      // One context for the agent: passing `ca` alone would parse the whole bundle on every connection.
      ...(ca ? { secureContext: createSecureContext({ ca }) } : {}),
    },
  });
}

/**
 * The roots TLS upstreams are verified against: the system bundle (systemTrust, default on: what
 * the operator installed with update-ca-certificates) or Node's bundled roots, plus caFile.
 * Undefined means Node's bundled roots alone.
 */
export function trustedRoots(config: Pick<UpstreamConfig, 'caFile' | 'systemTrust' | 'systemCaFile'>, log?: Logger): string[] | undefined {
  let base: readonly string[] | undefined;
  if (config.systemTrust !== false && config.systemCaFile !== undefined) {
    base = systemBundle(config.systemCaFile, log);
  }
  if (config.caFile === undefined) return base ? [...base] : undefined;
  const pem = readPem(config.caFile, 'upstream.caFile');
  // Passing `ca` replaces Node's bundled roots; keep them (or the system's) so public upstreams still verify.
  return [...(base ?? rootCertificates), pem];
}

/** System bundles read once per process and path (about 140 roots, 200 KB on Debian). */
const bundles = new Map<string, readonly string[] | undefined>();

function systemBundle(file: string, log?: Logger): readonly string[] | undefined {
  if (bundles.has(file)) return bundles.get(file);
  let roots: readonly string[] | undefined;
  try {
    roots = [readFileSync(file, 'utf8')];
    if (!roots[0]!.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
  } catch (err) {
    // A board without ca-certificates still reaches public registries with Node's roots.
    log?.warn({ file, err: (err as Error).message }, "upstream.systemCaFile unreadable; verifying upstreams with Node's bundled roots");
    roots = undefined;
  }
  bundles.set(file, roots);
  return roots;
}

function readPem(file: string, key: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SatelliteError('CONFIG_INVALID', `${key}: cannot read ${file}`, { cause: err });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SatelliteError('CONFIG_INVALID', `${key}: ${file} holds no PEM certificate`);
  }
  return pem;
}
