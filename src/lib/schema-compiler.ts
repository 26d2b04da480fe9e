// Compiles JSON Schemas with ajv at run time: from source and in Ground Control's bundle. The
// satellite's bundle replaces this module with validators generated at build time
// (scripts/release/validators.ts), so a board neither loads ajv nor compiles at start.
import { Ajv, type ValidateFunction } from 'ajv';

/** The options every validator is built with, at run time and at build time. */
export const AJV_OPTIONS = { allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true } as const;

let ajv: Ajv | undefined;

export function compileSchema(schema: object): ValidateFunction {
  ajv ??= new Ajv(AJV_OPTIONS);
  return ajv.compile(schema);
}
