import { COMMAND_NAMES, type CommandArgs, type CommandName } from '../../protocol/index.ts';
import { COMMAND_ARGS } from './commands-schema.ts';
import { gcError } from '../errors.ts';
import { issueCommands } from '../fleet/commands.ts';
import { reachIds } from '../fleet/reach.ts';
import { SATELLITE_ID, SLUG, type ApiHandler } from './context.ts';
import { validateBody } from './http.ts';

const fanOutSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { enum: COMMAND_NAMES }, args: COMMAND_ARGS, satellite: SATELLITE_ID, site: SLUG, group: SLUG },
} as const;

type Target = { satellite: string } | { site: string } | { group: string };

function oneTarget(input: { satellite?: string; site?: string; group?: string }, where: string, code: 'BODY_INVALID' | 'QUERY_INVALID'): Target {
  const given = (['satellite', 'site', 'group'] as const).filter((k) => input[k] !== undefined);
  if (given.length !== 1) throw gcError(code, `invalid ${where}:\n  (root): give exactly one of "satellite", "site" or "group"`);
  const k = given[0] as 'satellite' | 'site' | 'group';
  return { [k]: input[k] as string } as Target;
}

function describe(t: Target): string {
  return 'satellite' in t ? `satellite ${t.satellite}` : 'site' in t ? `site ${t.site}` : `group ${t.group}`;
}

/**
 * POST /api/v1/commands {name, args?, satellite | site | group} -> 202 {commands, count}: the command to
 * every satellite of the target (read from the indexes), one record each with the satellite's
 * presence (`online`: false or null means queued on the broker until it connects); results per satellite
 * at GET /api/v1/satellites/:id/commands/:cid. A site or group without satellites: 202, count 0.
 */
export const postFanOutCommand: ApiHandler = async (r) => {
  const input = validateBody<{ name: CommandName; args?: CommandArgs; satellite?: string; site?: string; group?: string }>(fanOutSchema, await r.body());
  const t = oneTarget(input, 'request body', 'BODY_INVALID');
  if ('group' in t && !r.fleet.db.groups.get(t.group)) throw gcError('GROUP_UNKNOWN', `no group ${t.group}`);
  const commands = await issueCommands(r.fleet, reachIds(r.fleet, t), input.name, input.args);
  if ('satellite' in t && commands.length === 0) throw gcError('SATELLITE_UNKNOWN', `no satellite ${t.satellite}`);
  return {
    status: 202,
    // online: the satellite's presence now (false or null: the broker queues the command for it).
    body: { commands: commands.map((c) => ({ ...c, online: r.fleet.db.status.get(c.satelliteId)?.presence?.online ?? null })), count: commands.length },
    audit: `command ${input.name}${input.args?.repair ? ' (repair)' : ''} sent to ${describe(t)} (${commands.length} satellite(s))`,
    ...('satellite' in t ? { satelliteId: t.satellite } : {}),
  };
};
