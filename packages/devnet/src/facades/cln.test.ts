import { createHash } from 'node:crypto';
import { Cln } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Network from '../Network.js';
import * as Facade from './cln.js';
import * as harness from './harness.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('Core Lightning: the devnet clnrest facade and the l402 Cln backend, paying each other', () => {
  const clock = harness.movableClock();
  let net: Network.Network;
  let merchantRest: Facade.Facade;
  let payerRest: Facade.Facade;
  let merchant: Cln.Cln;
  let payer: Cln.Cln;

  /** POSTs straight to a facade, as any clnrest client would. */
  const post = async (
    rest: Facade.Facade,
    method: string,
    params: unknown,
    rune: string | null = rest.rune,
  ) => {
    const response = await fetch(`${rest.url}/v1/${method}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(rune !== null && { Rune: rune }) },
      body: JSON.stringify(params),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    net = await Network.start({
      nodes: ['payer', 'merchant'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000, pushSat: 200_000 }],
      now: clock.now,
    });
    merchantRest = await Facade.serve(net.node('merchant'));
    payerRest = await Facade.serve(net.node('payer'));
    merchant = Cln.fromUri(
      `cln+http://${new URL(merchantRest.url).host}?rune=${encodeURIComponent(merchantRest.rune)}`,
      {
        now: clock.now,
      },
    );
    payer = Cln.connect({ url: payerRest.url, rune: payerRest.rune, now: clock.now });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([merchant?.close(), payer?.close()]);
    await Promise.all([merchantRest?.close(), payerRest?.close()]);
    await net?.close();
  });

  it('info comes from getinfo', async () => {
    const node = net.node('merchant');
    expect(await merchant.info()).toEqual({
      pubkey: node.nodeId,
      alias: 'merchant',
      network: 'regtest',
      blockHeight: node.info().blockHeight,
    });
  });

  it('merchant invoices, payer pays, the preimage opens the hash, waitinvoice wakes the merchant, balances move', async () => {
    const created = await merchant.createInvoice({
      amountMsat: 21_000n,
      memo: 'one request',
      expirySeconds: 600,
    });
    expect(created.paymentRequest).toMatch(/^lnbcrt210n1/);
    expect(await merchant.lookupInvoice(created.paymentHash)).toMatchObject({
      state: 'open',
      amountMsat: 21_000n,
      amountReceivedMsat: undefined,
      preimage: undefined,
    });
    const payerBefore = await payer.balance();
    const merchantBefore = await merchant.balance();

    // Blocked in lightningd's waitinvoice before anything is paid.
    const waiting = merchant.waitInvoice(created.paymentHash, { timeoutMs: 20_000 });
    const paid = await payer.pay(created.paymentRequest, { timeoutMs: 20_000 });
    expect(sha256(paid.preimage)).toBe(hex(created.paymentHash));
    expect(paid).toMatchObject({ amountMsat: 21_000n, feeMsat: 0n });

    const settled = await waiting;
    expect(settled).toMatchObject({ state: 'settled', amountMsat: 21_000n, amountReceivedMsat: 21_000n });
    expect(settled.preimage).toEqual(paid.preimage);
    expect(settled.settledAt).toBeGreaterThan(0);
    expect(await payer.lookupPayment(created.paymentHash)).toMatchObject({
      state: 'succeeded',
      preimage: paid.preimage,
      amountMsat: 21_000n,
      feeMsat: 0n,
    });

    await harness.settled(net);
    expect((await payer.balance()).spendableMsat).toBe(payerBefore.spendableMsat - 21_000n);
    expect((await merchant.balance()).spendableMsat).toBe(merchantBefore.spendableMsat + 21_000n);
  }, 30_000);

  it('paying the same invoice again pays nothing and returns the same preimage', async () => {
    const created = await merchant.createInvoice({ amountMsat: 5_000n });
    const first = await payer.pay(created.paymentRequest);
    await harness.settled(net);
    const balance = await payer.balance();
    const again = await payer.pay(created.paymentRequest);
    expect(again.preimage).toEqual(first.preimage);
    expect(await payer.balance()).toEqual(balance);
    expect(
      net
        .node('payer')
        .listPayments()
        .filter((p) => p.paymentHash === hex(created.paymentHash)),
    ).toHaveLength(1);
  });

  it('a zero-amount invoice is paid with the amount the payer chooses', async () => {
    const created = await merchant.createInvoice({ amountMsat: 0n, memo: 'tip' });
    const paid = await payer.pay(created.paymentRequest, { amountMsat: 3_210n });
    expect(paid.amountMsat).toBe(3_210n);
    expect(await merchant.waitInvoice(created.paymentHash, { timeoutMs: 5_000 })).toMatchObject({
      state: 'settled',
      amountReceivedMsat: 3_210n,
    });
  });

  it('an unknown hash is L402_BACKEND_NOT_FOUND to lookupInvoice and unknown to lookupPayment', async () => {
    await expect(merchant.lookupInvoice(new Uint8Array(32).fill(7))).rejects.toMatchObject({
      code: 'L402_BACKEND_NOT_FOUND',
    });
    expect((await payer.lookupPayment(new Uint8Array(32).fill(7))).state).toBe('unknown');
  });

  it('waitInvoice on an invoice nobody pays ends in L402_BACKEND_TIMEOUT', async () => {
    const created = await merchant.createInvoice({ amountMsat: 1_000n });
    await expect(merchant.waitInvoice(created.paymentHash, { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'L402_BACKEND_TIMEOUT',
    });
  });

  it('a rune the node did not mint is L402_BACKEND_AUTH, and the rune never shows in the message', async () => {
    const foreign = Cln.connect({ url: merchantRest.url, rune: payerRest.rune });
    const error = await harness.rejection(foreign.info());
    expect(error).toMatchObject({ name: 'BackendError', code: 'L402_BACKEND_AUTH', backend: 'cln' });
    expect(error.message).toContain('1501');
    expect(error.message).not.toContain(payerRest.rune);

    // clnrest echoes a malformed rune in its answer; the backend blanks it out.
    const garbled = 'not-a-rune!';
    const refused = await harness.rejection(
      Cln.connect({ url: merchantRest.url, rune: garbled }).createInvoice({ amountMsat: 1n }),
    );
    expect(refused).toMatchObject({ code: 'L402_BACKEND_AUTH' });
    expect(refused.message).not.toContain(garbled);

    expect(await post(merchantRest, 'getinfo', {}, null)).toEqual({
      status: 403,
      body: { code: 1501, message: 'Not authorized: Missing rune' },
    });
    expect(await post(merchantRest, 'getinfo', {}, payerRest.rune)).toEqual({
      status: 401,
      body: { code: 1501, message: 'Not authorized: Not derived from master' },
    });
  });

  it('nothing listening is L402_BACKEND_UNREACHABLE', async () => {
    const port = await harness.closedPort();
    const cln = Cln.connect({ url: `http://127.0.0.1:${port}`, rune: merchantRest.rune });
    const error = await harness.rejection(cln.info());
    expect(error).toMatchObject({ code: 'L402_BACKEND_UNREACHABLE' });
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).not.toContain(merchantRest.rune);
  });

  it('a server that never answers is L402_BACKEND_TIMEOUT', async () => {
    const silent = await harness.silentServer();
    try {
      const cln = Cln.connect({ url: silent.url, rune: merchantRest.rune, timeoutMs: 300 });
      await expect(cln.info()).rejects.toMatchObject({ code: 'L402_BACKEND_TIMEOUT' });
    } finally {
      await silent.close();
    }
  });

  it('a server answering garbage, or HTML, is L402_BACKEND_PROTOCOL', async () => {
    const garbage = await harness.garbageServer();
    const html = await harness.htmlServer();
    try {
      await expect(Cln.connect({ url: garbage.url, rune: 'x' }).info()).rejects.toMatchObject({
        code: 'L402_BACKEND_PROTOCOL',
      });
      await expect(Cln.connect({ url: html.url, rune: 'x' }).info()).rejects.toMatchObject({
        code: 'L402_BACKEND_PROTOCOL',
        message: expect.stringContaining('not JSON'),
      });
    } finally {
      await Promise.all([garbage.close(), html.close()]);
    }
  });

  it('paying more than the channel holds is L402_PAYMENT_INSUFFICIENT_BALANCE and moves nothing', async () => {
    const created = await merchant.createInvoice({ amountMsat: 2_000_000_000n });
    await harness.settled(net);
    const before = await payer.balance();
    await expect(payer.pay(created.paymentRequest)).rejects.toMatchObject({
      name: 'BackendError',
      code: 'L402_PAYMENT_INSUFFICIENT_BALANCE',
    });
    expect(await payer.balance()).toEqual(before);
    expect((await merchant.lookupInvoice(created.paymentHash)).state).toBe('open');
  });

  it('configuration mistakes are L402_BACKEND_CONFIG without echoing the URI; a closed backend is unreachable', async () => {
    expect(() => Cln.fromUri('lnd://127.0.0.1:3010?rune=secret-rune')).toThrow(
      expect.objectContaining({ code: 'L402_BACKEND_CONFIG' }),
    );
    expect(() => Cln.fromUri('cln+http://127.0.0.1:3010')).toThrow(
      expect.objectContaining({ code: 'L402_BACKEND_CONFIG' }),
    );
    expect(() => Cln.connect({ url: 'ftp://127.0.0.1', rune: 'r' })).toThrow(
      expect.objectContaining({ code: 'L402_BACKEND_CONFIG' }),
    );
    const closed = Cln.connect({ url: merchantRest.url, rune: merchantRest.rune });
    await closed.close();
    await expect(closed.info()).rejects.toMatchObject({
      code: 'L402_BACKEND_UNREACHABLE',
      message: 'cln: this cln backend was closed',
    });
  });

  // Last: it moves the shared clock an hour ahead.
  it('an expired invoice: not paid (L402_PAYMENT_EXPIRED), the waiting merchant sees it expire, xpay says 207', async () => {
    const created = await merchant.createInvoice({ amountMsat: 8_000n, expirySeconds: 60 });
    const waiting = merchant.waitInvoice(created.paymentHash, { timeoutMs: 20_000 });
    clock.advance(3_600_000);
    expect(await waiting).toMatchObject({ state: 'expired', amountReceivedMsat: undefined });
    await expect(payer.pay(created.paymentRequest)).rejects.toMatchObject({ code: 'L402_PAYMENT_EXPIRED' });
    // The node refuses it too, with lightningd's code, for clients that do not check first.
    expect(await post(payerRest, 'xpay', { invstring: created.paymentRequest })).toEqual({
      status: 500,
      body: { code: 207, message: 'Invoice expired' },
    });
    expect(net.node('payer').lookupPayment(hex(created.paymentHash))).toBeUndefined();
  }, 30_000);
});
