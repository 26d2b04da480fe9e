import { readFileSync } from 'node:fs';
import type { ProcessReport, ProxyReport, StrayPullReport, TrafficReport } from '../protocol/index.ts';

/**
 * What a state report reads from the other domains, bound once they run (the control plane starts
 * before the registry, proxy and peers): each a read of counters the domain keeps anyway.
 */
export interface ReportSources {
  /** Counters since start: upstream, served, peers. */
  traffic?: (() => TrafficReport) | undefined;
  /** The pull-through cache's counters; absent when the proxy is off. */
  proxy?: (() => ProxyReport) | undefined;
  /** The busiest pulls not in the desired state as recorded, at most n (filtered again per report). */
  strayPulls?: ((n: number) => StrayPullReport[]) | undefined;
}

/** Where Linux on a device-tree board (Raspberry Pi, Jetson, most ARM boards) names its model. */
const MODEL_FILES = ['/proc/device-tree/model', '/sys/firmware/devicetree/base/model'];

/** The board's model, e.g. "Raspberry Pi 4 Model B Rev 1.4", or undefined (x86, containers, none). */
export function readBoardModel(files: readonly string[] = MODEL_FILES): string | undefined {
  for (const file of files) {
    try {
      const model = readFileSync(file, 'latin1').replace(/\0/g, '').replace(/[^\x20-\x7e]/g, '').trim();
      if (model) return model.slice(0, 100);
    } catch {
      // absent: not a device-tree board
    }
  }
  return undefined;
}

/** This process now: RSS, uptime (what the report's counters are "since"), architecture and board. */
export function processReport(board: string | undefined): ProcessReport {
  const r: ProcessReport = { rssBytes: process.memoryUsage.rss(), uptimeSeconds: Math.floor(process.uptime()), arch: process.arch.slice(0, 20) };
  if (board) r.board = board;
  return r;
}
