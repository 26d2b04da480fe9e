import { randomBytes } from 'node:crypto';
import { encodeMessage, topic, type CommandArgs, type CommandMessage, type CommandName } from '../../protocol/index.ts';
import { durable, under } from '../db/db.ts';
import type { CommandRecord } from '../db/records.ts';
import { gcError } from '../errors.ts';
import type { FleetContext } from './context.ts';

/**
 * Stores a command, then publishes it (QoS 1, not retained) with a fresh id. The satellite runs a
 * command id once, so publishing it again after a restart is safe.
 */
export async function issueCommand(ctx: FleetContext, satelliteId: string, name: CommandName, args?: CommandArgs): Promise<CommandRecord> {
  const [record] = await issueCommands(ctx, [satelliteId], name, args);
  if (!record) throw gcError('SATELLITE_UNKNOWN', `no satellite ${satelliteId}`);
  return record;
}

/**
 * One command to many satellites (a site, a group): stored in one transaction, then published
 * one by one. Ids of satellites that do not exist (deleted meanwhile) are skipped.
 */
export async function issueCommands(ctx: FleetContext, satelliteIds: string[], name: CommandName, args?: CommandArgs): Promise<CommandRecord[]> {
  checkArgs(name, args);
  const issuedAt = ctx.now().toISOString();
  const records = await durable(ctx.db, () => {
    const out: CommandRecord[] = [];
    for (const satelliteId of satelliteIds) {
      if (!ctx.db.satellites.get(satelliteId)) continue;
      const record: CommandRecord = {
        id: `c-${randomBytes(12).toString('base64url')}`,
        satelliteId,
        name,
        ...(args && Object.keys(args).length > 0 ? { args } : {}),
        issuedAt,
        status: 'pending',
        answeredAt: null,
        duplicate: null,
        result: null,
        error: null,
      };
      ctx.db.commands.put([satelliteId, record.id], record);
      out.push(record);
    }
    return out;
  });
  for (const record of records) {
    ctx.log.info({ satelliteId: record.satelliteId, commandId: record.id, name }, 'command issued');
    publishCommand(ctx, record);
  }
  return records;
}

/** Which commands take which arguments: `repair` only with verify. */
function checkArgs(name: CommandName, args: CommandArgs | undefined): void {
  if (args?.repair !== undefined && name !== 'verify') throw gcError('BODY_INVALID', `invalid request body:\n  /args/repair: only the verify command takes repair, not ${name}`);
}

function publishCommand(ctx: FleetContext, record: CommandRecord): void {
  const message: CommandMessage = {
    type: 'command',
    satelliteId: record.satelliteId,
    id: record.id,
    name: record.name,
    // Without arguments the message is what older satellites accept (their schema has no `args`).
    ...(record.args ? { args: record.args } : {}),
    issuedAt: record.issuedAt,
  };
  ctx.publisher.publish(topic(record.satelliteId, 'commands'), encodeMessage(message), { retain: false }).then(
    () => markSent(ctx, record).catch((err: unknown) => ctx.log.error({ err, commandId: record.id }, 'cannot mark command sent')),
    (err: unknown) => ctx.log.warn({ err, commandId: record.id }, 'command not published yet'),
  );
}

// Once the broker has it (PUBACK), delivery to an offline satellite is the broker's session's job.
async function markSent(ctx: FleetContext, record: CommandRecord): Promise<void> {
  await durable(ctx.db, () => {
    const key: [string, string] = [record.satelliteId, record.id];
    const current = ctx.db.commands.get(key);
    if (current?.status === 'pending') ctx.db.commands.put(key, { ...current, status: 'sent' });
  });
}

/** Commands the broker never acknowledged (Ground Control stopped first): published again on start. */
export function republishPendingCommands(ctx: FleetContext): number {
  let n = 0;
  for (const { value } of ctx.db.commands.getRange({})) {
    if (value.status !== 'pending') continue;
    publishCommand(ctx, value);
    n++;
  }
  return n;
}

// What a satellite older than a command (or than its arguments) publishes as an event when it
// refuses one: it sends no result, since its schema rejects the message before reading the id.
const REFUSED_AS_UNKNOWN = /^command rejected: invalid commands message:[\s\S]*(\/name: must be one of|unknown key "args")/;

/**
 * Inside a transaction, for an event from a satellite: when it is an older satellite's refusal of
 * a command it does not know, its open commands it cannot run (verify, or any with arguments)
 * end failed with COMMAND_UNSUPPORTED instead of staying "sent" forever. Returns how many.
 */
export function failRefusedCommands(ctx: FleetContext, satelliteId: string, eventCode: string, eventMessage: string, at: string): number {
  if (eventCode !== 'MESSAGE_INVALID' || !REFUSED_AS_UNKNOWN.test(eventMessage)) return 0;
  let n = 0;
  for (const { value } of ctx.db.commands.getRange(under(satelliteId))) {
    if ((value.status !== 'sent' && value.status !== 'pending') || (value.name !== 'verify' && !value.args)) continue;
    ctx.db.commands.put([satelliteId, value.id], {
      ...value,
      status: 'failed',
      answeredAt: at,
      duplicate: false,
      result: null,
      error: {
        code: 'COMMAND_UNSUPPORTED',
        message: `the satellite refused the command: its version does not know ${value.args ? `${value.name} with ${Object.keys(value.args).join(', ')}` : value.name} (upgrade it); it said: ${eventMessage.slice(0, 500)}`,
      },
    });
    n++;
  }
  return n;
}

export function listCommands(ctx: FleetContext, satelliteId: string): CommandRecord[] {
  if (!ctx.db.satellites.get(satelliteId)) throw gcError('SATELLITE_UNKNOWN', `no satellite ${satelliteId}`);
  return [...ctx.db.commands.getRange(under(satelliteId))].map(({ value }) => value).sort((a, b) => (a.issuedAt < b.issuedAt ? -1 : 1));
}

export function getCommand(ctx: FleetContext, satelliteId: string, commandId: string): CommandRecord {
  if (!ctx.db.satellites.get(satelliteId)) throw gcError('SATELLITE_UNKNOWN', `no satellite ${satelliteId}`);
  const cmd = ctx.db.commands.get([satelliteId, commandId]);
  if (!cmd) throw gcError('COMMAND_UNKNOWN', `no command ${commandId} for satellite ${satelliteId}`);
  return cmd;
}
