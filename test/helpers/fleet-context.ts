import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { loadGroundControlConfig } from '../../src/groundcontrol/config.ts';
import { openGcDb, type GcDb } from '../../src/groundcontrol/db/db.ts';
import type { FleetContext } from '../../src/groundcontrol/fleet/context.ts';
import { SecretBox } from '../../src/groundcontrol/secret-box.ts';
import type { Teardown } from './cleanup.ts';
import { makeTempDir } from './tmp.ts';

export type TestFleetContext = FleetContext & { sent: string[]; db: GcDb };

/**
 * Ground Control's fleet functions on a real LMDB in a temp dir, in this process: the publisher
 * records what would go to the broker (the broker itself is tested with the real process
 * elsewhere), so the tests can see exactly which satellites got a message. `now` is the clock the
 * fleet functions read (a test may move it).
 */
export async function testFleetContext(t: Teardown, opts: { dir?: string; now?: () => Date } = {}): Promise<TestFleetContext> {
  const dataDir = opts.dir ?? (await makeTempDir(t, 'hs-gc-index-'));
  const file = join(await makeTempDir(t, 'hs-gc-index-config-'), 'gc.json');
  await writeFile(file, JSON.stringify({ dataDir, upstream: { url: 'http://127.0.0.1:9' } }));
  const config = await loadGroundControlConfig({ file, env: {} });
  const db = openGcDb(join(dataDir, 'db'));
  t.after(() => db.root.close());
  const sent: string[] = [];
  return {
    db,
    config,
    log: pino({ level: 'silent' }),
    publisher: {
      connected: true,
      publish: async (name) => {
        sent.push(name);
      },
    },
    credentialsChanged: async () => undefined,
    now: opts.now ?? (() => new Date()),
    publicMqttUrl: 'mqtt://127.0.0.1:1883',
    siteKey: randomBytes(32),
    secrets: SecretBox.ephemeral(),
    sent,
  };
}
