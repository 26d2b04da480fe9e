import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mosquittoAcl, mosquittoFleetSettings } from '../../src/groundcontrol/broker/mosquitto.ts';
import { requireBinary } from './bin.ts';
import { defer, type Teardown } from './cleanup.ts';
import { freePort } from './ports.ts';
import { spawnPeer, waitForLine, type ExitInfo, type PeerProcess } from './process.ts';
import { makeTempDir } from './tmp.ts';

export interface MosquittoOptions {
  /** ACL file content (acl_file); none = every authenticated user may do anything. */
  acl?: string;
  /** password_file content (user:$7$... lines); required: anonymous access is off. */
  passwords: string;
}

export interface Mosquitto {
  port: number;
  url: string;
  /** The config directory: mosquitto.conf, passwd, acl, pid file (owned by the mosquitto user). */
  dir: string;
  passwordFile: string;
  aclFile: string;
  pidFile: string;
  proc: PeerProcess;
  logs(): string;
  stop(): Promise<ExitInfo>;
  /** Starts it again on the same port with the same persistence directory. */
  restart(): Promise<void>;
}

/**
 * Debian's mosquitto on 127.0.0.1 (a free port) with persistence, a password file, an ACL and
 * the documented large-fleet settings (mosquittoFleetSettings).
 * As root, mosquitto drops to the `mosquitto` user, so its directories are chowned to it.
 */
export async function startMosquitto(t: Teardown, opts: MosquittoOptions): Promise<Mosquitto> {
  const bin = requireBinary('mosquitto');
  const dir = await makeTempDir(t, 'hs-mosquitto-');
  const dataDir = join(dir, 'data');
  await mkdir(dataDir);
  const passwordFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  const pidFile = join(dir, 'mosquitto.pid');
  await writeFile(passwordFile, opts.passwords, { mode: 0o644 });
  await writeFile(aclFile, opts.acl ?? 'pattern readwrite #\n', { mode: 0o644 });
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${passwordFile}`,
      `acl_file ${aclFile}`,
      'persistence true',
      `persistence_location ${dataDir}/`,
      'autosave_interval 1',
      `pid_file ${pidFile}`,
      // stderr: mosquitto block-buffers stdout into a pipe.
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      // The documented settings for large fleets (docs/groundcontrol.md): every test runs them.
      mosquittoFleetSettings(),
    ].join('\n'),
  );
  if (process.getuid?.() === 0) {
    const { uid, gid } = await mosquittoUser();
    for (const p of [dir, dataDir, passwordFile, aclFile, conf]) await chown(p, uid, gid);
  }

  let proc!: PeerProcess;
  const stop = () => proc.stop(10_000);
  const start = async () => {
    proc = spawnPeer(bin, ['-c', conf], { name: 'mosquitto', maxLines: 2000 });
    // The listener is up once mosquitto says it is running.
    await waitForLine(proc, /mosquitto version \S+ running/, 10_000);
  };
  defer(t, () => proc && stop());
  await start();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    passwordFile,
    aclFile,
    pidFile,
    get proc() {
      return proc;
    },
    logs: () => proc.output(),
    stop,
    restart: start,
  };
}

async function mosquittoUser(): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('mosquitto:'));
  if (!line) throw new Error('no mosquitto user: install the Debian mosquitto package (scripts/install-test-peers.sh)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * mosquitto ready for Ground Control: the operator's first password file holding Ground Control's
 * user, made with mosquitto's own tool, and the documented ACL. Ground Control then owns the file.
 */
export async function startMosquittoForGroundControl(t: Teardown, gcUser: { username: string; password: string }): Promise<Mosquitto> {
  const seed = join(await makeTempDir(t, 'hs-passwd-'), 'passwd');
  await promisify(execFile)(requireBinary('mosquitto_passwd'), ['-c', '-b', seed, gcUser.username, gcUser.password]);
  return startMosquitto(t, { passwords: await readFile(seed, 'utf8'), acl: mosquittoAcl(gcUser.username) });
}

/** Ground Control's `broker` config for that mosquitto: keep its password file, reload with SIGHUP. */
export function externalBrokerConfig(mosq: Mosquitto, gcUser: { username: string; password: string }): Record<string, unknown> {
  return {
    url: mosq.url,
    username: gcUser.username,
    password: gcUser.password,
    passwordFile: mosq.passwordFile,
    reloadCommand: ['sh', '-c', `kill -HUP "$(cat '${mosq.pidFile}')"`],
  };
}
