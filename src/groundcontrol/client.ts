/**
 * The light entry of the domain for API clients (the CLI's subcommands): no broker, no LMDB, so
 * `groundcontrol status` starts fast. The server side is in index.ts.
 */
export { ApiClient, ApiCallError } from './cli/client.ts';
export { runApiCommand, UsageError, type ApiCommandOptions } from './cli/commands.ts';
