import Table from 'cli-table3';

/** 1536 -> "1.5 KiB" (binary units, as `du -h` and the issue's tables). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** 3725 -> "1h2m", 65 -> "1m5s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** A fixed-width text bar for one-shot output: "[#######-------------]  35%". */
export function textBar(done: number, total: number, width = 20): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(ratio * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`;
}

/** "12.0 MiB/40.0 MiB, 3.1 MiB/s, ETA 9s" (rate and ETA once known). */
export function progressText(p: { bytes: number; size: number; bytesPerSecond: number | null; etaSeconds: number | null }): string {
  const parts = [`${formatBytes(p.bytes)}/${formatBytes(p.size)}`];
  if (p.bytesPerSecond !== null) parts.push(`${formatBytes(p.bytesPerSecond)}/s`);
  if (p.etaSeconds !== null) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  return parts.join(', ');
}

export function shortDigest(digest: string): string {
  const i = digest.indexOf(':');
  return i < 0 ? digest.slice(0, 12) : digest.slice(i + 1, i + 13);
}

/** A plain table (no colours: the output is read by people and by grep alike). */
export function table(head: string[], rows: Array<Array<string | number>>): string {
  const t = new Table({ head, style: { head: [], border: [], compact: true } });
  t.push(...rows.map((r) => r.map(String)));
  return t.toString();
}

/** Two columns, label and value. */
export function fields(rows: Array<[string, string]>): string {
  const t = new Table({ style: { head: [], border: [], compact: true } });
  t.push(...rows.map(([k, v]) => ({ [k]: v })));
  return t.toString();
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return 'never';
  return `${formatDuration((now - Date.parse(iso)) / 1000)} ago`;
}
