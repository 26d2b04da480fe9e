import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { UpstreamErrorCode, upstreamError, type UpstreamErrorDetail } from './errors.ts';
import { relayBody } from '../lib/relay-body.ts';
import { networkError } from './network-errors.ts';

type Body = Dispatcher.ResponseData['body'];
export type Meter = (bytes: number) => void;

/** Cuts a body we will not read: aborts the request (and its connection) without an unhandled 'error'. */
export function abandonBody(body: Body): void {
  body.on('error', () => {});
  body.destroy();
}

/**
 * Reads a whole body of at most `cap` bytes (manifests, token JSON). Refuses before reading when
 * Content-Length already says too much, and cuts the connection (destroy, not dump) when the
 * body grows past the cap: draining megabytes we will not use costs WAN bytes.
 */
export async function readCapped(
  body: Body,
  contentLength: number | undefined,
  cap: number,
  meter: Meter,
  what: string,
  detail: UpstreamErrorDetail,
): Promise<Buffer> {
  if (contentLength !== undefined && contentLength > cap) {
    abandonBody(body);
    throw upstreamError(UpstreamErrorCode.protocol, `${what}: body of ${contentLength} bytes exceeds the ${cap}-byte limit`, detail);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      meter(chunk.length);
      size += chunk.length;
      if (size > cap) {
        abandonBody(body);
        throw upstreamError(UpstreamErrorCode.protocol, `${what}: body exceeds the ${cap}-byte limit`, detail);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    throw networkError(err, `${what}: reading the body failed after ${size} bytes`, { ...detail, bytes: size });
  }
  return Buffer.concat(chunks, size);
}

const ERROR_BODY_CAP = 16 * 1024;

/**
 * Reads the start of an error response for its OCI error code and message (dist-spec
 * `{"errors":[{code,message}]}`); never fails, and never reads more than 16 KiB.
 */
export async function readErrorBody(body: Body, meter: Meter): Promise<{ registryCode?: string; message?: string }> {
  let text = '';
  try {
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      meter(chunk.length);
      size += chunk.length;
      if (size > ERROR_BODY_CAP) {
        abandonBody(body);
        break;
      }
      text += chunk.toString('utf8');
    }
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = parsed.errors?.[0];
    return {
      ...(typeof first?.code === 'string' ? { registryCode: first.code } : {}),
      ...(typeof first?.message === 'string' ? { message: first.message.slice(0, 200) } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * The blob body as handed to the caller: counts every chunk through `meter`, keeps backpressure,
 * and turns a mid-body failure (cut connection, idle timeout) into UPSTREAM_UNREACHABLE with the
 * byte count, so the caller knows where to resume. Destroying it aborts the upstream request.
 */
export function meteredBody(body: Body, meter: Meter, what: string, detail: UpstreamErrorDetail): Readable {
  let bytes = 0;
  return relayBody(body, {
    onChunk: (chunk) => {
      bytes += chunk.length;
      meter(chunk.length);
      return undefined;
    },
    onError: (err) => networkError(err, `${what}: body failed after ${bytes} bytes`, { ...detail, bytes }),
  });
}

/**
 * Consumes a body we have no use for (redirect, HEAD, challenge) so the connection can be reused,
 * counting its bytes; a body larger than 64 KiB is cut instead (STYLE: consume or dump).
 */
export async function discardBody(body: Body, meter: Meter): Promise<void> {
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      meter(chunk.length);
      size += chunk.length;
      if (size > 64 * 1024) {
        abandonBody(body);
        return;
      }
    }
  } catch {
    // The response is already decided; a broken body only costs the connection.
  }
}
