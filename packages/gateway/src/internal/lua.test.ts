import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { luaScript } from './lua.js';

const redis = new Redis({ host: '127.0.0.1', port: 6379 });
afterAll(() => redis.disconnect());

it('sends a script the server does not know in full once, then runs it by its SHA-1', async () => {
  // A source no server has seen: the first call meets NOSCRIPT.
  const source = `-- ${randomBytes(8).toString('hex')}\nreturn {KEYS[1], ARGV[1]}`;
  const sha = createHash('sha1').update(source).digest('hex');
  expect(await redis.script('EXISTS', sha)).toEqual([0]);
  const script = luaScript(source);
  expect(await script(redis, ['k'], ['v'])).toEqual(['k', 'v']);
  expect(await redis.script('EXISTS', sha)).toEqual([1]);
  expect(await script(redis, ['k2'], [3])).toEqual(['k2', '3']);
  await expect(luaScript('return redis.call("NOPE")')(redis, [], [])).rejects.toThrow(/unknown/i);
});
