import { failRefusedCommands } from './commands.ts';
import { decodeMessage, parseTopic, type EventMessage, type PresenceMessage, type Message, type ResultMessage, type StateMessage } from '../../protocol/index.ts';
import { durable } from '../db/db.ts';
import { putStatus } from '../db/indexes.ts';
import type { ErrorNote, StatusRecord } from '../db/records.ts';
import type { FleetContext } from './context.ts';
import { appendEvent, statusTransitions } from './events.ts';
import { reconcileDesired, satellitesAtSite } from './reconcile.ts';
import { recordSeries } from './series.ts';

const EVENTS_KEPT = 20;
export const REJECTED_KEY = 'rejected';
/** Reports recorded in one transaction at most (the broker keeps ~20 in flight to us anyway). */
export const MAX_BATCH = 500;

export interface RejectedSummary {
  count: number;
  last: ErrorNote | null;
}

export function emptyStatus(): StatusRecord {
  return { presence: null, state: null, lastSeenAt: null, events: { count: 0, last: [] }, errors: { count: 0, last: null } };
}

/** A message as it arrived, decoded (outside the transaction) or with why it is rejected. */
type Incoming = { topic: string; satelliteId: string; message: Message } | { topic: string; rejected: { code: string; message: string } };

/** What a batch leaves to do once it is durable: log lines and site memberships to republish. */
interface Effects {
  logs: Array<() => void>;
  /** site -> the satellite whose peer URL changed (first one, for the log) */
  sites: Map<string, { satelliteId: string; peerUrl: string | null }>;
  /** Satellites whose status changed: told to the live feed (console) once durable. */
  changed: Set<string>;
}

interface Waiting {
  topic: string;
  payload: Buffer;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Records the satellites' reports in batches: what arrived while the previous batch was being
 * written goes into the next one, one transaction and one flush for all of them. A report's
 * promise resolves only once its batch is durable, so the MQTT acknowledgement held on it
 * (broker/link.ts) never confirms what a crash could undo.
 */
export class ReportRecorder {
  readonly #ctx: FleetContext;
  readonly #maxBatch: number;
  #waiting: Waiting[] = [];
  #running: Promise<void> | undefined;

  constructor(ctx: FleetContext, opts: { maxBatch?: number } = {}) {
    this.#ctx = ctx;
    this.#maxBatch = opts.maxBatch ?? MAX_BATCH;
  }

  /** Resolves once the message is durably recorded (or rejected and counted); rejects on a database fault. */
  record(topicName: string, payload: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ topic: topicName, payload, resolve, reject });
      // setImmediate: let the rest of what the socket delivered join this batch.
      this.#running ??= new Promise((r) => setImmediate(r)).then(() => this.#drain());
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0, this.#maxBatch);
        let effects: Effects;
        try {
          effects = await recordBatch(this.#ctx, batch);
        } catch (err) {
          for (const w of batch) w.reject(err);
          continue;
        }
        for (const w of batch) w.resolve();
        await afterBatch(this.#ctx, effects).catch((err: unknown) => this.#ctx.log.error({ err }, 'site membership not republished'));
      }
    } finally {
      this.#running = undefined;
    }
  }
}

/**
 * Handles one message from a satellite, on its own (a batch of one). Anything malformed,
 * oversized, on a topic we do not know or about a satellite we do not know is rejected: logged,
 * counted (fleet-wide and on the satellite the topic names) and dropped. Never throws for bad
 * input; a database fault does.
 */
export async function ingestMessage(ctx: FleetContext, topicName: string, payload: Buffer): Promise<void> {
  await afterBatch(ctx, await recordBatch(ctx, [{ topic: topicName, payload }]));
}

function decode(topicName: string, payload: Buffer): Incoming {
  try {
    const { satelliteId, message } = decodeMessage(topicName, payload);
    return { topic: topicName, satelliteId, message };
  } catch (err) {
    return { topic: topicName, rejected: { code: (err as { code?: string }).code ?? 'MESSAGE_INVALID', message: (err as Error).message } };
  }
}

