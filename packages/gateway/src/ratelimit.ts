/**
 * A service's `ratelimits`, as Aperture enforces them (`proxy/ratelimiter.go`): each rule is a token
 * bucket holding up to `burst` requests (`requests` when unset) and refilled at `requests` per `per`;
 * a rule applies to the paths its `pathregexp` matches (every path without one); a request passes only
 * when every rule that applies to it has a token, and then takes one from each (a refused request takes
 * none). Buckets are per service, per rule and per client: `token:<token id hex>` once a credential has
 * been verified, else `ip:<masked address>` (the /24 or /48, as freebies), so unverified credentials
 * cannot mint fresh buckets. A refused request gets 429 with `Retry-After` (whole seconds, at least
 * 1); a gRPC client gets HTTP 200 with `grpc-status: 8` (RESOURCE_EXHAUSTED), as Aperture answers.
 *
 * Two homes for the buckets:
 * - {@link memory}: this process (Aperture's behaviour), at most `capacity` buckets per service
 *   (10 000, the least recently used dropped, as Aperture's LRU);
 * - {@link redis}: one Lua script checks and takes from all the rules of a request atomically on the
 *   Redis server, on the server's clock, so every instance shares the same buckets. When Redis cannot
 *   be reached the limiter falls back to this process's buckets (logged at most once per 10 s), so
 *   limits stay enforced per instance rather than dropped or turned into an outage.
 *
 * @example
 * const limiter = RateLimit.memory();
 * const waitMs = await limiter.check(service, '/api/x', RateLimit.clientKey(undefined, '203.0.113.9'));
 * if (waitMs !== undefined) send(response, RateLimit.reply(waitMs, false));
 */
import type { Redis } from 'ioredis';
import type { RateLimit, Service } from './Config.js';
import { maskedPrefix } from './internal/ip.js';
import { luaScript } from './internal/lua.js';
import type { Logger } from './Log.js';
import { failure, type Reply } from './proxy.js';

/** Checks a request against its service's rules (see the module comment). */
export interface RateLimiter {
  /** Where the buckets live: `memory` or `redis`. */
  readonly kind: string;
  /**
   * Takes a token from every rule of `service` that applies to `path`, for `client` (a {@link clientKey});
   * resolves undefined when the request may pass, else the milliseconds until it would. Never rejects.
   */
  check(
    service: Pick<Service, 'name' | 'ratelimits'>,
    path: string,
    client: string,
  ): Promise<number | undefined>;
}

/**
 * The bucket owner: the verified token's id, else the client's network.
 *
 * @example
 * clientKey(undefined, '203.0.113.9'); // 'ip:203.0.113.0/24'
 * clientKey('ab12…', '203.0.113.9'); // 'token:ab12…'
 */
export function clientKey(tokenId: string | undefined, address: string): string {
  return tokenId === undefined ? `ip:${maskedPrefix(address)}` : `token:${tokenId}`;
}

/**
 * The 429 answer: `Retry-After` in whole seconds (rounded up, at least 1); for gRPC, HTTP 200 with
 * `grpc-status: 8` and the same `Retry-After`.
 *
 * @example
 * reply(1_500, false); // { status: 429, headers: [['retry-after', '2'], …], body: 'rate limit exceeded\n' }
 */
export function reply(waitMs: number, grpc: boolean): Reply {
  const retryAfter = String(Math.max(1, Math.ceil(waitMs / 1000)));
  const message = 'rate limit exceeded';
  if (grpc) {
    return {
      status: 200,
      headers: [
        ['retry-after', retryAfter],
        ['content-type', 'application/grpc'],
        ['grpc-status', '8'],
        ['grpc-message', message],
      ],
      body: '',
    };
  }
  return failure(429, message, false, { 'retry-after': retryAfter });
}

/** The rules of a service that apply to `path`, with their index (a bucket is per rule, even for equal patterns). */
function applying(service: Pick<Service, 'ratelimits'>, path: string): [number, RateLimit][] {
  const out: [number, RateLimit][] = [];
  service.ratelimits.forEach((rule, i) => {
    if (rule.pathregexp === undefined || rule.pathregexp.test(path)) out.push([i, rule]);
  });
  return out;
}

