import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as Counters from './counters.js';
import * as Freebies from './freebies.js';
import * as Log from './Log.js';

const dir = mkdtempSync(join(tmpdir(), 'l402-freebies-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Freebies', () => {
  it('counts per service and per client network (/24, /48)', async () => {
    const freebies = Freebies.create(Counters.memory());
    expect(await freebies.take('a', '203.0.113.9', 2)).toBe(true);
    expect(await freebies.take('a', '203.0.113.200', 2)).toBe(true);
    expect(await freebies.take('a', '203.0.113.1', 2)).toBe(false);
    expect(await freebies.take('b', '203.0.113.1', 2)).toBe(true);
    expect(await freebies.take('a', '203.0.114.1', 2)).toBe(true);
    expect(await freebies.take('a', '::ffff:203.0.114.7', 2)).toBe(true);
    expect(await freebies.take('a', '203.0.114.8', 2)).toBe(false);
    expect(await freebies.take('a', '2001:db8:1::1', 1)).toBe(true);
    expect(await freebies.take('a', '2001:db8:1:ffff::2', 1)).toBe(false);
    expect(await freebies.take('a', '2001:db8:2::1', 1)).toBe(true);
    expect(await freebies.take('a', '198.51.100.1', 0)).toBe(false);
  });

  it('keys a service name that holds separators without colliding with another', () => {
    expect(Freebies.key('a:b', '10.0.0.1')).not.toBe(Freebies.key('a', '10.0.0.1'));
    expect(Freebies.key('a:b', '10.0.0.1')).toBe('freebie:a%3Ab:10.0.0.0/24');
  });

  it('fails closed, and says so, when the counts cannot be reached', async () => {
    const counters = await Counters.sqlite(join(dir, 'closed.db'));
    const lines: string[] = [];
    const log = Log.create({ level: 'warn', write: (line) => lines.push(line) });
    const freebies = Freebies.create(counters, { log });
    expect(await freebies.take('a', '10.0.0.1', 5)).toBe(true);
    await counters.close();
    expect(await freebies.take('a', '10.0.0.1', 5)).toBe(false);
    expect(await freebies.take('a', '10.0.0.1', 5)).toBe(false);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'warn',
      msg: expect.stringContaining('freebies unavailable'),
    });
  });

  it('forgets the oldest network past the memory capacity', async () => {
    const freebies = Freebies.create(Counters.memory({ capacity: 2 }));
    expect(await freebies.take('a', '10.0.1.1', 1)).toBe(true);
    expect(await freebies.take('a', '10.0.2.1', 1)).toBe(true);
    expect(await freebies.take('a', '10.0.3.1', 1)).toBe(true);
    expect(await freebies.take('a', '10.0.2.1', 1)).toBe(false);
    expect(await freebies.take('a', '10.0.1.1', 1)).toBe(true);
  });
});
