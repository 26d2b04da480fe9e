import { statfs } from 'node:fs/promises';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ControlStatus } from '../control/index.ts';
import type { ProxyStatus } from '../proxy/index.ts';
import type { RunTotalsSnapshot, SyncStatus } from '../sync/index.ts';
import { RUN_RESULTS } from '../sync/index.ts';
import { bool, counterFrom, gaugeFrom, perScrape } from './collectors.ts';
import { RequestMetrics } from './request-metrics.ts';

export const PREFIX = 'harbor_satellite_';

/**
 * What the metrics read, each domain through the same call that fills the status endpoint, so both
 * show the same numbers. Optional parts are absent when the feature is off (their metrics too).
 */
export interface MetricsSources {
  version: string;
  /** The data directory: disk free/total come from its filesystem. */
  dataDir: string;
  store: { usage(): { blobs: number; bytes: number } };
  sync: { status(): SyncStatus };
  syncTotals: { snapshot(): RunTotalsSnapshot };
  /** Configured data caps (sync.caps). */
  caps: { hourBytes?: number; dayBytes?: number; monthBytes?: number };
  proxy?: { status(): ProxyStatus } | undefined;
  peers?: { status(): PeerStatusView } | undefined;
  control?: { status(): ControlStatus } | undefined;
  /** The memory watchdog (src/daemon/memory). */
  memory?: { status(): { state: string; shedRequests: number; softLimitBytes: number } } | undefined;
  /** Log lines dropped because stdout could not take them (the logging sink's counters), if known. */
  logStats?: (() => { droppedLines: number } | null | undefined) | undefined;
}

/** The part of the peers' status the metrics read (summed over peers: no per-peer labels). */
export interface PeerStatusView {
  members: unknown[];
  bytesServed: number;
  peers: Array<{ bytesReceived: number; blobsReceived: number; failures: number; badDigests: number }>;
}

