import { desiredStateSchema, type DesiredState } from './desired-state.ts';

/**
 * The JSON payloads of the contract. Every message carries its type, the satellite it is about
 * (checked against the topic) and a timestamp. Schemas are strict: unknown keys are rejected.
 */
// Embedded without its $id: ajv registers ids globally, and the standalone schema owns that one.
const { $id: _desiredStateId, ...desiredStateBody } = desiredStateSchema;

const satelliteId = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } as const;
const isoTime = { type: 'string', minLength: 20, maxLength: 40 } as const;

export const COMMAND_NAMES = ['sync-now', 'gc', 'report', 'verify'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/** Arguments a command may carry; only `verify` takes one (repair: quarantine bad blobs and re-sync). */
export interface CommandArgs {
  repair?: boolean;
}

/** Lists in a verify result are cut at this many entries (the counts are complete). */
export const MAX_VERIFY_LISTED = 20;

/** What a `verify` command answers (result of its ResultMessage). */
export interface VerifyResult {
  blobsChecked: number;
  bytesChecked: number;
  corrupt: number;
  missing: number;
  imagesAffected: number;
  /** Blobs quarantined (repair); their images re-sync. */
  repaired: number;
  /** The first MAX_VERIFY_LISTED affected images (repository:reference) and bad blob digests. */
  images: string[];
  blobs: Array<{ digest: string; problem: 'corrupt' | 'missing' }>;
  durationMs: number;
}

export interface DesiredMessage {
  type: 'desired';
  satelliteId: string;
  issuedAt: string;
  state: DesiredState;
}

export interface CommandMessage {
  type: 'command';
  satelliteId: string;
  /** Unique per command: a redelivered duplicate is recognised and not run twice. */
  id: string;
  name: CommandName;
  /** Only with commands that take arguments (verify); older satellites reject a command with args. */
  args?: CommandArgs;
  issuedAt: string;
}

export interface ResultMessage {
  type: 'result';
  satelliteId: string;
  commandId: string;
  /** The command's name as received: a command this satellite does not know is answered too (COMMAND_UNKNOWN). */
  name: string;
  ok: boolean;
  /** True when the id was seen before: the stored outcome of the first run is repeated. */
  duplicate: boolean;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
  at: string;
}

export interface ImageReport {
  repository: string;
  reference: string;
  status: 'ok' | 'pending' | 'failed';
  digest?: string;
  code?: string;
  reason?: string;
  /** With code DISK_FULL: bytes the image still needs on disk, and what was free for it (beyond the margin). */
  bytesNeeded?: number;
  bytesAvailable?: number;
  /** With a signature policy (docs/trust.md): verified, unsigned or invalid, and the key that verified. */
  signature?: 'verified' | 'unsigned' | 'invalid';
  signatureKey?: string;
  /** While pending: bytes of its blobs on disk, and of all its blobs (known once its manifests are). */
  bytesDone?: number;
  bytesTotal?: number;
}

/** The satellite's data disk: stored blobs, and (newer satellites) free space and its condition. */
export interface DiskReport {
  blobs: number;
  bytes: number;
  /** ok; low: free space under store.minFreeBytes; read-only: the filesystem refuses writes. */
  condition?: 'ok' | 'low' | 'read-only';
  freeBytes?: number;
  minFreeBytes?: number;
  /** Size of the filesystem holding the store. */
  totalBytes?: number;
}

/** Downloads in progress, summed over the pending images. */
export interface DownloadReport {
  bytesDone: number;
  bytesTotal: number;
  bytesRemaining: number;
}

/**
 * Counters since the satellite process started (uptimeSeconds says when): Ground Control turns
 * them into rates and time series, and a smaller uptime than last time means they restarted at 0.
 */
export interface TrafficReport {
  /** WAN: blob and manifest bytes from the upstream registry (sync and proxy). */
  bytesFromUpstream: number;
  /** Bytes the registry served to devices. */
  bytesServed: number;
  /** Blob bytes from peer satellites of the site, and served to them. */
  bytesFromPeers: number;
  bytesToPeers: number;
}

/** The pull-through proxy since start: hits and misses, and the WAN bytes the cache saved. */
export interface ProxyReport {
  hits: number;
  misses: number;
  bytesFromUpstream: number;
  /** Bytes served from the cache that would otherwise have crossed the WAN. */
  bytesServedFromCache: number;
}

export interface ProcessReport {
  rssBytes: number;
  uptimeSeconds: number;
  /** process.arch, and the board's model when the device tree names it (Raspberry Pi, Jetson). */
  arch: string;
  board?: string;
}

/** An image devices pulled (or asked for and got 404) that is not in the desired state. */
export interface StrayPullReport {
  repository: string;
  reference: string;
  pulls: number;
  notFound: number;
}

export interface StateMessage {
  type: 'state';
  satelliteId: string;
  /** Increases with every report this satellite sends (ordering across reconnects). */
  seq: number;
  at: string;
  version: string;
  /** Newest desired generation received (the acknowledgement). */
  desiredGeneration: number | null;
  /** Newest generation fully applied. */
  appliedGeneration: number | null;
  images: ImageReport[];
  disk: DiskReport;
  lastSync: { result: string; finishedAt: string; bytesFromUpstream: number; errors: number } | null;
  upstream: { reachable: boolean | null; lastError: string | null };
  /** Where the other satellites of the site reach this one for blobs (peers.advertiseUrl), if it shares. */
  peerUrl?: string;
  download?: DownloadReport;
  traffic?: TrafficReport;
  proxy?: ProxyReport;
  process?: ProcessReport;
  /** The most pulled images not in the desired state, at most MAX_STRAY_PULLS, busiest first. */
  strayPulls?: StrayPullReport[];
}

export const MAX_STRAY_PULLS = 20;

export interface PresenceMessage {
  type: 'presence';
  satelliteId: string;
  online: boolean;
  at: string;
  version?: string;
}

export interface EventMessage {
  type: 'event';
  satelliteId: string;
  level: 'info' | 'warn' | 'error';
  code: string;
  message: string;
  at: string;
}

export type Message = DesiredMessage | CommandMessage | ResultMessage | StateMessage | PresenceMessage | EventMessage;

export const desiredMessageSchema = {
  $id: 'msg-desired',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'satelliteId', 'issuedAt', 'state'],
  properties: { type: { const: 'desired' }, satelliteId, issuedAt: isoTime, state: desiredStateBody },
} as const;

