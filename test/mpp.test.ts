/**
 * The MPP server (`l402/mpp/server`) on its own, end to end on the devnet with the memory store: what
 * the gateway test does not reach (sessions switched off, bad return invoices, expired session offers,
 * top-ups of unknown sessions, a price raised after the offer, a store that is down, the HMAC key shared
 * through the store).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { type Backend, connect } from 'l402/lightning';
import { Client } from 'l402/mpp';
import * as MppServer from 'l402/mpp/server';
import type { Decision } from 'l402/server';
import * as Memory from 'l402/stores/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let devnet: Devnet.Devnet;
let merchant: Backend;
let payer: Backend;
const home = mkdtempSync(join(tmpdir(), 'l402-mpp-server-'));

beforeAll(async () => {
  devnet = await Devnet.start({ home, publish: false, pushSat: 100_000 });
  merchant = await connect(devnet.document.nodes.merchant!.uris.lnd);
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
}, 60_000);
afterAll(async () => {
  await merchant?.close();
  await payer?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

const route = { service: 'api', price: 4 };
const view = (authorization?: string) => ({
  method: 'GET',
  url: '/api/x',
  headers: authorization === undefined ? {} : { authorization },
});
const lines = (d: Decision) =>
  d.kind === 'respond' ? d.headers.filter(([n]) => n === 'www-authenticate').map(([, v]) => v) : [];
const problemOf = (d: Decision | undefined) => {
  if (d?.kind !== 'respond') throw new Error(`expected a refusal, got ${d?.kind}`);
  expect(d.status).toBe(402);
  return (JSON.parse(d.body) as { type: string }).type.replace('https://paymentauth.org/problems/', '');
};

async function server(options: Partial<MppServer.Options> = {}) {
  return MppServer.create({
    backend: merchant,
    store: Memory.create(),
    realm: 'api.test',
    network: 'regtest',
    sessions: { depositMultiplier: 3 },
    ...options,
  });
}

describe('the MPP server', () => {
  it('offers only charge without sessions, and refuses a session credential as unsupported', async () => {
    // Two servers with one key: one offers sessions, the other does not take them.
    const store = Memory.create();
    const chargeOnly = await server({ store, sessions: undefined });
    const withSessions = await server({ store });
    expect(Client.offers(lines(await chargeOnly.challenge(view(), route))).map((o) => o.intent)).toEqual([
      'charge',
    ]);
    const offer = Client.offers(lines(await withSessions.challenge(view(), route))).find(
      (o) => o.intent === 'session',
    )!;
    const open = Client.open(offer, { preimage: randomBytes(32), returnInvoice: 'lnbcrt1' });
    expect(problemOf(await chargeOnly.authorize(view(open), route))).toBe('method-unsupported');
  });

  it('refuses an open with a return invoice naming an amount, and an expired session offer', async () => {
    let now = Date.now();
    const mpp = await server({ now: () => now });
    const offer = Client.offers(lines(await mpp.challenge(view(), route))).find(
      (o) => o.intent === 'session',
    )!;
    const request = Client.sessionRequest(offer);
    expect(request).toMatchObject({ amount: '4', depositAmount: '12' });
    const { preimage } = await payer.pay(request.depositInvoice!, { maxFeeMsat: 1_000n });
    const priced = await payer.createInvoice({ amountMsat: 5_000n, memo: 'not a refund invoice' });
    const open = (returnInvoice: string) =>
      mpp.authorize(view(Client.open(offer, { preimage, returnInvoice })), route);
    expect(problemOf(await open(priced.paymentRequest))).toBe('lightning/invalid-return-invoice');
    expect(problemOf(await open('lnbcrt1nonsense'))).toBe('lightning/invalid-return-invoice');
    const refund = await payer.createInvoice({ amountMsat: 0n, memo: 'refund', expirySeconds: 86_400 });
    now += 901_000;
    expect(problemOf(await open(refund.paymentRequest))).toBe('lightning/challenge-expired');
    now -= 901_000;
    const opened = await open(refund.paymentRequest);
    expect(opened).toMatchObject({ kind: 'pass' });
  });

  it('refuses a top-up of an unknown session and a wrong top-up preimage', async () => {
    const mpp = await server();
    const offer = Client.offers(lines(await mpp.challenge(view(), route))).find(
      (o) => o.intent === 'session',
    )!;
    const { preimage } = await payer.pay(Client.sessionRequest(offer).depositInvoice!, {
      maxFeeMsat: 1_000n,
    });
    const unknown = randomBytes(32).toString('hex');
    expect(
      problemOf(
        await mpp.authorize(
          view(Client.topUp(offer, { sessionId: unknown, topUpPreimage: preimage })),
          route,
        ),
      ),
    ).toBe('lightning/session-not-found');
    expect(
      problemOf(
        await mpp.authorize(
          view(Client.topUp(offer, { sessionId: unknown, topUpPreimage: randomBytes(32) })),
          route,
        ),
      ),
    ).toBe('lightning/invalid-preimage');
    expect(
      problemOf(await mpp.authorize(view(Client.bearer(offer, { sessionId: unknown, preimage })), route)),
    ).toBe('lightning/invalid-preimage');
  });

  it('refuses a charge whose offer is cheaper than the price now, and accepts a lower-case scheme', async () => {
    const mpp = await server();
    const offer = Client.offers(lines(await mpp.challenge(view(), route))).find(
      (o) => o.intent === 'charge',
    )!;
    const { preimage } = await payer.pay(Client.chargeRequest(offer).methodDetails.invoice, {
      maxFeeMsat: 1_000n,
    });
    const authorization = Client.charge(offer, preimage);
    expect(problemOf(await mpp.authorize(view(authorization), { ...route, price: 5 }))).toBe(
      'payment-insufficient',
    );
    const paid = await mpp.authorize(view(authorization.replace('Payment', 'payment')), route);
    expect(paid).toMatchObject({
      kind: 'pass',
      headers: [
        ['payment-receipt', expect.any(String)],
        ['cache-control', 'private'],
      ],
    });
    expect(await mpp.authorize(view(), route)).toBeUndefined();
    expect(await mpp.authorize(view('Bearer abc'), route)).toBeUndefined();
  });

  it('shares its HMAC key through the store: another store’s server refuses the offer', async () => {
    const store = Memory.create();
    const [one, two] = [await server({ store }), await server({ store })];
    const stranger = await server();
    const offer = Client.offers(lines(await one.challenge(view(), route))).find(
      (o) => o.intent === 'charge',
    )!;
    const { preimage } = await payer.pay(Client.chargeRequest(offer).methodDetails.invoice, {
      maxFeeMsat: 1_000n,
    });
    const authorization = Client.charge(offer, preimage);
    expect(problemOf(await stranger.authorize(view(authorization), route))).toBe('invalid-challenge');
    expect(await two.authorize(view(authorization), route)).toMatchObject({ kind: 'pass' });
    expect(problemOf(await one.authorize(view(authorization), route))).toBe('invalid-challenge');
  });

  it('answers 503 with Retry-After when its store is down, and never serves', async () => {
    const store = Memory.create();
    const mpp = await server({ store });
    const offer = Client.offers(lines(await mpp.challenge(view(), route))).find(
      (o) => o.intent === 'charge',
    )!;
    const { preimage } = await payer.pay(Client.chargeRequest(offer).methodDetails.invoice, {
      maxFeeMsat: 1_000n,
    });
    await store.close();
    const down = await mpp.authorize(view(Client.charge(offer, preimage)), route);
    expect(down).toMatchObject({ kind: 'respond', status: 503 });
    expect(down?.kind === 'respond' && down.headers).toContainEqual(['retry-after', '5']);
  });
});
