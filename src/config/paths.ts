/** Config keys holding file paths: relative ones follow the config file, profiles need absolute ones. */
export const PATH_KEYS: ReadonlyArray<readonly string[]> = [
  ['dataDir'],
  ['registry', 'tls', 'cert'],
  ['registry', 'tls', 'key'],
  ['registry', 'auth', 'htpasswd'],
  ['sync', 'desiredStateFile'],
  ['sync', 'bundleDir'],
  ['sync', 'bundleKeyFile'],
  ['control', 'registrationTokenFile'],
  ['control', 'identityFile'],
  ['control', 'caFile'],
  ['control', 'mqtt', 'caFile'],
  ['upstream', 'caFile'],
  ['upstream', 'systemCaFile'],
  ['peers', 'tokenFile'],
  ['metrics', 'tokenFile'],
  ['admin', 'socket'],
  ['httpsProxy', 'caDir'],
  ['httpsProxy', 'auth', 'passwordFile'],
];

export function getPath(doc: unknown, key: readonly string[]): unknown {
  let cur = doc;
  for (const k of key) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Rewrites the string at `key` (if present) in place; parents are assumed mutable plain objects. */
export function mapPath(doc: Record<string, unknown>, key: readonly string[], fn: (value: string) => string): void {
  let cur: unknown = doc;
  for (const k of key.slice(0, -1)) {
    if (typeof cur !== 'object' || cur === null) return;
    cur = (cur as Record<string, unknown>)[k];
  }
  const last = key[key.length - 1]!;
  if (typeof cur === 'object' && cur !== null && typeof (cur as Record<string, unknown>)[last] === 'string') {
    (cur as Record<string, unknown>)[last] = fn((cur as Record<string, unknown>)[last] as string);
  }
}

