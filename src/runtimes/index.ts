export { runtimesConfigSchema, resolveRuntimePaths, RUNTIME_NAMES, type RuntimesConfig, type RuntimeName, type UpstreamEntry } from './config-schema.ts';
export { RuntimeErrorCode } from './errors.ts';
export { mirrorSpec, type MirrorSpec } from './mirror.ts';
export { showRuntimes, applyRuntimeConfig, revertRuntimeConfig, applyRuntimesAtStart, stateDirOf, type RuntimesContext, type RuntimeRunOptions } from './runtimes.ts';
export { formatPlans, formatChanges } from './report.ts';
export type { FileChange } from './apply.ts';
export type { RuntimePlan, FilePlan } from './plan.ts';
