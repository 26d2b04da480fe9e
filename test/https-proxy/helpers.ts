import { execFile } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { requireBinary } from '../helpers/bin.ts';
import type { Teardown } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { SiteCa } from '../../src/https-proxy/index.ts';

export const quietLog = pino({ level: 'silent' });

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with extra env; never rejects (the exit code is asserted). */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      requireBinary(cmd),
      args,
      { env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/**
 * A TLS origin on 127.0.0.1 with a certificate from its own CA (not the satellite's), for `names`;
 * answers every request with `origin says hi`. Returns its port, CA file and certificate fingerprint.
 */
export async function startTlsOrigin(t: Teardown, names: string[]): Promise<{ port: number; caFile: string; fingerprint: string }> {
  const dir = await makeTempDir(t, 'hs-origin-ca-');
  const ca = await SiteCa.open(dir, quietLog, 'Test origin CA');
  const first = ca.keyPairFor(names[0]!);
  const contexts = new Map(names.map((n) => [n, ca.contextFor(n)]));
  const server = createHttpsServer({ ...first, SNICallback: (name, cb) => cb(null, contexts.get(name) ?? contexts.get(names[0]!)) }, (req, res) => {
    req.resume();
    res.end('origin says hi\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { X509Certificate } = await import('node:crypto');
  const fingerprint = new X509Certificate(first.cert).fingerprint256;
  return { port: (server.address() as AddressInfo).port, caFile: `${dir}/ca.crt`, fingerprint };
}

/**
 * skopeo as a device behind HTTPS_PROXY, trusting only the site CA (copied alone into a cert dir:
 * containers/image takes a `.key` there as a client key): `pull(creds?)` copies `ref` into a fresh
 * OCI layout, with `--src-creds` when given; never rejects.
 */
export async function proxiedSkopeo(t: Teardown, proxyUrl: string, siteCa: string, ref: string): Promise<(creds?: string) => Promise<Run & { dest: string }>> {
  const certDir = await makeTempDir(t, 'hs-certs-');
  await copyFile(siteCa, join(certDir, 'ca.crt'));
  const env = { HTTPS_PROXY: proxyUrl, NO_PROXY: '', CONTAINERS_REGISTRIES_CONF: '/dev/null', REGISTRY_AUTH_FILE: '/nonexistent/harbor-satellite-test/auth.json' };
  return async (creds?: string) => {
    const dest = await makeTempDir(t, 'hs-pull-');
    const r = await run('skopeo', ['--insecure-policy', 'copy', '--src-cert-dir', certDir, ...(creds ? ['--src-creds', creds] : []), ref, `oci:${dest}:v1`], env);
    return { ...r, dest };
  };
}
