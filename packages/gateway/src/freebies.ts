/**
 * `auth: freebie N`: each client network (the /24 of an IPv4 address, the /48 of an IPv6 one, as
 * Aperture masks it) gets N requests to a service without paying, ever (Aperture never resets them
 * either). Unlike Aperture's in-memory map, the counts are {@link Counters}: in the gateway's
 * database (SQLite or PostgreSQL), so a restart does not hand out N more, or in Redis when `redis` is
 * configured, so all instances share one allowance.
 *
 * Fail closed: when the counts cannot be read or written (Redis down, database error) no request is
 * free; it is judged as on a paid service (a 402 challenge, or access with a valid token), and the
 * gateway logs `freebies unavailable` (at most once per 10 s) until the store answers again.
 *
 * @example
 * const freebies = Freebies.create(Counters.memory());
 * await freebies.take('weather', '203.0.113.9', 2); // true
 * await freebies.take('weather', '203.0.113.77', 2); // true (same /24)
 * await freebies.take('weather', '203.0.113.1', 2); // false: both were used
 */
import type { Counters } from './counters.js';
import { maskedPrefix } from './internal/ip.js';
import type { Logger } from './Log.js';

/** Free-request counts per service and client network (see {@link create}). */
export interface Freebies {
  /**
   * Counts one free request of `service` for `address`'s network; false when its `allowance` is used
   * up, or when the counts cannot be reached (fail closed). Never rejects.
   */
  take(service: string, address: string, allowance: number): Promise<boolean>;
}

/** The counter key of a service and client network. */
export function key(service: string, address: string): string {
  return `freebie:${encodeURIComponent(service)}:${maskedPrefix(address)}`;
}

const WARN_EVERY_MS = 10_000;

/**
 * Freebies counted in `counters`.
 *
 * @example
 * const freebies = Freebies.create(await Counters.sqlite(config.sqlite.dbfile), { log });
 */
export function create(counters: Counters, options: { readonly log?: Logger } = {}): Freebies {
  let warned = Number.NEGATIVE_INFINITY;
  return {
    async take(service, address, allowance) {
      if (allowance <= 0) return false;
      try {
        return await counters.take(key(service, address), allowance);
      } catch (error) {
        const now = performance.now();
        if (now - warned >= WARN_EVERY_MS) {
          warned = now;
          options.log?.warn('freebies unavailable: no request is free until the store answers', {
            store: counters.kind,
            error: error instanceof Error ? error.message : String(error),
          });
        }
        return false;
      }
    },
  };
}
