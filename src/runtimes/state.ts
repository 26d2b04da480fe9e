import { createHash } from 'node:crypto';
import { readFile, mkdir } from 'node:fs/promises';
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
}

/**
 * <stateDir>/manifest.json (which files apply created or modified) and <stateDir>/backups/ (the
 * original bytes). Written atomically, backup before manifest before target, so a crash at any
 * point leaves enough to revert.
 */
export class RuntimeState {
  readonly dir: string;
  #manifest: Manifest = { version: 1, files: {} };

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
      state.#manifest = m as Manifest;
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
    await this.#save();
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
