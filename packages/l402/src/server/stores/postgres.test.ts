/**
 * The PostgreSQL store against the shared contract, then what only a shared server can get wrong: two
 * instances seeing each other, migrations racing, an unreachable server, a newer schema, the options.
 * Needs a server: `L402_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`. Each store
 * gets its own schema (`l402_test_<run>_<n>`), dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../Store.js';
import * as Postgres from './postgres.js';
import { describeStore, openSession, record } from './storeContract.js';

const URL = process.env.L402_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `l402_test_${randomBytes(4).toString('hex')}`;
let schemas = 0;
const nextSchema = (): string => `${RUN}_${schemas++}`;

const admin = postgres(URL, { max: 1, onnotice: () => {} });

afterAll(async () => {
  for (let i = 0; i < schemas; i++) await admin`DROP SCHEMA IF EXISTS ${admin(`${RUN}_${i}`)} CASCADE`;
  await admin.end();
});

describeStore('PostgreSQL', () => Postgres.open({ url: URL, schema: nextSchema() }));

describe('Postgres.open', () => {
  it('lets two instances on one database see each other’s mints, settlements and revocations', async () => {
    const schema = nextSchema();
    const [one, two] = await Promise.all([
      Postgres.open({ url: URL, schema }),
      Postgres.open({ url: URL, schema }),
    ]);
    try {
      const [a, b] = [record(), record()];
      await one.mint(a);
      await two.mint(b);
      expect(await two.rootKey(a.idHash)).toEqual(a.rootKey);
      expect(await one.rootKey(b.idHash)).toEqual(b.rootKey);
      expect(await two.settle(a.paymentHash, 1_700_000_001)).toBe(true);
      expect(await one.transactions({ state: 'settled' })).toMatchObject([{ tokenId: a.tokenId }]);

      expect(await one.revoke({ tokenId: b.tokenId })).toBe(true);
      expect(await two.rootKey(b.idHash)).toBeUndefined();
      expect(await two.revoke({ idHash: b.idHash })).toBe(false);
      expect(await two.revoke({ idHash: a.idHash })).toBe(true);
      const seen = await one.revocationsSince(0);
      expect(seen.map((r) => r.tokenId)).toEqual([b.tokenId, a.tokenId]);
      expect(await two.revocationsSince(seen[0]!.seq)).toEqual([seen[1]]);
      await expect(one.mint(record({ idHash: a.idHash }))).rejects.toMatchObject({
        code: 'L402_STORE_CONFLICT',
      });
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('migrates once when several instances start together', async () => {
    const schema = nextSchema();
    const stores = await Promise.all(Array.from({ length: 4 }, () => Postgres.open({ url: URL, schema })));
    await Promise.all(stores.map((store) => store.close()));
    expect(await admin`SELECT version FROM ${admin(schema)}.schema_version`).toEqual([{ version: 5 }]);
  });

  it('never lets a reader polling revocationsSince skip a revocation committed concurrently', async () => {
    const schema = nextSchema();
    const stores = await Promise.all(Array.from({ length: 4 }, () => Postgres.open({ url: URL, schema })));
    try {
      const [reader, ...writers] = stores as [Store, ...Store[]];
      const records = Array.from({ length: 60 }, () => record());
      await Promise.all(records.map((r, i) => writers[i % writers.length]!.mint(r)));
      // A reader that remembers the last seq it saw, as a gateway's cache does, while three instances
      // revoke at once: if seq order were not commit order, it would step over a late commit.
      const seen: number[] = [];
      let revoking = true;
      const polling = (async () => {
        while (revoking) {
          for (const revocation of await reader.revocationsSince(seen.at(-1) ?? 0)) seen.push(revocation.seq);
        }
        for (const revocation of await reader.revocationsSince(seen.at(-1) ?? 0)) seen.push(revocation.seq);
      })();
      await Promise.all(
        records.map((r, i) => writers[(i + 1) % writers.length]!.revoke({ idHash: r.idHash })),
      );
      revoking = false;
      await polling;
      expect(seen).toHaveLength(60);
      expect(seen).toEqual((await reader.revocationsSince(0)).map((r) => r.seq));
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('takes Aperture’s postgres.* keys as well as a URL', async () => {
    const url = new globalThis.URL(URL);
    const store = await Postgres.open({
      host: url.hostname,
      port: Number(url.port || 5432),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      dbname: url.pathname.slice(1),
      requireSSL: false,
      maxconnections: 2,
      schema: nextSchema(),
    });
    const r = record();
    await store.mint(r);
    expect(await store.rootKey(r.idHash)).toEqual(r.rootKey);
    await store.close();
  });

  it('fails fast with L402_STORE_UNAVAILABLE when the server is unreachable', async () => {
    const started = Date.now();
    await expect(
      Postgres.open({ host: '127.0.0.1', port: 1, user: 'l402', password: 'hunter2', dbname: 'l402' }),
    ).rejects.toMatchObject({
      name: 'StoreError',
      code: 'L402_STORE_UNAVAILABLE',
      message: expect.stringMatching(
        /^postgres: 127\.0\.0\.1:1\/l402: cannot open the database: .*ECONNREFUSED/,
      ),
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(Postgres.open({ url: 'postgres://l402:hunter2@127.0.0.1:1/l402' })).rejects.toMatchObject({
      code: 'L402_STORE_UNAVAILABLE',
      message: expect.not.stringContaining('hunter2'),
    });
  });

  it('gives up after connectTimeoutMs on a server that never answers or keeps hanging up', async () => {
    const silent = createServer(() => {});
    const hangingUp = createServer((socket) => socket.destroy());
    for (const server of [silent, hangingUp])
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    try {
      for (const server of [silent, hangingUp]) {
        const { port } = server.address() as AddressInfo;
        const started = Date.now();
        await expect(
          Postgres.open({ host: '127.0.0.1', port, dbname: 'l402', connectTimeoutMs: 300 }),
        ).rejects.toMatchObject({
          code: 'L402_STORE_UNAVAILABLE',
          message: `postgres: 127.0.0.1:${port}/l402: no answer within 300 ms`,
        });
        expect(Date.now() - started).toBeLessThan(1_000);
      }
    } finally {
      for (const server of [silent, hangingUp]) server.close();
    }
  });

  it('migrates a schema-1 database: its tokens keep working and get their whole price as credit', async () => {
    const schema = nextSchema();
    const store = await Postgres.open({ url: URL, schema });
    const a = record({ priceMsat: 5_000n });
    await store.mint(a);
    await store.close();
    // What a database written before metered credit looks like: no spent_msat, schema version 1.
    await admin`ALTER TABLE ${admin(schema)}.l402_transactions DROP COLUMN spent_msat`;
    for (const table of ['mpp_consumed', 'mpp_sessions', 'server_secrets']) {
      await admin`DROP TABLE ${admin(schema)}.${admin(table)}`;
    }
    await admin`DROP INDEX ${admin(schema)}.l402_transactions_service`;
    await admin`UPDATE ${admin(schema)}.schema_version SET version = 1`;
    const migrated = await Postgres.open({ url: URL, schema });
    expect(await migrated.rootKey(a.idHash)).toEqual(a.rootKey);
    expect(await migrated.debit(a.tokenId, 2_000n)).toEqual({ ok: true, remainingMsat: 3_000n });
    expect(await migrated.summarizeTransactions()).toMatchObject({ count: 1, amountMsat: 5_000n });
    await migrated.close();
    expect(
      await admin`SELECT indexdef FROM pg_indexes WHERE schemaname = ${schema} AND indexname = 'l402_transactions_service'`,
    ).toEqual([
      {
        indexdef: `CREATE INDEX l402_transactions_service ON ${schema}.l402_transactions USING btree (service, state, created_at, price_msat)`,
      },
    ]);
    expect(await admin`SELECT version FROM ${admin(schema)}.schema_version`).toEqual([{ version: 5 }]);
  });

  it('migrates a schema-3 database: its top-ups stay spent, and new ones answer their retries', async () => {
    const schema = nextSchema();
    const store = await Postgres.open({ url: URL, schema });
    const base = { expiresAt: 1_700_000_900, now: 1_700_000_000 };
    const sessionId = await openSession(store);
    const old = { ...base, paymentHash: randomBytes(32), challengeId: 'old', sats: 5n };
    expect(await store.topUpSession(sessionId, old)).toMatchObject({ ok: true });
    await store.close();
    // What a database written before top-ups were remembered per session looks like.
    await admin`ALTER TABLE ${admin(schema)}.mpp_consumed DROP COLUMN top_up_session`;
    await admin`DROP INDEX ${admin(schema)}.l402_transactions_service`;
    await admin`UPDATE ${admin(schema)}.schema_version SET version = 3`;

    const migrated = await Postgres.open({ url: URL, schema });
    // A top-up consumed before the migration does not say which session it credited: still refused.
    expect(await migrated.topUpSession(sessionId, old)).toMatchObject({ ok: false, reason: 'consumed' });
    const fresh = { ...old, paymentHash: randomBytes(32), challengeId: 'new' };
    expect(await migrated.topUpSession(sessionId, fresh)).toMatchObject({
      ok: true,
      session: { depositSats: 20n },
    });
    expect(await migrated.topUpSession(sessionId, fresh)).toMatchObject({
      ok: false,
      reason: 'already-credited',
    });
    await migrated.close();

    expect(await admin`SELECT version FROM ${admin(schema)}.schema_version`).toEqual([{ version: 5 }]);
  });

  it('finishes a migration that takes longer than connectTimeoutMs: the deadline is for reaching the server', async () => {
    const schema = nextSchema();
    await (await Postgres.open({ url: URL, schema })).close();
    await admin`DROP INDEX ${admin(schema)}.l402_transactions_service`;
    await admin`UPDATE ${admin(schema)}.schema_version SET version = 4`;
    // Another session holds the table for 1 s, as a long index build would: the migration waits for it.
    const holder = postgres(URL, { max: 1, onnotice: () => {} });
    let released = 0;
    try {
      const holding = holder.begin(async (tx) => {
        await tx`LOCK TABLE ${tx(schema)}.l402_transactions IN ACCESS EXCLUSIVE MODE`;
        await new Promise((done) => setTimeout(done, 1_000));
        released = Date.now();
      });
      await new Promise((done) => setTimeout(done, 100));
      const store = await Postgres.open({ url: URL, schema, connectTimeoutMs: 300 });
      expect(released).toBeGreaterThan(0);
      expect(await store.countTransactions()).toBe(0);
      await store.close();
      await holding;
    } finally {
      await holder.end();
    }
    expect(await admin`SELECT version FROM ${admin(schema)}.schema_version`).toEqual([{ version: 5 }]);
  });

  it('refuses a database migrated by a newer l402 with L402_STORE_CORRUPT', async () => {
    const schema = nextSchema();
    await (await Postgres.open({ url: URL, schema })).close();
    await admin`UPDATE ${admin(schema)}.schema_version SET version = 99`;
    await expect(Postgres.open({ url: URL, schema })).rejects.toMatchObject({
      code: 'L402_STORE_CORRUPT',
      message: expect.stringContaining('schema version 99, newer than this l402 (5)'),
    });
  });

  it('refuses options that cannot work with L402_STORE_CONFIG', async () => {
    const bad: Postgres.Options[] = [
      { url: URL, schema: 'Robert"); DROP TABLE students;--' },
      { url: 'mysql://127.0.0.1/test' },
      { url: 'not a url' },
      { host: '127.0.0.1', requireSSL: true, sslmode: 'disable' },
      { host: '127.0.0.1', sslmode: 'verify-ca' as Postgres.SslMode },
      { url: URL, maxconnections: 0 },
      { url: URL, host: '127.0.0.1' } as Postgres.Options,
    ];
    for (const options of bad) {
      await expect(Postgres.open(options)).rejects.toMatchObject({
        name: 'StoreError',
        code: 'L402_STORE_CONFIG',
      });
    }
  });
});
