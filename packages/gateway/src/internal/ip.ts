/**
 * Client addresses: who sent a request when proxies stand in front of the gateway, and the network
 * prefix a client is counted under (Aperture's freebies key on the /24 or /48, so one host cannot
 * collect a fresh allowance from each address of its subnet).
 *
 * @example
 * const trusted = ipList(['10.0.0.0/8']);
 * clientAddress('10.1.2.3', '203.0.113.9, 10.0.0.7', trusted); // '203.0.113.9'
 * maskedPrefix('203.0.113.9'); // '203.0.113.0/24'
 */
import { BlockList, isIP, isIPv4 } from 'node:net';

/** Tests an address against a list of IPs and CIDR ranges (config `trustedproxies`, `blocklist`). */
export type IpList = (address: string) => boolean;

/**
 * An IPv4 address written as IPv6 (`::ffff:1.2.3.4`, how dual-stack sockets report v4 peers) as plain IPv4.
 *
 * @example
 * plainAddress('::ffff:127.0.0.1'); // '127.0.0.1'
 */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address;
}

/**
 * A matcher for entries such as `127.0.0.1`, `10.0.0.0/8` or `fd00::/8` (already checked by Config).
 *
 * @example
 * ipList(['127.0.0.1'])('::ffff:127.0.0.1'); // true
 */
export function ipList(entries: readonly string[]): IpList {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = isIPv4(address) ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return (address) => {
    const plain = plainAddress(address);
    const family = isIP(plain);
    return family !== 0 && list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/**
 * The client's address: the peer itself, unless the peer is a trusted proxy, in which case the
 * rightmost `X-Forwarded-For` entry that is not a trusted proxy (entries left of it were written by
 * the client and prove nothing).
 *
 * @example
 * clientAddress('203.0.113.9', '10.0.0.1', ipList(['10.0.0.0/8'])); // '203.0.113.9': the peer is not trusted
 */
export function clientAddress(peer: string, forwardedFor: string | undefined, trusted: IpList): string {
  const self = plainAddress(peer);
  if (forwardedFor === undefined || !trusted(self)) return self;
  const hops = forwardedFor
    .split(',')
    .map((hop) => plainAddress(hop.trim()))
    .filter((hop) => hop !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) return self;
    if (!trusted(hop)) return hop;
  }
  return hops[0] ?? self;
}

/**
 * The /24 of an IPv4 address or the /48 of an IPv6 one, as text; other strings are returned as they are.
 *
 * @example
 * maskedPrefix('2001:db8:1234:5678::1'); // '2001:db8:1234::/48'
 */
export function maskedPrefix(address: string): string {
  const plain = plainAddress(address);
  const family = isIP(plain);
  if (family === 4) return `${plain.split('.').slice(0, 3).join('.')}.0/24`;
  if (family !== 6) return plain;
  const groups = expandIPv6(plain.replace(/%.*$/, ''));
  return `${groups.slice(0, 3).join(':')}::/48`;
}

/** The eight 16-bit groups of an IPv6 address, as lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] {
  let text = address.toLowerCase();
  // A trailing dotted quad is the last two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...(tail === undefined ? [] : zeros), ...right].map((g) =>
    Number.parseInt(g, 16).toString(16),
  );
}
