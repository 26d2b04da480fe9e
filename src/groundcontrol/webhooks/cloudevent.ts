import { createHmac, timingSafeEqual } from 'node:crypto';
import type { EventRecord } from '../db/records.ts';
import { eventType } from '../fleet/events.ts';

/** CloudEvents type prefix of every event Ground Control sends. */
export const CLOUDEVENT_TYPE_PREFIX = 'io.goharbor.satellite.';
/** Structured mode (CloudEvents HTTP binding 3.2). */
export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';
/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>` */
export const SIGNATURE_HEADER = 'x-satellite-signature';
/** Unix seconds when this attempt was signed; part of the signed string, so a replay is detectable. */
export const TIMESTAMP_HEADER = 'x-satellite-timestamp';
/** How far a receiver should accept a timestamp from its own clock (docs/groundcontrol.md#webhooks). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  subject?: string;
  datacontenttype: 'application/json';
  data: EventRecord;
}

/** A line of the event log as a CloudEvent 1.0 (JSON format): id = the line's sequence number. */
export function toCloudEvent(e: EventRecord, source: string): CloudEvent {
  return {
    specversion: '1.0',
    id: String(e.seq),
    source,
    type: `${CLOUDEVENT_TYPE_PREFIX}${eventType(e)}`,
    time: e.at,
    ...(e.satelliteId ? { subject: e.satelliteId } : {}),
    datacontenttype: 'application/json',
    data: e,
  };
}

function mac(secret: string, timestamp: string, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/** The signature headers of one delivery attempt (signed afresh at each attempt). */
export function signatureHeaders(secret: string, body: Buffer, nowMs = Date.now()): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: `sha256=${mac(secret, timestamp, body).toString('hex')}` };
}

/**
 * What a receiver does (also used by the tests): recompute the HMAC over "<timestamp>.<raw body>",
 * compare in constant time, and refuse a timestamp too far from its own clock. Returns why it
 * fails, or undefined when the delivery is authentic.
 */
export function verifySignature(secret: string, body: Buffer, headers: Record<string, string | string[] | undefined>, opts: { nowMs?: number; toleranceSeconds?: number } = {}): string | undefined {
  const timestamp = headers[TIMESTAMP_HEADER];
  const signature = headers[SIGNATURE_HEADER];
  if (typeof timestamp !== 'string' || !/^[0-9]{1,12}$/.test(timestamp)) return 'no timestamp';
  if (typeof signature !== 'string' || !/^sha256=[0-9a-f]{64}$/.test(signature)) return 'no signature';
  const skew = Math.abs((opts.nowMs ?? Date.now()) / 1000 - Number(timestamp));
  if (skew > (opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return 'timestamp too old or too new';
  return timingSafeEqual(Buffer.from(signature.slice(7), 'hex'), mac(secret, timestamp, body)) ? undefined : 'signature mismatch';
}
