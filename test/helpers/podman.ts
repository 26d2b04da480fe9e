import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './bin.ts';
import { makeTempDir, type Teardown } from './tmp.ts';

export interface PodmanOptions {
  /**
   * Directory podman sees as /etc/containers/registries.conf.d (drop-ins, e.g. the one
   * `satellite runtime apply --root DIR` wrote). Default: an empty one.
   */
  registriesConfD?: string;
  /** Text of /etc/containers/registries.conf; default: no search registries, nothing else. */
  registriesConf?: string;
}

export interface PodmanRunOptions {
  /** Kill podman after this long; default 60 s. */
  timeoutMs?: number;
}

/** `podman image inspect` output (the fields tests use). */
export interface PodmanImage {
  Id: string;
  /** The manifest digest it was pulled by. */
  Digest: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Os: string;
  [key: string]: unknown;
}

export interface Podman {
  /** The temp dir holding its storage, run root and config. */
  dir: string;
  /** Runs `podman GLOBAL-FLAGS ARGS`; resolves with stdout, rejects with the command line and stderr. */
  run(args: string[], opts?: PodmanRunOptions): Promise<string>;
  /** `podman pull -q REF`: resolves with the image ID. */
  pull(ref: string, opts?: PodmanRunOptions): Promise<string>;
  inspect(ref: string): Promise<PodmanImage>;
}

// Everything podman reads comes from the temp dir: storage (vfs, no overlay mounts), libpod state,
// containers.conf (no cgroup manager or journald events: nothing is run), policy.json and the
// registries config. /etc/containers is replaced by the temp one with a bind mount in a private
// mount namespace (unshare -m), so podman reads registries.conf and registries.conf.d/ at the
// paths it uses on a host, and the machine's own drop-ins (mirrors, aliases) and certs.d cannot
// change what a test does or send traffic off loopback. Needs root (CAP_SYS_ADMIN), as the
// tests already do for containerd.
const MOUNT_SCRIPT = 'mount --bind "$1" /etc/containers && mount --bind "$2" /etc/containers/registries.conf.d && shift 2 && exec "$@"';

/** A hermetic podman 4 for pulls: its own temp --root/--runroot/--tmpdir, config and /etc/containers. */
export async function startPodman(t: Teardown, opts: PodmanOptions = {}): Promise<Podman> {
  const podman = requireBinary('podman');
  const unshare = requireBinary('unshare');
  const dir = await makeTempDir(t, 'hs-podman-');
  const p = (...parts: string[]) => join(dir, ...parts);
  for (const sub of ['root', 'runroot', 'tmp', 'home', 'run', 'etc/registries.conf.d']) await mkdir(p(sub), { recursive: true, mode: 0o700 });
  const etc = p('etc');
  const confD = opts.registriesConfD ?? p('etc', 'registries.conf.d');
  await writeFile(join(etc, 'registries.conf'), opts.registriesConf ?? 'unqualified-search-registries = []\n');
  await writeFile(join(etc, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  // podman 4.3 insists on runroot and graphroot in the storage.conf it is given.
  await writeFile(p('storage.conf'), `[storage]\ndriver = "vfs"\nrunroot = ${JSON.stringify(p('runroot'))}\ngraphroot = ${JSON.stringify(p('root'))}\n`);
  await writeFile(p('auth.json'), '{"auths":{}}\n'); // podman refuses a REGISTRY_AUTH_FILE that does not exist
  await writeFile(p('containers.conf'), '[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n');

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: p('home'),
    XDG_CONFIG_HOME: p('home', '.config'),
    XDG_DATA_HOME: p('home', '.local', 'share'),
    XDG_RUNTIME_DIR: p('run'),
    TMPDIR: p('tmp'),
    CONTAINERS_CONF: p('containers.conf'),
    CONTAINERS_STORAGE_CONF: p('storage.conf'),
    REGISTRY_AUTH_FILE: p('auth.json'),
  };
  const globalFlags = [
    '--root', p('root'), '--runroot', p('runroot'), '--tmpdir', p('tmp'),
    '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none',
  ];

  const run = (args: string[], runOpts: PodmanRunOptions = {}): Promise<string> => {
    const timeout = runOpts.timeoutMs ?? 60_000;
    const argv = ['-m', '--propagation', 'private', '--', 'sh', '-c', MOUNT_SCRIPT, 'sh', etc, confD, podman, ...globalFlags, ...args];
    return new Promise((resolve, reject) => {
      execFile(unshare, argv, { env, timeout, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) {
          const how = err.killed ? `killed after ${timeout} ms` : `exit code ${String(err.code)}`;
          reject(new Error(`podman ${args.join(' ')} failed (${how}):\n${stderr.trim()}`, { cause: err }));
          return;
        }
        resolve(stdout);
      });
    });
  };
  return {
    dir,
    run,
    pull: async (ref, runOpts) => (await run(['pull', '-q', ref], runOpts)).trim(),
    inspect: async (ref) => {
      const [image] = JSON.parse(await run(['image', 'inspect', ref])) as PodmanImage[];
      if (!image) throw new Error(`podman image inspect ${ref}: no image`);
      return image;
    },
  };
}
