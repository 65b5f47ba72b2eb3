/**
 * The token buckets on their own: in memory with a clock the test moves, and in the Redis server at
 * 127.0.0.1:6379 (keys under a prefix of this run's, removed afterwards).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { RateLimit as Rule } from './Config.js';
import * as RateLimit from './ratelimit.js';
import * as Testing from './testing.js';

const redis = new Redis({ host: '127.0.0.1', port: 6379 });
const prefix = `l402-test:${randomBytes(6).toString('hex')}:`;
afterAll(async () => {
  await Testing.dropKeys(redis, prefix);
  redis.disconnect();
});

const rule = (requests: number, per: number, burst = requests, pathregexp?: RegExp): Rule => ({
  requests,
  per,
  burst,
  pathregexp,
});
const service = (name: string, ...ratelimits: Rule[]) => ({ name, ratelimits });

describe('RateLimit.memory', () => {
  it('lets a burst through, refuses the next with the wait, and refills at requests per `per`', async () => {
    let now = 1_000_000;
    const limiter = RateLimit.memory({ now: () => now });
    const api = service('api', rule(2, 1_000, 3));
    for (let i = 0; i < 3; i++) expect(await limiter.check(api, '/x', 'ip:a')).toBeUndefined();
    expect(await limiter.check(api, '/x', 'ip:a')).toBe(500);
    now += 499;
    expect(await limiter.check(api, '/x', 'ip:a')).toBeCloseTo(1, 6);
    now += 1;
    expect(await limiter.check(api, '/x', 'ip:a')).toBeUndefined();
    expect(await limiter.check(api, '/x', 'ip:a')).toBe(500);
    // A long pause refills up to the burst, not beyond.
    now += 60_000;
    for (let i = 0; i < 3; i++) expect(await limiter.check(api, '/x', 'ip:a')).toBeUndefined();
    expect(await limiter.check(api, '/x', 'ip:a')).toBeGreaterThan(0);
  });

  it('keeps a bucket per client, per service and per rule', async () => {
    const limiter = RateLimit.memory({ now: () => 0 });
    const one = service('one', rule(1, 60_000));
    const two = service('two', rule(1, 60_000));
    expect(await limiter.check(one, '/', 'token:aa')).toBeUndefined();
    expect(await limiter.check(one, '/', 'token:aa')).toBe(60_000);
    expect(await limiter.check(one, '/', 'token:bb')).toBeUndefined();
    expect(await limiter.check(one, '/', 'ip:10.0.0.0/24')).toBeUndefined();
    expect(await limiter.check(two, '/', 'token:aa')).toBeUndefined();
  });

  it('applies only the rules whose pathregexp matches, all of them, taking nothing when one refuses', async () => {
    let now = 0;
    const limiter = RateLimit.memory({ now: () => now });
    const api = service('api', rule(10, 1_000, 10), rule(1, 1_000, 1, /^\/expensive/));
    expect(await limiter.check(api, '/expensive', 'k')).toBeUndefined();
    // Refused by the second rule: the first keeps its tokens.
    for (let i = 0; i < 5; i++) expect(await limiter.check(api, '/expensive', 'k')).toBe(1_000);
    for (let i = 0; i < 9; i++) expect(await limiter.check(api, '/cheap', 'k')).toBeUndefined();
    expect(await limiter.check(api, '/cheap', 'k')).toBe(100);
    now += 1_000;
    expect(await limiter.check(api, '/expensive', 'k')).toBeUndefined();
    expect(await limiter.check(service('open'), '/expensive', 'k')).toBeUndefined();
  });

  it('keeps at most `capacity` buckets per service, dropping the least recently used', async () => {
    const limiter = RateLimit.memory({ now: () => 0, capacity: 2 });
    const api = service('api', rule(1, 60_000));
    expect(await limiter.check(api, '/', 'a')).toBeUndefined();
    expect(await limiter.check(api, '/', 'b')).toBeUndefined();
    expect(await limiter.check(api, '/', 'c')).toBeUndefined();
    expect(await limiter.check(api, '/', 'b')).toBe(60_000);
    expect(await limiter.check(api, '/', 'a')).toBeUndefined();
  });
});

describe('RateLimit.redis', () => {
  it('shares buckets between limiters (instances) and takes atomically under concurrency', async () => {
    const other = new Redis({ host: '127.0.0.1', port: 6379 });
    const a = RateLimit.redis(redis, prefix);
    const b = RateLimit.redis(other, prefix);
    const api = service('api', rule(1, 3_600_000, 5));
    const verdicts = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).check(api, '/x', 'ip:203.0.113.0/24')),
    );
    expect(verdicts.filter((v) => v === undefined)).toHaveLength(5);
    const waits = verdicts.filter((v): v is number => v !== undefined);
    expect(waits).toHaveLength(25);
    // An hour per request, less what has refilled since the burst was taken.
    for (const wait of waits) expect(wait).toBeGreaterThan(3_000_000);
    for (const wait of waits) expect(wait).toBeLessThanOrEqual(3_600_000);
    // Another client, another bucket; the state is one hash per rule, expiring once it would be full.
    expect(await b.check(api, '/x', 'token:abcd')).toBeUndefined();
    const key = `${prefix}rate:{api|ip:203.0.113.0/24}:0`;
    expect(Number(await redis.hget(key, 'tokens'))).toBeLessThan(1);
    expect(await redis.pttl(key)).toBeGreaterThan(3_600_000 * 4);
    other.disconnect();
  });

  it('refills from the server clock', async () => {
    const limiter = RateLimit.redis(redis, prefix);
    const fast = service('fast', rule(1_000, 1_000, 1));
    expect(await limiter.check(fast, '/', 'k')).toBeUndefined();
    // A bucket written 50 ms in the past has refilled its token (1 per ms).
    const key = `${prefix}rate:{fast|k}:0`;
    const [seconds, micros] = (await redis.time()) as [number, number];
    await redis.hset(key, 'at', String(Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 50));
    expect(await limiter.check(fast, '/', 'k')).toBeUndefined();
  });

  it('falls back to the per-process buckets while redis cannot be reached', async () => {
    const down = Testing.deadRedis();
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, error() {}, warn: (m: string) => warnings.push(m) };
    const limiter = RateLimit.redis(down, prefix, { log, fallback: RateLimit.memory({ now: () => 0 }) });
    const api = service('api', rule(1, 60_000, 2));
    expect(await limiter.check(api, '/', 'k')).toBeUndefined();
    expect(await limiter.check(api, '/', 'k')).toBeUndefined();
    expect(await limiter.check(api, '/', 'k')).toBe(60_000);
    expect(warnings).toEqual(['rate limits unavailable in redis: enforced per instance until it answers']);
    down.disconnect();
  });
});

describe('RateLimit.reply', () => {
  it('answers 429 with Retry-After in whole seconds, and gRPC clients with grpc-status 8', () => {
    const http = RateLimit.reply(1_200, false);
    expect(http.status).toBe(429);
    expect(http.headers).toContainEqual(['retry-after', '2']);
    expect(http.body).toBe('rate limit exceeded\n');
    expect(RateLimit.reply(0.3, false).headers).toContainEqual(['retry-after', '1']);
    const grpc = RateLimit.reply(3_000, true);
    expect(grpc.status).toBe(200);
    expect(grpc.headers).toEqual(
      expect.arrayContaining([
        ['grpc-status', '8'],
        ['grpc-message', 'rate limit exceeded'],
        ['retry-after', '3'],
      ]),
    );
  });

  it('keys by verified token, else by masked network', () => {
    expect(RateLimit.clientKey(undefined, '203.0.113.9')).toBe('ip:203.0.113.0/24');
    expect(RateLimit.clientKey(undefined, '2001:db8:1:2::3')).toBe('ip:2001:db8:1::/48');
    expect(RateLimit.clientKey('ab', '203.0.113.9')).toBe('token:ab');
  });
});
