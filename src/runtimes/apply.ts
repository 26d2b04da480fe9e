import { chmod, chown, lstat, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from '../lib/errors.ts';
import { unlinkIfExists, writeFileAtomic } from '../lib/fs-atomic.ts';
import type { RuntimeName } from './config-schema.ts';
import { planRuntimes, type FilePlan, type PlanOptions, type RuntimePlan } from './plan.ts';
import { sha256, type FileRecord, type RuntimeState } from './state.ts';

export interface FileChange {
  runtime: RuntimeName;
  file: string;
  action: 'created' | 'modified' | 'updated' | 'unchanged' | 'restored' | 'removed';
  /** Someone edited the file after the satellite applied it (revert discards that edit). */
  changedSinceApply: boolean;
}

export interface ApplyResult {
  plans: RuntimePlan[];
  changes: FileChange[];
}

/** Directories that do not exist yet on the way to dir, outermost first. */
async function missingDirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    try {
      await lstat(d);
      break;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      out.unshift(d);
    }
  }
  return out;
}

async function writeKeepingOwner(file: string, data: string | Buffer, record: FileRecord): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const mode = record.mode ?? 0o644;
  await writeFileAtomic(file, data, mode);
  await chmod(file, mode);
  if (record.uid !== undefined && record.gid !== undefined && process.getuid?.() === 0) await chown(file, record.uid, record.gid);
}

async function writePlanned(state: RuntimeState, plan: FilePlan): Promise<void> {
  let record = plan.record;
  if (!record) {
    const base = { runtime: plan.runtime, appliedSha256: '', appliedAt: '' };
    if (plan.current) {
      const st = await stat(plan.file);
      const backup = await state.saveBackup(plan.file, plan.current);
      record = { ...base, existed: true, backup, originalSha256: sha256(plan.current), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, createdDirs: [] };
    } else {
      record = { ...base, existed: false, createdDirs: await missingDirs(dirname(plan.file)) };
    }
  }
  // Backup, then manifest, then the file: a crash anywhere leaves what revert needs.
  await state.set(plan.file, { ...record, appliedSha256: sha256(plan.desired!), appliedAt: new Date().toISOString() });
  await writeKeepingOwner(plan.file, plan.desired!, record);
}

/** Puts back the original bytes (or removes a file the satellite created, and its empty dirs). */
async function revertFile(state: RuntimeState, file: string, record: FileRecord): Promise<'restored' | 'removed'> {
  if (record.existed) {
    const original = await state.readBackup(file, record);
    await writeKeepingOwner(file, original, record);
  } else {
    await unlinkIfExists(file);
  }
  await state.delete(file);
  await state.pruneDirs();
  return record.existed ? 'restored' : 'removed';
}

/**
 * Writes every selected runtime's files. All files are planned (parsed and merged) first: one
 * malformed file means nothing at all is written. Idempotent: a second run writes nothing.
 */
export async function applyRuntimes(opts: PlanOptions): Promise<ApplyResult> {
  const plans = await planRuntimes(opts);
  const chosen = plans.filter((p) => p.selected);
  const broken = chosen.flatMap((p) => p.files).find((f) => f.error);
  if (broken) throw broken.error;
  const changes: FileChange[] = [];
  for (const plan of chosen) {
    for (const f of plan.files) {
      const base = { runtime: f.runtime, file: f.file, changedSinceApply: f.changedSinceApply };
      if (f.status === 'stale') {
        changes.push({ ...base, action: await revertFile(opts.state, f.file, f.record!) });
      } else if (f.status === 'create' || f.status === 'modify' || f.status === 'update') {
        await writePlanned(opts.state, f);
        changes.push({ ...base, action: f.status === 'create' ? 'created' : f.status === 'modify' ? 'modified' : 'updated' });
      } else {
        changes.push({ ...base, action: 'unchanged' });
      }
    }
  }
  return { plans, changes };
}

/** Restores every file apply touched (of the given runtimes; default all), byte for byte. */
export async function revertRuntimes(state: RuntimeState, runtimes?: RuntimeName[]): Promise<FileChange[]> {
  const changes: FileChange[] = [];
  const files = runtimes?.length ? runtimes.flatMap((r) => state.paths(r)) : state.paths();
  for (const file of files.reverse()) {
    const record = state.get(file)!;
    let current: Buffer | undefined;
    try {
      current = await readFile(file);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    const changedSinceApply = current !== undefined && sha256(current) !== record.appliedSha256;
    changes.push({ runtime: record.runtime, file, action: await revertFile(state, file, record), changedSinceApply });
  }
  return changes;
}
