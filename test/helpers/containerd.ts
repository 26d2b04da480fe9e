import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireBinary } from './bin.ts';
import { defer, type Teardown } from './cleanup.ts';
import { spawnPeer, type ExitInfo, type PeerProcess } from './process.ts';
import { makeTempDir, removeDir } from './tmp.ts';

export interface ContainerdOptions {
  /** containerd log level; default 'warn'. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface Containerd {
  /** gRPC unix socket, for `ctr --address`. */
  address: string;
  /** containerd's root (content store, snapshots, metadata). */
  root: string;
  /** 'overlayfs' when this machine supports it under root, else 'native'. */
  snapshotter: 'overlayfs' | 'native';
  proc: PeerProcess;
  logs(): string;
  /** `ctr images pull` with this daemon's snapshotter; see ctrPull. */
  pull(ref: string, opts: CtrPullOptions): Promise<string>;
  stop(): Promise<ExitInfo>;
}

export interface CtrOptions {
  /** Kill ctr after this long; default 120 s. */
  timeoutMs?: number;
  /** containerd namespace; default 'default'. */
  namespace?: string;
}

export interface CtrPullOptions extends CtrOptions {
  /** Directory holding `<host[:port]>/hosts.toml` files (see writeHostsToml). */
  hostsDir: string;
  /** `--plain-http`: the default scheme when no hosts.toml matches. */
  plainHttp?: boolean;
  /** e.g. 'linux/arm64'; default this machine's platform. */
  platform?: string;
  /** Fetch every platform of an index (no unpack). */
  allPlatforms?: boolean;
  /** USER[:PASSWORD] */
  user?: string;
  /** Snapshotter to unpack into; default ctr's ('overlayfs'). Containerd.pull passes the right one. */
  snapshotter?: string;
}

export interface HostsTomlMirror {
  /** e.g. http://127.0.0.1:PORT; must be loopback in tests. */
  url: string;
  capabilities: Array<'pull' | 'resolve' | 'push'>;
  skipVerify?: boolean;
  /** Extra request headers. */
  header?: Record<string, string>;
  /**
   * containerd >= 1.7 only ("2s"): 1.6 ignores the key. Written when given, so a test can show
   * what a satellite would write.
   */
  dialTimeout?: string;
}

export interface HostsTomlConfig {
  /** Where to go when every mirror fails; must be loopback in tests (see FIELD-NOTES). */
  server: string;
  mirrors: HostsTomlMirror[];
}

/** Runs ctr against a daemon; resolves with stdout, rejects with the command line and output. */
export function runCtr(address: string, args: string[], opts: CtrOptions = {}): Promise<string> {
  const bin = requireBinary('ctr');
  const fullArgs = ['--address', address, '--namespace', opts.namespace ?? 'default', ...args];
  const timeout = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      fullArgs,
      { maxBuffer: 64 * 1024 * 1024, timeout, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (err) {
          const how = err.killed ? `killed after ${timeout} ms` : `exit code ${String(err.code)}`;
          const out = `${stdout.trim()}\n${stderr.trim()}`.trim();
          reject(new Error(`ctr ${fullArgs.join(' ')} failed (${how}):\n${out}`, { cause: err }));
          return;
        }
        resolve(stdout);
      },
    );
  });
}

const toml = (s: string) => JSON.stringify(s); // JSON strings are valid TOML basic strings

