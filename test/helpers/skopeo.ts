import { execFile } from 'node:child_process';
import { requireBinary } from './bin.ts';

export interface SkopeoRunOptions {
  /** Kill skopeo after this long; default 120 s. */
  timeoutMs?: number;
}

export interface SkopeoCopyOptions extends SkopeoRunOptions {
  /** Copy every image of an index (`--all`). */
  all?: boolean;
  /** USER:PASSWORD for the source registry. */
  srcCreds?: string;
  /** USER:PASSWORD for the destination registry. */
  destCreds?: string;
  /** Inserted before the image names, e.g. ['--retry-times', '3', '--format', 'oci']. */
  extraArgs?: string[];
}

export interface SkopeoInspectOptions extends SkopeoRunOptions {
  /** The manifest (or index) bytes exactly as served. */
  raw?: boolean;
  /** The image config instead of the manifest (`--config`; combine with raw for its bytes). */
  config?: boolean;
  /** USER:PASSWORD */
  creds?: string;
  /** Skip the tags/list call (needed through a mirror that does not list tags). */
  noTags?: boolean;
}

/** `skopeo inspect` output (the fields tests use). */
export interface SkopeoInspectResult {
  Name: string;
  Digest: string;
  RepoTags?: string[];
  Architecture: string;
  Os: string;
  Variant?: string;
  Layers: string[];
  [key: string]: unknown;
}

// Neither the machine's registries.conf (mirrors, search registries: traffic off loopback) nor
// anyone's auth.json may change what a test does.
function isolatedEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CONTAINERS_REGISTRIES_CONF: '/dev/null',
    REGISTRY_AUTH_FILE: '/nonexistent/harbor-satellite-test/auth.json',
  };
}

const isDocker = (ref: string) => ref.startsWith('docker://');

/**
 * Runs skopeo with a trust-policy-free, isolated setup; resolves with stdout, rejects with the
 * command line and stderr.
 */
export function runSkopeo(args: string[], opts: SkopeoRunOptions & { binary: true }): Promise<Buffer>;
export function runSkopeo(args: string[], opts?: SkopeoRunOptions): Promise<string>;
export function runSkopeo(args: string[], opts: SkopeoRunOptions & { binary?: boolean } = {}): Promise<string | Buffer> {
  const bin = requireBinary('skopeo');
  const fullArgs = ['--insecure-policy', ...args];
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      fullArgs,
      {
        encoding: 'buffer',
        env: isolatedEnv(),
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        if (err) {
          const how = err.killed ? `killed after ${opts.timeoutMs ?? 120_000} ms` : `exit code ${String(err.code)}`;
          reject(new Error(`skopeo ${fullArgs.join(' ')} failed (${how}):\n${stderr.toString('utf8').trim()}`, { cause: err }));
          return;
        }
        resolve(opts.binary ? stdout : stdout.toString('utf8'));
      },
    );
  });
}

/**
 * `skopeo copy SRC DEST`. TLS verification is turned off per side that is docker:// (skopeo 1.9
 * rejects --src-tls-verify / --dest-tls-verify for other transports such as oci:).
 */
export async function skopeoCopy(src: string, dest: string, opts: SkopeoCopyOptions = {}): Promise<string> {
  const args = ['copy'];
  if (opts.all) args.push('--all');
  if (isDocker(src)) args.push('--src-tls-verify=false');
  if (isDocker(dest)) args.push('--dest-tls-verify=false');
  if (opts.srcCreds !== undefined) args.push('--src-creds', opts.srcCreds);
  if (opts.destCreds !== undefined) args.push('--dest-creds', opts.destCreds);
  args.push(...(opts.extraArgs ?? []), src, dest);
  return runSkopeo(args, opts);
}

/** `skopeo inspect --raw`: the exact manifest bytes. */
export function skopeoInspect(ref: string, opts: SkopeoInspectOptions & { raw: true }): Promise<Buffer>;
/** `skopeo inspect`: parsed summary (for an index: the image for this machine's platform). */
export function skopeoInspect(ref: string, opts?: SkopeoInspectOptions & { raw?: false }): Promise<SkopeoInspectResult>;
export async function skopeoInspect(ref: string, opts: SkopeoInspectOptions = {}): Promise<Buffer | SkopeoInspectResult> {
  const args = ['inspect'];
  if (isDocker(ref)) args.push('--tls-verify=false');
  if (opts.raw) args.push('--raw');
  if (opts.config) args.push('--config');
  if (opts.noTags) args.push('--no-tags');
  if (opts.creds !== undefined) args.push('--creds', opts.creds);
  args.push(ref);
  const out = await runSkopeo(args, { ...opts, binary: true });
  return opts.raw ? out : (JSON.parse(out.toString('utf8')) as SkopeoInspectResult);
}
