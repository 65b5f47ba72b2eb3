/**
 * The client core without a network: offer policy and checks, the MPP credential against Aperture's
 * vectors, token scopes, the ledger's atomic reservations, the spaces, the transport rule.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as Challenge from '../Challenge.js';
import * as Invoice from '../Invoice.js';
import { randomBytes, sha256 } from '../internal/platform.node.js';
import * as Macaroon from '../Macaroon.js';
import * as Token from '../Token.js';
import { checkTransport, createFetch } from './fetch.js';
import * as Ledger from './Ledger.js';
import * as Offers from './offers.js';
import type * as Space from './Space.js';
import * as TokenStore from './TokenStore.js';

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/mpp-vectors.json', import.meta.url), 'utf8'),
) as { credentials: { name: string; credentialJson: string; header: string }[] };

const key = randomBytes(32);
function offer(amountMsat: bigint | undefined, options: { hash?: Uint8Array; caveats?: string[] } = {}) {
  const preimage = randomBytes(32);
  const paymentHash = sha256(preimage);
  const invoice = Invoice.encode(
    {
      network: 'regtest',
      amountMsat,
      timestamp: Math.floor(Date.now() / 1000),
      paymentHash,
      paymentSecret: randomBytes(32),
      description: 'x',
    },
    key,
  );
  const macaroon = Macaroon.toBase64(
    Token.mint({
      rootKey: randomBytes(32),
      paymentHash: options.hash ?? paymentHash,
      caveats: options.caveats ?? [],
    }).macaroon,
  );
  return { invoice, macaroon };
}

describe('Offers', () => {
  it("writes the MPP charge credential byte for byte as Aperture's vector", () => {
    const v = vectors.credentials.find((c) => c.name === 'charge credential')!;
    const { challenge, payload } = JSON.parse(v.credentialJson);
    const parsed = Challenge.parse(Challenge.formatPayment(challenge))[0] as Challenge.PaymentChallenge;
    expect(Offers.paymentCredential(Offers.echo(parsed), payload.preimage)).toBe(v.header);
  });

  it('ranks by preference, Aperture pair as one L402 offer, cheapest first among equals', () => {
    const a = offer(50_000n);
    const b = offer(20_000n);
    const pair = Challenge.parse([
      `LSAT macaroon="${a.macaroon}", invoice="${a.invoice}"`,
      `L402 macaroon="${a.macaroon}", invoice="${a.invoice}"`,
      `L402 macaroon="${b.macaroon}", invoice="${b.invoice}"`,
    ]);
    const ranked = Offers.rankAll(pair);
    expect(ranked.map((c) => [c.scheme, (c as Challenge.L402Challenge).invoice])).toEqual([
      ['L402', b.invoice],
      ['L402', a.invoice],
    ]);
    expect(Offers.choose(pair, { network: 'regtest' }).amountSats).toBe(20);
    // An LSAT-only offer is still taken, after L402 ones.
    expect(
      Offers.rankAll(Challenge.parse(`LSAT macaroon="${a.macaroon}", invoice="${a.invoice}"`))[0]!.scheme,
    ).toBe('LSAT');
  });

  it('skips an offer that fails its checks for the next one, and throws the first refusal when none passes', () => {
    const zero = offer(undefined);
    const good = offer(3_000n);
    const list = Challenge.parse(
      `L402 macaroon="${zero.macaroon}", invoice="${zero.invoice}", L402 macaroon="${good.macaroon}", invoice="${good.invoice}"`,
    );
    expect(Offers.choose(list).invoice.paymentRequest).toBe(good.invoice);
    expect(() => Offers.choose(list.slice(0, 1))).toThrow(expect.objectContaining({ reason: 'zero-amount' }));
    expect(() => Offers.choose(list.slice(1), { network: 'mainnet' })).toThrow(
      expect.objectContaining({ reason: 'network' }),
    );
    expect(() => Offers.choose(list.slice(1), { maxCostSats: 2 })).toThrow(
      expect.objectContaining({ limit: 'maxCost' }),
    );
  });

  it('rounds msat amounts up and reads scope and expiry from the caveats', () => {
    const o = offer(1_001n, { caveats: ['services=svc:0', 'svc_valid_until=2000000000', 'path=/v1/'] });
    const checked = Offers.choose(Challenge.parse(`L402 macaroon="${o.macaroon}", invoice="${o.invoice}"`));
    expect(checked).toMatchObject({
      amountSats: 2,
      services: ['svc'],
      expiresAt: 2_000_000_000_000,
      path: '/v1/',
    });
  });
});

describe('TokenStore', () => {
  const token = (over: Partial<TokenStore.StoredToken>): TokenStore.StoredToken => ({
    origin: 'https://api.example',
    path: '/',
    macaroon: 'AgE',
    paymentHash: Buffer.from(randomBytes(32)).toString('hex'),
    tokenId: '',
    invoice: '',
    amountSats: 1,
    state: 'paid',
    preimage: 'ab'.repeat(32),
    createdAt: Date.now(),
    ...over,
  });

  it('finds the longest unexpired scope covering the path; pending ones are never found', async () => {
    const store = TokenStore.memory();
    const root = token({});
    const v1 = token({ path: '/v1' });
    await store.put(root);
    await store.put(v1);
    await store.put(token({ path: '/v1/deep', expiresAt: Date.now() + 1000 }));
    await store.put(token({ path: '/v1/x', state: 'pending', preimage: undefined }));
    expect((await store.find('https://api.example', '/v1/a'))?.paymentHash).toBe(v1.paymentHash);
    expect((await store.find('https://api.example', '/v10'))?.paymentHash).toBe(root.paymentHash);
    expect((await store.find('https://api.example', '/v1/deep/x', Date.now() + 5000))?.paymentHash).toBe(
      v1.paymentHash,
    );
    expect((await store.find('https://api.example', '/v1/x'))?.paymentHash).toBe(v1.paymentHash);
    expect(await store.find('https://other.example', '/')).toBeUndefined();
    expect(await store.pending()).toHaveLength(1);
  });

  it('refuses malformed tokens on import', async () => {
    const store = TokenStore.memory();
    await expect(store.import([token({ origin: 'https://a.example/path' })])).rejects.toMatchObject({
      code: 'L402_CLIENT_STORE',
    });
    await expect(store.import([token({ state: 'paid', preimage: undefined })])).rejects.toThrow(/preimage/);
    await expect(store.import([token({ paymentHash: 'zz' })])).rejects.toThrow(/paymentHash/);
    expect(await store.import(JSON.stringify([token({})]))).toBe(1);
  });

  it('covers paths by segment', () => {
    expect(TokenStore.covers('/api', '/api/x')).toBe(true);
    expect(TokenStore.covers('/api', '/apix')).toBe(false);
    expect(TokenStore.covers('/api/', '/api/x')).toBe(true);
  });
});

describe('Ledger', () => {
  it('reserves atomically: concurrent payments never squeeze past a limit together', async () => {
    const ledger = Ledger.memory({ totalSats: 100 });
    const tries = Array.from({ length: 10 }, (_, i) =>
      ledger.reserve({
        time: Date.now(),
        origin: 'https://a.example',
        path: '/',
        amountSats: 30,
        paymentHash: `${i}`.padStart(64, '0'),
        tokenId: '',
      }),
    );
    const results = await Promise.allSettled(tries);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(
      results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.limit),
    ).toEqual(Array(7).fill('total'));
    expect(await ledger.spent()).toBe(90);
    await ledger.release('0'.padStart(64, '0'));
    expect(await ledger.spent()).toBe(60);
    await ledger.settle('1'.padStart(64, '0'), { amountSats: 30, feeSats: 1 });
    expect(await ledger.payments({ state: 'paid' })).toMatchObject([{ amountSats: 30, feeSats: 1 }]);
  });

  it('refuses budgets that are not whole sats', async () => {
    await expect(Ledger.memory().setLimits({ perDaySats: -1 })).rejects.toMatchObject({
      code: 'L402_CLIENT_CONFIG',
    });
  });
});

describe('spaces and transport', () => {
  it('a localStorage space keeps JSON under its prefix', async () => {
    const map = new Map<string, string>();
    const storage: Space.WebStorage = {
      getItem: (k) => map.get(k) ?? null,
      setItem: (k, v) => void map.set(k, v),
      removeItem: (k) => void map.delete(k),
      get length() {
        return map.size;
      },
      key: (i) => [...map.keys()][i] ?? null,
    };
    const store = TokenStore.localStorage(storage);
    await store.import([
      {
        origin: 'https://a.example',
        path: '/',
        macaroon: 'AgE',
        paymentHash: 'cd'.repeat(32),
        tokenId: '',
        invoice: '',
        amountSats: 1,
        state: 'pending',
        createdAt: 1,
      },
    ]);
    expect([...map.keys()]).toEqual([`l402:tokens/${encodeURIComponent('https://a.example')}`]);
    expect(await store.pending('https://a.example')).toHaveLength(1);
  });

  it('plain http only to loopback unless allowed', () => {
    expect(() => checkTransport(new URL('http://127.0.0.1:1/'))).not.toThrow();
    expect(() => checkTransport(new URL('http://localhost/'))).not.toThrow();
    expect(() => checkTransport(new URL('http://[::1]/'))).not.toThrow();
    expect(() => checkTransport(new URL('http://api.example/'))).toThrow(
      expect.objectContaining({ code: 'L402_INSECURE_TRANSPORT' }),
    );
    expect(() => checkTransport(new URL('http://api.example/'), true)).not.toThrow();
    expect(() => checkTransport(new URL('ftp://api.example/'), true)).toThrow();
  });

  it('refuses a wallet-less or nonsensical configuration at once', () => {
    expect(() => createFetch({ wallet: undefined as never })).toThrow(
      expect.objectContaining({ code: 'L402_CLIENT_CONFIG' }),
    );
    expect(() => createFetch({ wallet: [] })).toThrow();
    expect(() =>
      createFetch({
        wallet: { kind: 'x', pay: async () => ({}) as never, lookupPayment: async () => ({}) as never },
        maxCostSats: -1,
      }),
    ).toThrow(expect.objectContaining({ code: 'L402_CLIENT_CONFIG' }));
  });
});
