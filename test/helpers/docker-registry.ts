import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBinary } from './bin.ts';
import { freePort } from './ports.ts';
import { spawnPeer, waitForHttp, waitForTcp, type ExitInfo, type PeerProcess } from './process.ts';
import { defer, type Teardown } from './cleanup.ts';
import { makeTempDir } from './tmp.ts';

export interface DockerRegistryOptions {
  /** htpasswd file (bcrypt entries, `htpasswd -B`): turns on basic auth. */
  htpasswdFile?: string;
  /** Bearer token auth; rootCertBundle is the PEM that signs the tokens. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** Pull-through cache of this upstream (distribution's proxy mode). Must be a loopback URL in tests. */
  proxyRemoteUrl?: string;
  proxyUsername?: string;
  proxyPassword?: string;
  /** storage.delete.enabled; default true. */
  deleteEnabled?: boolean;
  /** Serve HTTPS with this certificate chain and key (PEM files): http.tls in distribution's config. */
  tls?: { certificate: string; key: string };
  /** Print an access log line per request (combined log format, on stdout); default false. */
  accessLog?: boolean;
}

export interface DockerRegistry {
  /** http://127.0.0.1:PORT (https:// with opts.tls) */
  url: string;
  /** 127.0.0.1:PORT, for image references */
  host: string;
  port: number;
  /** Filesystem storage root (docker/registry/v2/... below it). */
  rootDir: string;
  configFile: string;
  proc: PeerProcess;
  /** Last lines of its output. */
  logs(): string;
  stop(): Promise<ExitInfo>;
}

// JSON strings are valid YAML double-quoted scalars.
const q = (s: string) => JSON.stringify(s);

function configYaml(rootDir: string, port: number, opts: DockerRegistryOptions): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  formatter: text',
    '  accesslog:',
    `    disabled: ${opts.accessLog ? 'false' : 'true'}`,
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(rootDir)}`,
    '  delete:',
    `    enabled: ${opts.deleteEnabled === false ? 'false' : 'true'}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(`127.0.0.1:${port}`)}`,
    // A fixed secret: without it the registry warns on every start.
    '  secret: "harbor-satellite-test-secret"',
    ...(opts.tls ? ['  tls:', `    certificate: ${q(opts.tls.certificate)}`, `    key: ${q(opts.tls.key)}`] : []),
    'health:',
    '  storagedriver:',
    '    enabled: false',
  ];
  if (opts.htpasswdFile && opts.token) throw new Error('docker-registry: choose htpasswdFile or token, not both');
  if (opts.htpasswdFile) {
    lines.push('auth:', '  htpasswd:', '    realm: "test-registry"', `    path: ${q(opts.htpasswdFile)}`);
  }
  if (opts.token) {
    const { realm, service, issuer, rootCertBundle } = opts.token;
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${q(realm)}`,
      `    service: ${q(service)}`,
      `    issuer: ${q(issuer)}`,
      `    rootcertbundle: ${q(rootCertBundle)}`,
    );
  }
  if (opts.proxyRemoteUrl) {
    lines.push('proxy:', `  remoteurl: ${q(opts.proxyRemoteUrl)}`);
    if (opts.proxyUsername !== undefined) lines.push(`  username: ${q(opts.proxyUsername)}`);
    if (opts.proxyPassword !== undefined) lines.push(`  password: ${q(opts.proxyPassword)}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Starts the Debian docker-registry (CNCF distribution 2.8) on a free 127.0.0.1 port with
 * filesystem storage in a temp dir; stopped and removed after the test. Resolves once GET /v2/
 * answers (401 counts as up).
 */
export async function startDockerRegistry(t: Teardown, opts: DockerRegistryOptions = {}): Promise<DockerRegistry> {
  const bin = requireBinary('docker-registry');
  const dir = await makeTempDir(t, 'hs-registry-');
  const rootDir = join(dir, 'storage');
  await mkdir(rootDir);
  const configFile = join(dir, 'config.yml');

  // freePort() can lose a race with another process; a few attempts make that harmless.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    await writeFile(configFile, configYaml(rootDir, port, opts));
    const proc = spawnPeer(bin, ['serve', configFile], { name: 'docker-registry' });
    // Registered before waiting, so a failed start is cleaned up too; runs before the temp dir goes.
    defer(t, () => proc.stop());
    const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    try {
      if (opts.tls) await waitForTcp(port, 15_000, proc);
      else await waitForHttp(`${url}/v2/`, 15_000, proc);
    } catch (err) {
      lastError = err;
      await proc.stop();
      if (/address already in use/.test(proc.output())) continue;
      throw err;
    }
    return {
      url,
      host: `127.0.0.1:${port}`,
      port,
      rootDir,
      configFile,
      proc,
      logs: () => proc.output(),
      stop: () => proc.stop(),
    };
  }
  throw lastError;
}
