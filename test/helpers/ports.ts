import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

// Ports the kernel hands out for port 0 (every test satellite's metrics listener, every client
// socket). A port chosen here, closed and bound a moment later by a peer, could be taken in between
// by such a listener (seen in CI: the registry port given to the metrics server). So pick outside.
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi)) return [lo!, hi!];
  } catch {
    // not Linux: the IANA dynamic range
  }
  return [49152, 65535];
}

const [ephemeralLo, ephemeralHi] = ephemeralRange();
const given = new Set<number>();

function candidate(): number {
  // 10000–(start of the ephemeral range), or above it when the range starts low.
  const lo = ephemeralLo > 12000 ? 10000 : ephemeralHi + 1;
  const hi = ephemeralLo > 12000 ? ephemeralLo - 1 : 65535;
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

async function bindable(port: number): Promise<boolean> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e))]);
  } catch {
    return false;
  }
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return true;
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, outside the kernel's ephemeral range and never
 * handed out before in this process. For peers that cannot listen on port 0 and report it; another
 * test process may still grab it first, so callers that can retry on "address in use" do.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = candidate();
    if (given.has(port)) continue;
    if (await bindable(port)) {
      given.add(port);
      return port;
    }
  }
  throw new Error('no free port on 127.0.0.1 outside the ephemeral range after 200 tries');
}
