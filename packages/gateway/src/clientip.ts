/**
 * The one place the gateway decides who a request comes from; the blocklist, freebies, rate limits
 * and the request log all use it. The client is the TCP peer, unless the peer is in `trustedproxies`:
 * then it is the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (entries left of
 * it were written by the client and prove nothing). From an untrusted peer `X-Forwarded-For` is
 * ignored, so nobody can claim another address (and another allowance) by sending the header.
 * IPv4-mapped IPv6 peers (`::ffff:1.2.3.4`) are reported as plain IPv4.
 *
 * @example
 * const trusted = ipList(['10.0.0.0/8']);
 * clientIp({ socket: { remoteAddress: '10.0.0.7' }, headers: { 'x-forwarded-for': '203.0.113.9' } }, trusted); // '203.0.113.9'
 * clientIp({ socket: { remoteAddress: '198.51.100.4' }, headers: { 'x-forwarded-for': '203.0.113.9' } }, trusted); // '198.51.100.4'
 */
import { clientAddress, type IpList } from './internal/ip.js';

/** What {@link clientIp} reads of a request (Node's HTTP/1.1 and HTTP/2 requests both have it). */
export interface Peer {
  readonly socket: { readonly remoteAddress?: string | undefined };
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The client's address (see the module comment). */
export function clientIp(request: Peer, trusted: IpList): string {
  const forwardedFor = request.headers['x-forwarded-for'];
  return clientAddress(
    request.socket.remoteAddress ?? '',
    Array.isArray(forwardedFor) ? forwardedFor.join(', ') : forwardedFor,
    trusted,
  );
}
