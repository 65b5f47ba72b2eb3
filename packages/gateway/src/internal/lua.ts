/**
 * A Lua script run on Redis by its SHA-1 (`EVALSHA`), sent in full (`EVAL`) only when the server does
 * not know it yet (`NOSCRIPT`: first use, or after a restart or `SCRIPT FLUSH`).
 *
 * @example
 * const incr = luaScript("return redis.call('INCR', KEYS[1])");
 * await incr(client, ['counter'], []); // 1
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Runs the script with `keys` and `args`; rejects as the command does. */
export type LuaScript = (
  client: Redis,
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<unknown>;

/** The runner of `source` (see the module comment). */
export function luaScript(source: string): LuaScript {
  const sha = createHash('sha1').update(source).digest('hex');
  return async (client, keys, args) => {
    try {
      return await client.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return client.eval(source, keys.length, ...keys, ...args);
    }
  };
}