export const commandMessageSchema = {
  $id: 'msg-command',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'satelliteId', 'id', 'name', 'issuedAt'],
  properties: {
    type: { const: 'command' },
    satelliteId,
    id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
    name: { enum: COMMAND_NAMES },
    args: { type: 'object', additionalProperties: false, properties: { repair: { type: 'boolean' } } },
    issuedAt: isoTime,
  },
} as const;

/** A name a command could have (known or from a newer Ground Control): what an unknown-command result echoes. */
export const COMMAND_NAME_PATTERN = '^[a-z][a-z0-9-]{0,31}$';

export const resultMessageSchema = {
  $id: 'msg-result',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'satelliteId', 'commandId', 'name', 'ok', 'duplicate', 'at'],
  properties: {
    type: { const: 'result' },
    satelliteId,
    commandId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
    name: { type: 'string', pattern: COMMAND_NAME_PATTERN },
    ok: { type: 'boolean' },
    duplicate: { type: 'boolean' },
    result: { type: 'object' },
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message'],
      properties: { code: { type: 'string', maxLength: 100 }, message: { type: 'string', maxLength: 4000 } },
    },
    at: isoTime,
  },
} as const;

const imageReport = {
  type: 'object',
  additionalProperties: false,
  required: ['repository', 'reference', 'status'],
  properties: {
    repository: { type: 'string', maxLength: 255 },
    reference: { type: 'string', maxLength: 200 },
    status: { enum: ['ok', 'pending', 'failed'] },
    digest: { type: 'string', maxLength: 200 },
    code: { type: 'string', maxLength: 100 },
    reason: { type: 'string', maxLength: 4000 },
    bytesNeeded: { type: 'integer', minimum: 0 },
    bytesAvailable: { type: 'integer', minimum: 0 },
    signature: { enum: ['verified', 'unsigned', 'invalid'] },
    signatureKey: { type: 'string', maxLength: 64 },
    bytesDone: { type: 'integer', minimum: 0 },
    bytesTotal: { type: 'integer', minimum: 0 },
  },
} as const;

