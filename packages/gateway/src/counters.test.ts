/**
 * The freebie counters against real stores: a SQLite file, the PostgreSQL server
 * (`L402_TEST_POSTGRES_URL`) and the Redis server at 127.0.0.1:6379, each with keys of its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import postgresJs from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import * as Counters from './counters.js';
import * as Testing from './testing.js';

const dir = mkdtempSync(join(tmpdir(), 'l402-counters-'));
const run = randomBytes(6).toString('hex');
const pgUrl = new URL(process.env.L402_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
const prefix = `l402-test:${run}:`;

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await Testing.dropKeys(redis, prefix);
  redis.disconnect();
  const sql = postgresJs(pgUrl.href, { onnotice: () => {} });
  await sql`DELETE FROM gateway_counters WHERE key LIKE ${`${run}:%`}`;
  await sql.end();
});

/** Fires `n` takes at once, through `pick(i)` of several handles; counts those that succeeded. */
async function race(n: number, limit: number, key: string, pick: (i: number) => Counters.Counters) {
  const taken = await Promise.all(Array.from({ length: n }, (_, i) => pick(i).take(key, limit)));
  return taken.filter(Boolean).length;
}

describe('Counters.sqlite', () => {
  it('counts up to the limit, and a reopened file remembers', async () => {
    const path = join(dir, 'gateway.db');
    const one = await Counters.sqlite(path);
    expect(one.kind).toBe(`sqlite ${path}`);
    expect(await one.take('k', 2)).toBe(true);
    expect(await one.used('k')).toBe(1);
    await one.close();
    const two = await Counters.sqlite(path);
    expect(await two.used('k')).toBe(1);
    expect(await two.take('k', 2)).toBe(true);
    expect(await two.take('k', 2)).toBe(false);
    expect(await two.used('k')).toBe(2);
    expect(await two.take('other', 2)).toBe(true);
    expect(await two.take('k', 3)).toBe(true);
    expect(await two.take('zero', 0)).toBe(false);
    expect(await two.used('zero')).toBe(0);
    await two.close();
  });

  it('shares one file between two connections without over-counting', async () => {
    const path = join(dir, 'shared.db');
    const a = await Counters.sqlite(path);
    const b = await Counters.sqlite(path);
    expect(await race(20, 7, 'k', (i) => (i % 2 === 0 ? a : b))).toBe(7);
    expect(await b.used('k')).toBe(7);
    await a.close();
    await b.close();
  });

  it('refuses keys that are empty or unbounded', async () => {
    const counters = await Counters.sqlite(join(dir, 'keys.db'));
    await expect(counters.take('', 1)).rejects.toThrow(RangeError);
    await expect(counters.take('x'.repeat(1025), 1)).rejects.toThrow(RangeError);
    await counters.close();
  });

  it('rejects a path it cannot open with StoreError L402_STORE_UNAVAILABLE', async () => {
    await expect(Counters.sqlite(join(dir, 'missing', 'dir', 'x.db'))).rejects.toMatchObject({
      name: 'StoreError',
      code: 'L402_STORE_UNAVAILABLE',
    });
  });
});

describe('Counters.postgres', () => {
  it('two instances on one database never both take the last one', async () => {
    const options = {
      host: pgUrl.hostname,
      port: Number(pgUrl.port || 5432),
      user: decodeURIComponent(pgUrl.username) || undefined,
      password: decodeURIComponent(pgUrl.password) || undefined,
      dbname: pgUrl.pathname.slice(1) || undefined,
    };
    const a = await Counters.postgres(options);
    const b = await Counters.postgres({ ...options, maxconnections: 4 });
    const key = `${run}:race`;
    expect(await race(30, 11, key, (i) => (i % 2 === 0 ? a : b))).toBe(11);
    expect(await a.used(key)).toBe(11);
    expect(await b.take(key, 11)).toBe(false);
    expect(await b.take(key, 12)).toBe(true);
    await a.close();
    await b.close();
  });

  it('rejects an unreachable server with StoreError L402_STORE_UNAVAILABLE', async () => {
    await expect(Counters.postgres({ host: '127.0.0.1', port: 1 })).rejects.toMatchObject({
      name: 'StoreError',
      code: 'L402_STORE_UNAVAILABLE',
    });
  });
});

describe('Counters.redis', () => {
  it('two clients never both take the last one, and the count is in redis', async () => {
    await redis.connect();
    const other = new Redis({ host: '127.0.0.1', port: 6379 });
    const a = Counters.redis(redis, prefix);
    const b = Counters.redis(other, prefix);
    expect(await race(40, 9, 'race', (i) => (i % 2 === 0 ? a : b))).toBe(9);
    expect(await redis.get(`${prefix}count:race`)).toBe('9');
    expect(await b.used('race')).toBe(9);
    expect(await a.take('race', 9)).toBe(false);
    expect(await a.take('zero', 0)).toBe(false);
    expect(await redis.exists(`${prefix}count:zero`)).toBe(0);
    other.disconnect();
  });

  it('rejects at once while the server is unreachable', async () => {
    const down = Testing.deadRedis();
    await expect(Counters.redis(down, prefix).take('k', 1)).rejects.toThrow();
    down.disconnect();
  });
});
