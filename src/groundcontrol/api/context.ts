import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { FleetContext } from '../fleet/context.ts';
import type { SessionStore } from '../console/sessions.ts';
import type { Caller } from './auth.ts';
import type { RegisterGuard } from './register-guard.ts';
import type { GcMetrics } from '../metrics.ts';
import type { LiveHub } from './live.ts';

/** What a handler gets: the request, its route parameters and query, the fleet. */
export interface ApiRequest {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Reads and parses the JSON body (capped). */
  body(): Promise<unknown>;
  /** The client's address (IPv4-mapped IPv6 shown as IPv4). */
  remote: string;
  /** Rate limit and log aggregation of POST /register. */
  registerGuard: RegisterGuard;
  fleet: FleetContext;
  log: Logger;
  /** Who is calling (undefined on public routes). */
  caller?: Caller | undefined;
  /** The console's sessions (undefined when the console is disabled). */
  sessions?: SessionStore | undefined;
  metrics?: GcMetrics | undefined;
  /** The live feed (GET /api/v1/live). */
  live?: LiveHub | undefined;
}

/** A handler answers with a status and a JSON body (or null for 204). */
export interface ApiResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** What the event and audit log says about a change (default: method, path and status). */
  audit?: string;
  /** A non-JSON answer (Prometheus text) instead of body. */
  text?: { contentType: string; body: string };
  /** Who to name in the audit log when the route is public (login, registration). */
  actor?: string;
  /** The satellite the change is about, when the path does not name it. */
  satelliteId?: string;
  /** The handler wrote the response itself (a stream): nothing more to send. */
  streamed?: boolean;
}

export type ApiHandler = (r: ApiRequest) => Promise<ApiResponse> | ApiResponse;

/** Shared schema pieces for request bodies. */
export const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$' } as const;
export const SLUG = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' } as const;
export const SATELLITE_ID = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } as const;
/** A site, or null for none. */
export const SLUG_OR_NULL = { type: ['string', 'null'], pattern: SLUG.pattern } as const;
export const TTL = { type: 'integer', minimum: 1, maximum: 31536000 } as const;
