import { describe, expect, it } from 'vitest';
import { clientAddress, ipList, maskedPrefix, plainAddress } from './ip.js';

describe('ipList', () => {
  it('matches addresses and ranges of both families, v4-mapped v6 included', () => {
    const list = ipList(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
    expect(list('127.0.0.1')).toBe(true);
    expect(list('::ffff:127.0.0.1')).toBe(true);
    expect(list('10.200.3.4')).toBe(true);
    expect(list('11.0.0.1')).toBe(false);
    expect(list('fd12::1')).toBe(true);
    expect(list('fe80::1')).toBe(false);
    expect(list('not an ip')).toBe(false);
    expect(ipList([])('127.0.0.1')).toBe(false);
  });
});

describe('clientAddress', () => {
  const trusted = ipList(['10.0.0.0/8']);

  it('is the peer unless the peer is a trusted proxy', () => {
    expect(clientAddress('203.0.113.9', '198.51.100.1', trusted)).toBe('203.0.113.9');
    expect(clientAddress('::ffff:203.0.113.9', undefined, trusted)).toBe('203.0.113.9');
  });

  it('behind trusted proxies, is the rightmost hop that is not one (left entries are the client’s word)', () => {
    expect(clientAddress('10.0.0.2', '1.2.3.4, 198.51.100.1, 10.0.0.7', trusted)).toBe('198.51.100.1');
    expect(clientAddress('10.0.0.2', '10.0.0.9', trusted)).toBe('10.0.0.9');
    expect(clientAddress('10.0.0.2', 'garbage, 10.0.0.9', trusted)).toBe('10.0.0.2');
  });
});

describe('maskedPrefix', () => {
  it('is the /24 of IPv4 and the /48 of IPv6', () => {
    expect(maskedPrefix('203.0.113.9')).toBe('203.0.113.0/24');
    expect(maskedPrefix('::ffff:203.0.113.9')).toBe('203.0.113.0/24');
    expect(maskedPrefix('2001:db8:1234:5678::1')).toBe('2001:db8:1234::/48');
    expect(maskedPrefix('2001:db8::1')).toBe('2001:db8:0::/48');
    expect(maskedPrefix('::1')).toBe('0:0:0::/48');
    expect(maskedPrefix('fe80::1%eth0')).toBe('fe80:0:0::/48');
    expect(plainAddress('::FFFF:1.2.3.4')).toBe('1.2.3.4');
  });
});
