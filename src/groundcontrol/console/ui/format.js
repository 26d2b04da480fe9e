// Small display helpers shared by the views.

export { formatBytes as bytes } from '../../../lib/format-bytes.ts';

export function ago(iso, now = Date.now()) {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}

/** presence of a status row: online | offline | never seen */
export function presence(s) {
  return s.online === null ? 'never seen' : s.online ? 'online' : 'offline';
}

/** converged | syncing | failed | - */
export function convergence(s) {
  if (s.state && s.state.images.failed > 0) return 'failed';
  if (s.inSync) return 'converged';
  // Never seen: not syncing (the "never seen" count has it), like the status API's out-of-sync.
  if (s.desiredGeneration !== null && s.online !== null) return 'syncing';
  return '-';
}

/** Bytes still to download when the satellite reports them (newer satellites), else null. */
export function remaining(state) {
  const v = state?.download?.bytesRemaining;
  return typeof v === 'number' ? v : null;
}
