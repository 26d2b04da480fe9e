import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { DOWNSTREAM, TOPIC_PREFIX, UPSTREAM } from '../../protocol/index.ts';
import { writeFileAtomic } from '../../lib/fs-atomic.ts';
import type { GcDb } from '../db/db.ts';
import { mosquittoHash } from '../secrets.ts';

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
 * Keeps a Mosquitto password file in step with the satellites' credentials: Ground Control's own
 * user plus every registered satellite, in Mosquitto's own $7$ (PBKDF2-SHA512) format, written
 * atomically; then the reload command (e.g. `systemctl reload mosquitto`, i.e. SIGHUP) runs.
 */
export class MosquittoPasswordFile {
  readonly #db: GcDb;
  readonly #log: Logger;
  readonly #path: string;
  readonly #reload: string[] | undefined;
  readonly #gcEntry: string | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(opts: { db: GcDb; log: Logger; path: string; reloadCommand?: string[] | undefined; groundControl?: { username: string; password: string } | undefined }) {
    this.#db = opts.db;
    this.#log = opts.log;
    this.#path = opts.path;
    this.#reload = opts.reloadCommand;
    this.#gcEntry = opts.groundControl ? `${opts.groundControl.username}:${mosquittoHash(opts.groundControl.password)}` : undefined;
  }

  /** Rewrites the file (serialized: the last call writes the newest state) and reloads. */
  sync(): Promise<void> {
    const next = this.#chain.then(() => this.#write());
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #write(): Promise<void> {
    const lines = this.#gcEntry ? [this.#gcEntry] : [];
    for (const { value } of this.#db.satellites.getRange({})) {
      if (value.mqttPasswordHash) lines.push(`${value.id}:${value.mqttPasswordHash}`);
    }
    // Mosquitto re-reads it after dropping privileges. The hashes are of 256-bit random secrets.
    await writeFileAtomic(this.#path, `${lines.join('\n')}\n`, 0o644);
    if (this.#reload) {
      const [cmd, ...args] = this.#reload as [string, ...string[]];
      await run(cmd, args, { timeout: 10_000 });
    }
    this.#log.info({ file: this.#path, users: lines.length }, 'mosquitto password file written');
  }
}
