export { memoryConfigSchema, type MemoryConfig } from './config-schema.ts';
export { memoryLimits, nextShedding, sheddingOver, DEFAULT_RESUME_FRACTION, type MemoryLimits } from './limits.ts';
export { MemoryWatchdog, GC_REPEAT_MS, SETTLED_BYTES, v8Gc, type MemoryStatus, type MemoryWatchdogOptions } from './watchdog.ts';
export { ownCgroupDir, cgroupMemory } from './cgroup.ts';
