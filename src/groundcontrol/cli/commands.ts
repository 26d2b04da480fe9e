import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandRecord, GroupRecord, TokenRecord } from '../db/records.ts';
import type { VerifyResult } from '../../protocol/index.ts';
import type { SatelliteView } from '../fleet/satellites.ts';
import type { FleetStatus, ImageFailure, StatusPage } from '../fleet/status.ts';
import { satelliteText, type SatelliteShow } from './show.ts';
import { ApiCallError, type ApiClient } from './client.ts';
import { age, formatTable } from './table.ts';
import { EventsUsageError, runEvents } from './events.ts';

export interface ApiCommandOptions {
  json: boolean;
  site?: string | undefined;
  group?: string | undefined;
  state?: string | undefined;
  limit?: string | undefined;
  after?: string | undefined;
  /** Every page, not just one. */
  all?: boolean | undefined;
  satellite?: string | undefined;
  ttl?: string | undefined;
  file?: string | undefined;
  wait?: string | undefined;
  /** verify: quarantine bad blobs and re-sync their images. */
  repair?: boolean | undefined;
  follow?: boolean | undefined;
  type?: string | undefined;
  since?: string | undefined;
  /** Ends a command that runs until interrupted (events --follow). */
  signal?: AbortSignal | undefined;
}

export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

/** Raised for wrong usage of a subcommand (exit 2). */
export class UsageError extends Error {}

type Tokenish = { token: string; tokenId: string; satelliteId: string | null; site: string | null; expiresAt: string };

