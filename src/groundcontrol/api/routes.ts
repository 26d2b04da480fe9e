import { REGISTER_PATH } from '../../protocol/index.ts';
import type { ApiHandler } from './context.ts';
import { deleteAssignment, getAssignments, postAssignment } from './assignments.ts';
import { getCommands, getOneCommand, postCommand } from './commands.ts';
import { postFanOutCommand } from './command-targets.ts';
import { getGroupReach, getGroups, getOneGroup, postGroup, putGroup, removeGroup } from './groups.ts';
import { postRegister } from './register.ts';
import { getSatellite, getSatellites, patchSatellite, postSatellite, postSatelliteToken, removeSatellite } from './satellites.ts';
import { getEvents } from './events.ts';
import { getLive } from './live.ts';
import { getSeries } from './series.ts';
import { deleteSession, getSession, postSession } from './session.ts';
import { getHealth, getMetrics, getStatus } from './status.ts';
import { getTokens, postToken, removeToken } from './tokens.ts';

export interface Route {
  pattern: RegExp;
  methods: Partial<Record<string, ApiHandler>>;
  /**
   * No admin token: the handler authenticates by itself (registration, console login) or needs
   * none (health). A list names the public methods only.
   */
  public?: boolean | string[];
  /** The handler counts its refusals (RegisterGuard): the server logs them at debug, not one info line each. */
  aggregatesRejections?: boolean;
}

const ID = '(?<id>[a-z0-9][a-z0-9-]{0,62})';
const NAME = '(?<name>[a-z0-9][a-z0-9._-]{0,62})';
const path = (p: string) => new RegExp(`^/api/v1${p}/?$`);

/** Every endpoint of the API. */
export const ROUTES: Route[] = [
  { pattern: path('/healthz'), methods: { GET: getHealth }, public: true },
  { pattern: new RegExp(`^${REGISTER_PATH}/?$`), methods: { POST: postRegister }, public: true, aggregatesRejections: true },
  { pattern: path('/session'), methods: { GET: getSession, POST: postSession, DELETE: deleteSession }, public: ['POST'] },
  { pattern: path('/status'), methods: { GET: getStatus } },
  { pattern: path('/events'), methods: { GET: getEvents } },
  { pattern: path('/live'), methods: { GET: getLive } },
  { pattern: path('/metrics'), methods: { GET: getMetrics } },
  { pattern: path('/satellites'), methods: { GET: getSatellites, POST: postSatellite } },
  { pattern: path(`/satellites/${ID}`), methods: { GET: getSatellite, PATCH: patchSatellite, DELETE: removeSatellite } },
  { pattern: path(`/satellites/${ID}/tokens`), methods: { POST: postSatelliteToken } },
  { pattern: path(`/satellites/${ID}/series`), methods: { GET: getSeries } },
  { pattern: path(`/satellites/${ID}/commands`), methods: { GET: getCommands, POST: postCommand } },
  { pattern: path(`/satellites/${ID}/commands/(?<cid>[A-Za-z0-9_-]{1,64})`), methods: { GET: getOneCommand } },
  { pattern: path('/groups'), methods: { GET: getGroups, POST: postGroup } },
  { pattern: path(`/groups/${NAME}`), methods: { GET: getOneGroup, PUT: putGroup, DELETE: removeGroup } },
  { pattern: path(`/groups/${NAME}/reach`), methods: { GET: getGroupReach } },
  { pattern: path('/commands'), methods: { POST: postFanOutCommand } },
  { pattern: path('/assignments'), methods: { GET: getAssignments, POST: postAssignment, DELETE: deleteAssignment } },
  { pattern: path('/tokens'), methods: { GET: getTokens, POST: postToken } },
  { pattern: path('/tokens/(?<id>[0-9a-f]{12})'), methods: { DELETE: removeToken } },
];

/** True when `method` on the route needs no admin token. */
export function isPublic(route: Route, method: string): boolean {
  return Array.isArray(route.public) ? route.public.includes(method) : route.public === true;
}

export function matchRoute(pathname: string): { route: Route; params: Record<string, string> } | undefined {
  for (const route of ROUTES) {
    const m = route.pattern.exec(pathname);
    if (m) return { route, params: { ...(m.groups ?? {}) } };
  }
  return undefined;
}
