/** kill -9 at random points during 200 challenge/pay/access cycles, on PostgreSQL (see `kill9.ts`). */
import { randomBytes } from 'node:crypto';
import * as Postgres from 'l402/stores/postgres';
import postgres from 'postgres';
import { describe, it } from 'vitest';
import { tempDir } from './harness.js';
import { run, setup } from './kill9.js';

setup();

describe('kill -9 at random points during challenge/pay/access cycles', () => {
  it('PostgreSQL: every paid token accepted after restart, one transaction per token', async () => {
    // The shared test server, a database of this run's own (dropped after).
    const url = new URL(process.env.L402_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
    const admin = postgres(url.href, { max: 1, onnotice: () => {} });
    const dbname = `l402_kill9_${randomBytes(4).toString('hex')}`;
    await admin.unsafe(`CREATE DATABASE ${dbname}`);
    try {
      const password = url.password
        ? `\n  password: ${JSON.stringify(decodeURIComponent(url.password))}`
        : '';
      const pg = `dbbackend: postgres
postgres:
  host: ${JSON.stringify(url.hostname)}
  port: ${url.port || 5432}
  user: ${JSON.stringify(decodeURIComponent(url.username))}
  dbname: ${dbname}${password}`;
      const target = new URL(url.href);
      target.pathname = `/${dbname}`;
      await run(tempDir(), pg, () => Postgres.open({ url: target.href }));
    } finally {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${dbname} WITH (FORCE)`);
      await admin.end();
    }
  }, 300_000);
});
