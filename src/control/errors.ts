import { SatelliteError } from '../lib/errors.ts';

/** Codes the control plane throws or reports. Branch on these, never on messages. */
export const ControlErrorCode = {
  /** Ground Control refused the registration (used, expired or unknown token): retrying will not help. */
  registrationFailed: 'REGISTRATION_FAILED',
  /** Ground Control could not be reached or answered 5xx/429: retried with backoff. */
  registrationUnavailable: 'REGISTRATION_UNAVAILABLE',
  /** identity.json exists but cannot be read or is not an identity: fix or delete it. */
  identityInvalid: 'IDENTITY_INVALID',
  /** Bad `control` configuration (the same code as every config error: exit 78). */
  configInvalid: 'CONFIG_INVALID',
  /** A desired state older than the one in force. */
  desiredStale: 'DESIRED_STATE_STALE',
  /** A message that failed decoding (event code; see protocol/decode.ts). */
  messageInvalid: 'MESSAGE_INVALID',
  /** Messages the outbox had to drop while offline (event code). */
  outboxOverflow: 'OUTBOX_OVERFLOW',
  /** The control plane is closing: no new work. */
  closed: 'CONTROL_CLOSED',
} as const;

export function controlError(code: string, message: string, opts: { detail?: unknown; cause?: unknown } = {}): SatelliteError {
  return new SatelliteError(code, message, opts);
}

/** Truncates text for fields with a schema maxLength. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