/** Tokens per millisecond. */
const rateOf = (rule: RateLimit) => rule.requests / rule.per;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Buckets in this process.
 *
 * @example
 * const limiter = RateLimit.memory({ now: Date.now, capacity: 10_000 });
 */
export function memory(
  options: { readonly now?: () => number; readonly capacity?: number } = {},
): RateLimiter {
  const now = options.now ?? Date.now;
  const capacity = options.capacity ?? 10_000;
  const services = new Map<string, Map<string, Bucket>>();
  return {
    kind: 'memory',
    async check(service, path, client) {
      const rules = applying(service, path);
      if (rules.length === 0) return undefined;
      let buckets = services.get(service.name);
      if (buckets === undefined) {
        buckets = new Map();
        services.set(service.name, buckets);
      }
      const t = now();
      let wait = 0;
      const filled = rules.map(([i, rule]) => {
        const key = `${i}\n${client}`;
        const bucket = buckets.get(key);
        const rate = rateOf(rule);
        const tokens =
          bucket === undefined
            ? rule.burst
            : Math.min(rule.burst, bucket.tokens + Math.max(0, t - bucket.at) * rate);
        if (tokens < 1) wait = Math.max(wait, (1 - tokens) / rate);
        return { key, tokens };
      });
      if (wait > 0) return wait;
      for (const { key, tokens } of filled) {
        buckets.delete(key);
        buckets.set(key, { tokens: tokens - 1, at: t });
        if (buckets.size > capacity) buckets.delete(buckets.keys().next().value as string);
      }
      return undefined;
    },
  };
}

/**
 * KEYS: one bucket per rule; ARGV: rate (tokens/ms) and burst per rule. Returns 0 when a token was
 * taken from every bucket, else the milliseconds until the emptiest one has a token (nothing taken).
 */
const takeTokens = luaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local tokens = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local have = tonumber(state[1])
  local at = tonumber(state[2])
  if have == nil or at == nil then
    have = burst
  elseif now > at then
    have = math.min(burst, have + (now - at) * rate)
  end
  tokens[i] = have
  if have < 1 then
    local w = math.ceil((1 - have) / rate - 1e-9)
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', string.format('%.17g', tokens[i] - 1), 'at', string.format('%d', now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate) + 1000)
end
return 0
`);

const WARN_EVERY_MS = 10_000;

/**
 * Buckets in Redis under `prefix`, shared by every instance; this process's buckets while Redis fails.
 * The client is the caller's (and closed by it).
 *
 * @example
 * const limiter = RateLimit.redis(client, 'l402:', { log });
 */
export function redis(
  client: Redis,
  prefix: string,
  options: { readonly log?: Logger; readonly fallback?: RateLimiter } = {},
): RateLimiter {
  const fallback = options.fallback ?? memory();
  let warned = Number.NEGATIVE_INFINITY;
  return {
    kind: 'redis',
    async check(service, path, client_) {
      const rules = applying(service, path);
      if (rules.length === 0) return undefined;
      // One hash tag per service and client: a Redis Cluster keeps all of a request's buckets in one slot.
      const tag = `{${encodeURIComponent(service.name)}|${client_}}`;
      const keys = rules.map(([i]) => `${prefix}rate:${tag}:${i}`);
      const args = rules.flatMap(([, rule]) => [String(rateOf(rule)), String(rule.burst)]);
      try {
        const wait = Number(await takeTokens(client, keys, args));
        return wait > 0 ? wait : undefined;
      } catch (error) {
        const t = performance.now();
        if (t - warned >= WARN_EVERY_MS) {
          warned = t;
          options.log?.warn('rate limits unavailable in redis: enforced per instance until it answers', {
            error: error instanceof Error ? error.message : String(error),
          });
        }
        return fallback.check(service, path, client_);
      }
    },
  };
}
