import cliProgress from 'cli-progress';
import type { AdminClient } from '../admin/client.ts';
import type { RunReport, StatusReport, VerifyReport } from '../admin/types.ts';
import { formatBytes, progressText, shortDigest, table } from './format.ts';
import type { AdminFlags } from './admin-commands.ts';

const POLL_MS = 500;
/** Without a terminal, a progress line at most this often. */
const PLAIN_EVERY_MS = 5000;

/** Bars only for a person at a terminal; --json and pipes get plain lines (or none). */
function interactive(flags: AdminFlags): boolean {
  return !flags.json && process.stderr.isTTY === true;
}

/** `satellite sync [--wait]`: exit 0 when the run applied everything, 1 when an image failed. */
export async function syncCommand(client: AdminClient, flags: AdminFlags): Promise<number> {
  if (!flags.wait) {
    const started = await client.startSync();
    process.stdout.write(flags.json ? `${JSON.stringify(started)}\n` : started.joined ? 'joined the sync run in progress\n' : 'sync run started\n');
    return 0;
  }
  const done = client.syncAndWait();
  const watcher = interactive(flags) ? barWatcher() : flags.json ? undefined : plainWatcher();
  let finished = false;
  const poll = (async () => {
    while (!finished && watcher) {
      try {
        watcher.update(await client.status());
      } catch {
        // the run's own answer reports what went wrong
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  let report: RunReport;
  try {
    report = await done;
  } finally {
    finished = true;
    await poll;
    watcher?.stop();
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${renderRun(report)}\n`);
  return report.result === 'ok' ? 0 : 1;
}

function renderRun(r: RunReport): string {
  // Resolving is round trips (latency), transferring is bytes (bandwidth): a slow site tells which.
  const times = r.resolveMs === undefined ? '' : `; resolving ${(r.resolveMs / 1000).toFixed(2)} s${r.transferMs === undefined ? '' : `, transferring ${(r.transferMs / 1000).toFixed(2)} s`}${r.unchanged ? `, ${r.unchanged} unchanged` : ''}`;
  const head = `sync ${r.result}: generation ${r.generation}, ${formatBytes(r.bytesFromUpstream)} from upstream, ${r.blobsFetched} blobs fetched (${r.blobsResumed} resumed)${times}`;
  if (r.errors.length === 0) return head;
  return `${head}\n${table(['IMAGE', 'CODE', 'REASON'], r.errors.map((e) => [e.ref ?? (e.digest ? shortDigest(e.digest) : '-'), e.code, e.message]))}`;
}

interface Watcher {
  update(s: StatusReport): void;
  stop(): void;
}

/** One bar for the images, one per download in progress (added and removed as they come and go). */
function barWatcher(): Watcher {
  const multi = new cliProgress.MultiBar(
    { format: '{name} [{bar}] {percentage}% {detail}', hideCursor: true, clearOnComplete: false, stopOnComplete: false, barsize: 24, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const images = multi.create(1, 0, { name: 'images      ', detail: '' });
  const bars = new Map<string, cliProgress.SingleBar>();
  return {
    update(s) {
      const ok = s.images.filter((i) => i.status === 'ok').length;
      const failed = s.images.filter((i) => i.status === 'failed').length;
      images.setTotal(Math.max(1, s.images.length));
      images.update(ok, { detail: `${ok}/${s.images.length} ok${failed ? `, ${failed} failed` : ''}` });
      const live = new Set(s.downloads.map((d) => d.digest));
      for (const [digest, bar] of bars) {
        if (live.has(digest)) continue;
        bar.update(bar.getTotal());
        multi.remove(bar);
        bars.delete(digest);
      }
      for (const d of s.downloads) {
        let bar = bars.get(d.digest);
        if (!bar) {
          bar = multi.create(Math.max(1, d.size), 0, { name: shortDigest(d.digest), detail: '' });
          bars.set(d.digest, bar);
        }
        bar.update(d.bytes, { detail: progressText(d) });
      }
    },
    stop: () => multi.stop(),
  };
}

/** Plain lines for logs and pipes: what changed, at most every few seconds. */
function plainWatcher(): Watcher {
  let lastAt = 0;
  return {
    update(s) {
      const now = Date.now();
      if (now - lastAt < PLAIN_EVERY_MS) return;
      lastAt = now;
      const ok = s.images.filter((i) => i.status === 'ok').length;
      const bytes = s.downloads.reduce((n, d) => n + d.bytes, 0);
      const size = s.downloads.reduce((n, d) => n + d.size, 0);
      process.stderr.write(`syncing: ${ok}/${s.images.length} images ok, ${s.downloads.length} downloads (${formatBytes(bytes)}/${formatBytes(size)})\n`);
    },
    stop() {},
  };
}

/** `satellite verify [--repair]`: exit 1 when bad blobs were found and left in place. */
export async function verifyCommand(client: AdminClient, flags: AdminFlags): Promise<number> {
  const repair = flags.repair === true;
  let bar: cliProgress.SingleBar | undefined;
  let lastPlain = 0;
  let report: VerifyReport;
  try {
    report = await client.verify(repair, (e) => {
      if (e.type !== 'progress' || flags.json) return;
      if (interactive(flags)) {
        bar ??= new cliProgress.SingleBar(
          { format: 'verifying [{bar}] {percentage}% {value_bytes}/{total_bytes} {blobsDone}/{blobs} blobs, ETA {eta_formatted}', hideCursor: true, stream: process.stderr, barsize: 24 },
          cliProgress.Presets.shades_classic,
        );
        const payload = { blobsDone: e.blobsDone, blobs: e.blobs, value_bytes: formatBytes(e.bytesDone), total_bytes: formatBytes(e.bytes) };
        if (!bar.isActive) bar.start(Math.max(1, e.bytes), e.bytesDone, payload);
        else bar.update(e.bytesDone, payload);
      } else if (Date.now() - lastPlain >= PLAIN_EVERY_MS || e.blobsDone === e.blobs) {
        lastPlain = Date.now();
        process.stderr.write(`verified ${e.blobsDone}/${e.blobs} blobs, ${formatBytes(e.bytesDone)}/${formatBytes(e.bytes)}\n`);
      }
    });
  } finally {
    bar?.stop();
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${renderVerify(report)}\n`);
  return report.bad.length > 0 && !repair ? 1 : 0;
}

function renderVerify(r: VerifyReport): string {
  const head = `verified ${r.blobs} blobs (${formatBytes(r.bytes)}): ${r.bad.length === 0 ? 'all good' : `${r.bad.length} bad`}`;
  if (r.bad.length === 0) return head;
  const lines = [head, table(['BLOB', 'PROBLEM', 'DETAIL'], r.bad.map((b) => [b.digest, b.problem, b.detail]))];
  if (r.brokenImages.length > 0) {
    lines.push('broken images:', ...r.brokenImages.map((i) => `  ${i.repository}${i.reference.includes(':') ? '@' : ':'}${i.reference}`));
  }
  lines.push(
    r.repaired
      ? 'quarantined: the blobs are out of the store (files under <dataDir>/quarantine/); the next sync fetches them again (satellite sync --wait)'
      : 'run `satellite verify --repair` to quarantine them and fetch them again on the next sync',
  );
  return lines.join('\n');
}
