import { createHash } from 'node:crypto';
import { readFile, mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../lib/errors.ts';
import { unlinkIfExists, writeFileAtomic } from '../lib/fs-atomic.ts';
import type { RuntimeName } from './config-schema.ts';
import { RuntimeErrorCode, runtimeError } from './errors.ts';

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** What `apply` did to one file, so `revert` can undo exactly that. */
export interface FileRecord {
  runtime: RuntimeName;
  /** The file existed before the first apply (its bytes are in `backup`). */
  existed: boolean;
  /** Backup file name in <stateDir>/backups (existed only). */
  backup?: string;
  originalSha256?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Directories apply created for the file, outermost first: removed on revert when empty. */
  createdDirs: string[];
  appliedSha256: string;
  appliedAt: string;
}

export interface Manifest {
  version: 1;
  files: Record<string, FileRecord>;
  /** Every directory apply created and revert has not removed yet (it may hold several files). */
  dirs: string[];
}

/**
 * <stateDir>/manifest.json (which files apply created or modified) and <stateDir>/backups/ (the
 * original bytes). Written atomically, backup before manifest before target, so a crash at any
 * point leaves enough to revert.
 */
export class RuntimeState {
  readonly dir: string;
  #manifest: Manifest = { version: 1, files: {}, dirs: [] };

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async open(dir: string): Promise<RuntimeState> {
    const state = new RuntimeState(dir);
    const file = join(dir, 'manifest.json');
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (err) {
        throw runtimeError(RuntimeErrorCode.stateInvalid, `${file} is damaged (${(err as Error).message}): restore it or remove it`, { cause: err });
      }
      const m = doc as Partial<Manifest>;
      if (m?.version !== 1 || typeof m.files !== 'object' || m.files === null) throw runtimeError(RuntimeErrorCode.stateInvalid, `${file} is not a runtime manifest`);
      state.#manifest = { version: 1, files: m.files, dirs: Array.isArray(m.dirs) ? m.dirs : [] };
    }
    return state;
  }

  get(path: string): FileRecord | undefined {
    return Object.hasOwn(this.#manifest.files, path) ? this.#manifest.files[path] : undefined;
  }

  paths(runtime?: RuntimeName): string[] {
    return Object.keys(this.#manifest.files).filter((p) => !runtime || this.#manifest.files[p]!.runtime === runtime);
  }

  async set(path: string, record: FileRecord): Promise<void> {
    this.#manifest.files[path] = record;
    for (const d of record.createdDirs) if (!this.#manifest.dirs.includes(d)) this.#manifest.dirs.push(d);
    await this.#save();
  }

  /** Removes the directories apply created that are empty now, deepest first; keeps the others. */
  async pruneDirs(): Promise<void> {
    const depth = (d: string) => d.split('/').length;
    const left: string[] = [];
    for (const dir of [...this.#manifest.dirs].sort((a, b) => depth(b) - depth(a))) {
      try {
        await rmdir(dir);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT') continue;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        left.push(dir);
      }
    }
    if (left.length !== this.#manifest.dirs.length) {
      this.#manifest.dirs = this.#manifest.dirs.filter((d) => left.includes(d));
      await this.#save();
    }
  }

  async delete(path: string): Promise<void> {
    const record = this.get(path);
    delete this.#manifest.files[path];
    await this.#save();
    if (record?.backup) await unlinkIfExists(join(this.dir, 'backups', record.backup));
  }

  /** Stores the original bytes of path; returns the backup's name. */
  async saveBackup(path: string, data: Buffer): Promise<string> {
    const name = `${sha256(path).slice(0, 32)}.bak`;
    await mkdir(join(this.dir, 'backups'), { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(this.dir, 'backups', name), data, 0o600);
    return name;
  }

  /** The original bytes, checked against the digest recorded at apply. */
  async readBackup(path: string, record: FileRecord): Promise<Buffer> {
    const file = join(this.dir, 'backups', record.backup ?? '');
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (err) {
      throw runtimeError(RuntimeErrorCode.stateInvalid, `backup of ${path} (${file}) cannot be read: ${errnoCode(err) ?? String(err)}`, { cause: err });
    }
    if (sha256(data) !== record.originalSha256) throw runtimeError(RuntimeErrorCode.stateInvalid, `backup of ${path} (${file}) does not match its recorded digest`);
    return data;
  }

  async #save(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(this.dir, 'manifest.json'), `${JSON.stringify(this.#manifest, null, 2)}\n`, 0o600);
  }
}
