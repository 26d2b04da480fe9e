import { COMMAND_NAMES, type CommandArgs, type CommandName } from '../../protocol/index.ts';
import { COMMAND_ARGS } from './commands-schema.ts';
import { getCommand, issueCommand, listCommands } from '../fleet/commands.ts';
import type { ApiHandler } from './context.ts';
import { validateBody } from './http.ts';

const commandSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { enum: COMMAND_NAMES }, args: COMMAND_ARGS },
} as const;

/** POST /api/v1/satellites/:id/commands {name, args?} -> 202 {command} (args: {repair} with verify) */
export const postCommand: ApiHandler = async (r) => {
  const { name, args } = validateBody<{ name: CommandName; args?: CommandArgs }>(commandSchema, await r.body());
  const command = await issueCommand(r.fleet, r.params.id as string, name, args);
  return { status: 202, body: { command }, audit: `command ${name}${args?.repair ? ' (repair)' : ''} (${command.id}) sent to satellite ${r.params.id}` };
};

/** GET /api/v1/satellites/:id/commands -> {commands} */
export const getCommands: ApiHandler = (r) => ({ status: 200, body: { commands: listCommands(r.fleet, r.params.id as string) } });

/** GET /api/v1/satellites/:id/commands/:cid -> {command} */
export const getOneCommand: ApiHandler = (r) => ({
  status: 200,
  body: { command: getCommand(r.fleet, r.params.id as string, r.params.cid as string) },
});
