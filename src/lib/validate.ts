import type { ErrorObject, ValidateFunction } from 'ajv';
import { SatelliteError } from './errors.ts';
import { compileSchema } from './schema-compiler.ts';

const compiled = new WeakMap<object, ValidateFunction>();

/** One line per problem, naming the key (as a JSON pointer) and the rule it broke. */
export function formatErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const where = e.instancePath || '(root)';
    if (e.keyword === 'additionalProperties') {
      return `${where}: unknown key "${String((e.params as { additionalProperty: string }).additionalProperty)}"`;
    }
    if (e.keyword === 'enum') {
      return `${where}: must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
    }
    return `${where}: ${e.message ?? e.keyword}`;
  });
}

/**
 * Validates (and fills defaults into) a structured-cloned copy of input. Throws CONFIG_INVALID with
 * every problem listed; code lets callers decide the exit status.
 */
export function validate<T>(schema: object, input: unknown, what: string, code = 'CONFIG_INVALID'): T {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = compileSchema(schema);
    compiled.set(schema, fn);
  }
  const copy = structuredClone(input);
  if (!fn(copy)) {
    const problems = formatErrors(fn.errors);
    throw new SatelliteError(code, `invalid ${what}:\n  ${problems.join('\n  ')}`, { detail: problems });
  }
  return copy as T;
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