function ttlOf(opts: ApiCommandOptions): number | undefined {
  if (opts.ttl === undefined) return undefined;
  const n = Number(opts.ttl);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--ttl must be a positive number of seconds, not ${opts.ttl}`);
  return n;
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`missing ${what}`);
  return value;
}

function target(group: string, opts: ApiCommandOptions): { group: string; satellite: string } | { group: string; site: string } {
  if ((opts.satellite === undefined) === (opts.site === undefined)) throw new UsageError('give exactly one of --satellite ID or --site SITE');
  return opts.satellite !== undefined ? { group, satellite: opts.satellite } : { group, site: opts.site as string };
}

/**
 * Runs one API subcommand and prints a table (or, with --json, the API's JSON answer).
 * Returns the exit status.
 */
export async function runApiCommand(api: ApiClient, args: string[], opts: ApiCommandOptions, io: CliOutput): Promise<number> {
  const [cmd, sub, arg, arg2] = args;
  const print = (doc: unknown, text: () => string) => io.out(opts.json ? JSON.stringify(doc, null, 2) : text());
  const tokenLines = (t: Tokenish) => [`registration token: ${t.token}`, `token id:           ${t.tokenId}`, `expires:            ${t.expiresAt}`].join('\n');
  const key = `${cmd ?? ''} ${sub ?? ''}`.trim();
  switch (cmd === 'satellite' || cmd === 'group' || cmd === 'token' ? key : cmd) {
    case 'satellite add': {
      const doc = await api.call<{ satellite: SatelliteView; registration: Tokenish }>('POST', '/api/v1/satellites', {
        name: need(arg, 'NAME'),
        ...(opts.site ? { site: opts.site } : {}),
        ...(ttlOf(opts) ? { ttlSeconds: ttlOf(opts) } : {}),
      });
      print(doc, () => `${formatTable(['ID', 'NAME', 'SITE'], [[doc.satellite.id, doc.satellite.name, doc.satellite.site]])}\n${tokenLines(doc.registration)}`);
      return 0;
    }
    case 'satellite ls': {
      const doc = await pages<{ satellites: SatelliteView[]; page: StatusPage }>(api, '/api/v1/satellites', opts);
      print(doc, () =>
        withNext(formatTable(['ID', 'NAME', 'SITE', 'REGISTERED', 'GROUPS'], doc.satellites.map((s) => [s.id, s.name, s.site, s.registeredAt ? age(s.registeredAt) : 'no', s.groups.join(',')])), doc.page),
      );
      return 0;
    }
    case 'satellite show': {
      const doc = await api.call<{ satellite: SatelliteShow }>('GET', `/api/v1/satellites/${encodeURIComponent(need(arg, 'ID'))}`);
      print(doc, () => satelliteText(doc.satellite));
      return 0;
    }
    case 'satellite rm': {
      const doc = await api.call('DELETE', `/api/v1/satellites/${encodeURIComponent(need(arg, 'ID'))}`);
      print(doc, () => `deleted ${arg}`);
      return 0;
    }
    case 'satellite token': {
      const ttl = ttlOf(opts);
      const doc = await api.call<Tokenish>('POST', `/api/v1/satellites/${encodeURIComponent(need(arg, 'ID'))}/tokens`, ttl ? { ttlSeconds: ttl } : {});
      print(doc, () => tokenLines(doc));
      return 0;
    }
    case 'satellite site': {
      const site = need(arg2, 'SITE (or - for none)');
      const doc = await api.call<{ satellite: SatelliteView }>('PATCH', `/api/v1/satellites/${encodeURIComponent(need(arg, 'ID'))}`, { site: site === '-' ? null : site });
      print(doc, () => `${doc.satellite.id} is at site ${doc.satellite.site ?? '(none)'}`);
      return 0;
    }
    case 'group apply': {
      const file = need(opts.file, '-f FILE');
      let body: unknown;
      try {
        body = JSON.parse(await readFile(file, 'utf8'));
      } catch (err) {
        throw new UsageError(`cannot read group file ${file}: ${(err as Error).message}`);
      }
      const doc = await api.call<{ group: GroupRecord; created: boolean; changed: boolean } & Published>('POST', '/api/v1/groups', body);
      const what = doc.created ? 'created' : doc.changed ? 'updated' : 'unchanged';
      print(doc, () => `group ${doc.group.name} ${what}; ${publishedText(doc)}`);
      return 0;
    }
    case 'group ls': {
      const doc = await api.call<{ groups: Array<GroupRecord & { satellites: string[]; sites: string[] }> }>('GET', '/api/v1/groups');
      print(doc, () =>
        formatTable(
          ['NAME', 'IMAGES', 'PLATFORMS', 'SATELLITES', 'SITES', 'UPDATED'],
          doc.groups.map((g) => [g.name, g.images.length, g.platforms?.join(','), g.satellites.join(','), g.sites.join(','), age(g.updatedAt)]),
        ),
      );
      return 0;
    }
    case 'group show': {
      io.out(JSON.stringify(await api.call('GET', `/api/v1/groups/${encodeURIComponent(need(arg, 'NAME'))}`), null, 2));
      return 0;
    }
    case 'group rm': {
      const doc = await api.call<Published>('DELETE', `/api/v1/groups/${encodeURIComponent(need(arg, 'NAME'))}`);
      print(doc, () => `deleted group ${arg}; ${publishedText(doc)}`);
      return 0;
    }
    case 'assign': {
      const doc = await api.call<Published>('POST', '/api/v1/assignments', target(need(sub, 'GROUP'), opts));
      print(doc, () => `assigned ${sub}; ${publishedText(doc)}`);
      return 0;
    }
    case 'unassign': {
      const q = new URLSearchParams(target(need(sub, 'GROUP'), opts));
      const doc = await api.call<Published>('DELETE', `/api/v1/assignments?${q}`);
      print(doc, () => `unassigned ${sub}; ${publishedText(doc)}`);
      return 0;
    }
    case 'token create': {
      const ttl = ttlOf(opts);
      const doc = await api.call<Tokenish>('POST', '/api/v1/tokens', { ...(opts.site ? { site: opts.site } : {}), ...(ttl ? { ttlSeconds: ttl } : {}) });
      print(doc, () => `${tokenLines(doc)}\nsite:               ${doc.site ?? '(none)'}`);
      return 0;
    }
    case 'token ls': {
      const doc = await api.call<{ tokens: TokenRecord[] }>('GET', '/api/v1/tokens');
      print(doc, () => formatTable(['ID', 'SATELLITE', 'SITE', 'EXPIRES', 'USED'], doc.tokens.map((t) => [t.id, t.satelliteId, t.site, t.expiresAt, t.usedAt ? `${age(t.usedAt)} by ${t.usedBy}` : 'no'])));
      return 0;
    }
    case 'status': {
      const doc = await pages<FleetStatus>(api, '/api/v1/status', opts);
      print(doc, () => withNext(statusText(doc), doc.page));
      return 0;
    }
    case 'command':
      return runCommand(api, need(sub, 'ID'), need(arg, 'NAME'), opts, io);
    case 'events':
      try {
        return await runEvents(api, opts, io.out, io.err);
      } catch (err) {
        if (err instanceof EventsUsageError) throw new UsageError(err.message);
        throw err;
      }
    case 'commands': {
      const doc = await api.call<{ commands: CommandRecord[] }>('GET', `/api/v1/satellites/${encodeURIComponent(need(sub, 'ID'))}/commands`);
      print(doc, () => formatTable(['ID', 'NAME', 'STATUS', 'ISSUED', 'ANSWERED'], doc.commands.map((c) => [c.id, c.name, c.status, age(c.issuedAt), age(c.answeredAt)])));
      return 0;
    }
    default:
      throw new UsageError(`unknown command: ${args.join(' ')}`);
  }
}

/**
 * GET of a paged list with the filter options; with --all, every page, the rows concatenated
 * into the first answer (page.next then null).
 */
async function pages<T extends { satellites: unknown[]; page: StatusPage }>(api: ApiClient, path: string, opts: ApiCommandOptions): Promise<T> {
  const q = new URLSearchParams();
  for (const key of ['site', 'group', 'state', 'limit', 'after'] as const) if (opts[key] !== undefined) q.set(key, opts[key] as string);
  if (opts.all && opts.limit === undefined) q.set('limit', '1000');
  const get = () => api.call<T>('GET', `${path}${q.size > 0 ? `?${q}` : ''}`);
  const doc = await get();
  while (opts.all && doc.page.next !== null) {
    q.set('after', doc.page.next);
    const more = await get();
    doc.satellites.push(...more.satellites);
    doc.page = more.page;
  }
  return doc;
}

function withNext(text: string, page: StatusPage): string {
  return page.next === null ? text : `${text}\nmore: --after ${page.next}`;
}

function statusText(doc: FleetStatus): string {
  const head = `${doc.counts.satellites} satellite(s): ${doc.counts.online} online, ${doc.counts.offline} offline, ${doc.counts.inSync} in sync, ${doc.counts.failed ?? 0} with failed images; broker ${doc.broker.connected ? 'connected' : 'DISCONNECTED'}; ${doc.rejected.count} message(s) rejected`;
  const rows = doc.satellites.map((s) => [
    s.id,
    s.name,
    s.site,
    s.online === null ? '?' : s.online ? 'online' : 'offline',
    s.desiredGeneration,
    s.acknowledgedGeneration,
    s.appliedGeneration,
    age(s.lastSeenAt),
    diskText(s.state?.disk),
    s.state ? `${s.state.images.ok}/${s.state.images.pending}/${s.state.images.failed}` : '-',
    s.state?.download ? humanBytes(s.state.download.bytesRemaining) : '-',
    s.state?.cacheHitRatio == null ? '-' : `${Math.round(s.state.cacheHitRatio * 100)}%`,
    s.errors.count > 0 ? `${s.errors.count} (${s.errors.last?.code})` : 0,
    failureText(s.failures?.[0]),
  ]);
  return `${head}\n${formatTable(['ID', 'NAME', 'SITE', 'PRESENCE', 'DESIRED', 'ACKED', 'APPLIED', 'LAST SEEN', 'DISK', 'OK/PEND/FAIL', 'TO DOWNLOAD', 'CACHE HITS', 'REJECTED', 'LAST FAILURE'], rows)}`;
}

function failureText(f: ImageFailure | undefined): string | undefined {
  if (!f) return undefined;
  const why = [f.code, f.reason].filter(Boolean).join(': ');
  return `${f.image}${why ? ` ${why.slice(0, 80)}` : ''}`;
}

/** "ok 1.2G free", "LOW 40M free", "READ-ONLY"; "-" before the satellite reported its disk. */
function diskText(disk: { condition?: string; freeBytes?: number } | undefined): string {
  if (!disk?.condition) return '-';
  if (disk.condition === 'read-only') return 'READ-ONLY';
  const free = disk.freeBytes === undefined ? '' : ` ${humanBytes(disk.freeBytes)} free`;
  return `${disk.condition === 'low' ? 'LOW' : 'ok'}${free}`;
}

function humanBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)}${units[i]}`;
}