/** Applies a batch of messages in one durable transaction; returns what is left to do after. */
async function recordBatch(ctx: FleetContext, batch: Array<{ topic: string; payload: Buffer }>): Promise<Effects> {
  // An empty payload clears a retained message (e.g. after a satellite was deleted): not a report.
  const incoming = batch.filter((m) => m.payload.length > 0).map((m) => decode(m.topic, m.payload));
  const effects: Effects = { logs: [], sites: new Map(), changed: new Set() };
  if (incoming.length === 0) return effects;
  const at = ctx.now().toISOString();
  await durable(ctx.db, () => {
    for (const m of incoming) applyIncoming(ctx, m, at, effects);
  });
  if (ctx.metrics) {
    const now = Date.now();
    for (const m of incoming) if ('message' in m && 'at' in m.message) ctx.metrics.reportRecorded(m.message.type, Math.max(0, (now - Date.parse(m.message.at)) / 1000));
  }
  return effects;
}

async function afterBatch(ctx: FleetContext, effects: Effects): Promise<void> {
  for (const log of effects.logs) log();
  if (effects.changed.size > 0) ctx.changes?.satellitesChanged(effects.changed);
  for (const [site, { satelliteId, peerUrl }] of effects.sites) {
    ctx.log.info({ satelliteId, site, peerUrl }, 'peer URL changed; republishing site membership');
    await reconcileDesired(ctx, satellitesAtSite(ctx.db, site));
  }
}

/** Inside the batch's transaction. */
function applyIncoming(ctx: FleetContext, m: Incoming, at: string, effects: Effects): void {
  if ('rejected' in m) return applyRejected(ctx, m.topic, m.rejected.code, m.rejected.message, at, effects);
  const { satelliteId, message } = m;
  const sat = ctx.db.satellites.get(satelliteId);
  if (!sat) return applyRejected(ctx, m.topic, 'SATELLITE_UNKNOWN', `message from unknown satellite ${satelliteId}`, at, effects);
  switch (message.type) {
    case 'state': {
      const site = updateStatus(ctx, satelliteId, (s) => applyState(ctx, s, message), sat.site);
      effects.changed.add(satelliteId);
      // A new (or gone) peer URL changes the site's blob-sharing membership.
      if (site && !effects.sites.has(site)) effects.sites.set(site, { satelliteId, peerUrl: message.peerUrl ?? null });
      return;
    }
    case 'presence':
      updateStatus(ctx, satelliteId, (s) => applyPresence(s, message, at), sat.site);
      effects.changed.add(satelliteId);
      return;
    case 'event': {
      updateStatus(ctx, satelliteId, (s) => applyEvent(s, message), sat.site);
      const failed = failRefusedCommands(ctx, satelliteId, message.code, message.message, at);
      if (failed > 0) effects.logs.push(() => ctx.log.warn({ satelliteId, commands: failed }, 'commands refused by an older satellite'));
      effects.changed.add(satelliteId);
      return;
    }
    case 'result':
      return applyResult(ctx, message, effects);
    default:
      return applyRejected(ctx, m.topic, 'MESSAGE_INVALID', `unexpected ${message.type} message from a satellite`, at, effects);
  }
}

/** Returns the site whose membership changed, if any. */
function updateStatus(ctx: FleetContext, id: string, apply: (s: StatusRecord) => StatusRecord | undefined, site?: string | null): string | undefined {
  const before = ctx.db.status.get(id);
  const next = apply(before ?? emptyStatus());
  if (!next) return undefined;
  const at = ctx.now().toISOString();
  for (const e of statusTransitions(id, before, next)) appendEvent(ctx.db, ctx.config.events.kept, at, e);
  return putStatus(ctx.db, id, next, site === undefined ? { before } : { before, site });
}

function seen(s: StatusRecord, at: string): string {
  return s.lastSeenAt && s.lastSeenAt > at ? s.lastSeenAt : at;
}

