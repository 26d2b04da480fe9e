import type { MemoryConfig } from './config-schema.ts';

/** The marks the watchdog compares RSS with; softBytes 0 = disabled. */
export interface MemoryLimits {
  softBytes: number;
  resumeBytes: number;
}

/** Resume mark when the config names none: 85 % of the soft limit. */
export const DEFAULT_RESUME_FRACTION = 0.85;

/**
 * The effective limits: the byte limit and the percentage of the cgroup's memory.max (when both
 * apply, the lower); the resume mark below the soft limit, 85 % of it unless configured lower.
 */
export function memoryLimits(config: Pick<MemoryConfig, 'softLimitBytes' | 'resumeBytes' | 'softLimitPercent'>, cgroupMaxBytes: number | undefined): MemoryLimits {
  const candidates: number[] = [];
  if (config.softLimitBytes > 0) candidates.push(config.softLimitBytes);
  if (config.softLimitPercent > 0 && cgroupMaxBytes !== undefined) candidates.push(Math.floor((cgroupMaxBytes * config.softLimitPercent) / 100));
  if (candidates.length === 0) return { softBytes: 0, resumeBytes: 0 };
  const softBytes = Math.min(...candidates);
  const resumeBytes = config.resumeBytes > 0 && config.resumeBytes < softBytes ? config.resumeBytes : Math.floor(softBytes * DEFAULT_RESUME_FRACTION);
  return { softBytes, resumeBytes };
}

/**
 * Hysteresis, the whole decision: shedding starts when RSS goes above the soft limit and stops only
 * once it is under the resume mark, so a process hovering at the limit does not flap.
 */
export function nextShedding(shedding: boolean, rssBytes: number, limits: MemoryLimits): boolean {
  if (limits.softBytes <= 0) return false;
  return shedding ? rssBytes >= limits.resumeBytes : rssBytes > limits.softBytes;
}

/** A run of samples through nextShedding: the state after each (for tests and reasoning). */
export function sheddingOver(samples: readonly number[], limits: MemoryLimits, initial = false): boolean[] {
  const out: boolean[] = [];
  let state = initial;
  for (const rss of samples) {
    state = nextShedding(state, rss, limits);
    out.push(state);
  }
  return out;
}
