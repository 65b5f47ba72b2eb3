/** kill -9 at random points during 200 challenge/pay/access cycles, on SQLite (see `kill9.ts`). */
import { join } from 'node:path';
import * as Sqlite from 'l402/stores/sqlite';
import { describe, it } from 'vitest';
import { tempDir } from './harness.js';
import { run, setup } from './kill9.js';

setup();

describe('kill -9 at random points during challenge/pay/access cycles', () => {
  it('SQLite: every paid token accepted after restart, one transaction per token', async () => {
    const dir = tempDir();
    const dbfile = join(dir, 'gateway.db');
    await run(dir, `sqlite:\n  dbfile: ${JSON.stringify(dbfile)}`, () => Sqlite.open({ path: dbfile }));
  }, 300_000);
});
