import { createHash } from 'node:crypto';
import { Phoenixd } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Network from '../Network.js';
import * as harness from './harness.js';
import * as Facade from './phoenixd.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('phoenixd: the devnet phoenixd facade and the l402 Phoenixd backend, paying each other', () => {
  const clock = harness.movableClock();
  let net: Network.Network;
  let merchantApi: Facade.Facade;
  let payerApi: Facade.Facade;
  let merchant: Phoenixd.Phoenixd;
  let payer: Phoenixd.Phoenixd;

  /** A request straight to a facade, as any phoenixd client sends it. */
  const raw = async (
    api: Facade.Facade,
    path: string,
    form?: Record<string, string>,
    password = api.password,
  ) => {
    const response = await fetch(`${api.url}${path}`, {
      method: form ? 'POST' : 'GET',
      headers: { Authorization: `Basic ${Buffer.from(`:${password}`).toString('base64')}` },
      body: form && new URLSearchParams(form),
    });
    const text = await response.text();
    return { status: response.status, type: response.headers.get('content-type'), text };
  };

  beforeAll(async () => {
    net = await Network.start({
      nodes: ['payer', 'merchant'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000, pushSat: 200_000 }],
      now: clock.now,
    });
    merchantApi = await Facade.serve(net.node('merchant'));
    payerApi = await Facade.serve(net.node('payer'));
    merchant = Phoenixd.fromUri(`phoenixd://:${merchantApi.password}@${new URL(merchantApi.url).host}`, {
      now: clock.now,
    });
    payer = Phoenixd.connect({ url: payerApi.url, password: payerApi.password, now: clock.now });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([merchant?.close(), payer?.close()]);
    await Promise.all([merchantApi?.close(), payerApi?.close()]);
    await net?.close();
  });

  it('info comes from getinfo (phoenixd has no alias)', async () => {
    const node = net.node('merchant');
    expect(await merchant.info()).toEqual({
      pubkey: node.nodeId,
      alias: undefined,
      network: 'regtest',
      blockHeight: node.info().blockHeight,
    });
  });

  it('merchant invoices, payer pays, the preimage opens the hash, polling sees it settle, balances move', async () => {
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
    // phoenixd itself refuses a second payinvoice with HTTP 200 and a reason.
    const direct = await raw(payerApi, '/payinvoice', { invoice: created.paymentRequest });
    expect(direct.status).toBe(200);
    expect(JSON.parse(direct.text)).toEqual({
      paymentHash: hex(created.paymentHash),
      reason: 'this invoice has already been paid',
    });
  });

  it('a zero-amount invoice is paid with the whole satoshis the payer chooses; finer amounts are refused', async () => {
    const created = await merchant.createInvoice({ amountMsat: 0n, memo: 'tip' });
    expect((await payer.pay(created.paymentRequest, { amountMsat: 3_000n })).amountMsat).toBe(3_000n);
    expect(await merchant.waitInvoice(created.paymentHash, { timeoutMs: 5_000 })).toMatchObject({
      state: 'settled',
      amountReceivedMsat: 3_000n,
    });
    await expect(merchant.createInvoice({ amountMsat: 1_500n })).rejects.toMatchObject({
      code: 'L402_BACKEND_CONFIG',
    });
    await expect(
      merchant.createInvoice({ amountMsat: 1_000n, preimage: new Uint8Array(32) }),
    ).rejects.toMatchObject({
      code: 'L402_BACKEND_CONFIG',
    });
  });

  it('an unknown hash is L402_BACKEND_NOT_FOUND to lookupInvoice (phoenixd 404) and unknown to lookupPayment', async () => {
    await expect(merchant.lookupInvoice(new Uint8Array(32).fill(7))).rejects.toMatchObject({
      code: 'L402_BACKEND_NOT_FOUND',
    });
    expect((await payer.lookupPayment(new Uint8Array(32).fill(7))).state).toBe('unknown');
    expect(await raw(merchantApi, `/payments/incoming/${'07'.repeat(32)}`)).toMatchObject({
      status: 404,
      text: 'Not found',
    });
  });

  it('waitInvoice on an invoice nobody pays ends in L402_BACKEND_TIMEOUT', async () => {
    const created = await merchant.createInvoice({ amountMsat: 1_000n });
    await expect(merchant.waitInvoice(created.paymentHash, { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'L402_BACKEND_TIMEOUT',
    });
  });

  it('a wrong password is L402_BACKEND_AUTH; the limited-access password invoices but cannot pay', async () => {
    const wrong = Phoenixd.connect({ url: merchantApi.url, password: 'hunter2hunter2' });
    const error = await harness.rejection(wrong.balance());
    expect(error).toMatchObject({ name: 'BackendError', code: 'L402_BACKEND_AUTH', backend: 'phoenixd' });
    expect(error.message).not.toContain('hunter2');
    expect(await raw(merchantApi, '/getbalance', undefined, 'hunter2hunter2')).toMatchObject({
      status: 401,
      text: 'Invalid authentication (use basic auth with the http password set in phoenix.conf)',
    });

    const limited = Phoenixd.connect({ url: payerApi.url, password: payerApi.limitedPassword });
    const invoice = await limited.createInvoice({ amountMsat: 2_000n });
    expect((await limited.lookupInvoice(invoice.paymentHash)).state).toBe('open');
    const target = await merchant.createInvoice({ amountMsat: 2_000n });
    const refused = await harness.rejection(limited.pay(target.paymentRequest));
    expect(refused).toMatchObject({
      code: 'L402_BACKEND_AUTH',
      message: expect.stringContaining('limited-access'),
    });
    expect(refused.message).not.toContain(payerApi.limitedPassword);
    expect(net.node('payer').lookupPayment(hex(target.paymentHash))).toBeUndefined();
  });

  it('nothing listening is L402_BACKEND_UNREACHABLE', async () => {
    const port = await harness.closedPort();
    const phoenixd = Phoenixd.fromUri(`phoenixd://:${payerApi.password}@127.0.0.1:${port}`);
    const error = await harness.rejection(phoenixd.info());
    expect(error).toMatchObject({ code: 'L402_BACKEND_UNREACHABLE' });
    expect(error.message).not.toContain(payerApi.password);
  });

  it('a server that never answers is L402_BACKEND_TIMEOUT', async () => {
    const silent = await harness.silentServer();
    try {
      const phoenixd = Phoenixd.connect({ url: silent.url, password: 'p', timeoutMs: 300 });
      await expect(phoenixd.info()).rejects.toMatchObject({ code: 'L402_BACKEND_TIMEOUT' });
    } finally {
      await silent.close();
    }
  });

  it('a server answering garbage, or HTML, is L402_BACKEND_PROTOCOL', async () => {
    const garbage = await harness.garbageServer();
    const html = await harness.htmlServer();
    try {
      await expect(Phoenixd.connect({ url: garbage.url, password: 'p' }).info()).rejects.toMatchObject({
        code: 'L402_BACKEND_PROTOCOL',
      });
      await expect(Phoenixd.connect({ url: html.url, password: 'p' }).balance()).rejects.toMatchObject({
        code: 'L402_BACKEND_PROTOCOL',
        message: expect.stringContaining('not JSON'),
      });
    } finally {
      await Promise.all([garbage.close(), html.close()]);
    }
  });

  it('paying more than the channel holds is L402_PAYMENT_INSUFFICIENT_BALANCE (phoenixd: 200 with a reason)', async () => {
    const created = await merchant.createInvoice({ amountMsat: 2_000_000_000n });
    await harness.settled(net);
    const before = await payer.balance();
    await expect(payer.pay(created.paymentRequest)).rejects.toMatchObject({
      name: 'BackendError',
      code: 'L402_PAYMENT_INSUFFICIENT_BALANCE',
      message: expect.stringContaining('not enough funds'),
    });
    expect(await payer.balance()).toEqual(before);
    expect(await payer.lookupPayment(created.paymentHash)).toMatchObject({ state: 'failed' });
    const direct = await raw(payerApi, `/payments/outgoingbyhash/${hex(created.paymentHash)}`);
    expect(JSON.parse(direct.text)).toMatchObject({ type: 'outgoing_payment', isPaid: false, fees: 0 });
  });

  it('answers as phoenixd: pretty JSON, form parameters checked, plain-text errors', async () => {
    const created = await raw(merchantApi, '/createinvoice', {
      amountSat: '12',
      description: 'x',
      externalId: 'order-9',
    });
    expect(created.type).toBe('application/json; charset=UTF-8');
    expect(created.text).toMatch(
      /^\{\n {4}"amountSat": 12,\n {4}"paymentHash": "[0-9a-f]{64}",\n {4}"serialized": "lnbcrt120n1/,
    );
    const { paymentHash } = JSON.parse(created.text) as { paymentHash: string };
    expect(JSON.parse((await raw(merchantApi, `/payments/incoming/${paymentHash}`)).text)).toMatchObject({
      type: 'incoming_payment',
      subType: 'lightning',
      externalId: 'order-9',
      description: 'x',
      isPaid: false,
      isExpired: false,
      requestedSat: 12,
      receivedSat: 0,
    });
    expect(await raw(merchantApi, '/createinvoice', { amountSat: 'twelve', description: 'x' })).toMatchObject(
      {
        status: 400,
        text: "Request parameter amountSat couldn't be parsed/converted to integer",
      },
    );
    expect(await raw(merchantApi, '/createinvoice', { amountSat: '1' })).toMatchObject({
      status: 400,
      text: 'Must provide either a description or descriptionHash',
    });
    expect(await raw(merchantApi, '/payinvoice', {})).toMatchObject({
      status: 400,
      text: 'Request parameter invoice is missing',
    });
    expect(await raw(merchantApi, '/nowhere')).toMatchObject({
      status: 404,
      text: 'Unknown endpoint (check api doc)',
    });
    expect(await raw(merchantApi, '/getinfo', {})).toMatchObject({ status: 405 });
  });

  // Last: it moves the shared clock an hour ahead.
  it('an expired invoice: not paid (L402_PAYMENT_EXPIRED), the polling merchant sees it expire', async () => {
    const created = await merchant.createInvoice({ amountMsat: 8_000n, expirySeconds: 60 });
    const waiting = merchant.waitInvoice(created.paymentHash, { timeoutMs: 20_000 });
    clock.advance(3_600_000);
    expect(await waiting).toMatchObject({ state: 'expired', amountReceivedMsat: undefined });
    await expect(payer.pay(created.paymentRequest)).rejects.toMatchObject({ code: 'L402_PAYMENT_EXPIRED' });
    // phoenixd pays without checking first; the payee refuses, and that is all phoenixd reports.
    const direct = await raw(payerApi, '/payinvoice', { invoice: created.paymentRequest });
    expect(JSON.parse(direct.text)).toEqual({
      paymentHash: hex(created.paymentHash),
      reason: 'the recipient rejected the payment',
    });
  }, 30_000);
});
