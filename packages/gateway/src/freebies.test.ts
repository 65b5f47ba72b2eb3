import { describe, expect, it } from 'vitest';
import * as Freebies from './freebies.js';

describe('Freebies', () => {
  it('counts per service and per client network (/24, /48)', () => {
    const freebies = Freebies.create();
    expect(freebies.take('a', '203.0.113.9', 2)).toBe(true);
    expect(freebies.take('a', '203.0.113.200', 2)).toBe(true);
    expect(freebies.take('a', '203.0.113.1', 2)).toBe(false);
    expect(freebies.take('b', '203.0.113.1', 2)).toBe(true);
    expect(freebies.take('a', '203.0.114.1', 2)).toBe(true);
    expect(freebies.take('a', '2001:db8:1::1', 1)).toBe(true);
    expect(freebies.take('a', '2001:db8:1:ffff::2', 1)).toBe(false);
    expect(freebies.take('a', '198.51.100.1', 0)).toBe(false);
  });

  it('forgets the oldest network past its capacity', () => {
    const freebies = Freebies.create({ capacity: 2 });
    expect(freebies.take('a', '10.0.1.1', 1)).toBe(true);
    expect(freebies.take('a', '10.0.2.1', 1)).toBe(true);
    expect(freebies.take('a', '10.0.3.1', 1)).toBe(true);
    expect(freebies.take('a', '10.0.2.1', 1)).toBe(false);
    expect(freebies.take('a', '10.0.1.1', 1)).toBe(true);
  });
});
