import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { SatelliteConfig } from '../config/index.ts';
import { AdminServer } from '../admin/server.ts';
import { DownloadRates } from '../admin/download-rates.ts';
import { listImages } from '../admin/images.ts';
import type { AdminPorts } from '../admin/ports.ts';
import type { RunReport, StatusReport } from '../admin/types.ts';
import type { Store } from '../store/index.ts';
import type { BundleImporter } from './bundle-importer.ts';
import type { SyncEngine } from '../sync/index.ts';
import type { Control } from '../control/index.ts';
import { VERSION } from '../version.ts';
import { blobVerifier } from './verify.ts';
import type { MemoryWatchdog } from './memory/index.ts';

export interface AdminDeps {
  config: SatelliteConfig;
  store: Store;
  sync: SyncEngine;
  memory?: Pick<MemoryWatchdog, 'status'> | undefined;
  control: Control | undefined;
  peers: (() => { members: Array<{ key: string; url: string }> } & Record<string, unknown>) | undefined;
  proxy: () => object;
  /** The verification Ground Control's `verify` command runs too (daemon/verify.ts). */
  verify?: ReturnType<typeof blobVerifier>;
  bundles: BundleImporter;
  log: Logger;
}

/** Starts the admin socket (unless admin.enabled is false or its path cannot be a socket). */
export async function startAdmin(deps: AdminDeps): Promise<AdminServer | undefined> {
  if (!deps.config.admin.enabled) return undefined;
  const server = new AdminServer({ socket: deps.config.admin.socket, ports: adminPorts(deps), log: deps.log });
  return (await server.start()) ? server : undefined;
}

/** The admin operations over the running satellite's domains. */
export function adminPorts(deps: AdminDeps): AdminPorts {
  const { config, store, sync } = deps;
  const rates = new DownloadRates();
  const verify = deps.verify ?? blobVerifier(store, sync);
  let run: Promise<RunReport> | undefined;
  return {
    async status(): Promise<StatusReport> {
      const s = sync.status();
      const usage = store.usage();
      const fs = await statfs(config.dataDir);
      const caps = config.sync.caps;
      const capOf = { hour: caps.hourBytes, day: caps.dayBytes, month: caps.monthBytes } as Record<string, number | undefined>;
      const control = deps.control?.status();
      const peers = deps.peers?.();
      return {
        version: VERSION,
        uptimeSeconds: Math.round(process.uptime()),
        rssBytes: process.memoryUsage.rss(),
        memory: deps.memory?.status() ?? null,
        upstream: s.upstream,
        generation: { desired: s.desiredGeneration, applied: s.appliedGeneration, appliedFrom: s.appliedFrom, appliedAt: s.appliedAt },
        running: s.running,
        nextRunAt: s.nextRunAt,
        lastRun: s.lastRun,
        paused: s.paused,
        images: s.images,
        downloads: rates.sample(s.partials.map((p) => ({ digest: p.digest, size: p.size, bytes: store.partialBytes(p.digest) ?? p.offset }))),
        meters: Object.entries(s.meters).map(([period, m]) => ({ period, window: m.period, bytes: m.bytes, capBytes: capOf[period] ?? null })),
        disk: { dataDir: config.dataDir, storeBlobs: usage.blobs, storeBytes: usage.bytes, freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize },
        control: control
          ? { satelliteId: control.satelliteId, connected: control.connection.connected, detail: { ...control.connection, outbox: control.outbox, receivedGeneration: control.receivedGeneration } }
          : null,
        peers: peers ? { members: peers.members.map((m) => ({ key: m.key, url: m.url })), detail: peers } : null,
        proxy: deps.proxy(),
      };
    },
    images: () => listImages(store, sync.heldManifests()),
    startSync() {
      const joined = sync.status().running;
      run = sync.runOnce();
      // Errors reach waiters; a fire-and-forget start must not leave an unhandled rejection.
      run.catch(() => undefined);
      return { started: true, joined };
    },
    waitSync() {
      return run ?? sync.runOnce();
    },
    async gc(dryRun) {
      const plan = store.planGarbage();
      if (dryRun) return { ...plan, dryRun: true };
      const done = await store.collectGarbage();
      return { ...plan, dryRun: false, manifestsRemoved: done.manifestsRemoved, blobsRemoved: done.blobsRemoved, bytesFreed: done.bytesFreed, linksRemoved: done.linksRemoved };
    },
    verify: (repair, onProgress, signal) => verify({ repair, onProgress, signal }),
    importBundle: (path, repository) => deps.bundles.import(path, { repository }),
    exportBundle: (req) => deps.bundles.export(req),
  };
}
