import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SatelliteError } from '../lib/errors.ts';
import { readJsonObjectFile } from '../lib/json-file.ts';
import { validate } from '../lib/validate.ts';
import { PATH_KEYS, getPath } from './paths.ts';
import { satelliteConfigSchema } from './satellite-schema.ts';

/** A board profile: defaults for one kind of device, under the user's config. */
export interface BoardProfile {
  /** Absolute path of the profile file. */
  file: string;
  config: Record<string, unknown>;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * The directory holding board/<name>.json: the install root, found from where this code runs.
 * In a checkout it is the repo root (src/config/ -> ../../); the dev bundle is dist/bundle/
 * (../../), a release tarball has lib/satellite.mjs (../). The first of them with a board/ wins.
 */
export function defaultBoardDir(moduleUrl: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  const tried: string[] = [];
  for (let i = 0; i < 3; i++) {
    dir = dirname(dir);
    const candidate = join(dir, 'board');
    tried.push(candidate);
    if (isDir(candidate)) return candidate;
  }
  return tried[0]!;
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Names of the shipped profiles (board/*.json). */
export function availableBoards(boardDir: string): string[] {
  try {
    return readdirSync(boardDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Loads a profile named `board` (board/<name>.json under boardDir) or at a path (anything with a
 * slash or ending in .json, relative to `base`). The profile is validated alone, with its file
 * named in every error; paths inside a profile must be absolute (it has no directory of its own
 * that would mean anything on the device).
 */
export async function loadBoard(board: string, opts: { boardDir: string; base: string; from: string }): Promise<BoardProfile> {
  let file: string;
  if (board.includes('/') || board.endsWith('.json')) {
    file = isAbsolute(board) ? board : resolve(opts.base, board);
  } else {
    const names = availableBoards(opts.boardDir);
    if (!NAME.test(board) || !names.includes(board)) {
      throw new SatelliteError(
        'CONFIG_INVALID',
        `invalid config:\n  ${opts.from}: unknown board "${board}"; available: ${names.length ? names.join(', ') : `none (no profiles in ${opts.boardDir})`}`,
      );
    }
    file = join(opts.boardDir, `${board}.json`);
  }
  if (!existsSync(file)) throw new SatelliteError('CONFIG_INVALID', `invalid config:\n  ${opts.from}: board profile ${file} does not exist`);
  const config = await readJsonObjectFile(file);
  const problems: string[] = [];
  if ('board' in config) problems.push('/board: a profile cannot name another board');
  for (const key of PATH_KEYS) {
    const value = getPath(config, key);
    if (typeof value === 'string' && !isAbsolute(value)) problems.push(`/${key.join('/')}: paths in a board profile must be absolute, got ${value}`);
  }
  if (problems.length > 0) throw new SatelliteError('CONFIG_INVALID', `invalid board profile ${file}:\n  ${problems.join('\n  ')}`, { detail: problems });
  // Same schema as the user's file; defaults filled into a throwaway copy.
  validate(satelliteConfigSchema, config, `board profile ${file}`);
  return { file, config };
}
