import { BlockList, isIP } from 'node:net';
import { SatelliteError } from '../lib/errors.ts';

/** `host:port` of a CONNECT request line: lowercased host (IPv6 without brackets), port (default 443). */
export interface Authority {
  host: string;
  port: number;
  /** `host` for port 443, else `host:port` (the form image references and containerd's ?ns= use). */
  key: string;
}

/** Parses a CONNECT target or a configured `host[:port]`; undefined when malformed. */
export function parseAuthority(value: string): Authority | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::([0-9]{1,5}))?$/.exec(value);
  if (!m) return undefined;
  const host = (m[1] ?? m[2]!).toLowerCase();
  const port = m[3] === undefined ? 443 : Number(m[3]);
  if (port < 1 || port > 65535 || host.length > 253) return undefined;
  const shown = host.includes(':') ? `[${host}]` : host;
  return { host, port, key: port === 443 ? shown : `${shown}:${port}` };
}

/** A BlockList of CIDRs (`a.b.c.d/n`, `x::/n`); a bad entry is a config error naming it. */
export function cidrList(cidrs: readonly string[], what: string): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr = '', bits = ''] = cidr.split('/');
    const family = isIP(addr);
    const prefix = Number(bits);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
      throw new SatelliteError('CONFIG_INVALID', `${what}: ${JSON.stringify(cidr)} is not a CIDR`);
    }
    list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** Whether `address` (as a socket reports it, IPv4-mapped IPv6 included) is in `list`. */
export function inList(list: BlockList, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const addr = mapped ? mapped[1]! : address;
  const family = isIP(addr);
  if (family === 0) return false;
  return list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
}

/** Loopback, unspecified and link-local (cloud metadata) addresses: not tunnel targets by default. */
export const PRIVATE_TARGETS = cidrList(['127.0.0.0/8', '0.0.0.0/8', '169.254.0.0/16', '::1/128', '::/128', 'fe80::/10'], 'built-in');