async function runCommand(api: ApiClient, id: string, name: string, opts: ApiCommandOptions, io: CliOutput): Promise<number> {
  const path = `/api/v1/satellites/${encodeURIComponent(id)}/commands`;
  if (opts.repair && name !== 'verify') throw new UsageError(`--repair goes with the verify command, not ${name}`);
  let { command } = await api.call<{ command: CommandRecord }>('POST', path, { name, ...(opts.repair ? { args: { repair: true } } : {}) });
  const waitSeconds = opts.wait === undefined ? 0 : Number(opts.wait);
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) throw new UsageError(`--wait must be seconds, not ${opts.wait}`);
  const deadline = Date.now() + waitSeconds * 1000;
  while ((command.status === 'pending' || command.status === 'sent') && Date.now() < deadline) {
    await sleep(250);
    ({ command } = await api.call<{ command: CommandRecord }>('GET', `${path}/${command.id}`));
  }
  io.out(opts.json ? JSON.stringify({ command }, null, 2) : formatTable(['ID', 'SATELLITE', 'NAME', 'STATUS'], [[command.id, id, command.name, command.status]]) + answerText(command));
  return command.status === 'failed' ? 1 : 0;
}

/** Below the table: the error of a failed command, the counts of a verify. */
function answerText(c: CommandRecord): string {
  if (c.error) return `\nerror: ${c.error.code}: ${c.error.message}`;
  const r = c.result as Partial<VerifyResult> | null;
  if (c.name !== 'verify' || !r || r.blobsChecked === undefined) return '';
  const lines = [
    `\nverified ${r.blobsChecked} blob(s), ${r.bytesChecked} bytes: ${r.corrupt} corrupt, ${r.missing} missing, ${r.imagesAffected} image(s) affected, ${r.repaired} repaired`,
  ];
  for (const image of r.images ?? []) lines.push(`  affected: ${image}`);
  return lines.join('\n');
}

export { ApiCallError };

/** What group and assignment changes answer: the satellites that got a new desired state. */
interface Published {
  published: string[];
  /** Set when nothing could be published (e.g. Ground Control has no upstream.url). */
  notPublished?: string;
}

function publishedText(doc: Published): string {
  return doc.notPublished ? `not published: ${doc.notPublished}` : `new desired state for ${doc.published.length} satellite(s)`;
}
