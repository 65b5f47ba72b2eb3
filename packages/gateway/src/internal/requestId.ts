/**
 * A request's id: the client's (or a proxy's in front) `X-Request-Id` when it is well formed, else a
 * fresh UUID. Well formed means 1 to 128 characters from letters, digits and `-_.:+=/@`, starting
 * with a letter or digit: enough for UUIDs, ULIDs, hex and base64 ids, and nothing that could break a
 * log line, a header or a shell (no spaces, quotes, commas, control characters).
 *
 * @example
 * requestIdOf('3f2c9a6e-…'); // '3f2c9a6e-…'
 * requestIdOf('bad id\r\n'); // a fresh UUID
 */
import { randomUUID } from 'node:crypto';

const WELL_FORMED = /^[A-Za-z0-9][A-Za-z0-9_.:+=/@-]{0,127}$/;

/** The header a request's id travels in, both ways. */
export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * The id to use for a request that came with `incoming` (the header's value, or values).
 *
 * @example
 * requestIdOf(request.headers['x-request-id']);
 */
export function requestIdOf(incoming: string | readonly string[] | undefined): string {
  return typeof incoming === 'string' && WELL_FORMED.test(incoming) ? incoming : randomUUID();
}
