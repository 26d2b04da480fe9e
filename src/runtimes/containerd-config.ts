import { isDeepStrictEqual } from 'node:util';
import { RuntimeErrorCode, runtimeError } from './errors.ts';
import { getPath, isTable, parseToml, tomlString, type TomlTable } from './toml.ts';

/** Where the CRI plugin's registry table lives, per config.toml version. */
function registryPath(version: unknown): string[] {
  if (version === 3) return ['plugins', 'io.containerd.cri.v1.images', 'registry'];
  if (version === 2) return ['plugins', 'io.containerd.grpc.v1.cri', 'registry'];
  return ['plugins', 'cri', 'registry']; // version 1 (no version key)
}

const headerName = (path: string[]) => `[${path.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k))).join('.')}]`;

/** The key path of a `[table]` header line, or undefined for other lines (and `[[arrays]]`). */
function headerPath(line: string): string[] | undefined | 'array' {
  const t = line.trim();
  if (t.startsWith('[[')) return 'array';
  if (!t.startsWith('[')) return undefined;
  try {
    const doc = parseToml(t, 'header');
    const path: string[] = [];
    let cur: unknown = doc;
    while (isTable(cur)) {
      const keys = Object.keys(cur);
      if (keys.length !== 1) break;
      path.push(keys[0]!);
      cur = cur[keys[0]!];
    }
    return path;
  } catch {
    return undefined; // e.g. a line inside a multi-line string: the final check catches oddities
  }
}

/** The original document with only config_path set: what the edited text must parse to. */
function withConfigPath(doc: TomlTable, path: string[], certsDir: string): TomlTable {
  const copy = structuredClone(doc);
  let cur: TomlTable = copy;
  for (const key of path) {
    if (!isTable(cur[key])) cur[key] = {};
    cur = cur[key] as TomlTable;
  }
  cur.config_path = certsDir;
  return copy;
}

/**
 * Sets the CRI registry `config_path` in containerd's config.toml by editing one line of text (a
 * TOML writer would drop comments and reorder tables), then checks that the result parses to the
 * original document plus that key. Anything else (an NVIDIA runtime, a default runtime) is
 * untouched; the check fails loudly rather than write a file that means something different.
 */
export function setCriConfigPath(current: string | undefined, file: string, certsDir: string): string {
  if (current === undefined || current.trim() === '') {
    return `version = 2\n\n${headerName(registryPath(2))}\n  config_path = ${tomlString(certsDir)}\n`;
  }
  const doc = parseToml(current, file);
  const path = registryPath(doc.version);
  const registry = getPath(doc, path);
  if (isTable(registry) && registry.config_path === certsDir) return current;
  if (isTable(registry) && isTable(registry.mirrors) && Object.keys(registry.mirrors).length > 0) {
    throw runtimeError(
      RuntimeErrorCode.fileConflict,
      `${file}: ${path.join('.')}.mirrors is set, and containerd refuses mirrors together with config_path; move those mirrors to hosts.toml files under ${certsDir} first. Nothing was changed`,
    );
  }
  const eol = current.includes('\r\n') ? '\r\n' : '\n';
  const lines = current.split(/\r?\n/);
  const line = `config_path = ${tomlString(certsDir)}`;
  const start = lines.findIndex((l) => {
    const p = headerPath(l);
    return Array.isArray(p) && isDeepStrictEqual(p, path);
  });
  if (start >= 0) {
    let end = lines.length;
    for (let i = start + 1; i < lines.length; i++) {
      if (headerPath(lines[i]!) !== undefined) {
        end = i;
        break;
      }
    }
    const existing = lines.slice(start + 1, end).findIndex((l) => /^\s*config_path\s*=/.test(l));
    const indent = /^\s*/.exec(lines.slice(start + 1, end).find((l) => /^\s*[A-Za-z"']/.test(l)) ?? `${/^\s*/.exec(lines[start]!)![0]}  `)![0];
    if (existing >= 0) lines[start + 1 + existing] = `${indent}${line}`;
    else lines.splice(start + 1, 0, `${indent}${line}`);
  } else {
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    lines.push('', headerName(path), `  ${line}`, '');
  }
  const out = lines.join(eol);
  let check: TomlTable | undefined;
  try {
    check = parseToml(out, file);
  } catch {
    check = undefined;
  }
  // Compared as plain JSON: the parser's tables have no prototype, the copy's do.
  const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
  const ok = check !== undefined && isDeepStrictEqual(plain(check), plain(withConfigPath(doc, path, certsDir)));
  if (!ok) {
    throw runtimeError(
      RuntimeErrorCode.fileConflict,
      `${file}: cannot add ${path.join('.')}.config_path without changing anything else; set config_path = ${tomlString(certsDir)} there yourself. Nothing was changed`,
    );
  }
  return out;
}
