// Writes the JSON Schemas the satellite validates with into docs/schemas/, for users and editors.
//   node scripts/gen-schemas.ts          write them
//   node scripts/gen-schemas.ts --check  fail if the committed files are stale
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { satelliteConfigSchema } from '../src/config/satellite-schema.ts';
import { desiredStateSchema } from '../src/protocol/desired-state.ts';

export const SCHEMAS: Record<string, object> = {
  'satellite-config.schema.json': satelliteConfigSchema,
  'desired-state.schema.json': desiredStateSchema,
};

export function render(schema: object): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }, null, 2)}\n`;
}

const dir = join(import.meta.dirname, '..', 'docs', 'schemas');
if (import.meta.main) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const path = join(dir, name);
    if (check) {
      const current = await readFile(path, 'utf8').catch(() => '');
      if (current !== render(schema)) {
        console.error(`${path} is stale: run node scripts/gen-schemas.ts`);
        stale++;
      }
    } else {
      await writeFile(path, render(schema));
      console.log(path);
    }
  }
  process.exitCode = stale ? 1 : 0;
}
