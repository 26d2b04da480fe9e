import type { IncomingMessage, ServerResponse } from 'node:http';
import { SatelliteError } from '../../lib/errors.ts';
import { jsonDepth } from '../../lib/json-depth.ts';
import { validate } from '../../lib/validate.ts';
import { gcError, statusOf } from '../errors.ts';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = status === 204 ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(data)),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(data);
}

/** The one error shape of the API: {"error":{"code","message","detail"?}}. */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  const status = statusOf(err);
  const known = err instanceof SatelliteError && status < 500;
  const body = known
    ? { error: { code: err.code, message: err.message, ...(err.detail !== undefined ? { detail: err.detail } : {}) } }
    : { error: { code: status === 503 ? 'UNAVAILABLE' : 'INTERNAL', message: status === 503 ? (err as Error).message : 'internal error' } };
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, body, headers);
}

/**
 * Reads a JSON body under a cap (413 past it); 400 when it is not JSON or nests deeper than maxDepth
 * (checked on the text, before anything recursive walks the parsed value).
 */
export async function readJson(req: IncomingMessage, maxBytes: number, maxDepth: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/\bjson\b/i.test(type)) {
    req.resume();
    throw gcError('UNSUPPORTED_MEDIA_TYPE', `request body must be application/json, not ${type.slice(0, 100)}`);
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) {
    req.resume();
    throw gcError('BODY_TOO_LARGE', `request body of ${declared} bytes exceeds ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.resume();
      throw gcError('BODY_TOO_LARGE', `request body exceeds ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  if (jsonDepth(text, maxDepth) > maxDepth) throw gcError('BODY_INVALID', `request body nests deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw gcError('BODY_INVALID', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** ajv-validated request body: 400 BODY_INVALID naming every bad key. */
export function validateBody<T>(schema: object, body: unknown): T {
  return validate<T>(schema, body ?? {}, 'request body', 'BODY_INVALID');
}

/** Bearer token of the Authorization header, or undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}
