import { defer, type Teardown } from '../../test/helpers/cleanup.ts';
import { requireBinary } from '../../test/helpers/bin.ts';
import { spawnPeer } from '../../test/helpers/process.ts';

/** What one client got. */
export interface ClientResult {
  /** curl exited 0, the status was 200, and the body had the blob's size and digest. */
  ok: boolean;
  status: number;
  bytes: number;
  seconds: number;
  /** curl's error line, or what did not match. */
  error?: string;
}

export interface ClientRound {
  clients: ClientResult[];
  /** From spawning the first client to the exit of the last. */
  wallSec: number;
}

// curl streams the body into sha256sum (no client holds the blob); its result line goes to stderr.
// pipefail: a cut body makes curl, and so the client, fail.
const SCRIPT = 'set -o pipefail; curl -sS --max-time "$1" -w "%{stderr}RESULT %{http_code} %{size_download}\\n" "$2" | sha256sum';

/**
 * `count` concurrent GETs of one blob URL, each a separate `curl | sha256sum` process (the
 * clients' memory and CPU are never the server's), each checked against the blob's size and digest.
 * Never rejects for a bad download: the round reports it.
 */
export async function blobClients(t: Teardown, url: string, count: number, blob: { digest: string; size: number }, maxTimeSec: number): Promise<ClientRound> {
  const bash = requireBinary('bash');
  requireBinary('curl');
  requireBinary('sha256sum');
  const started = process.hrtime.bigint();
  const clients = await Promise.all(
    Array.from({ length: count }, async (): Promise<ClientResult> => {
      const t0 = process.hrtime.bigint();
      const proc = spawnPeer(bash, ['-c', SCRIPT, 'client', String(maxTimeSec), url], { name: 'curl | sha256sum', maxLines: 50 });
      defer(t, () => proc.stop(2000));
      const exit = await proc.exited;
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const lines = proc.lines();
      const result = lines.map((l) => /^RESULT (\d+) (\d+)/.exec(l)).find((m) => m !== null);
      const hex = lines.map((l) => /^([0-9a-f]{64}) {2}-$/.exec(l)).find((m) => m !== null)?.[1];
      const status = Number(result?.[1] ?? -1);
      const bytes = Number(result?.[2] ?? 0);
      const curlError = lines.find((l) => l.startsWith('curl: '));
      let error: string | undefined;
      if (exit.code !== 0) error = curlError ?? `exit ${exit.code ?? exit.signal}`;
      else if (status !== 200) error = `status ${status}`;
      else if (bytes !== blob.size) error = `${bytes} of ${blob.size} bytes`;
      else if (`sha256:${hex}` !== blob.digest) error = `body hashes to sha256:${hex}`;
      return { ok: error === undefined, status, bytes, seconds, ...(error ? { error } : {}) };
    }),
  );
  return { clients, wallSec: Number(process.hrtime.bigint() - started) / 1e9 };
}
