import { execFile } from 'node:child_process';
import { chown, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinary } from '../helpers/bin.ts';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import { freePort } from '../helpers/ports.ts';
import { spawnPeer, waitForLine, type ExitInfo, type PeerProcess } from '../helpers/process.ts';
import { makeTempDir } from '../helpers/tmp.ts';

export interface BrokerOptions {
  /** `persistence true`: sessions and queued QoS 1 messages survive a restart. Default true. */
  persistence?: boolean;
  /** username -> password: writes a password_file and turns anonymous access off. */
  users?: Record<string, string>;
  /** PEM server certificate and key: the listener speaks TLS (mqtts://). */
  tls?: { cert: string; key: string };
}

export interface Broker {
  /** mqtt://127.0.0.1:PORT (mqtts:// with tls) */
  url: string;
  port: number;
  dir: string;
  proc(): PeerProcess;
  logs(): string;
  /** SIGTERM (mosquitto saves its database) and wait for the exit. */
  stop(): Promise<ExitInfo>;
  /** Starts it again on the same port, config and data. */
  start(): Promise<void>;
}

const run = promisify(execFile);

/**
 * Starts a private Debian mosquitto 2.0 on a free 127.0.0.1 port with its config, password file and
 * persistence in a temp dir; stopped after the test. As root mosquitto drops to user `mosquitto`,
 * so the dir is handed to that user.
 */
export async function startBroker(t: Teardown, opts: BrokerOptions = {}): Promise<Broker> {
  const bin = requireBinary('mosquitto');
  const dir = await makeTempDir(t, 'hs-mosquitto-');
  await mkdir(join(dir, 'data'));
  const configFile = join(dir, 'mosquitto.conf');
  const passwordFile = join(dir, 'passwd');
  if (opts.users) {
    const passwd = requireBinary('mosquitto_passwd');
    await writeFile(passwordFile, '');
    for (const [user, password] of Object.entries(opts.users)) await run(passwd, ['-b', passwordFile, user, password]);
  }

  if (opts.tls) {
    await writeFile(join(dir, 'server.crt'), opts.tls.cert);
    await writeFile(join(dir, 'server.key'), opts.tls.key, { mode: 0o600 });
  }

  let proc: PeerProcess | undefined;
  let port = 0;
  const launch = async () => {
    const p = spawnPeer(bin, ['-c', configFile], { name: 'mosquitto' });
    proc = p;
    defer(t, () => p.stop());
    await waitForLine(p, /mosquitto version \S+ running/, 10_000);
  };

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    port = await freePort();
    await writeFile(configFile, configText(port, dir, opts, opts.users ? passwordFile : undefined));
    await handToMosquitto(dir);
    try {
      await launch();
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      await proc?.stop();
      if (!/Address already in use/i.test(proc?.output() ?? '')) throw err;
    }
  }
  if (lastError) throw lastError;

  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    dir,
    proc: () => proc as PeerProcess,
    logs: () => proc?.output() ?? '',
    stop: async () => (proc ? proc.stop() : { code: 0, signal: null }),
    async start() {
      if (proc && !proc.exitInfo) throw new Error('mosquitto is still running');
      // The port was ours a moment ago; a restart may briefly race TIME_WAIT, so retry a few times.
      for (let attempt = 0; ; attempt++) {
        try {
          await launch();
          return;
        } catch (err) {
          if (attempt >= 20 || !/Address already in use/i.test(proc?.output() ?? '')) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}

function configText(port: number, dir: string, opts: BrokerOptions, passwordFile: string | undefined): string {
  const dataDir = join(dir, 'data');
  const lines = [
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${passwordFile ? 'false' : 'true'}`,
    `persistence ${opts.persistence === false ? 'false' : 'true'}`,
    `persistence_location ${dataDir}/`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    'max_queued_messages 100000',
  ];
  if (passwordFile) lines.push(`password_file ${passwordFile}`);
  if (opts.tls) lines.push(`certfile ${join(dir, 'server.crt')}`, `keyfile ${join(dir, 'server.key')}`);
  return `${lines.join('\n')}\n`;
}

/** When we are root, mosquitto runs as `mosquitto` and must own its files. */
async function handToMosquitto(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const passwd = await readFile('/etc/passwd', 'utf8');
  const entry = passwd.split('\n').find((l) => l.startsWith('mosquitto:'));
  if (!entry) return;
  const [, , uid, gid] = entry.split(':');
  const u = Number(uid);
  const g = Number(gid);
  const walk = async (d: string): Promise<void> => {
    await chown(d, u, g);
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else await chown(p, u, g);
    }
  };
  await walk(dir);
}
