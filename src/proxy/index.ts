export { PullThroughProxy, type PullThroughProxyOptions, type UpstreamTarget as ProxyUpstreamTarget } from './proxy.ts';
export { proxyConfigSchema, mirrorPrefix, type ProxyConfig, type ProxySignaturePolicy } from './config-schema.ts';
export type { SignatureGateStatus } from './signature-gate.ts';
export type { ProxyStatus, ProxyCounters } from './stats.ts';
export type { ProxyUpstream, ProxyStore } from './ports.ts';
export { ProxyErrorCode } from './errors.ts';
