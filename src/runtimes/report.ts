import type { FileChange } from './apply.ts';
import type { MirrorSpec } from './mirror.ts';
import type { FileStatus, RuntimePlan } from './plan.ts';

const STATUS: Record<FileStatus, string> = {
  create: 'would create',
  modify: 'would modify (original backed up)',
  update: 'applied earlier, would update',
  applied: 'applied',
  unchanged: 'up to date (not touched)',
  stale: 'applied earlier, no longer wanted: would revert',
};

/** What it takes for a runtime to read a changed file. */
export const RELOAD: Record<string, string> = {
  containerd: 'hosts.toml is read at every pull; a changed config.toml needs `systemctl restart containerd`',
  crio: 'podman reads it at every command; CRI-O: `systemctl reload crio`',
  docker: '`systemctl reload docker` (registry-mirrors and insecure-registries reload on SIGHUP)',
  k3s: '`systemctl restart k3s` (or rke2-server / rke2-agent)',
};

/** `satellite runtime show` output. With content, the merged text of every file that would change. */
export function formatPlans(spec: MirrorSpec, plans: RuntimePlan[], content = false): string {
  const lines = [`mirror ${spec.mirror.url} for ${spec.upstreams.map((u) => `${u.host} (fallback ${u.server})`).join(', ')}`];
  for (const p of plans) {
    lines.push('', `${p.runtime}${p.selected ? '' : ' (not enabled)'}`);
    for (const f of p.files) {
      const extra = f.changedSinceApply ? '; edited since it was applied' : '';
      lines.push(`  ${f.file}: ${f.error ? `error: ${f.error.message}` : STATUS[f.status]}${extra}`);
      if (content && f.desired !== undefined && (f.status === 'create' || f.status === 'modify' || f.status === 'update')) {
        lines.push(...f.desired.trimEnd().split('\n').map((l) => `    | ${l}`));
      }
    }
    // A runtime that is not enabled is listed for reference; its caveats are not the operator's concern.
    if (p.selected) for (const w of p.warnings) lines.push(`  warning: ${w}`);
  }
  return lines.join('\n');
}

/** `satellite runtime apply|revert` output: one line per file, then warnings and how to reload. */
export function formatChanges(changes: FileChange[], plans: RuntimePlan[] = []): string {
  const lines = changes.map((c) => `${c.action.padEnd(9)} ${c.file}${c.changedSinceApply ? (c.action === 'restored' || c.action === 'removed' ? ' (edits made after apply were discarded)' : ' (kept edits made since apply)') : ''}`);
  if (changes.length === 0) lines.push('nothing to do');
  for (const p of plans) if (p.selected) for (const w of p.warnings) lines.push(`warning: ${w}`);
  const touched = new Set(changes.filter((c) => c.action !== 'unchanged').map((c) => c.runtime));
  for (const r of touched) lines.push(`${r}: ${RELOAD[r]}`);
  return lines.join('\n');
}
