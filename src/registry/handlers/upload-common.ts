import type { ServerResponse } from 'node:http';
import { sendEmpty } from '../http.ts';

/** dist-spec: Range is "0-<last byte received>"; like distribution, "0-0" before any byte. */
export function uploadRange(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}

export function sendUploadStatus(res: ServerResponse, status: number, name: string, id: string, offset: number): void {
  sendEmpty(res, status, {
    Location: `/v2/${name}/blobs/uploads/${id}`,
    Range: uploadRange(offset),
    'Docker-Upload-UUID': id,
  });
}

export function sendBlobCreated(res: ServerResponse, name: string, digest: string): void {
  sendEmpty(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
}
