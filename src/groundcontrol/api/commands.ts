import { COMMAND_NAMES, type CommandName } from '../../protocol/index.ts';
import { getCommand, issueCommand, listCommands } from '../fleet/commands.ts';
import type { ApiHandler } from './context.ts';
import { validateBody } from './http.ts';

const commandSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { enum: COMMAND_NAMES } },
} as const;

/** POST /api/v1/satellites/:id/commands {name} -> 202 {command} */
export const postCommand: ApiHandler = async (r) => {
  const { name } = validateBody<{ name: CommandName }>(commandSchema, await r.body());
  const command = await issueCommand(r.fleet, r.params.id as string, name);
  return { status: 202, body: { command }, audit: `command ${name} (${command.id}) sent to satellite ${r.params.id}` };
};

/** GET /api/v1/satellites/:id/commands -> {commands} */
export const getCommands: ApiHandler = (r) => ({ status: 200, body: { commands: listCommands(r.fleet, r.params.id as string) } });

/** GET /api/v1/satellites/:id/commands/:cid -> {command} */
export const getOneCommand: ApiHandler = (r) => ({
  status: 200,
  body: { command: getCommand(r.fleet, r.params.id as string, r.params.cid as string) },
});
