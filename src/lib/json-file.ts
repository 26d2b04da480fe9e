import { readFile } from 'node:fs/promises';
import { SatelliteError, errnoCode } from './errors.ts';

/** Reads a JSON config file that must hold an object; every failure is CONFIG_INVALID naming the file. */
export async function readJsonObjectFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SatelliteError('CONFIG_INVALID', `cannot read config ${file}: ${errnoCode(err) ?? String(err)}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new SatelliteError('CONFIG_INVALID', `config ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new SatelliteError('CONFIG_INVALID', `config ${file} must be a JSON object`);
  }
  return doc as Record<string, unknown>;
}
