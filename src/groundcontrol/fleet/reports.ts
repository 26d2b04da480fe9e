import { decodeMessage, parseTopic, type EventMessage, type PresenceMessage, type ResultMessage, type StateMessage } from '../../protocol/index.ts';
import { durable } from '../db/db.ts';
import type { ErrorNote, StatusRecord } from '../db/records.ts';
import type { FleetContext } from './context.ts';
import { reconcileDesired, satellitesAtSite } from './reconcile.ts';

const EVENTS_KEPT = 20;
export const REJECTED_KEY = 'rejected';

export interface RejectedSummary {
  count: number;
  last: ErrorNote | null;
}

export function emptyStatus(): StatusRecord {
  return { presence: null, state: null, lastSeenAt: null, events: { count: 0, last: [] }, errors: { count: 0, last: null } };
}

/**
 * Handles one message from a satellite. Anything malformed, oversized, on a topic we do not know
 * or about a satellite we do not know is rejected: logged, counted (fleet-wide and on the
 * satellite the topic names) and dropped. Never throws for bad input; a database fault does.
 */
export async function ingestMessage(ctx: FleetContext, topicName: string, payload: Buffer): Promise<void> {
  // An empty payload clears a retained message (e.g. after a satellite was deleted): not a report.
  if (payload.length === 0) return;
  let decoded;
  try {
    decoded = decodeMessage(topicName, payload);
  } catch (err) {
    await recordRejected(ctx, topicName, (err as { code?: string }).code ?? 'MESSAGE_INVALID', (err as Error).message);
    return;
  }
  const { satelliteId, message } = decoded;
  if (!ctx.db.satellites.get(satelliteId)) {
    await recordRejected(ctx, topicName, 'SATELLITE_UNKNOWN', `message from unknown satellite ${satelliteId}`);
    return;
  }
  switch (message.type) {
    case 'state': {
      const before = ctx.db.status.get(satelliteId)?.state?.peerUrl;
      await updateStatus(ctx, satelliteId, (s) => applyState(ctx, s, message));
      const after = ctx.db.status.get(satelliteId)?.state?.peerUrl;
      // A new (or gone) peer URL changes the site's blob-sharing membership.
      const site = ctx.db.satellites.get(satelliteId)?.site;
      if (before !== after && site) {
        ctx.log.info({ satelliteId, site, peerUrl: after ?? null }, 'peer URL changed; republishing site membership');
        await reconcileDesired(ctx, satellitesAtSite(ctx.db, site));
      }
      return;
    }
    case 'presence':
      return updateStatus(ctx, satelliteId, (s) => applyPresence(s, message, ctx.now().toISOString()));
    case 'event':
      return updateStatus(ctx, satelliteId, (s) => applyEvent(s, message));
    case 'result':
      return recordResult(ctx, message);
    default:
      await recordRejected(ctx, topicName, 'MESSAGE_INVALID', `unexpected ${message.type} message from a satellite`);
  }
}

async function updateStatus(ctx: FleetContext, id: string, apply: (s: StatusRecord) => StatusRecord | undefined): Promise<void> {
  await durable(ctx.db, () => {
    if (!ctx.db.satellites.get(id)) return;
    const next = apply(ctx.db.status.get(id) ?? emptyStatus());
    if (next) ctx.db.status.put(id, next);
  });
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

async function recordResult(ctx: FleetContext, m: ResultMessage): Promise<void> {
  const found = await durable(ctx.db, () => {
    const key: [string, string] = [m.satelliteId, m.commandId];
    const cmd = ctx.db.commands.get(key);
    if (!cmd) return false;
    // The first answer counts; a duplicate repeats the stored outcome.
    if (cmd.status === 'ok' || cmd.status === 'failed') return true;
    ctx.db.commands.put(key, {
      ...cmd,
      status: m.ok ? 'ok' : 'failed',
      answeredAt: m.at,
      duplicate: m.duplicate,
      result: m.result ?? null,
      error: m.error ?? null,
    });
    const s = ctx.db.status.get(m.satelliteId) ?? emptyStatus();
    ctx.db.status.put(m.satelliteId, { ...s, lastSeenAt: seen(s, m.at) });
    return true;
  });
  if (!found) ctx.log.warn({ satelliteId: m.satelliteId, commandId: m.commandId }, 'result for an unknown command ignored');
  else ctx.log.info({ satelliteId: m.satelliteId, commandId: m.commandId, ok: m.ok }, 'command answered');
}

/** Counts and notes a rejected message: fleet-wide, and on the satellite its topic names. */
export async function recordRejected(ctx: FleetContext, topicName: string, code: string, message: string): Promise<void> {
  const note: ErrorNote = { at: ctx.now().toISOString(), code, message: message.slice(0, 1000), topic: topicName.slice(0, 300) };
  const satelliteId = parseTopic(topicName)?.satelliteId;
  ctx.log.warn({ topic: note.topic, code, reason: note.message, satelliteId }, 'message rejected');
  await durable(ctx.db, () => {
    const summary = (ctx.db.meta.get(REJECTED_KEY) as RejectedSummary | undefined) ?? { count: 0, last: null };
    ctx.db.meta.put(REJECTED_KEY, { count: summary.count + 1, last: note });
    if (satelliteId && ctx.db.satellites.get(satelliteId)) {
      const s = ctx.db.status.get(satelliteId) ?? emptyStatus();
      ctx.db.status.put(satelliteId, { ...s, errors: { count: s.errors.count + 1, last: note } });
    }
  });
}
