import type { ServerResponse } from 'node:http';
import { SatelliteError, isSatelliteError } from '../lib/errors.ts';

/**
 * The only place that turns internal error codes into OCI error responses
 * (dist-spec "Error Codes"). Internal codes that are not OCI codes map onto the closest one.
 */
const TABLE: Record<string, { code: string; status: number }> = {
  BLOB_UNKNOWN: { code: 'BLOB_UNKNOWN', status: 404 },
  BLOB_UPLOAD_INVALID: { code: 'BLOB_UPLOAD_INVALID', status: 400 },
  BLOB_UPLOAD_UNKNOWN: { code: 'BLOB_UPLOAD_UNKNOWN', status: 404 },
  DIGEST_INVALID: { code: 'DIGEST_INVALID', status: 400 },
  MANIFEST_BLOB_UNKNOWN: { code: 'MANIFEST_BLOB_UNKNOWN', status: 400 },
  MANIFEST_INVALID: { code: 'MANIFEST_INVALID', status: 400 },
  MANIFEST_UNKNOWN: { code: 'MANIFEST_UNKNOWN', status: 404 },
  NAME_INVALID: { code: 'NAME_INVALID', status: 400 },
  NAME_UNKNOWN: { code: 'NAME_UNKNOWN', status: 404 },
  SIZE_INVALID: { code: 'SIZE_INVALID', status: 400 },
  UNAUTHORIZED: { code: 'UNAUTHORIZED', status: 401 },
  DENIED: { code: 'DENIED', status: 403 },
  UNSUPPORTED: { code: 'UNSUPPORTED', status: 405 },
  TOOMANYREQUESTS: { code: 'TOOMANYREQUESTS', status: 429 },
  // Not OCI codes: kept for compatibility with distribution clients, or mapped.
  TAG_INVALID: { code: 'TAG_INVALID', status: 400 },
  PAGINATION_NUMBER_INVALID: { code: 'PAGINATION_NUMBER_INVALID', status: 400 },
  RANGE_INVALID: { code: 'BLOB_UPLOAD_INVALID', status: 416 },
  MANIFEST_TOO_LARGE: { code: 'SIZE_INVALID', status: 413 },
  MANIFEST_REFERENCED: { code: 'DENIED', status: 409 },
  ROUTE_UNKNOWN: { code: 'UNSUPPORTED', status: 404 },
  METHOD_UNKNOWN: { code: 'UNSUPPORTED', status: 405 },
  UNAVAILABLE: { code: 'UNAVAILABLE', status: 503 },
  // The pull-through proxy's signature policy (docs/trust.md): the message starts with the code.
  SIGNATURE_REQUIRED: { code: 'DENIED', status: 403 },
  SIGNATURE_INVALID: { code: 'DENIED', status: 403 },
  // RFC 4918 507 Insufficient Storage: nothing of the write was kept; detail has bytesNeeded/bytesAvailable.
  DISK_FULL: { code: 'DISK_FULL', status: 507 },
  STORE_READ_ONLY: { code: 'STORE_READ_ONLY', status: 507 },
};

export function registryError(code: keyof typeof TABLE, message: string, detail?: unknown): SatelliteError {
  return new SatelliteError(code, message, { detail });
}

/** Writes the dist-spec error body; unknown faults become 500 without leaking internals. */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  const entry = isSatelliteError(err) ? TABLE[err.code] : undefined;
  const status = entry?.status ?? 500;
  const body = JSON.stringify({
    errors: [
      {
        code: entry?.code ?? 'UNKNOWN',
        message: entry && err instanceof Error ? err.message : 'internal error',
        detail: entry && isSatelliteError(err) ? (err.detail ?? null) : null,
      },
    ],
  });
  if (res.headersSent) {
    // Mid-body failure: the only honest signal left is to cut the connection.
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function isServerFault(err: unknown): boolean {
  return !(isSatelliteError(err) && TABLE[err.code] && TABLE[err.code]!.status < 500);
}
