export { PullThroughProxy, type PullThroughProxyOptions, type UpstreamTarget as ProxyUpstreamTarget } from './proxy.ts';
export { proxyConfigSchema, mirrorPrefix, type ProxyConfig } from './config-schema.ts';
export type { ProxyStatus, ProxyCounters } from './stats.ts';
export type { ProxyUpstream, ProxyStore } from './ports.ts';
export { ProxyErrorCode } from './errors.ts';
