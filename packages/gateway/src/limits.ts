/**
 * Where the gateway's limits keep their state, opened once by `Gateway.start`:
 *
 * - freebies ({@link Freebies}) count in Redis when `redis` is configured, else in the gateway's
 *   database (the SQLite file, or PostgreSQL when that is `dbbackend`), so they survive restarts and,
 *   on a shared database or Redis, are shared by every instance;
 * - rate limits ({@link RateLimit}) keep their buckets in Redis when configured (cluster-wide), else
 *   in this process, as Aperture.
 *
 * Redis is optional at start: when it cannot be reached the gateway still starts (and says so), the
 * client keeps reconnecting in the background, and until it answers no request is free and rate
 * limits are enforced per instance. Commands never queue while disconnected; they fail at once.
 *
 * @example
 * const limits = await Limits.open(config, { log });
 * Handler.create({ …, freebies: limits.freebies, ratelimits: limits.ratelimits });
 * await limits.close();
 */
import { Redis } from 'ioredis';
import type { Config } from './Config.js';
import * as Counters from './counters.js';
import * as Freebies from './freebies.js';
import type { Logger } from './Log.js';
import * as RateLimit from './ratelimit.js';

/** The limits' state, open. */
export interface Limits {
  readonly freebies: Freebies.Freebies;
  readonly ratelimits: RateLimit.RateLimiter;
  /** For people: where freebies and rate limits are kept, e.g. `freebies in sqlite /…/gateway.db, rate limits in memory`. */
  readonly description: string;
  close(): Promise<void>;
}

/** The key prefix in Redis when `redis.prefix` is not set. */
export const DEFAULT_REDIS_PREFIX = 'l402:';

const WARN_EVERY_MS = 10_000;

/**
 * Opens the counters (and the Redis client) the config asks for. Rejects with `StoreError` when the
 * database cannot hold the freebie counts; never because of Redis.
 *
 * @example
 * const limits = await Limits.open(config, { log, now: Date.now });
 */
export async function open(
  config: Pick<Config, 'redis' | 'dbbackend' | 'sqlite' | 'postgres' | 'services'>,
  options: { readonly log: Logger; readonly now?: () => number },
): Promise<Limits> {
  const { log } = options;
  const local = RateLimit.memory(options.now === undefined ? {} : { now: options.now });
  const freebiesUsed = config.services.some((s) => s.auth.kind === 'freebie');
  if (config.redis !== undefined) {
    const prefix = config.redis.prefix ?? DEFAULT_REDIS_PREFIX;
    const client = await connectRedis(config.redis.url, log);
    const counters = Counters.redis(client, prefix);
    return {
      freebies: Freebies.create(counters, { log }),
      ratelimits: RateLimit.redis(client, prefix, { log, fallback: local }),
      description: 'freebies and rate limits in redis',
      async close() {
        client.disconnect();
      },
    };
  }
  // Without a freebie service there is nothing to count: no second connection to the database.
  const counters = !freebiesUsed
    ? Counters.memory()
    : config.dbbackend === 'postgres'
      ? await Counters.postgres(config.postgres)
      : await Counters.sqlite(config.sqlite.dbfile);
  return {
    freebies: Freebies.create(counters, { log }),
    ratelimits: local,
    description: `${freebiesUsed ? `freebies in ${counters.kind}` : 'no freebies'}, rate limits in memory`,
    close: () => counters.close(),
  };
}

/** A client that never queues commands while disconnected and keeps reconnecting (every 2 s at most). */
async function connectRedis(url: string, log: Logger): Promise<Redis> {
  const { host, port } = new URL(url);
  const where = `${host}:${port || 6379}`;
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  let warned = Number.NEGATIVE_INFINITY;
  client.on('error', (error: Error) => {
    const now = performance.now();
    if (now - warned < WARN_EVERY_MS) return;
    warned = now;
    log.warn('redis unreachable: no request is free and rate limits are per instance until it answers', {
      redis: where,
      error: error.message,
    });
  });
  client.on('ready', () => log.info('redis connected', { redis: where }));
  try {
    await client.connect();
  } catch {
    // Logged by the error handler; the client keeps trying in the background.
  }
  return client;
}