/** The satellite's Prometheus registry: request metrics fed by the registry, the rest read at scrape time. */
export function satelliteMetrics(src: MetricsSources): { registry: Registry; requests: RequestMetrics } {
  const r = new Registry();
  collectDefaultMetrics({ register: r, prefix: PREFIX });
  // Gauges named like counters (promtool flags them); the per-type gauges without _total stay.
  for (const kind of ['handles', 'requests', 'resources']) r.removeSingleMetric(`${PREFIX}nodejs_active_${kind}_total`);
  const requests = new RequestMetrics(r, PREFIX);
  const g = (name: string, help: string, read: () => number | Array<[Record<string, string>, number]> | Promise<number>, labelNames?: string[]) =>
    gaugeFrom(r, { name: PREFIX + name, help, read, ...(labelNames ? { labelNames } : {}) });
  const c = (name: string, help: string, read: () => number | Array<[Record<string, string>, number]>, labelNames?: string[]) =>
    counterFrom(r, { name: PREFIX + name, help, read, ...(labelNames ? { labelNames } : {}) });

  new Gauge({ name: `${PREFIX}build_info`, help: 'Always 1; the version label names the running build.', labelNames: ['version'], registers: [r] }).set({ version: src.version }, 1);

  // Store and disk. One statfs per scrape, shared by both gauges.
  const readDisk = perScrape(() => statfs(src.dataDir).then((s) => ({ free: s.bavail * s.bsize, total: s.blocks * s.bsize })));
  const usage = perScrape(() => src.store.usage());
  g('store_blobs', 'Blobs in the store (synced, pushed and cached).', () => usage().blobs);
  g('store_bytes', 'Bytes of the blobs in the store.', () => usage().bytes);
  g('disk_free_bytes', 'Bytes available to the satellite on the data directory filesystem.', async () => (await readDisk()).free);
  g('disk_total_bytes', 'Size of the data directory filesystem in bytes.', async () => (await readDisk()).total);

  // Sync.
  const sync = perScrape(() => src.sync.status());
  const totals = perScrape(() => src.syncTotals.snapshot());
  c('sync_runs_total', 'Sync runs finished, by result (ok, partial, offline, paused, failed).', () => RUN_RESULTS.map((res) => [{ result: res }, totals().runs[res]]), ['result']);
  c('sync_upstream_bytes_total', 'Bytes read from the upstream by sync (counted as they arrive).', () => totals().bytesFromUpstream);
  c('sync_blobs_fetched_total', 'Blobs downloaded and verified by sync runs.', () => totals().blobsFetched);
  c('sync_blobs_resumed_total', 'Blob downloads continued from a checkpoint instead of byte 0.', () => totals().blobsResumed);
  g(
    'sync_images',
    'Images of the desired state by state (ok, pending, failed).',
    () => {
      const n = { ok: 0, pending: 0, failed: 0 };
      for (const i of sync().images) n[i.status]++;
      return Object.entries(n).map(([state, v]) => [{ state }, v]);
    },
    ['state'],
  );
  g(
    'sync_image_signatures',
    'Images under a signature policy by the last verdict (verified, unsigned, invalid); docs/trust.md.',
    () => {
      const n = { verified: 0, unsigned: 0, invalid: 0 };
      for (const i of sync().images) if (i.signature) n[i.signature]++;
      return Object.entries(n).map(([verdict, v]) => [{ verdict }, v]);
    },
    ['verdict'],
  );
  g('sync_desired_generation', 'Generation of the desired state in force; 0 when there is none.', () => sync().desiredGeneration ?? 0);
  g('sync_applied_generation', 'Newest generation fully applied; 0 when none yet.', () => sync().appliedGeneration ?? 0);
  g('sync_running', '1 while a sync run is in progress.', () => bool(sync().running));
  g('sync_paused', '1 while downloads wait for a data cap period, a sync window or memory under the soft limit.', () => bool(sync().paused !== null));
  g('sync_upstream_reachable', '1 when the last run reached the upstream, 0 when it did not or none has run.', () => bool(sync().upstream.reachable));
  g('sync_download_bytes', 'Bytes written so far of blob downloads in progress (checkpointed partials).', () => sync().partials.reduce((n, p) => n + p.offset, 0));
  g('sync_download_size_bytes', 'Full size of the blob downloads in progress.', () => sync().partials.reduce((n, p) => n + p.size, 0));
  g('sync_metered_bytes', 'Bytes read from the upstream in the current UTC hour, day and month (what the caps count).', () => Object.entries(sync().meters).map(([period, m]) => [{ period }, m.bytes]), ['period']);
  const caps = ([['hour', src.caps.hourBytes], ['day', src.caps.dayBytes], ['month', src.caps.monthBytes]] as const).filter(([, v]) => v !== undefined);
  // Disk space (docs/operations.md "Disk space"): the same view as the status's sync.disk.
  g('disk_min_free_bytes', 'Free space the satellite keeps (store.minFreeBytes); admissions count it as used.', () => sync().disk.minFreeBytes);
  g('disk_reserved_bytes', 'Bytes promised to downloads and fills in flight that they have not written yet.', () => sync().disk.reservedBytes);
  g('disk_read_only', '1 while the data directory filesystem refuses writes (STORE_READ_ONLY).', () => bool(sync().disk.condition === 'read-only'));
  g('sync_images_disk_full', 'Images of the desired state waiting for disk space (code DISK_FULL).', () => sync().images.filter((i) => i.code === 'DISK_FULL').length);
  g('sync_disk_held', '1 while sync runs wait for disk space or a writable disk (no upstream traffic).', () => bool(sync().disk.held !== null));
  if (caps.length > 0) g('sync_cap_bytes', 'Configured data cap per UTC period (sync.caps); absent periods have no cap.', () => caps.map(([period, v]) => [{ period }, v!]), ['period']);

  if (src.proxy) addProxy(src.proxy, g, c);
  if (src.peers) addPeers(src.peers, g, c);
  if (src.control) addControl(src.control, g, c);
  if (src.memory) {
    const memory = src.memory;
    const m = perScrape(() => memory.status());
    g('memory_shedding', '1 while RSS is above memory.softLimitBytes: new blob downloads get 429 and sync downloads wait.', () => bool(m().state === 'shedding'));
    c('memory_shed_requests_total', 'Blob requests answered 429 because memory was above the soft limit.', () => m().shedRequests);
    g('memory_soft_limit_bytes', 'The watchdog soft limit in force (memory.softLimitBytes or a share of the cgroup memory.max); 0 when off.', () => m().softLimitBytes);
  }
  if (src.logStats) {
    const logStats = src.logStats;
    c('log_dropped_lines_total', 'Log lines dropped because stdout could not take them.', () => logStats()?.droppedLines ?? 0);
  }
  return { registry: r, requests };
}

type Def = (name: string, help: string, read: () => number | Array<[Record<string, string>, number]>, labelNames?: string[]) => void;

