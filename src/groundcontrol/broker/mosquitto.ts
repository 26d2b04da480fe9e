import { execFile } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import type { Logger } from 'pino';
import { DOWNSTREAM, TOPIC_PREFIX, UPSTREAM } from '../../protocol/index.ts';
import type { GcDb } from '../db/db.ts';
import { gcError } from '../errors.ts';
import { mosquittoHash, randomSecret } from '../secrets.ts';

const run = promisify(execFile);

/**
 * The Mosquitto ACL equivalent to the embedded broker's rules (docs/groundcontrol.md shows it):
 * Ground Control's user reads and writes the whole tree, every other user (a satellite, whose
 * username is its id: %u) reads its own downstream and writes its own upstream topics.
 */
export function mosquittoAcl(groundControlUser = 'groundcontrol'): string {
  const lines = ['# Harbor Satellite: satellites use only their own topics (username = satellite id)'];
  for (const c of DOWNSTREAM) lines.push(`pattern read ${TOPIC_PREFIX}/satellites/%u/${c}`);
  for (const c of UPSTREAM) lines.push(`pattern write ${TOPIC_PREFIX}/satellites/%u/${c}`);
  lines.push('', '# Ground Control: the whole contract tree', `user ${groundControlUser}`, `topic readwrite ${TOPIC_PREFIX}/#`, '');
  return lines.join('\n');
}

/**
 * mosquitto.conf settings for a fleet of up to 10,000 satellites on one mosquitto 2.0, as
 * docs/groundcontrol.md documents them (bench/fleet and the tests run mosquitto with them).
 */
export function mosquittoFleetSettings(): string {
  return [
    '# Harbor Satellite: a fleet of up to 10,000 satellites on one mosquitto',
    "# Ground Control's one session receives every satellite's reports: a fleet-wide burst (every",
    '# satellite acknowledging a group change, or reconnecting after a restart) must fit its queue.',
    'max_queued_messages 100000',
    'max_queued_bytes 0',
    '# QoS 1 messages sent to a client before its PUBACK: Ground Control stores reports in batches.',
    'max_inflight_messages 100',
    '# One socket per satellite: no connection cap here; raise the open-files limit (LimitNOFILE).',
    'max_connections -1',
    'set_tcp_nodelay true',
    '',
  ].join('\n');
}

/**
 * Username of the reload probe: a name no satellite can have (ids are [a-z0-9-]), given a fresh
 * random password in every write. When mosquitto accepts it, it has read that version of the file.
 */
export const RELOAD_PROBE_USER = 'groundcontrol.reload-probe';

export interface PasswordFileOptions {
  db: GcDb;
  log: Logger;
  path: string;
  reloadCommand?: string[] | undefined;
  groundControl?: { username: string; password: string } | undefined;
  /** The broker to probe after a reload (Ground Control's broker.url); needs reloadCommand. */
  probeUrl?: string | undefined;
  /** How long to wait for mosquitto to take the new file (default 10 s). */
  probeTimeoutMs?: number;
}

/**
 * Keeps a Mosquitto password file in step with the satellites' credentials: Ground Control's own
 * user plus every registered satellite, in Mosquitto's own $7$ (PBKDF2-SHA512) format, written
 * atomically; then the reload command (e.g. `systemctl reload mosquitto`, i.e. SIGHUP) runs and,
 * with probeUrl, a login with a one-time user proves mosquitto has read the new file.
 *
 * Changes are batched: the entries live in memory (loaded from LMDB once), a change updates only
 * the satellites it names, and every sync() that arrives while a write and reload is under way is
 * served by one next write. At most one write and one reload run at a time, however many
 * registrations come in.
 */
export class MosquittoPasswordFile {
  readonly #db: GcDb;
  readonly #log: Logger;
  readonly #path: string;
  readonly #reload: string[] | undefined;
  readonly #gcEntry: string | undefined;
  readonly #probeUrl: string | undefined;
  readonly #probeTimeoutMs: number;
  readonly #entries = new Map<string, string>();
  #full = true;
  #dirty = new Set<string>();
  #chain: Promise<void> = Promise.resolve();
  #queued: Promise<void> | undefined;
  /** Writes done (each one file write and one reload): how many batches served the changes. */
  writes = 0;

