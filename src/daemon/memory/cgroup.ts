import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * This process's cgroup v2 directory (from the "0::/path" line of /proc/self/cgroup), when its
 * memory files are readable there; undefined on cgroup v1, outside a cgroup or in a container that
 * hides them. Only read, never written.
 */
export function ownCgroupDir(root = '/sys/fs/cgroup', procFile = '/proc/self/cgroup'): string | undefined {
  let text: string;
  try {
    text = readFileSync(procFile, 'utf8');
  } catch {
    return undefined;
  }
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  if (!line) return undefined;
  const dir = join(root, line.slice(3).trim());
  return readBytes(join(dir, 'memory.current')) === undefined ? undefined : dir;
}

/** A cgroup memory file's number; undefined for "max" (no limit) or when unreadable. */
export function readBytes(file: string): number | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (!/^\d+$/.test(text)) return undefined;
    return Number(text);
  } catch {
    return undefined;
  }
}

/** memory.current and memory.max of a cgroup directory (max undefined when unlimited). */
export function cgroupMemory(dir: string): { currentBytes: number | null; maxBytes: number | null } {
  return { currentBytes: readBytes(join(dir, 'memory.current')) ?? null, maxBytes: readBytes(join(dir, 'memory.max')) ?? null };
}
