export { createControl, Control, type ControlOptions, type ControlStatus } from './control.ts';
export { controlConfigSchema, type ControlConfig } from './config-schema.ts';
export { ControlErrorCode } from './errors.ts';
export type { Identity } from './identity.ts';
export { register, obtainIdentity, registerResponseSchema, type RegisterOptions } from './registration.ts';
export type { ControlStore, SyncPort } from './ports.ts';
export type { ReportSources } from './report-inputs.ts';
export type { ConnectionStatus } from './client.ts';
export type { OutboxStats } from './outbox.ts';
