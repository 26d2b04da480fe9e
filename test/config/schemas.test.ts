import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SCHEMAS, render } from '../../scripts/gen-schemas.ts';

test('the JSON Schemas published in docs/schemas match what the code validates with', async () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const published = await readFile(join(import.meta.dirname, '..', '..', 'docs', 'schemas', name), 'utf8');
    assert.equal(published, render(schema), `${name} is stale: run node scripts/gen-schemas.ts`);
  }
});