function addProxy(proxy: { status(): ProxyStatus }, g: Def, c: Def): void {
  const s = perScrape(() => proxy.status());
  const kinds = (m: number, b: number): Array<[Record<string, string>, number]> => [
    [{ kind: 'manifest' }, m],
    [{ kind: 'blob' }, b],
  ];
  c('proxy_hits_total', 'Pull-through requests answered from the cache, by kind (manifest, blob).', () => kinds(s().manifestHits, s().blobHits), ['kind']);
  c('proxy_misses_total', 'Pull-through requests that fetched from the upstream, by kind.', () => kinds(s().manifestMisses, s().blobMisses), ['kind']);
  c('proxy_upstream_bytes_total', 'Body bytes the pull-through cache read from upstreams.', () => s().upstreamBytes);
  c('proxy_cache_served_bytes_total', 'Blob bytes served from the cache without fetching them again: WAN bytes saved.', () => s().cacheServedBytes);
  c('proxy_upstream_errors_total', 'Upstream failures met by the pull-through cache.', () => s().upstreamErrors);
  c('proxy_stale_served_total', 'Cached tags served because the upstream could not be asked.', () => s().staleServed);
  c('proxy_evictions_total', 'Cached manifests and blobs evicted to stay under the quota, by kind.', () => kinds(s().evictedManifests, s().evictedBlobs), ['kind']);
  c('proxy_evicted_bytes_total', 'Bytes freed by cache eviction.', () => s().evictedBytes);
  g('proxy_cache_bytes', 'Bytes held by the pull-through cache.', () => s().cacheBytes);
  g('proxy_cache_quota_bytes', 'The cache quota (proxy.cacheQuotaBytes); 0 when unlimited.', () => s().cacheQuotaBytes ?? 0);
  g('proxy_fetches_in_flight', 'Upstream blob fetches running now.', () => s().inFlight);
  // proxy.signaturePolicy (docs/trust.md): zeros while it is off.
  const sp = () => {
    const p = s().signaturePolicy;
    return 'verdicts' in p ? p : undefined;
  };
  c(
    'proxy_signature_verdicts_total',
    'Signature verdicts the pull-through proxy reached (cache hits not counted), by verdict (verified, unsigned, invalid, exempt).',
    () => (['verified', 'unsigned', 'invalid', 'exempt'] as const).map((verdict) => [{ verdict }, sp()?.verdicts[verdict] ?? 0]),
    ['verdict'],
  );
  c('proxy_signature_refusals_total', 'Requests the pull-through proxy answered 403 DENIED under an enforced signature policy.', () => sp()?.refusals ?? 0);
  g('proxy_signature_flagged_images', 'Images the proxy holds a verdict for that have no valid signature (served under warn, refused under enforce).', () => sp()?.flagged.length ?? 0);
}

function addPeers(peers: { status(): PeerStatusView }, g: Def, c: Def): void {
  const status = perScrape(() => peers.status());
  const sum = (k: 'bytesReceived' | 'blobsReceived' | 'failures' | 'badDigests') => status().peers.reduce((n, p) => n + p[k], 0);
  c('peers_received_bytes_total', 'Blob bytes received from peers of the site (verified or not).', () => sum('bytesReceived'));
  c('peers_received_blobs_total', 'Blobs received from peers of the site.', () => sum('blobsReceived'));
  c('peers_served_bytes_total', 'Blob bytes served to peers of the site.', () => status().bytesServed);
  c('peers_failures_total', 'Requests to peers that failed (refused, timed out, cut, out of contract).', () => sum('failures'));
  c('peers_bad_digests_total', 'Blobs from peers whose bytes did not hash to their digest.', () => sum('badDigests'));
  g('peers_members', 'Other members of the site this satellite knows.', () => status().members.length);
}

function addControl(control: { status(): ControlStatus }, g: Def, c: Def): void {
  const s = perScrape(() => control.status());
  const started = Date.now();
  g('control_connected', '1 while connected to Ground Control (MQTT).', () => bool(s().connection.connected));
  c('control_reconnects_total', 'MQTT reconnects.', () => s().connection.reconnects);
  g('control_outbox_messages', 'Reports, results and events waiting in the outbox for Ground Control.', () => s().outbox.pending);
  c('control_outbox_dropped_total', 'Outbox messages dropped because the outbox was full.', () => s().outbox.dropped);
  g('control_last_report_age_seconds', 'Seconds since Ground Control last acknowledged a state report (since start if none yet).', () => {
    const at = s().outbox.lastReportSentAt;
    return (Date.now() - (at ? Date.parse(at) : started)) / 1000;
  });
}
