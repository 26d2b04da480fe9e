export { RegistryServer, type RegistryServerConfig } from './server.ts';
export { HtpasswdAuth } from './auth.ts';
export type { PeerEndpoint } from './peer-endpoint.ts';
export type { RegistryStore, MissHandler, ProxiedBlob, DeviceCredentials, ReadTarget, BlobShedder } from './context.ts';
export { operationOf, type FinishedRequest } from './operation.ts';
