export { SyncEngine, type SyncEngineOptions, type SyncStatus, type UpstreamTarget } from './engine.ts';
export { FileDesiredStateSource } from './file-source.ts';
export type { DesiredStateSource } from './desired-state-source.ts';
export { parseDesiredState, desiredStateSchema, type DesiredState, type DesiredImage } from './desired-state.ts';
export { syncConfigSchema, type SyncConfig } from './config-schema.ts';
export { withSources, type UpstreamPort } from './upstream-port.ts';
export type { ImageState, RunReport } from './image-state.ts';
export { RunTotals, RUN_RESULTS, type RunTotalsSnapshot, type RunResult } from './run-totals.ts';
