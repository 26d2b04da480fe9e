export { metricsConfigSchema, type MetricsConfig } from './config-schema.ts';
export { loadMetricsToken, isLoopbackHost } from './auth.ts';
export { MetricsServer } from './metrics-server.ts';
export { satelliteMetrics, PREFIX, type MetricsSources, type PeerStatusView } from './satellite-metrics.ts';
export { RequestMetrics } from './request-metrics.ts';
export { startMetrics, type RunningMetrics } from './start.ts';
