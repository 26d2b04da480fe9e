import { lstat, readFile, readlink, realpath } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { errnoCode } from '../lib/errors.ts';
import { RUNTIME_NAMES, type RuntimeName, type RuntimesConfig } from './config-schema.ts';
import type { MirrorSpec } from './mirror.ts';
import type { RuntimeTargets, TargetFile } from './target.ts';
import { containerdTargets } from './containerd.ts';
import { crioTargets } from './registries-conf.ts';
import { dockerTargets } from './docker.ts';
import { k3sTargets } from './k3s.ts';
import { withProxyRoute } from './proxy-route.ts';
import { RuntimeState, sha256, type FileRecord } from './state.ts';
import { RuntimeErrorCode, runtimeError } from './errors.ts';

/**
 * create/modify: apply would write it (absent / existing file); update: applied before, now
 * different (config changed); applied: applied and current; unchanged: already as wanted, never
 * touched; stale: applied before but no longer wanted (apply reverts it).
 */
export type FileStatus = 'create' | 'modify' | 'update' | 'applied' | 'unchanged' | 'stale';

export interface FilePlan {
  runtime: RuntimeName;
  /** Path on disk (with the --root prefix): the manifest's key. */
  file: string;
  status: FileStatus;
  current: Buffer | undefined;
  desired: string | undefined;
  record: FileRecord | undefined;
  /** Edited by someone else since the satellite applied it. */
  changedSinceApply: boolean;
  /** Why it cannot be merged (malformed file...): apply refuses, show prints it. */
  error: Error | undefined;
}

export interface RuntimePlan {
  runtime: RuntimeName;
  selected: boolean;
  warnings: string[];
  files: FilePlan[];
}

export interface PlanOptions {
  config: RuntimesConfig;
  spec: MirrorSpec;
  state: RuntimeState;
  /** Prefix for every runtime path (an image being built, a test). */
  root?: string | undefined;
  /** Runtimes to act on; default those with enabled: true. */
  runtimes?: RuntimeName[] | undefined;
}

export function runtimeTargets(config: RuntimesConfig, spec: MirrorSpec, runtime: RuntimeName): RuntimeTargets {
  return withProxyRoute(mirrorTargets(config, spec, runtime), config, spec);
}

function mirrorTargets(config: RuntimesConfig, spec: MirrorSpec, runtime: RuntimeName): RuntimeTargets {
  switch (runtime) {
    case 'containerd':
      return containerdTargets(config.containerd, spec);
    case 'crio':
      return crioTargets(config.crio, spec);
    case 'docker':
      return dockerTargets(config.docker, spec);
    case 'k3s':
      return k3sTargets(config.k3s, spec);
  }
}

export const selectedRuntimes = (config: RuntimesConfig, only?: RuntimeName[]): RuntimeName[] =>
  only?.length ? only : RUNTIME_NAMES.filter((r) => config[r].enabled);

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** A symlinked runtime file is changed where it points, so the link itself survives. */
async function followLink(file: string): Promise<string> {
  try {
    if (!(await lstat(file)).isSymbolicLink()) return file;
  } catch {
    return file; // absent, or unreadable: reading it reports that
  }
  try {
    return await realpath(file);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    return resolve(dirname(file), await readlink(file)); // dangling: create its target
  }
}

/** One file: its current bytes, what apply would write, and why it cannot (error) if so. */
async function planFile(runtime: RuntimeName, target: TargetFile, file: string, state: RuntimeState): Promise<FilePlan> {
  const record = state.get(file);
  const plan: FilePlan = { runtime, file, status: 'unchanged', current: undefined, desired: undefined, record, changedSinceApply: false, error: undefined };
  try {
    plan.current = await readIfExists(file);
  } catch (err) {
    plan.error = runtimeError(RuntimeErrorCode.fileUnreadable, `${file} cannot be read (${errnoCode(err) ?? String(err)}); nothing was changed`, { cause: err });
    return plan;
  }
  const { current } = plan;
  const untouched = record !== undefined && current !== undefined && sha256(current) === record.appliedSha256;
  plan.changedSinceApply = record !== undefined && current !== undefined && !untouched;
  try {
    // Re-render from the original while the applied file is untouched, so a changed config
    // replaces (not accumulates) what the satellite wrote; someone else's later edits are merged into.
    let base = current?.toString('utf8');
    if (record && (untouched || current === undefined)) base = record.existed ? (await state.readBackup(file, record)).toString('utf8') : undefined;
    plan.desired = target.render(base, file);
    const same = current !== undefined && current.equals(Buffer.from(plan.desired));
    plan.status = same ? (record ? 'applied' : 'unchanged') : record ? 'update' : current ? 'modify' : 'create';
  } catch (err) {
    plan.error = err as Error;
  }
  return plan;
}

/** What apply would do, per runtime (all four; `selected` marks those apply acts on). Writes nothing. */
export async function planRuntimes(opts: PlanOptions): Promise<RuntimePlan[]> {
  const selected = selectedRuntimes(opts.config, opts.runtimes);
  const onDisk = (p: string) => (opts.root ? join(opts.root, p) : p);
  const plans: RuntimePlan[] = [];
  for (const runtime of RUNTIME_NAMES) {
    const targets = runtimeTargets(opts.config, opts.spec, runtime);
    const files: FilePlan[] = [];
    for (const target of targets.files) files.push(await planFile(runtime, target, await followLink(onDisk(target.path)), opts.state));
    const wanted = new Set(files.map((f) => f.file));
    for (const file of opts.state.paths(runtime)) {
      if (wanted.has(file)) continue;
      const current = await readIfExists(file);
      const record = opts.state.get(file)!;
      const changed = current !== undefined && sha256(current) !== record.appliedSha256;
      files.push({ runtime, file, status: 'stale', current, desired: undefined, record, changedSinceApply: changed, error: undefined });
    }
    plans.push({ runtime, selected: selected.includes(runtime), warnings: targets.warnings, files });
  }
  return plans;
}
