import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { FinishedRequest } from '../registry/index.ts';
import type { MetricsConfig } from './config-schema.ts';
import { MetricsServer } from './metrics-server.ts';
import { satelliteMetrics, type MetricsSources } from './satellite-metrics.ts';

/** The satellite's metrics while it runs. */
export interface RunningMetrics {
  registry: Registry;
  /** For the registry server: one call per finished response. */
  observe: (r: FinishedRequest) => void;
  close(): Promise<void>;
}

/**
 * Builds the metrics over the domains' sources and opens the listener; undefined when
 * metrics.enabled is false. A listener that cannot bind is logged, not fatal: devices pulling
 * images matter more than the scrape (the token and address were checked at start by loadMetricsToken).
 */
export async function startMetrics(config: MetricsConfig, token: string | undefined, sources: MetricsSources, log: Logger): Promise<RunningMetrics | undefined> {
  if (!config.enabled) return undefined;
  const { registry, requests } = satelliteMetrics(sources);
  const server = new MetricsServer({ registry, log, listen: config.listen, token });
  try {
    await server.start();
  } catch (err) {
    log.error({ err }, 'metrics cannot listen; the satellite runs without its metrics endpoint');
  }
  return { registry, observe: requests.observe, close: () => server.close() };
}
