import { isAbsolute, resolve, dirname, join } from 'node:path';
import { SatelliteError } from '../lib/errors.ts';
import { satelliteConfigSchema, type SatelliteConfig } from './satellite-schema.ts';
import { deepFreeze, validate } from '../lib/validate.ts';
import { readJsonObjectFile } from '../lib/json-file.ts';
import { resolveRuntimePaths } from '../runtimes/config-schema.ts';
import { defaultBoardDir, loadBoard, type BoardProfile } from './board.ts';
import { PATH_KEYS, mapPath } from './paths.ts';
import { deepMerge } from '../lib/deep-merge.ts';

export type { SatelliteConfig } from './satellite-schema.ts';

/** Exit status for bad configuration (EX_CONFIG); the systemd unit does not restart on it. */
export const EXIT_CONFIG = 78;

/** Where update-ca-certificates writes the system's trusted roots (Debian, Ubuntu, Raspberry Pi OS). */
export const DEBIAN_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** Command-line overrides: the last word over profile, file and environment. */
export interface CliOverrides {
  dataDir?: string | undefined;
  /** host:port */
  listen?: string | undefined;
  logLevel?: string | undefined;
}

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** --board NAME|FILE; beats $SATELLITE_BOARD, which beats the file's "board" key. */
  board?: string | undefined;
  overrides?: CliOverrides;
  /** Where board/<name>.json profiles live; default the install root's board/. */
  boardDir?: string;
}

/**
 * Effective config = embedded defaults < board profile < file < environment < command line.
 * Objects merge key by key; arrays and scalars replace. Relative paths in the file (and the
 * environment) are resolved against the file's directory, so a config works wherever it is
 * started from; profiles may only hold absolute paths; CLI paths follow the working directory.
 */
export async function loadSatelliteConfig(opts: LoadOptions = {}): Promise<SatelliteConfig> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.SATELLITE_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) raw = await readJsonObjectFile(file);
  const where = file ? `config ${file}` : 'config';
  const base = file ? dirname(resolve(file)) : process.cwd();

  let profile: BoardProfile | undefined;
  const boardDir = opts.boardDir ?? defaultBoardDir();
  if (opts.board) profile = await loadBoard(opts.board, { boardDir, base: process.cwd(), from: '--board' });
  else if (env.SATELLITE_BOARD) profile = await loadBoard(env.SATELLITE_BOARD, { boardDir, base: process.cwd(), from: 'SATELLITE_BOARD' });
  else if (typeof raw.board === 'string') profile = await loadBoard(raw.board, { boardDir, base, from: `${where}: /board` });

  let merged: Record<string, unknown> = raw;
  if (profile) {
    const { board: _board, ...user } = raw;
    merged = { ...deepMerge(profile.config, user), board: profile.file };
  }
  merged = applyCli(applyEnv(merged, env), opts.overrides ?? {});
  const config = validate<SatelliteConfig>(satelliteConfigSchema, merged, where);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  for (const key of PATH_KEYS) mapPath(config as unknown as Record<string, unknown>, key, abs);
  if (config.control && config.sync.desiredStateFile) {
    throw new SatelliteError('CONFIG_INVALID', `invalid ${where}:\n  /sync/desiredStateFile: cannot be used with /control (desired state comes from one source)`);
  }
  const mem = config.memory;
  if (mem.softLimitBytes > 0 && mem.resumeBytes >= mem.softLimitBytes) {
    throw new SatelliteError('CONFIG_INVALID', `invalid ${where}:\n  /memory/resumeBytes: ${mem.resumeBytes} must be below /memory/softLimitBytes (${mem.softLimitBytes})`);
  }
  resolveRuntimePaths(config.runtimes, abs);
  // OpenSSL's convention: SSL_CERT_FILE names the system bundle (Debian's by default).
  if (config.upstream.systemTrust !== false) config.upstream.systemCaFile ??= env.SSL_CERT_FILE || DEBIAN_CA_BUNDLE;
  // systemd's RuntimeDirectory= (e.g. /run/harbor-satellite) when set, else beside the data.
  config.admin.socket ??= join(env.RUNTIME_DIRECTORY ? env.RUNTIME_DIRECTORY.split(':')[0]! : join(config.dataDir, 'run'), 'satellite.sock');
  return deepFreeze(config);
}

function parseListen(value: string, what: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(value);
  if (!m) throw new SatelliteError('CONFIG_INVALID', `${what} must be host:port, got ${value}`);
  return { host: m[1]!, port: Number(m[2]) };
}

function withListen(out: Record<string, unknown>, listen: { host: string; port: number }): void {
  out.registry = { ...(out.registry as object), listen };
}

/** SATELLITE_DATA_DIR, SATELLITE_LISTEN (host:port), SATELLITE_LOG_LEVEL override the file. */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw);
  if (env.SATELLITE_DATA_DIR) out.dataDir = env.SATELLITE_DATA_DIR;
  if (env.SATELLITE_LOG_LEVEL) out.log = { ...(out.log as object), level: env.SATELLITE_LOG_LEVEL };
  if (env.SATELLITE_LISTEN) withListen(out, parseListen(env.SATELLITE_LISTEN, 'SATELLITE_LISTEN'));
  return out;
}

/** --data-dir, --listen, --log-level override everything else. */
function applyCli(raw: Record<string, unknown>, cli: CliOverrides): Record<string, unknown> {
  const out = { ...raw };
  if (cli.dataDir) out.dataDir = resolve(cli.dataDir);
  if (cli.logLevel) out.log = { ...(out.log as object), level: cli.logLevel };
  if (cli.listen) withListen(out, parseListen(cli.listen, '--listen'));
  return out;
}
