import { SatelliteError } from '../lib/errors.ts';

/** Codes of runtime configuration. Branch on these, never on messages. */
export const RuntimeErrorCode = {
  /** An existing runtime file is not valid TOML/JSON/YAML or has an unexpected shape: nothing written. */
  fileInvalid: 'RUNTIME_FILE_INVALID',
  /** An existing runtime file cannot be read (permissions): nothing written. */
  fileUnreadable: 'RUNTIME_FILE_UNREADABLE',
  /** An existing file cannot be merged without changing what it means (e.g. CRI mirrors + config_path). */
  fileConflict: 'RUNTIME_FILE_CONFLICT',
  /** The manifest or a backup in the state dir is damaged: nothing restored from it. */
  stateInvalid: 'RUNTIME_STATE_INVALID',
  /** Another process is applying or reverting (its pid holds <stateDir>/lock). */
  busy: 'RUNTIME_BUSY',
  /** The runtimes section cannot produce a configuration (no upstreams, no mirror URL). */
  configInvalid: 'CONFIG_INVALID',
} as const;

export function runtimeError(code: string, message: string, opts: { detail?: unknown; cause?: unknown } = {}): SatelliteError {
  return new SatelliteError(code, message, opts);
}
