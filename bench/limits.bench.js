/**
 * The gateway's limits, per check, in this process: a rate-limit check and a freebie take in Redis
 * (one Lua script each) against a bare Redis `PING` round trip on the same connection; the per-process
 * rate limiter against a bare async Map read and write; a freebie take in SQLite (one upsert, fsync per
 * commit) against a bare fsync'd INSERT into the same file. Needs Redis at 127.0.0.1:6379; its keys go
 * under a prefix of this run's and are removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Redis } from 'ioredis';
import * as Counters from '../packages/gateway/dist/counters.js';
import * as RateLimit from '../packages/gateway/dist/ratelimit.js';
import { measureAsync, ratioLines } from './lib.js';

export const title = 'Gateway limits (freebies, rate limits), per check';

const service = (burst) => ({
  name: 'api',
  ratelimits: [{ pathregexp: undefined, requests: 1e9, per: 1_000, burst }],
});

export async function run() {
  const lines = [];
  const prefix = `l402-bench.${randomBytes(4).toString('hex')}:`;
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  try {
    const limiter = RateLimit.redis(redis, prefix);
    const counters = Counters.redis(redis, prefix);
    const api = service(1e9);
    let n = 0;
    const results = await measureAsync({
      'baseline: redis PING round trip': () => redis.ping(),
      'rate limit check in redis (1 rule, Lua token bucket)': () =>
        limiter.check(api, '/x', 'ip:10.0.0.0/24'),
      'freebie take in redis (Lua)': () => counters.take(`k${n++ % 1000}`, 1e9),
    });
    lines.push(...ratioLines(results));
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }

  const memory = RateLimit.memory();
  const map = new Map();
  const api = service(1e9);
  lines.push(
    ...ratioLines(
      await measureAsync({
        'baseline: async Map read + write': async () => {
          map.set('k', (map.get('k') ?? 0) + 1);
        },
        'rate limit check in this process (1 rule)': () => memory.check(api, '/x', 'ip:10.0.0.0/24'),
      }),
    ),
  );

  const dir = mkdtempSync(join(tmpdir(), 'l402-bench-limits-'));
  try {
    const path = join(dir, 'gateway.db');
    const sqlite = await Counters.sqlite(path);
    const db = new BetterSqlite3(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE bare (key TEXT, used INTEGER)');
    const insert = db.prepare('INSERT INTO bare VALUES (?, 1)');
    let m = 0;
    lines.push(
      ...ratioLines(
        await measureAsync({
          'baseline: bare fsync-per-commit INSERT (same file)': async () => insert.run(`k${m++}`),
          'freebie take in sqlite (upsert, fsync per commit)': () => sqlite.take(`k${m++ % 1000}`, 1e9),
        }),
      ),
    );
    db.close();
    await sqlite.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { lines };
}
