/**
 * The {@link Store} contract as one vitest suite, run against every implementation (memory.test.ts,
 * sqlite.test.ts, postgres.test.ts), so the three stores cannot drift apart. A store written elsewhere can
 * run it too.
 *
 * @example
 * import { describeStore } from './storeContract.js';
 * describeStore('Memory', async () => Memory.create());
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MintRecord, Store } from '../Store.js';

/** 32 random bytes: every byte field of a record is a hash, a token id or a key. */
function random(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** A fresh record; `overrides` pins what a test needs to control. */
export function record(overrides: Partial<MintRecord> = {}): MintRecord {
  return {
    idHash: random(),
    rootKey: random(),
    tokenId: random(),
    paymentHash: random(),
    service: 'api',
    priceMsat: 21_000n,
    createdAt: 1_700_000_000,
    invoiceExpiresAt: 1_700_003_600,
    ...overrides,
  };
}

/**
 * Opens a session with a 10-sat deposit (challenge `challengeId`, made at `now`, its offer expiring 900 s
 * later); resolves with the session id. The fixture the session tests here and the migration tests share.
 */
export async function openSession(
  store: Store,
  { challengeId = 'open', now = 1_700_000_000 }: { challengeId?: string; now?: number } = {},
): Promise<Uint8Array> {
  const sessionId = random();
  await store.openSession({
    paymentHash: sessionId,
    challengeId,
    expiresAt: now + 900,
    now,
    depositSats: 10n,
    returnInvoice: 'r',
  });
  return sessionId;
}

/**
 * Mints five transactions (services a, b, a, a, b at t, t+10, t+20, t+20, t+30) and settles the second
 * and third at t+40; resolves with the records in mint order.
 */
async function mintFive(store: Store, t: number): Promise<MintRecord[]> {
  const minted = [
    record({ service: 'a', createdAt: t }),
    record({ service: 'b', createdAt: t + 10 }),
    record({ service: 'a', createdAt: t + 20 }),
    record({ service: 'a', createdAt: t + 20 }),
    record({ service: 'b', createdAt: t + 30 }),
  ];
  for (const r of minted) await store.mint(r);
  await store.settle(minted[1]!.paymentHash, t + 40);
  await store.settle(minted[2]!.paymentHash, t + 40);
  return minted;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/**
 * Registers the contract's tests under `name`. `open` returns a new, empty store each call; the suite
 * closes every store it opened.
 */
export function describeStore(name: string, open: () => Promise<Store>): void {
  describe(`${name} store contract`, () => {
    const opened: Store[] = [];
    const fresh = async (): Promise<Store> => {
      const store = await open();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });

    it('returns the minted root key, and undefined for an unknown identifier', async () => {
      const store = await fresh();
      const r = record();
      const rootKey = r.rootKey.slice();
      await store.mint(r);
      r.rootKey.fill(0); // the store keeps its own copy
      expect(await store.rootKey(r.idHash)).toEqual(rootKey);
      const returned = await store.rootKey(r.idHash);
      returned?.fill(0);
      expect(await store.rootKey(r.idHash)).toEqual(rootKey);
      expect(await store.rootKey(random())).toBeUndefined();
    });

    it('records a pending transaction with every field of the mint', async () => {
      const store = await fresh();
      const r = record({ service: 'api/v1/items', priceMsat: 1_234n, createdAt: 1_700_000_123 });
      await store.mint(r);
      expect(await store.transactions()).toEqual([
        {
          tokenId: r.tokenId,
          paymentHash: r.paymentHash,
          service: 'api/v1/items',
          priceMsat: 1_234n,
          state: 'pending',
          createdAt: 1_700_000_123,
          settledAt: undefined,
          revoked: false,
        },
      ]);
    });

    it('refuses to mint an identifier hash or a token id twice, keeping the first key', async () => {
      const store = await fresh();
      const r = record();
      await store.mint(r);
      for (const again of [record({ idHash: r.idHash }), record({ tokenId: r.tokenId })]) {
        expect(await rejection(store.mint(again))).toMatchObject({
          name: 'StoreError',
          code: 'L402_STORE_CONFLICT',
        });
      }
      expect(await store.rootKey(r.idHash)).toEqual(r.rootKey);
      expect(await store.transactions()).toHaveLength(1);
    });

    it('revokes by identifier hash and by token id, once, and lists the revocations in order', async () => {
      const store = await fresh();
      const [a, b, kept] = [record(), record(), record()];
      for (const r of [a, b, kept]) await store.mint(r);
      expect(await store.revoke({ idHash: a.idHash })).toBe(true);
      expect(await store.revoke({ tokenId: b.tokenId })).toBe(true);
      expect(await store.rootKey(a.idHash)).toBeUndefined();
      expect(await store.rootKey(b.idHash)).toBeUndefined();
      expect(await store.rootKey(kept.idHash)).toEqual(kept.rootKey);
      for (const again of [
        { idHash: a.idHash },
        { tokenId: a.tokenId },
        { idHash: b.idHash },
        { tokenId: b.tokenId },
      ]) {
        expect(await store.revoke(again)).toBe(false);
      }
      expect(await store.revoke({ idHash: random() })).toBe(false);

      const all = await store.revocationsSince(0);
      expect(all.map(({ idHash, tokenId }) => ({ idHash, tokenId }))).toEqual([
        { idHash: a.idHash, tokenId: a.tokenId },
        { idHash: b.idHash, tokenId: b.tokenId },
      ]);
      const [first, second] = all;
      expect(second!.seq).toBeGreaterThan(first!.seq);
      expect(await store.revocationsSince(first!.seq)).toEqual([second]);
      expect(await store.revocationsSince(second!.seq)).toEqual([]);

      const revoked = new Map((await store.transactions()).map((tx) => [tx.tokenId.join(), tx.revoked]));
      expect([
        revoked.get(a.tokenId.join()),
        revoked.get(b.tokenId.join()),
        revoked.get(kept.tokenId.join()),
      ]).toEqual([true, true, false]);
    });

    it('never mints a revoked identifier again', async () => {
      const store = await fresh();
      const r = record();
      await store.mint(r);
      await store.revoke({ tokenId: r.tokenId });
      for (const again of [r, record({ idHash: r.idHash }), record({ tokenId: r.tokenId })]) {
        expect(await rejection(store.mint(again))).toMatchObject({
          name: 'StoreError',
          code: 'L402_STORE_CONFLICT',
        });
      }
      expect(await store.rootKey(r.idHash)).toBeUndefined();
    });

    it('settles idempotently, keeping the first settlement time; an unknown payment hash is false', async () => {
      const store = await fresh();
      const r = record();
      await store.mint(r);
      expect(await store.settle(r.paymentHash, 1_700_000_100)).toBe(true);
      expect(await store.settle(r.paymentHash, 1_700_000_200)).toBe(true);
      expect(await store.settle(random(), 1_700_000_100)).toBe(false);
      expect(await store.transactions()).toMatchObject([{ state: 'settled', settledAt: 1_700_000_100 }]);
      expect(await store.rootKey(r.idHash)).toEqual(r.rootKey);
    });

    it('lists transactions newest first, filtered by service, state and time, paged', async () => {
      const store = await fresh();
      const t = 1_700_000_000;
      // Two in the same second: the later mint is the newer.
      const minted = await mintFive(store, t);
      const ids = async (filter?: Parameters<Store['transactions']>[0]) =>
        (await store.transactions(filter)).map((tx) =>
          minted.findIndex((r) => r.tokenId.join() === tx.tokenId.join()),
        );

      expect(await ids()).toEqual([4, 3, 2, 1, 0]);
      expect(await ids({ service: 'a' })).toEqual([3, 2, 0]);
      expect(await ids({ service: 'c' })).toEqual([]);
      expect(await ids({ state: 'settled' })).toEqual([2, 1]);
      expect(await ids({ state: 'pending', service: 'a' })).toEqual([3, 0]);
      expect(await ids({ since: t + 10, until: t + 20 })).toEqual([3, 2, 1]);
      expect(await ids({ since: t + 21 })).toEqual([4]);
      expect(await ids({ limit: 2 })).toEqual([4, 3]);
      expect(await ids({ limit: 2, offset: 2 })).toEqual([2, 1]);
      expect(await ids({ offset: 4 })).toEqual([0]);
      expect(await ids({ limit: 0 })).toEqual([]);
      expect(await ids({ service: 'a', limit: 1, offset: 1 })).toEqual([2]);
    });

    it('counts the transactions a filter selects, in the database, whatever the paging', async () => {
      const store = await fresh();
      expect(await store.countTransactions()).toBe(0);
      const t = 1_700_000_000;
      await mintFive(store, t);
      const filters: [Parameters<Store['countTransactions']>[0], number][] = [
        [undefined, 5],
        [{}, 5],
        [{ service: 'a' }, 3],
        [{ service: 'c' }, 0],
        [{ state: 'settled' }, 2],
        [{ state: 'pending', service: 'a' }, 2],
        [{ since: t + 10, until: t + 20 }, 3],
        [{ since: t + 21 }, 1],
        [{ until: t - 1 }, 0],
        [{ service: 'b', state: 'settled', since: t + 10, until: t + 10 }, 1],
        // A page's bounds do not change its total.
        [{ service: 'a', limit: 1, offset: 1 }, 3],
        [{ limit: 0 }, 5],
      ];
      for (const [filter, count] of filters) {
        expect(await store.countTransactions(filter), JSON.stringify(filter)).toBe(count);
        const { limit: _, offset: __, ...all } = filter ?? {};
        expect(await store.transactions(all)).toHaveLength(count);
      }
    });

    it('summarizes transactions: counts and sums in all, per service (newest first) and per time bucket', async () => {
      const store = await fresh();
      const t = 1_700_000_000;
      const minted = [
        record({ service: 'a', createdAt: t, priceMsat: 1_000n }),
        record({ service: 'b', createdAt: t + 59, priceMsat: 2_000n }),
        record({ service: 'a', createdAt: t + 60, priceMsat: 4_000n }),
        record({ service: 'c', createdAt: t + 130, priceMsat: 8_000n }),
        record({ service: 'b', createdAt: t + 200, priceMsat: 16_000n }),
      ];
      for (const r of minted) await store.mint(r);
      for (const i of [0, 1, 3]) await store.settle(minted[i]!.paymentHash, t + 300);
      const totals = (count: number, settledCount: number, amountMsat: bigint, settledMsat: bigint) => ({
        count,
        settledCount,
        amountMsat,
        settledMsat,
      });

      expect(await store.summarizeTransactions()).toEqual({
        ...totals(5, 3, 31_000n, 11_000n),
        services: [
          { service: 'b', ...totals(2, 1, 18_000n, 2_000n) },
          { service: 'c', ...totals(1, 1, 8_000n, 8_000n) },
          { service: 'a', ...totals(2, 1, 5_000n, 1_000n) },
        ],
        buckets: [],
      });
      // Minute buckets from t: [t, t+60) holds the first two, and so on; empty minutes are left out.
      expect(
        await store.summarizeTransactions({ since: t, until: t + 199 }, { width: 60, origin: t }),
      ).toEqual({
        ...totals(4, 3, 15_000n, 11_000n),
        services: [
          { service: 'c', ...totals(1, 1, 8_000n, 8_000n) },
          { service: 'a', ...totals(2, 1, 5_000n, 1_000n) },
          { service: 'b', ...totals(1, 1, 2_000n, 2_000n) },
        ],
        buckets: [
          { start: t, ...totals(2, 2, 3_000n, 3_000n) },
          { start: t + 60, ...totals(1, 0, 4_000n, 0n) },
          { start: t + 120, ...totals(1, 1, 8_000n, 8_000n) },
        ],
      });
      // The filter applies to every figure.
      expect(await store.summarizeTransactions({ service: 'a', state: 'pending' }, { width: 3600 })).toEqual({
        ...totals(1, 0, 4_000n, 0n),
        services: [{ service: 'a', ...totals(1, 0, 4_000n, 0n) }],
        buckets: [{ start: t + 60 - ((t + 60) % 3600), ...totals(1, 0, 4_000n, 0n) }],
      });
      expect(await store.summarizeTransactions({ state: 'settled', since: t + 1 })).toMatchObject({
        ...totals(2, 2, 10_000n, 10_000n),
        services: [{ service: 'c' }, { service: 'b' }],
      });
      // Paging does not apply.
      expect(await store.summarizeTransactions({ limit: 1, offset: 4 })).toMatchObject(
        totals(5, 3, 31_000n, 11_000n),
      );
    });

    it('cuts buckets on the origin given, before it too, and epoch-aligned by default', async () => {
      const store = await fresh();
      for (const createdAt of [-7, 0, 4, 5, 9, 10, 23])
        await store.mint(record({ createdAt, priceMsat: 1n }));
      const starts = async (bucketing: Parameters<Store['summarizeTransactions']>[1]) =>
        (await store.summarizeTransactions({}, bucketing)).buckets.map((b) => [b.start, b.count]);
      expect(await starts({ width: 10 })).toEqual([
        [-10, 1],
        [0, 4],
        [10, 1],
        [20, 1],
      ]);
      expect(await starts({ width: 10, origin: 5 })).toEqual([
        [-15, 1],
        [-5, 2],
        [5, 3],
        [15, 1],
      ]);
      expect(await starts({ width: 1, origin: 3 })).toEqual([-7, 0, 4, 5, 9, 10, 23].map((s) => [s, 1]));
      expect(await starts({ width: 2 ** 32, origin: 1_700_000_000 })).toEqual([[1_700_000_000 - 2 ** 32, 7]]);
      for (const bad of [{ width: 0 }, { width: 1.5 }, { width: 2 ** 32 + 1 }, { width: 60, origin: 0.5 }]) {
        await expect(store.summarizeTransactions({}, bad), JSON.stringify(bad)).rejects.toBeInstanceOf(
          RangeError,
        );
      }
    });

    it('orders services by their newest transaction, the later mint first within a second', async () => {
      const store = await fresh();
      const t = 1_700_000_000;
      // b's newest is minted after a's newest in the same second, but a has the last mint of all.
      await store.mint(record({ service: 'a', createdAt: t + 10 }));
      await store.mint(record({ service: 'b', createdAt: t + 10 }));
      await store.mint(record({ service: 'a', createdAt: t }));
      await store.mint(record({ service: 'c', createdAt: t + 5 }));
      const firstNamed = [...new Set((await store.transactions()).map((tx) => tx.service))];
      expect(firstNamed).toEqual(['b', 'a', 'c']);
      expect((await store.summarizeTransactions()).services.map((s) => s.service)).toEqual(firstNamed);
      // A state filter leaves out the rows of the other state from the tie as well.
      const settledA = record({ service: 'a', createdAt: t + 20 });
      const pendingB = record({ service: 'b', createdAt: t + 20 });
      await store.mint(settledA);
      await store.mint(pendingB);
      await store.settle(settledA.paymentHash, t + 30);
      expect(
        (await store.summarizeTransactions({ state: 'pending' })).services.map((s) => s.service),
      ).toEqual(['b', 'a', 'c']);
      expect(
        (await store.summarizeTransactions({ state: 'settled' })).services.map((s) => s.service),
      ).toEqual(['a']);
    });

    it('summarizes an empty store, or a filter selecting nothing, as zeros with no groups', async () => {
      const store = await fresh();
      const nothing = {
        count: 0,
        settledCount: 0,
        amountMsat: 0n,
        settledMsat: 0n,
        services: [],
        buckets: [],
      };
      expect(await store.summarizeTransactions()).toEqual(nothing);
      expect(await store.summarizeTransactions({}, { width: 60 })).toEqual(nothing);
      await store.mint(record({ service: 'a' }));
      expect(await store.summarizeTransactions({ service: 'b' }, { width: 60 })).toEqual(nothing);
      expect(await store.summarizeTransactions({ since: 1_800_000_000 })).toEqual(nothing);
    });

    it('sums amounts exactly past 2^53 and past 2^64 msat', async () => {
      const store = await fresh();
      const prices = [2n ** 53n + 1n, 2n ** 53n + 3n, 2n ** 63n - 1n, 2n ** 63n - 1n, 2n ** 63n - 1n, 7n];
      const minted = prices.map((priceMsat, i) => record({ priceMsat, createdAt: 1_000 + i }));
      for (const r of minted) await store.mint(r);
      for (const r of minted) await store.settle(r.paymentHash, 2_000);
      const sum = prices.reduce((a, b) => a + b, 0n);
      expect(sum).toBeGreaterThan(2n ** 64n);
      const whole = await store.summarizeTransactions({}, { width: 2 });
      expect(whole).toMatchObject({ count: 6, settledCount: 6, amountMsat: sum, settledMsat: sum });
      expect(whole.services).toEqual([
        { service: 'api', count: 6, settledCount: 6, amountMsat: sum, settledMsat: sum },
      ]);
      expect(whole.buckets.map((b) => b.amountMsat)).toEqual([
        2n ** 53n + 1n + 2n ** 53n + 3n,
        2n ** 64n - 2n,
        2n ** 63n - 1n + 7n,
      ]);
      expect((await store.summarizeTransactions({ until: 1_001 })).settledMsat).toBe(2n ** 54n + 4n);
    });

    it('removes only unpaid tokens whose invoice expired, keeping paid ones and revocations', async () => {
      const store = await fresh();
      const now = 1_700_010_000;
      const expired = record({ invoiceExpiresAt: now - 1 });
      const open = record({ invoiceExpiresAt: now + 1 });
      const expiresNow = record({ invoiceExpiresAt: now });
      const paid = record({ invoiceExpiresAt: now - 1 });
      const revoked = record({ invoiceExpiresAt: now - 1 });
      for (const r of [expired, open, expiresNow, paid, revoked]) await store.mint(r);
      await store.settle(paid.paymentHash, now - 100);
      await store.revoke({ idHash: revoked.idHash });

      expect(await store.removeExpiredUnpaid(now)).toBe(1);
      expect(await store.rootKey(expired.idHash)).toBeUndefined();
      for (const r of [open, expiresNow, paid]) expect(await store.rootKey(r.idHash)).toEqual(r.rootKey);
      const left = (await store.transactions()).map((tx) => tx.tokenId.join());
      expect(left).not.toContain(expired.tokenId.join());
      expect(left).toHaveLength(4);
      expect(await store.revocationsSince(0)).toMatchObject([
        { idHash: revoked.idHash, tokenId: revoked.tokenId },
      ]);
      expect(await store.settle(expired.paymentHash, now)).toBe(false);
      expect(await store.removeExpiredUnpaid(now)).toBe(0);
    });

    it('keeps prices exactly, up to 2^63-1 msat, and refuses what does not fit', async () => {
      const store = await fresh();
      const prices = [0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n];
      for (const [i, priceMsat] of prices.entries()) await store.mint(record({ priceMsat, createdAt: i }));
      expect((await store.transactions()).map((tx) => tx.priceMsat).reverse()).toEqual(prices);
      for (const priceMsat of [2n ** 63n, -1n]) {
        expect(await rejection(store.mint(record({ priceMsat })))).toBeInstanceOf(RangeError);
      }
    });

    it('refuses malformed arguments with a RangeError before touching the data', async () => {
      const store = await fresh();
      const bad: Promise<unknown>[] = [
        store.mint(record({ idHash: new Uint8Array(31) })),
        store.mint(record({ createdAt: 1.5 })),
        store.rootKey(new Uint8Array(33)),
        store.settle(random(), Number.NaN),
        store.revoke({ tokenId: new Uint8Array(0) }),
        store.transactions({ limit: -1 }),
        store.transactions({ offset: 0.5 }),
        store.countTransactions({ since: 1.5 }),
        store.countTransactions({ state: 'lost' as 'settled' }),
        store.summarizeTransactions({ until: Number.NaN }),
        store.summarizeTransactions({}, { width: -60 }),
      ];
      // Handlers are attached at once: a rejection left unobserved for a tick would fail the run.
      for (const error of await Promise.all(bad.map(rejection))) expect(error).toBeInstanceOf(RangeError);
      expect(await store.transactions()).toEqual([]);
    });

    it('keeps 200 concurrent mints, every one readable', async () => {
      const store = await fresh();
      const records = Array.from({ length: 200 }, () => record());
      await Promise.all(records.map((r) => store.mint(r)));
      const keys = await Promise.all(records.map((r) => store.rootKey(r.idHash)));
      expect(keys).toEqual(records.map((r) => r.rootKey));
      expect(await store.transactions()).toHaveLength(200);
    });

    it('debits a token’s prepaid credit down to exactly zero, then refuses without changing it', async () => {
      const store = await fresh();
      const r = record({ priceMsat: 10_000n });
      await store.mint(r);
      expect(await store.debit(r.tokenId, 3_000n)).toEqual({ ok: true, remainingMsat: 7_000n });
      expect(await store.debit(r.tokenId, 0n)).toEqual({ ok: true, remainingMsat: 7_000n });
      expect(await store.debit(r.tokenId, 7_001n)).toEqual({ ok: false, remainingMsat: 7_000n });
      expect(await store.debit(r.tokenId, 7_000n)).toEqual({ ok: true, remainingMsat: 0n });
      expect(await store.debit(r.tokenId, 1n)).toEqual({ ok: false, remainingMsat: 0n });
      // The transaction itself still says what was paid.
      expect((await store.transactions())[0]?.priceMsat).toBe(10_000n);
    });

    it('refuses a debit for an unknown or revoked token, and bad amounts with a RangeError', async () => {
      const store = await fresh();
      expect(await store.debit(record().tokenId, 1n)).toEqual({ ok: false, remainingMsat: 0n });
      const r = record({ priceMsat: 5_000n });
      await store.mint(r);
      await store.revoke({ tokenId: r.tokenId });
      expect((await store.debit(r.tokenId, 1n)).ok).toBe(false);
      await expect(store.debit(r.tokenId, -1n)).rejects.toBeInstanceOf(RangeError);
      await expect(store.debit(new Uint8Array(31), 1n)).rejects.toBeInstanceOf(RangeError);
      await expect(store.debit(r.tokenId, 1 as unknown as bigint)).rejects.toBeInstanceOf(RangeError);
    });

    it('takes exactly the credit there is from 50 concurrent debits, never more', async () => {
      const store = await fresh();
      const r = record({ priceMsat: 30_000n });
      await store.mint(r);
      const results = await Promise.all(Array.from({ length: 50 }, () => store.debit(r.tokenId, 1_000n)));
      expect(results.filter((d) => d.ok)).toHaveLength(30);
      const left = results.filter((d) => d.ok).map((d) => d.remainingMsat);
      // Every successful debit saw a different balance: no two took the same sats.
      expect(new Set(left).size).toBe(30);
      expect(await store.debit(r.tokenId, 0n)).toEqual({ ok: true, remainingMsat: 0n });
    });

    it('consumes a payment exactly once, even when many instances race for it', async () => {
      const store = await fresh();
      const paymentHash = random();
      const record = { paymentHash, challengeId: 'c1', expiresAt: 1_700_000_900 };
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.consume({ ...record, challengeId: `c${i}` })),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.consume(record)).toBe(false);
      expect(await store.consume({ ...record, paymentHash: random() })).toBe(true);
    });

    it('prunes consumption records whose challenge expired before a time, and only those', async () => {
      const store = await fresh();
      const [old, current] = [random(), random()];
      await store.consume({ paymentHash: old, challengeId: 'a', expiresAt: 1_000 });
      await store.consume({ paymentHash: current, challengeId: 'b', expiresAt: 2_000 });
      expect(await store.removeExpiredConsumptions(2_000)).toBe(1);
      expect(await store.consume({ paymentHash: old, challengeId: 'a', expiresAt: 1_000 })).toBe(true);
      expect(await store.consume({ paymentHash: current, challengeId: 'b', expiresAt: 2_000 })).toBe(false);
    });

    it('opens a session on a deposit once; the deposit is then consumed', async () => {
      const store = await fresh();
      const paymentHash = random();
      const open = {
        paymentHash,
        challengeId: 'open',
        expiresAt: 1_700_000_900,
        depositSats: 100n,
        returnInvoice: 'lnbcrt1refund',
        now: 1_700_000_000,
      };
      expect(await store.openSession(open)).toBe(true);
      expect(await store.openSession(open)).toBe(false);
      expect(await store.consume(open)).toBe(false);
      expect(await store.session(paymentHash)).toEqual({
        sessionId: paymentHash,
        depositSats: 100n,
        spentSats: 0n,
        returnInvoice: 'lnbcrt1refund',
        status: 'open',
        refundStatus: undefined,
        createdAt: 1_700_000_000,
        updatedAt: 1_700_000_000,
      });
      expect(await store.session(random())).toBeUndefined();
      // A payment spent as a charge cannot open a session either.
      const charged = random();
      await store.consume({ paymentHash: charged, challengeId: 'x', expiresAt: 1 });
      expect(await store.openSession({ ...open, paymentHash: charged })).toBe(false);
    });

    it('debits a session exactly under concurrency, tops it up once per payment, and closes it once', async () => {
      const store = await fresh();
      const sessionId = random();
      const base = { challengeId: 'c', expiresAt: 1_700_000_900, now: 1_700_000_000 };
      await store.openSession({
        ...base,
        paymentHash: sessionId,
        depositSats: 50n,
        returnInvoice: 'lnbcrt1r',
      });
      const debits = await Promise.all(
        Array.from({ length: 80 }, () => store.debitSession(sessionId, 1n, 1)),
      );
      expect(debits.filter((d) => d.ok)).toHaveLength(50);
      expect(debits.find((d) => !d.ok)).toMatchObject({ ok: false, reason: 'insufficient' });
      expect(await store.session(sessionId)).toMatchObject({ depositSats: 50n, spentSats: 50n });

      const topUp = { ...base, paymentHash: random(), sats: 30n };
      expect(await store.topUpSession(sessionId, topUp)).toMatchObject({
        ok: true,
        session: { depositSats: 80n, spentSats: 50n },
      });
      expect(await store.topUpSession(sessionId, topUp)).toMatchObject({
        ok: false,
        reason: 'already-credited',
        session: { depositSats: 80n, spentSats: 50n },
      });
      expect(await store.topUpSession(random(), { ...topUp, paymentHash: random() })).toEqual({
        ok: false,
        reason: 'not-found',
      });
      expect(await store.debitSession(sessionId, 31n, 2)).toMatchObject({
        ok: false,
        reason: 'insufficient',
      });
      expect(await store.debitSession(sessionId, 10n, 2)).toMatchObject({
        ok: true,
        session: { spentSats: 60n },
      });
      expect(await store.debitSession(random(), 1n, 2)).toEqual({ ok: false, reason: 'not-found' });

      expect(await store.recordRefund(sessionId, 'skipped')).toBe(false); // still open
      const closed = await store.closeSession(sessionId, 3);
      expect(closed).toMatchObject({
        ok: true,
        session: { status: 'closed', depositSats: 80n, spentSats: 60n },
      });
      expect(await store.closeSession(sessionId, 4)).toMatchObject({ ok: false, reason: 'closed' });
      expect(await store.debitSession(sessionId, 1n, 4)).toMatchObject({ ok: false, reason: 'closed' });
      expect(await store.topUpSession(sessionId, { ...base, paymentHash: random(), sats: 5n })).toMatchObject(
        { ok: false, reason: 'closed' },
      );
      expect(await store.closeSession(random(), 4)).toEqual({ ok: false, reason: 'not-found' });
      expect(await store.recordRefund(sessionId, 'succeeded')).toBe(true);
      expect(await store.recordRefund(sessionId, 'failed')).toBe(false);
      expect(await store.session(sessionId)).toMatchObject({ status: 'closed', refundStatus: 'succeeded' });
      expect(await store.closeSession(sessionId, 5)).toMatchObject({
        ok: false,
        reason: 'closed',
        session: { refundStatus: 'succeeded' },
      });
    });

    it('answers a retried top-up as already-credited, crediting it once, and refuses a payment spent elsewhere', async () => {
      const store = await fresh();
      const base = { expiresAt: 1_700_000_900, now: 1_700_000_000 };
      const mine = await openSession(store, { challengeId: 'open-mine' });
      const other = await openSession(store, { challengeId: 'open-other' });
      const topUp = { ...base, paymentHash: random(), challengeId: 'top-up', sats: 30n };
      expect(await store.topUpSession(mine, topUp)).toMatchObject({
        ok: true,
        session: { depositSats: 40n },
      });
      for (let i = 0; i < 3; i++) {
        expect(await store.topUpSession(mine, { ...topUp, now: base.now + 1 + i })).toEqual({
          ok: false,
          reason: 'already-credited',
          session: expect.objectContaining({ sessionId: mine, depositSats: 40n, status: 'open' }),
        });
      }
      // The same payment is refused for another session, under another challenge, and as a charge or
      // a deposit; a retry names a session that exists.
      expect(await store.topUpSession(other, topUp)).toMatchObject({ ok: false, reason: 'consumed' });
      expect(await store.topUpSession(mine, { ...topUp, challengeId: 'another' })).toMatchObject({
        ok: false,
        reason: 'consumed',
      });
      expect(await store.topUpSession(random(), topUp)).toEqual({ ok: false, reason: 'not-found' });
      expect(await store.consume(topUp)).toBe(false);
      expect(await store.openSession({ ...topUp, depositSats: 30n, returnInvoice: 'r' })).toBe(false);
      // A payment consumed by something other than a top-up is refused even for the session, and
      // under the challenge, it was consumed with: a deposit, a charge.
      expect(
        await store.topUpSession(mine, { ...base, paymentHash: mine, challengeId: 'open-mine', sats: 10n }),
      ).toMatchObject({ ok: false, reason: 'consumed' });
      const charged = { paymentHash: random(), challengeId: 'charge', expiresAt: base.expiresAt };
      expect(await store.consume(charged)).toBe(true);
      expect(await store.topUpSession(mine, { ...charged, now: base.now, sats: 5n })).toMatchObject({
        ok: false,
        reason: 'consumed',
      });
      // A top-up refused for one session credits nothing there, and was credited to the first once.
      expect(await store.session(other)).toMatchObject({ depositSats: 10n });
      expect(await store.debitSession(mine, 40n, base.now + 10)).toMatchObject({ ok: true });
      expect(await store.debitSession(mine, 1n, base.now + 10)).toMatchObject({
        ok: false,
        reason: 'insufficient',
      });

      // Once the session is closed, the retry still gets its original outcome; a fresh payment does not.
      await store.closeSession(mine, base.now + 20);
      expect(await store.topUpSession(mine, topUp)).toMatchObject({
        ok: false,
        reason: 'already-credited',
        session: { status: 'closed', depositSats: 40n },
      });
      expect(await store.topUpSession(mine, { ...topUp, paymentHash: random() })).toMatchObject({
        ok: false,
        reason: 'closed',
      });
      expect(await store.topUpSession(mine, { ...charged, now: base.now, sats: 5n })).toMatchObject({
        ok: false,
        reason: 'closed',
      });
    });

    it('credits one of many identical top-ups racing, answering the others as already-credited', async () => {
      const store = await fresh();
      const base = { expiresAt: 1_700_000_900, now: 1_700_000_000 };
      const [a, b] = [await openSession(store), await openSession(store)];
      const topUp = { ...base, paymentHash: random(), challengeId: 'top-up', sats: 7n };
      const results = await Promise.all(Array.from({ length: 20 }, () => store.topUpSession(a, topUp)));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === 'already-credited')).toHaveLength(19);
      expect(await store.session(a)).toMatchObject({ depositSats: 17n });

      // One payment raced as top-ups of two sessions and as charges: exactly one use wins; the loser
      // session's top-ups are all refused, the winner's repeats all already-credited.
      const contested = { ...base, paymentHash: random(), challengeId: 'contested', sats: 5n };
      const raced = await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => store.topUpSession(i % 2 === 0 ? a : b, contested)),
        ...Array.from({ length: 4 }, () => store.consume(contested)),
      ]);
      const won = (r: (typeof raced)[number]) => r === true || (typeof r === 'object' && r.ok);
      expect(raced.filter(won)).toHaveLength(1);
      const winner = raced.findIndex(won);
      // Top-ups of a are at even indexes, of b at odd ones, charges from 6 on.
      const credited = winner >= 6 ? undefined : winner % 2 === 0 ? a : b;
      expect(await store.session(a)).toMatchObject({ depositSats: credited === a ? 22n : 17n });
      expect(await store.session(b)).toMatchObject({ depositSats: credited === b ? 15n : 10n });
      for (const [i, r] of raced.entries()) {
        if (i === winner) continue;
        if (i >= 6) expect(r).toBe(false);
        else if (credited !== undefined && winner % 2 === i % 2)
          expect(r).toMatchObject({ ok: false, reason: 'already-credited' });
        else expect(r).toMatchObject({ ok: false, reason: 'consumed' });
      }
    });

    it('closes the sessions idle since a time, once, leaving active ones open', async () => {
      const store = await fresh();
      const open = (now: number) => openSession(store, { challengeId: 'c', now });
      const [idle, active, busy] = [await open(1_000), await open(1_000), await open(5_000)];
      await store.debitSession(active, 3n, 4_000); // activity moves it past the cut-off
      await store.debitSession(idle, 4n, 1_500);
      const closed = await store.closeIdleSessions(3_000, 6_000, 100);
      expect(closed).toEqual([
        {
          sessionId: idle,
          depositSats: 10n,
          spentSats: 4n,
          returnInvoice: 'r',
          status: 'closed',
          refundStatus: undefined,
          createdAt: 1_000,
          updatedAt: 6_000,
        },
      ]);
      expect(await store.closeIdleSessions(3_000, 6_000, 100)).toEqual([]);
      for (const id of [active, busy]) expect(await store.session(id)).toMatchObject({ status: 'open' });
      expect(await store.debitSession(idle, 1n, 6_001)).toMatchObject({ ok: false, reason: 'closed' });
      expect(await store.closeIdleSessions(10_000, 10_000, 1)).toHaveLength(1);
      expect(await store.closeIdleSessions(10_000, 10_000, 1)).toHaveLength(1);
      expect(await store.closeIdleSessions(10_000, 10_000, 1)).toEqual([]);
    });

    it('keeps one secret per name: the first stored wins, for every caller', async () => {
      const store = await fresh();
      const candidates = Array.from({ length: 5 }, () => random());
      const got = await Promise.all(candidates.map((c) => store.secret('mpp-hmac', c)));
      expect(candidates.some((c) => c.join() === got[0]!.join())).toBe(true);
      for (const g of got) expect(g).toEqual(got[0]);
      expect(await store.secret('mpp-hmac', random())).toEqual(got[0]);
      expect(await store.secret('other', candidates[1]!)).toEqual(candidates[1]);
    });

    it('refuses every call once closed with L402_STORE_UNAVAILABLE; closing twice is fine', async () => {
      const store = await fresh();
      const r = record();
      await store.mint(r);
      await store.close();
      await store.close();
      const calls: Promise<unknown>[] = [
        store.mint(record()),
        store.rootKey(r.idHash),
        store.settle(r.paymentHash, 1),
        store.revoke({ idHash: r.idHash }),
        store.revocationsSince(0),
        store.transactions(),
        store.countTransactions(),
        store.summarizeTransactions({}, { width: 60 }),
        store.removeExpiredUnpaid(2_000_000_000),
        store.debit(r.tokenId, 1n),
        store.consume({ paymentHash: random(), challengeId: 'c', expiresAt: 1 }),
        store.debitSession(random(), 1n, 1),
        store.secret('name', random()),
      ];
      for (const error of await Promise.all(calls.map(rejection))) {
        expect(error).toMatchObject({ name: 'StoreError', code: 'L402_STORE_UNAVAILABLE' });
      }
    });
  });
}
