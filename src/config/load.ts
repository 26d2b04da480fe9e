import { isAbsolute, resolve, dirname } from 'node:path';
import { SatelliteError } from '../lib/errors.ts';
import { satelliteConfigSchema, type SatelliteConfig } from './satellite-schema.ts';
import { deepFreeze, validate } from '../lib/validate.ts';
import { readJsonObjectFile } from '../lib/json-file.ts';
import { resolveRuntimePaths } from '../runtimes/config-schema.ts';

export type { SatelliteConfig } from './satellite-schema.ts';

/** Exit status for bad configuration (EX_CONFIG); the systemd unit does not restart on it. */
export const EXIT_CONFIG = 78;

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/**
 * Effective config = embedded defaults < file < environment. Relative paths in the file are
 * resolved against the file's directory, so a config works wherever it is started from.
 */
export async function loadSatelliteConfig(opts: LoadOptions = {}): Promise<SatelliteConfig> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.SATELLITE_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) raw = await readJsonObjectFile(file);
  const config = validate<SatelliteConfig>(satelliteConfigSchema, applyEnv(raw, env), file ? `config ${file}` : 'config');
  const base = file ? dirname(resolve(file)) : process.cwd();
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  config.dataDir = abs(config.dataDir);
  if (config.registry.tls) config.registry.tls = { cert: abs(config.registry.tls.cert), key: abs(config.registry.tls.key) };
  if (config.registry.auth) config.registry.auth = { ...config.registry.auth, htpasswd: abs(config.registry.auth.htpasswd) };
  if (config.sync.desiredStateFile) config.sync.desiredStateFile = abs(config.sync.desiredStateFile);
  if (config.control && config.sync.desiredStateFile) {
    throw new SatelliteError('CONFIG_INVALID', `invalid ${file ? `config ${file}` : 'config'}:\n  /sync/desiredStateFile: cannot be used with /control (desired state comes from one source)`);
  }
  if (config.control) {
    const c = config.control;
    for (const key of ['registrationTokenFile', 'identityFile', 'caFile'] as const) if (c[key]) c[key] = abs(c[key]);
    if (c.mqtt?.caFile) c.mqtt = { ...c.mqtt, caFile: abs(c.mqtt.caFile) };
  }
  if (config.peers?.tokenFile) config.peers.tokenFile = abs(config.peers.tokenFile);
  if (config.upstream.caFile) config.upstream.caFile = abs(config.upstream.caFile);
  resolveRuntimePaths(config.runtimes, abs);
  return deepFreeze(config);
}


/** SATELLITE_DATA_DIR, SATELLITE_LISTEN (host:port), SATELLITE_LOG_LEVEL override the file. */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw);
  if (env.SATELLITE_DATA_DIR) out.dataDir = env.SATELLITE_DATA_DIR;
  if (env.SATELLITE_LOG_LEVEL) out.log = { ...(out.log as object), level: env.SATELLITE_LOG_LEVEL };
  if (env.SATELLITE_LISTEN) {
    const m = /^(.+):(\d+)$/.exec(env.SATELLITE_LISTEN);
    if (!m) throw new SatelliteError('CONFIG_INVALID', `SATELLITE_LISTEN must be host:port, got ${env.SATELLITE_LISTEN}`);
    const registry = { ...(out.registry as object) } as Record<string, unknown>;
    registry.listen = { host: m[1], port: Number(m[2]) };
    out.registry = registry;
  }
  return out;
}
