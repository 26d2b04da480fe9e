/**
 * Nesting depth of JSON text, counted without parsing and without recursion (strings are skipped,
 * escapes honoured). Stops early once past `limit`, returning limit + 1. JSON.parse itself copes with
 * deep nesting, but everything recursive after it (structuredClone, validators, logging) does not:
 * check the text first and answer "too deep" as bad input, never as a fault.
 */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