function configToml(root: string, state: string, address: string, logLevel: string): string {
  return [
    'version = 2',
    `root = ${toml(root)}`,
    `state = ${toml(state)}`,
    // No Kubernetes here; the other snapshotters only log that they cannot start.
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",',
    '  "io.containerd.snapshotter.v1.zfs"]',
    '',
    '[grpc]',
    `  address = ${toml(address)}`,
    '[ttrpc]',
    `  address = ${toml(`${address}.ttrpc`)}`,
    '[debug]',
    `  level = ${toml(logLevel)}`,
    '',
    // Default is /opt/containerd, outside the test's directories.
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${toml(join(root, 'opt'))}`,
    '',
  ].join('\n');
}

/**
 * Starts a private containerd daemon (needs root) with its own root, state and socket, the CRI
 * plugin off; stopped and its directories removed after the test. Resolves once `ctr version`
 * answers.
 */
export async function startContainerd(t: Teardown, opts: ContainerdOptions = {}): Promise<Containerd> {
  const bin = requireBinary('containerd');
  requireBinary('ctr');
  if (process.getuid?.() !== 0) throw new Error('containerd test peer needs root: run the tests as root');

  const root = join(await makeTempDir(t, 'hs-containerd-'), 'root');
  await mkdir(root);
  // A unix socket path must stay under ~108 bytes, so state and socket live in a short /tmp dir.
  const short = await mkdtemp('/tmp/hs-ctd-');
  defer(t, () => removeDir(short));
  const state = join(short, 'state');
  await mkdir(state);
  const address = join(short, 'c.sock');
  if (address.length >= 100) throw new Error(`containerd socket path too long: ${address}`);
  const configFile = join(short, 'config.toml');
  await writeFile(configFile, configToml(root, state, address, opts.logLevel ?? 'warn'));

  const proc = spawnPeer(bin, ['--config', configFile], { name: 'containerd' });
  defer(t, () => proc.stop(10_000));

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitInfo) throw new Error(`containerd did not start: ${proc.describe()}`);
    try {
      await runCtr(address, ['version'], { timeoutMs: 5000 });
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`containerd did not answer within 20 s: ${proc.describe()}`, { cause: err });
      }
      await sleep(100);
    }
  }

  // The overlayfs plugin reports 'ok' only when overlay mounts work under root (not on overlay).
  const plugins = await runCtr(address, ['plugins', 'ls']);
  const overlay = plugins.split('\n').some((l) => /^io\.containerd\.snapshotter\.v1\s+overlayfs\s+\S+\s+ok\b/.test(l));
  const snapshotter = overlay ? 'overlayfs' : 'native';

  return {
    address,
    root,
    snapshotter,
    proc,
    logs: () => proc.output(),
    pull: (ref, pullOpts) => ctrPull(address, ref, { snapshotter, ...pullOpts }),
    stop: () => proc.stop(10_000),
  };
}

/**
 * `ctr images pull --hosts-dir DIR REF` (ctr 1.6 fetches in the client process, so the hosts.toml
 * files are read by ctr, not by the daemon). Resolves with the digest the image record points at:
 * for a multi-platform image that is the index digest.
 */
export async function ctrPull(address: string, ref: string, opts: CtrPullOptions): Promise<string> {
  const args = ['images', 'pull', '--hosts-dir', opts.hostsDir];
  if (opts.plainHttp) args.push('--plain-http');
  if (opts.platform) args.push('--platform', opts.platform);
  if (opts.allPlatforms) args.push('--all-platforms');
  if (opts.user !== undefined) args.push('--user', opts.user);
  if (opts.snapshotter) args.push('--snapshotter', opts.snapshotter);
  args.push(ref);
  await runCtr(address, args, opts);
  return ctrImageDigest(address, ref, opts);
}

/** Target digest of an image record (`ctr images ls`), or throws if there is none. */
export async function ctrImageDigest(address: string, ref: string, opts: CtrOptions = {}): Promise<string> {
  const out = await runCtr(address, ['images', 'ls', `name==${ref}`], opts);
  // Columns: REF TYPE DIGEST SIZE PLATFORMS LABELS, separated by runs of spaces.
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[0] !== ref) continue;
    const digest = cols.find((c) => /^sha256:[0-9a-f]{64}$/.test(c));
    if (digest) return digest;
  }
  throw new Error(`ctr images ls has no digest for ${ref}:\n${out}`);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function assertLoopback(what: string, url: string): void {
  const { hostname } = new URL(url);
  if (!LOOPBACK.has(hostname)) {
    throw new Error(`${what} ${url} is not loopback: tests keep every packet on 127.0.0.1`);
  }
}

/**
 * Writes `<hostsDir>/<hostname>/hosts.toml` (hostname as in the image reference, with its port),
 * mirrors tried in order, then server. Returns the file's path.
 */
export async function writeHostsToml(hostsDir: string, hostname: string, config: HostsTomlConfig): Promise<string> {
  assertLoopback('hosts.toml server', config.server);
  const lines = [`server = ${toml(config.server)}`, ''];
  for (const mirror of config.mirrors) {
    assertLoopback('hosts.toml mirror', mirror.url);
    lines.push(`[host.${toml(mirror.url)}]`);
    lines.push(`  capabilities = [${mirror.capabilities.map(toml).join(', ')}]`);
    if (mirror.skipVerify !== undefined) lines.push(`  skip_verify = ${mirror.skipVerify}`);
    if (mirror.dialTimeout !== undefined) lines.push(`  dial_timeout = ${toml(mirror.dialTimeout)}`);
    if (mirror.header) {
      lines.push(`  [host.${toml(mirror.url)}.header]`);
      for (const [k, v] of Object.entries(mirror.header)) lines.push(`    ${toml(k)} = ${toml(v)}`);
    }
    lines.push('');
  }
  const dir = join(hostsDir, hostname);
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'hosts.toml');
  await writeFile(file, lines.join('\n'));
  return file;
}
