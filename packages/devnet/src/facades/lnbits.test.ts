import { createHash } from 'node:crypto';
import { Lnbits } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Network from '../Network.js';
import * as harness from './harness.js';
import * as Facade from './lnbits.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('LNbits: the devnet LNbits facade and the l402 Lnbits backend, paying each other', () => {
  const clock = harness.movableClock();
  let net: Network.Network;
  let merchantApi: Facade.Facade;
  let payerApi: Facade.Facade;
  /** Receive-only: holds just the invoice key. */
  let merchant: Lnbits.Lnbits;
  let payer: Lnbits.Lnbits;

  /** A request straight to a facade, as any LNbits client sends it. */
  const raw = async (api: Facade.Facade, path: string, key: string | null, body?: unknown) => {
    const response = await fetch(`${api.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'Content-Type': 'application/json', ...(key !== null && { 'X-Api-Key': key }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    net = await Network.start({
      nodes: ['payer', 'merchant'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000, pushSat: 200_000 }],
      now: clock.now,
    });
    merchantApi = await Facade.serve(net.node('merchant'));
    payerApi = await Facade.serve(net.node('payer'));
    const host = new URL(merchantApi.url).host;
    merchant = Lnbits.fromUri(`lnbits+http://${host}?invoiceKey=${merchantApi.invoiceKey}&network=regtest`, {
      now: clock.now,
    });
    payer = Lnbits.connect({
      url: payerApi.url,
      adminKey: payerApi.adminKey,
      network: 'regtest',
      now: clock.now,
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([merchant?.close(), payer?.close()]);
    await Promise.all([merchantApi?.close(), payerApi?.close()]);
    await net?.close();
  });

  it('info: the wallet name, the configured network, no node details', async () => {
    expect(await merchant.info()).toEqual({
      pubkey: undefined,
      alias: 'merchant',
      network: 'regtest',
      blockHeight: undefined,
    });
  });

  it('merchant invoices (invoice key), payer pays (admin key), the preimage opens the hash, balances move', async () => {
    const created = await merchant.createInvoice({
      amountMsat: 21_000n,
      memo: 'one request',
      expirySeconds: 600,
    });
    expect(created.paymentRequest).toMatch(/^lnbcrt210n1/);
    expect(await merchant.lookupInvoice(created.paymentHash)).toMatchObject({
      state: 'open',
      amountMsat: 21_000n,
      preimage: undefined,
    });
    const payerBefore = await payer.balance();
    const merchantBefore = await merchant.balance();

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
    // LNbits itself refuses the second payment.
    expect(
      await raw(payerApi, '/api/v1/payments', payerApi.adminKey, {
        out: true,
        bolt11: created.paymentRequest,
      }),
    ).toEqual({
      status: 520,
      body: { detail: 'Payment already paid.', status: 'success' },
    });
  });

  it('answers as LNbits: 201 with the Payment model, paid/preimage/details by hash, balance in msat', async () => {
    const created = await raw(merchantApi, '/api/v1/payments', merchantApi.invoiceKey, {
      out: false,
      amount: 12,
      memo: 'twelve',
      extra: { order: 9 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      wallet_id: merchantApi.walletId,
      amount: 12_000,
      fee: 0,
      status: 'pending',
      memo: 'twelve',
      preimage: null,
      extra: { order: 9 },
    });
    expect(created.body.payment_request).toBe(created.body.bolt11);
    expect(created.body.checking_id).toBe(created.body.payment_hash);
    expect(created.body.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?\+00:00$/);
    const hash = created.body.payment_hash as string;
    expect(await raw(merchantApi, `/api/v1/payments/${hash}`, null)).toEqual({
      status: 200,
      body: { paid: false, preimage: null },
    });
    expect((await raw(merchantApi, `/api/v1/payments/${hash}`, merchantApi.invoiceKey)).body).toMatchObject({
      paid: false,
      status: 'pending',
      details: { payment_hash: hash },
    });
    expect(await raw(merchantApi, `/api/v1/payments/${'07'.repeat(32)}`, null)).toEqual({
      status: 404,
      body: { detail: 'Payment does not exist.' },
    });
    expect(await raw(merchantApi, '/api/v1/wallet', merchantApi.adminKey)).toEqual({
      status: 200,
      body: {
        name: 'merchant',
        balance: Number((await merchant.balance()).spendableMsat),
        id: merchantApi.walletId,
      },
    });
    expect(
      (await raw(merchantApi, '/api/v1/payments', merchantApi.invoiceKey, { out: false, amount: 'ten' }))
        .status,
    ).toBe(400);
  });

  it('zero-amount invoices and sub-satoshi amounts are L402_BACKEND_CONFIG (LNbits has neither)', async () => {
    await expect(merchant.createInvoice({ amountMsat: 0n })).rejects.toMatchObject({
      code: 'L402_BACKEND_CONFIG',
    });
    await expect(merchant.createInvoice({ amountMsat: 1_500n })).rejects.toMatchObject({
      code: 'L402_BACKEND_CONFIG',
    });
    const open = await net.node('merchant').createInvoice({ description: 'any amount' });
    await expect(payer.pay(open.paymentRequest, { amountMsat: 1_000n })).rejects.toMatchObject({
      code: 'L402_BACKEND_CONFIG',
    });
    expect(
      await raw(payerApi, '/api/v1/payments', payerApi.adminKey, { out: true, bolt11: open.paymentRequest }),
    ).toEqual({
      status: 520,
      body: { detail: 'Amountless invoices not supported.', status: 'failed' },
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

  it('an unknown key is L402_BACKEND_AUTH; the invoice key cannot pay (403), and keys never show in messages', async () => {
    const stranger = 'f'.repeat(32);
    const error = await harness.rejection(
      Lnbits.connect({ url: merchantApi.url, invoiceKey: stranger }).balance(),
    );
    expect(error).toMatchObject({ name: 'BackendError', code: 'L402_BACKEND_AUTH', backend: 'lnbits' });
    expect(error.message).toContain('Wallet not found.');
    expect(error.message).not.toContain(stranger);
    expect(await raw(merchantApi, '/api/v1/wallet', null)).toEqual({
      status: 401,
      body: { detail: 'No Api Key provided.' },
    });

    const target = await merchant.createInvoice({ amountMsat: 2_000n });
    // Receive-only by configuration: refused before any request.
    const receiveOnly = Lnbits.connect({ url: payerApi.url, invoiceKey: payerApi.invoiceKey });
    await expect(receiveOnly.pay(target.paymentRequest)).rejects.toMatchObject({
      code: 'L402_BACKEND_CONFIG',
    });
    // The invoice key given as if it were the admin key: LNbits refuses the payment.
    const mislabelled = Lnbits.connect({ url: payerApi.url, adminKey: payerApi.invoiceKey });
    const refused = await harness.rejection(mislabelled.pay(target.paymentRequest));
    expect(refused).toMatchObject({
      code: 'L402_BACKEND_AUTH',
      message: expect.stringContaining('admin key'),
    });
    expect(refused.message).not.toContain(payerApi.invoiceKey);
    expect(
      await raw(payerApi, '/api/v1/payments', payerApi.invoiceKey, {
        out: true,
        bolt11: target.paymentRequest,
      }),
    ).toEqual({
      status: 403,
      body: { detail: 'Invoice (or Admin) key required.' },
    });
    expect(net.node('payer').lookupPayment(hex(target.paymentHash))).toBeUndefined();
  });

  it('nothing listening is L402_BACKEND_UNREACHABLE', async () => {
    const port = await harness.closedPort();
    const lnbits = Lnbits.fromUri(`lnbits+http://127.0.0.1:${port}?key=${payerApi.adminKey}`);
    const error = await harness.rejection(lnbits.balance());
    expect(error).toMatchObject({ code: 'L402_BACKEND_UNREACHABLE' });
    expect(error.message).not.toContain(payerApi.adminKey);
  });

  it('a server that never answers is L402_BACKEND_TIMEOUT', async () => {
    const silent = await harness.silentServer();
    try {
      const lnbits = Lnbits.connect({ url: silent.url, adminKey: 'k', timeoutMs: 300 });
      await expect(lnbits.balance()).rejects.toMatchObject({ code: 'L402_BACKEND_TIMEOUT' });
    } finally {
      await silent.close();
    }
  });

  it('a server answering garbage, or HTML, is L402_BACKEND_PROTOCOL', async () => {
    const garbage = await harness.garbageServer();
    const html = await harness.htmlServer();
    try {
      await expect(Lnbits.connect({ url: garbage.url, adminKey: 'k' }).balance()).rejects.toMatchObject({
        code: 'L402_BACKEND_PROTOCOL',
      });
      await expect(Lnbits.connect({ url: html.url, adminKey: 'k' }).info()).rejects.toMatchObject({
        code: 'L402_BACKEND_PROTOCOL',
        message: expect.stringContaining('not JSON'),
      });
    } finally {
      await Promise.all([garbage.close(), html.close()]);
    }
  });

  it('paying more than the wallet holds is L402_PAYMENT_INSUFFICIENT_BALANCE (LNbits 520) and moves nothing', async () => {
    const created = await merchant.createInvoice({ amountMsat: 2_000_000_000n });
    await harness.settled(net);
    const before = await payer.balance();
    await expect(payer.pay(created.paymentRequest)).rejects.toMatchObject({
      name: 'BackendError',
      code: 'L402_PAYMENT_INSUFFICIENT_BALANCE',
      message: 'lnbits: LNbits: Insufficient balance.',
    });
    expect(await payer.balance()).toEqual(before);
    // LNbits checks its balance before it records or sends anything.
    expect((await payer.lookupPayment(created.paymentHash)).state).toBe('unknown');
    expect(net.node('payer').lookupPayment(hex(created.paymentHash))).toBeUndefined();
  });

  // Last: it moves the shared clock an hour ahead.
  it('an expired invoice: not paid (L402_PAYMENT_EXPIRED), the polling merchant sees it expire', async () => {
    const created = await merchant.createInvoice({ amountMsat: 8_000n, expirySeconds: 60 });
    const waiting = merchant.waitInvoice(created.paymentHash, { timeoutMs: 20_000 });
    clock.advance(3_600_000);
    expect(await waiting).toMatchObject({ state: 'expired', amountReceivedMsat: undefined });
    await expect(payer.pay(created.paymentRequest)).rejects.toMatchObject({ code: 'L402_PAYMENT_EXPIRED' });
    // LNbits hands it to its funding source, which refuses it.
    const direct = await raw(payerApi, '/api/v1/payments', payerApi.adminKey, {
      out: true,
      bolt11: created.paymentRequest,
    });
    expect(direct).toMatchObject({
      status: 520,
      body: { status: 'failed', detail: expect.stringMatching(/^Payment failed: .*expired/) },
    });
  }, 30_000);
});
