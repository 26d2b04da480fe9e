import { parse, TomlError } from 'smol-toml';
import { RuntimeErrorCode, runtimeError } from './errors.ts';

export type TomlTable = Record<string, unknown>;

/** Parses TOML; a syntax error names the file (and line) and nothing is written. */
export function parseToml(text: string, file: string): TomlTable {
  try {
    return parse(text) as TomlTable;
  } catch (err) {
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : '';
    const first = (err as Error).message.split('\n')[0];
    throw runtimeError(RuntimeErrorCode.fileInvalid, `${file} is not valid TOML${where}: ${first}; nothing was changed`, { cause: err });
  }
}

export const isTable = (v: unknown): v is TomlTable => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** A TOML basic string (JSON escapes are valid TOML escapes). */
export const tomlString = (s: string): string => JSON.stringify(s);

export function getPath(doc: TomlTable, path: readonly string[]): unknown {
  let cur: unknown = doc;
  for (const key of path) {
    if (!isTable(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}
