/**
 * `auth: freebie N`: each client network (the /24 of an IPv4 address, the /48 of an IPv6 one) gets N
 * requests to a service without paying, as Aperture's in-memory freebie store gives. Counts live in
 * this process only and start again at a restart; keeping them in the database (and in Redis for
 * several instances) comes with the rate limiter's storage in a later release.
 *
 * Unlike Aperture's, the count is bounded in memory: past `capacity` networks the oldest count is
 * dropped (that network starts over), so a flood of spoofed-looking prefixes cannot grow the map.
 *
 * @example
 * const freebies = Freebies.create();
 * freebies.take('weather', '203.0.113.9', 2); // true
 * freebies.take('weather', '203.0.113.77', 2); // true (same /24)
 * freebies.take('weather', '203.0.113.1', 2); // false: both were used
 */
import { maskedPrefix } from './internal/ip.js';

/** Free-request counts per service and client network (see {@link create}). */
export interface Freebies {
  /** Counts one free request of `service` for `address`'s network; false when its `allowance` is used up. */
  take(service: string, address: string, allowance: number): boolean;
}

/**
 * An in-memory freebie counter.
 *
 * @example
 * const freebies = Freebies.create({ capacity: 100_000 });
 */
export function create(options: { readonly capacity?: number } = {}): Freebies {
  const capacity = options.capacity ?? 100_000;
  const used = new Map<string, number>();
  return {
    take(service, address, allowance) {
      const key = `${service}\n${maskedPrefix(address)}`;
      const count = used.get(key) ?? 0;
      if (count >= allowance) return false;
      used.delete(key);
      used.set(key, count + 1);
      if (used.size > capacity) used.delete(used.keys().next().value as string);
      return true;
    },
  };
}