  constructor(opts: PasswordFileOptions) {
    this.#db = opts.db;
    this.#log = opts.log;
    this.#path = opts.path;
    this.#reload = opts.reloadCommand;
    this.#gcEntry = opts.groundControl ? `${opts.groundControl.username}:${mosquittoHash(opts.groundControl.password)}` : undefined;
    this.#probeUrl = opts.reloadCommand ? opts.probeUrl : undefined;
    this.#probeTimeoutMs = opts.probeTimeoutMs ?? 10_000;
  }

  /**
   * Brings the file up to date for these satellites (all of them when omitted) and reloads.
   * Resolves once a write that includes the change has been reloaded (and, with a probe, taken).
   */
  sync(satelliteIds?: readonly string[]): Promise<void> {
    if (satelliteIds === undefined) this.#full = true;
    else for (const id of satelliteIds) this.#dirty.add(id);
    if (this.#queued) return this.#queued;
    const next = this.#chain.then(() => {
      this.#queued = undefined;
      return this.#write();
    });
    this.#queued = next;
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #write(): Promise<void> {
    const full = this.#full;
    const dirty = this.#dirty;
    this.#full = false;
    this.#dirty = new Set();
    if (full) {
      this.#entries.clear();
      for (const { value } of this.#db.satellites.getRange({})) {
        if (value.mqttPasswordHash) this.#entries.set(value.id, value.mqttPasswordHash);
      }
    } else {
      for (const id of dirty) {
        const hash = this.#db.satellites.get(id)?.mqttPasswordHash;
        if (hash) this.#entries.set(id, hash);
        else this.#entries.delete(id);
      }
    }
    const lines = this.#gcEntry ? [this.#gcEntry] : [];
    const probe = this.#probeUrl ? randomSecret() : undefined;
    if (probe) lines.push(`${RELOAD_PROBE_USER}:${mosquittoHash(probe)}`);
    for (const [id, hash] of this.#entries) lines.push(`${id}:${hash}`);
    const t0 = performance.now();
    let t1 = t0;
    let t2 = t0;
    try {
      // Mosquitto re-reads it after dropping privileges. The hashes are of 256-bit random secrets.
      // Atomic for mosquitto (rename), not fsynced: LMDB is the record, the file is rewritten
      // from it on every start.
      const tmp = `${this.#path}.${process.pid}.tmp`;
      await writeFile(tmp, `${lines.join('\n')}\n`, { mode: 0o644 });
      await rename(tmp, this.#path);
      t1 = performance.now();
      if (this.#reload) {
        const [cmd, ...args] = this.#reload as [string, ...string[]];
        await run(cmd, args, { timeout: 10_000 });
      }
      t2 = performance.now();
      if (probe) await this.#confirm(probe);
    } catch (err) {
      // The next sync writes everything again.
      this.#full = true;
      throw err;
    }
    this.writes++;
    const msg = 'mosquitto password file written';
    const ms = { writeMs: Math.round(t1 - t0), reloadMs: Math.round(t2 - t1), confirmMs: Math.round(performance.now() - t2) };
    if (full) this.#log.info({ file: this.#path, users: lines.length, ...ms }, msg);
    else this.#log.debug({ file: this.#path, users: lines.length, changed: dirty.size, ...ms }, msg);
  }

  /** Logs in as the probe user until mosquitto accepts this write's password. */
  async #confirm(password: string): Promise<void> {
    const deadline = Date.now() + this.#probeTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await mqtt.connectAsync(this.#probeUrl as string, {
          username: RELOAD_PROBE_USER,
          password,
          clientId: `${RELOAD_PROBE_USER}-${process.pid}`,
          clean: true,
          protocolVersion: 4,
          reconnectPeriod: 0,
          connectTimeout: 5000,
        }, false);
        await client.endAsync(true);
        return;
      } catch (err) {
        if (Date.now() >= deadline) {
          throw gcError('UNAVAILABLE', `mosquitto did not accept the new password file within ${this.#probeTimeoutMs} ms (reload command ${JSON.stringify(this.#reload)}): ${(err as Error).message}`, { cause: err });
        }
        await sleep(Math.min(5 + attempt * 5, 50));
      }
    }
  }
}
