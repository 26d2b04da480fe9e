// The satellite's bundle validates with ajv standalone validators generated at build time
// (scripts/release/validators.ts) and has no ajv at run time: every schema it validates with must be
// in the generated module, and the generated validators must behave as ajv's (defaults, errors).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { precompiledModule, satelliteSchemas } from '../../scripts/release/validators.ts';
import { REPO_ROOT } from '../../scripts/release/bundle.ts';
import { compileSchema } from '../../src/lib/schema-compiler.ts';
import { satelliteConfigSchema } from '../../src/config/satellite-schema.ts';
import { desiredStateSchema } from '../../src/protocol/desired-state.ts';

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('every schema the satellite passes to validate() is compiled at build time', async () => {
  const schemas = await satelliteSchemas();
  const names = new Set(Object.keys(schemas));
  const missing: string[] = [];
  for (const file of await sourceFiles(join(REPO_ROOT, 'src'))) {
    const rel = relative(REPO_ROOT, file);
    // Ground Control is bundled with ajv (central, not bound by a board's memory).
    if (rel.startsWith('src/groundcontrol/') || rel === 'src/lib/validate.ts') continue;
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/\bvalidate(?:<[^(]*?>)?\(\s*([A-Za-z_$][\w$]*)/g)) {
      const ident = m[1]!;
      // protocol/decode.ts picks one of the message schemas by channel.
      if (ident === 'SCHEMAS' && rel === 'src/protocol/decode.ts') continue;
      if (!names.has(ident)) missing.push(`${rel}: ${ident}`);
    }
  }
  assert.deepEqual(missing, [], 'add these to satelliteSchemas() in scripts/release/validators.ts');
  const messages = await import('../../src/protocol/messages.ts');
  for (const [name, value] of Object.entries(messages)) {
    if (name.endsWith('MessageSchema')) assert.ok(names.has(name), `${name} is in satelliteSchemas()`);
  }
});

test('the generated validators fill defaults and report errors as ajv does', async (t) => {
  // Inside the repository, so the validators' require('ajv/dist/runtime/…') resolves.
  const dir = await mkdtemp(join(REPO_ROOT, 'dist-validators-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'validators.mjs');
  // The generated source is an ES module using require(): give it one, as the bundle's banner does.
  const source = `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);\n${precompiledModule(await satelliteSchemas())}`;
  await writeFile(file, source);
  const generated = (await import(pathToFileURL(file).href)) as { compileSchema: typeof compileSchema };

  for (const input of [{}, { registry: { listen: { port: 5000 } }, sync: { concurrency: 3 } }]) {
    const a = structuredClone(input);
    const b = structuredClone(input);
    assert.equal(generated.compileSchema(satelliteConfigSchema)(a), true);
    assert.equal(compileSchema(satelliteConfigSchema)(b), true);
    assert.deepEqual(a, b, 'the same defaults filled in');
  }
  const bad = { registry: { listen: { port: 'x' } }, nope: 1 };
  const fa = generated.compileSchema(satelliteConfigSchema);
  const fb = compileSchema(satelliteConfigSchema);
  assert.equal(fa(structuredClone(bad)), false);
  assert.equal(fb(structuredClone(bad)), false);
  assert.deepEqual(fa.errors, fb.errors);
  assert.equal(generated.compileSchema(desiredStateSchema)({ generation: 'x' }), false);
  assert.throws(() => generated.compileSchema({ type: 'string', maxLength: 7 }), { code: 'SCHEMA_NOT_PRECOMPILED' });
});