function applyState(ctx: FleetContext, s: StatusRecord, m: StateMessage): StatusRecord | undefined {
  // seq orders reports across reconnects: a redelivered or late older report must not win.
  if (s.state && m.seq <= s.state.seq) {
    ctx.log.debug({ satelliteId: m.satelliteId, seq: m.seq, have: s.state.seq }, 'older state report ignored');
    return undefined;
  }
  const { type: _type, satelliteId: _id, images, ...rest } = m;
  const imageCounts = { ok: 0, pending: 0, failed: 0 };
  for (const img of images) imageCounts[img.status]++;
  recordSeries(ctx.db, m.satelliteId, s.state, m, ctx.now().getTime());
  return { ...s, state: { ...rest, images, imageCounts }, lastSeenAt: seen(s, m.at) };
}

// Arrival order, not `at`: a last will is composed at connect time, so its `at` is older than the
// "online" sent after it, yet it is the newer news. MQTT keeps order per topic.
function applyPresence(s: StatusRecord, m: PresenceMessage, receivedAt: string): StatusRecord {
  const presence = { online: m.online, at: m.at, receivedAt, ...(m.version ? { version: m.version } : {}) };
  return { ...s, presence, lastSeenAt: m.online ? seen(s, receivedAt) : s.lastSeenAt };
}

function applyEvent(s: StatusRecord, m: EventMessage): StatusRecord {
  const last = [...s.events.last, { at: m.at, level: m.level, code: m.code, message: m.message }].slice(-EVENTS_KEPT);
  return { ...s, events: { count: s.events.count + 1, last }, lastSeenAt: seen(s, m.at) };
}

function applyResult(ctx: FleetContext, m: ResultMessage, effects: Effects): void {
  const key: [string, string] = [m.satelliteId, m.commandId];
  const cmd = ctx.db.commands.get(key);
  if (!cmd) {
    effects.logs.push(() => ctx.log.warn({ satelliteId: m.satelliteId, commandId: m.commandId }, 'result for an unknown command ignored'));
    return;
  }
  effects.logs.push(() => ctx.log.info({ satelliteId: m.satelliteId, commandId: m.commandId, ok: m.ok }, 'command answered'));
  // The first answer counts; a duplicate repeats the stored outcome.
  if (cmd.status === 'ok' || cmd.status === 'failed') return;
  ctx.db.commands.put(key, {
    ...cmd,
    status: m.ok ? 'ok' : 'failed',
    answeredAt: m.at,
    duplicate: m.duplicate,
    result: m.result ?? null,
    error: m.error ?? null,
  });
  updateStatus(ctx, m.satelliteId, (s) => ({ ...s, lastSeenAt: seen(s, m.at) }));
  effects.changed.add(m.satelliteId);
}

/** Counts and notes a rejected message: fleet-wide, and on the satellite its topic names. */
export async function recordRejected(ctx: FleetContext, topicName: string, code: string, message: string): Promise<void> {
  const effects: Effects = { logs: [], sites: new Map(), changed: new Set() };
  await durable(ctx.db, () => applyRejected(ctx, topicName, code, message, ctx.now().toISOString(), effects));
  for (const log of effects.logs) log();
  if (effects.changed.size > 0) ctx.changes?.satellitesChanged(effects.changed);
}

/** Inside a transaction. */
function applyRejected(ctx: FleetContext, topicName: string, code: string, message: string, at: string, effects: Effects): void {
  const note: ErrorNote = { at, code, message: message.slice(0, 1000), topic: topicName.slice(0, 300) };
  const satelliteId = parseTopic(topicName)?.satelliteId;
  effects.logs.push(() => ctx.log.warn({ topic: note.topic, code, reason: note.message, satelliteId }, 'message rejected'));
  const summary = (ctx.db.meta.get(REJECTED_KEY) as RejectedSummary | undefined) ?? { count: 0, last: null };
  ctx.db.meta.put(REJECTED_KEY, { count: summary.count + 1, last: note });
  if (satelliteId && ctx.db.satellites.get(satelliteId)) {
    updateStatus(ctx, satelliteId, (s) => ({ ...s, errors: { count: s.errors.count + 1, last: note } }));
    effects.changed.add(satelliteId);
  }
}
