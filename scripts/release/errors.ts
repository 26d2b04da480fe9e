import { SatelliteError } from '../../src/lib/errors.ts';

/**
 * Release build failures, each with a stable code: RELEASE_VERSION_MISMATCH,
 * RELEASE_VERSION_INEXACT, RELEASE_FETCH_FAILED, RELEASE_EXTRACT_FAILED,
 * RELEASE_DEPENDENCY_MISSING, RELEASE_ARCH_UNKNOWN, RELEASE_LAYOUT_INVALID, RELEASE_ARCHIVE_FAILED.
 */
export class ReleaseError extends SatelliteError {
  constructor(code: `RELEASE_${string}`, message: string, opts: { cause?: unknown } = {}) {
    super(code, message, opts);
    this.name = 'ReleaseError';
  }
}