const counter = { type: 'integer', minimum: 0 } as const;
const counters = <K extends string>(keys: readonly K[]) =>
  ({
    type: 'object',
    additionalProperties: false,
    required: keys,
    properties: Object.fromEntries(keys.map((k) => [k, counter])) as Record<K, typeof counter>,
  }) as const;

const nullableInt = { type: ['integer', 'null'], minimum: 0 } as const;

export const stateMessageSchema = {
  $id: 'msg-state',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'satelliteId', 'seq', 'at', 'version', 'desiredGeneration', 'appliedGeneration', 'images', 'disk', 'lastSync', 'upstream'],
  properties: {
    type: { const: 'state' },
    satelliteId,
    seq: { type: 'integer', minimum: 0 },
    at: isoTime,
    version: { type: 'string', maxLength: 64 },
    desiredGeneration: nullableInt,
    appliedGeneration: nullableInt,
    images: { type: 'array', items: imageReport, maxItems: 10000 },
    disk: {
      type: 'object',
      additionalProperties: false,
      required: ['blobs', 'bytes'],
      properties: {
        blobs: { type: 'integer', minimum: 0 },
        bytes: { type: 'integer', minimum: 0 },
        condition: { enum: ['ok', 'low', 'read-only'] },
        freeBytes: { type: 'integer', minimum: 0 },
        minFreeBytes: { type: 'integer', minimum: 0 },
        totalBytes: { type: 'integer', minimum: 0 },
      },
    },
    lastSync: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['result', 'finishedAt', 'bytesFromUpstream', 'errors'],
      properties: {
        result: { type: 'string', maxLength: 20 },
        finishedAt: { type: 'string', maxLength: 40 },
        bytesFromUpstream: { type: 'integer', minimum: 0 },
        errors: { type: 'integer', minimum: 0 },
      },
    },
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['reachable', 'lastError'],
      properties: { reachable: { type: ['boolean', 'null'] }, lastError: { type: ['string', 'null'], maxLength: 4000 } },
    },
    peerUrl: { type: 'string', maxLength: 300, pattern: '^https?://[^/\\s]+/?$' },
    download: counters(['bytesDone', 'bytesTotal', 'bytesRemaining'] as const),
    traffic: counters(['bytesFromUpstream', 'bytesServed', 'bytesFromPeers', 'bytesToPeers'] as const),
    proxy: counters(['hits', 'misses', 'bytesFromUpstream', 'bytesServedFromCache'] as const),
    process: {
      type: 'object',
      additionalProperties: false,
      required: ['rssBytes', 'uptimeSeconds', 'arch'],
      properties: { rssBytes: counter, uptimeSeconds: counter, arch: { type: 'string', maxLength: 20 }, board: { type: 'string', maxLength: 100 } },
    },
    strayPulls: {
      type: 'array',
      maxItems: 20,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['repository', 'reference', 'pulls', 'notFound'],
        properties: { repository: { type: 'string', maxLength: 255 }, reference: { type: 'string', maxLength: 200 }, pulls: counter, notFound: counter },
      },
    },
  },
} as const;

export const presenceMessageSchema = {
  $id: 'msg-presence',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'satelliteId', 'online', 'at'],
  properties: { type: { const: 'presence' }, satelliteId, online: { type: 'boolean' }, at: isoTime, version: { type: 'string', maxLength: 64 } },
} as const;

export const eventMessageSchema = {
  $id: 'msg-event',
  type: 'object',
  additionalProperties: false,
  required: ['type', 'satelliteId', 'level', 'code', 'message', 'at'],
  properties: {
    type: { const: 'event' },
    satelliteId,
    level: { enum: ['info', 'warn', 'error'] },
    code: { type: 'string', maxLength: 100 },
    message: { type: 'string', maxLength: 4000 },
    at: isoTime,
  },
} as const;
