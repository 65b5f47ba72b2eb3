import { createHash } from 'node:crypto';
import { Invoice } from 'l402';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as Chain from './Chain.js';
import * as Errors from './Errors.js';
import * as Network from './Network.js';
import * as Node from './Node.js';

const sha256 = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

describe('a node on its own', () => {
  it('connects, opens a channel, confirms it and pays, without the Network helper', async () => {
    const chain = Chain.create();
    const alice = await Node.create({ chain, alias: 'alice' });
    const bob = await Node.create({ chain, alias: 'bob' });
    try {
      await alice.connect(bob);
      expect(alice.peers()).toEqual([bob.nodeId]);
      const pending = await alice.openChannel({ peer: bob.nodeId, capacitySat: 400_000, pushSat: 0 });
      expect(chain.pending()).toEqual([pending.fundingTxid]);
      expect(alice.listChannels()[0]).toMatchObject({
        channelId: pending.channelId,
        ready: false,
        usable: false,
      });
      expect(alice.balance()).toMatchObject({ localMsat: 0, pendingOpenLocalMsat: 400_000_000 });
      chain.mine(6);
      await vi.waitFor(() => expect(alice.listChannels()[0]?.usable).toBe(true));
      const invoice = await bob.createInvoice({ amountMsat: 1_000 });
      const paid = await alice.payInvoice(invoice.paymentRequest);
      expect(sha256(paid.preimage)).toBe(invoice.paymentHash);
      expect(alice.info()).toMatchObject({ blockHeight: 6, blockHash: chain.tip.id, peers: 1 });
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });

  it('refuses to open a channel to a node it is not connected to', async () => {
    const chain = Chain.create();
    const [a, b] = await Promise.all([Node.create({ chain }), Node.create({ chain })]);
    try {
      await expect(a.openChannel({ peer: b.nodeId, capacitySat: 100_000 })).rejects.toMatchObject({
        code: 'DEVNET_CONNECT_FAILED',
      });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('invoices and payment failures', () => {
  let net: Network.Network;
  let merchant: Node.Node;
  let payer: Node.Node;
  beforeAll(async () => {
    net = await Network.start({
      nodes: ['merchant', 'payer', 'island'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000, pushSat: 100_000 }],
    });
    merchant = net.node('merchant');
    payer = net.node('payer');
  }, 30_000);
  afterAll(() => net?.close());

  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => {
        throw new Error('expected the payment to fail');
      },
      (error: unknown) => error as Errors.PaymentError,
    );

  it('refuses a payment larger than the channel can carry: insufficient balance', async () => {
    const invoice = await merchant.createInvoice({ amountMsat: 2_000_000_000 });
    const error = await failure(payer.payInvoice(invoice.paymentRequest));
    expect(error).toBeInstanceOf(Errors.PaymentError);
    expect(error).toMatchObject({
      name: 'PaymentError',
      code: 'DEVNET_INSUFFICIENT_BALANCE',
      paymentHash: invoice.paymentHash,
    });
    expect(payer.lookupPayment(invoice.paymentHash)?.failure?.code).toBe('DEVNET_INSUFFICIENT_BALANCE');
  });

  it('finds no route to a node without channels', async () => {
    const invoice = await net.node('island').createInvoice({ amountMsat: 1_000 });
    const error = await failure(payer.payInvoice(invoice.paymentRequest));
    expect(error.code).toBe('DEVNET_NO_ROUTE');
  });

  it('expires invoices by the clock: lookup, wait and pay all see it', async () => {
    const invoice = await merchant.createInvoice({ amountMsat: 1_000, expirySeconds: 1 });
    expect(invoice.expiresAt).toBe(invoice.createdAt + 1);
    const waited = merchant.waitInvoice(invoice.paymentHash, { timeoutMs: 5_000 });
    await vi.waitFor(() => expect(merchant.lookupInvoice(invoice.paymentHash)?.state).toBe('expired'), {
      timeout: 4_000,
      interval: 50,
    });
    expect((await waited).state).toBe('expired');
    const error = await failure(payer.payInvoice(invoice.paymentRequest));
    expect(error.code).toBe('DEVNET_INVOICE_EXPIRED');
  });

  it('requires an amount for an any-amount invoice, and pays what is given', async () => {
    const invoice = await merchant.createInvoice({ description: 'tip jar' });
    expect(invoice.amountMsat).toBeUndefined();
    expect((await failure(payer.payInvoice(invoice.paymentRequest))).code).toBe('DEVNET_AMOUNT_REQUIRED');
    const paid = await payer.payInvoice(invoice.paymentRequest, { amountMsat: 4_321 });
    expect(paid.amountMsat).toBe(4_321);
    expect(merchant.lookupInvoice(invoice.paymentHash)).toMatchObject({
      state: 'settled',
      receivedMsat: 4_321,
    });
  });

  it('refuses an amount that differs from the invoice', async () => {
    const invoice = await merchant.createInvoice({ amountMsat: 3_000 });
    expect((await failure(payer.payInvoice(invoice.paymentRequest, { amountMsat: 3_001 }))).code).toBe(
      'DEVNET_WRONG_AMOUNT',
    );
  });

  it('never pays an invoice twice: the second attempt is refused and carries the first preimage', async () => {
    const invoice = await merchant.createInvoice({ amountMsat: 5_000 });
    const before = payer.balance().localMsat;
    const paid = await payer.payInvoice(invoice.paymentRequest);
    const error = await failure(payer.payInvoice(invoice.paymentRequest));
    expect(error.code).toBe('DEVNET_ALREADY_PAID');
    expect(error.payment).toMatchObject({ state: 'succeeded', preimage: paid.preimage });
    await vi.waitFor(() => expect(payer.balance().localMsat).toBe(before - 5_000));
    expect(merchant.lookupInvoice(invoice.paymentHash)?.receivedMsat).toBe(5_000);
  });

  it('has a canceled invoice refused by the payee', async () => {
    const invoice = await merchant.createInvoice({ amountMsat: 2_000 });
    expect((await merchant.cancelInvoice(invoice.paymentHash)).state).toBe('canceled');
    const error = await failure(payer.payInvoice(invoice.paymentRequest));
    expect(error.code).toBe('DEVNET_PAYMENT_REJECTED');
    expect(payer.lookupPayment(invoice.paymentHash)?.state).toBe('failed');
  });

  it('refuses to cancel a settled invoice', async () => {
    const invoice = await merchant.createInvoice({ amountMsat: 2_000 });
    await payer.payInvoice(invoice.paymentRequest);
    await expect(merchant.cancelInvoice(invoice.paymentHash)).rejects.toMatchObject({
      name: 'InvoiceError',
      code: 'DEVNET_INVOICE_SETTLED',
    });
  });

  it('refuses garbage, invoices for other networks and its own invoices', async () => {
    expect((await failure(payer.payInvoice('lnbcrt1nonsense'))).code).toBe('DEVNET_INVALID_INVOICE');
    // BOLT 11's first test vector: a mainnet invoice.
    const mainnet =
      'lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql';
    expect(await failure(payer.payInvoice(mainnet))).toMatchObject({
      code: 'DEVNET_INVALID_INVOICE',
      message: expect.stringContaining('regtest'),
    });
    const own = await payer.createInvoice({ amountMsat: 1_000 });
    expect((await failure(payer.payInvoice(own.paymentRequest))).code).toBe('DEVNET_SELF_PAYMENT');
  });

  it('gives up after the timeout, and still records how the payment really ended', async () => {
    const invoice = await merchant.createInvoice({ amountMsat: 1_000 });
    const error = await failure(payer.payInvoice(invoice.paymentRequest, { timeoutMs: 1 }));
    expect(error.code).toBe('DEVNET_TIMEOUT');
    // The HTLC was already out: it either completes or fails back, and both ends agree on which.
    await vi.waitFor(() => expect(payer.lookupPayment(invoice.paymentHash)?.state).not.toBe('in-flight'));
    const settled = merchant.lookupInvoice(invoice.paymentHash)?.state === 'settled';
    expect(payer.lookupPayment(invoice.paymentHash)?.state).toBe(settled ? 'succeeded' : 'failed');
  });

  it('uses a preimage the caller chose, once', async () => {
    const preimage = '2a'.repeat(32);
    const invoice = await merchant.createInvoice({ amountMsat: 1_500, preimage });
    expect(invoice.paymentHash).toBe(sha256(preimage));
    expect((await payer.payInvoice(invoice.paymentRequest)).preimage).toBe(preimage);
    await expect(merchant.createInvoice({ preimage })).rejects.toMatchObject({
      code: 'DEVNET_INVOICE_EXISTS',
    });
  });

  it('lists invoices and payments in order, and streams payment updates', async () => {
    const states: string[] = [];
    const stop = payer.onPayment((payment) => states.push(payment.state));
    const invoice = await merchant.createInvoice({ amountMsat: 1_000, descriptionHash: 'ab'.repeat(32) });
    await payer.payInvoice(invoice.paymentRequest);
    stop();
    expect(states).toEqual(['in-flight', 'succeeded']);
    expect(merchant.listInvoices().at(-1)).toMatchObject({
      descriptionHash: 'ab'.repeat(32),
      description: undefined,
    });
    const indexes = merchant.listInvoices().map((i) => i.addIndex);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    expect(payer.listPayments().at(-1)?.paymentHash).toBe(invoice.paymentHash);
  });

  it('validates arguments', async () => {
    expect(merchant.lookupInvoice('00'.repeat(32))).toBeUndefined();
    expect(() => merchant.lookupInvoice('xyz')).toThrow(Errors.ArgumentError);
    await expect(merchant.createInvoice({ amountMsat: -1 })).rejects.toMatchObject({
      code: 'DEVNET_INVALID_ARGUMENT',
    });
    await expect(
      merchant.createInvoice({ description: 'a', descriptionHash: '00'.repeat(32) }),
    ).rejects.toThrow(Errors.ArgumentError);
    await expect(merchant.waitInvoice('00'.repeat(32))).rejects.toMatchObject({ code: 'DEVNET_NOT_FOUND' });
  });
});

describe('the clock', () => {
  it('dates invoices by the wall clock even when the last block is hours old', async () => {
    let clock = Date.now();
    const net = await Network.start({
      nodes: ['merchant', 'payer'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 100_000 }],
      now: () => clock,
    });
    try {
      const lastBlock = net.chain.tip.time;
      clock += 2 * 3600 * 1000;
      const invoice = await net.node('merchant').createInvoice({ amountMsat: 1_000, expirySeconds: 3600 });
      expect(Invoice.decode(invoice.paymentRequest)).toMatchObject({
        timestamp: Math.floor(clock / 1000),
        expiry: 3600,
      });
      expect(invoice.createdAt - lastBlock).toBeGreaterThanOrEqual(7200);
      // A block now moves LDK's own clock two hours on: the invoice must still be payable.
      net.mine(1);
      const paid = await net.node('payer').payInvoice(invoice.paymentRequest);
      expect(sha256(paid.preimage)).toBe(invoice.paymentHash);
    } finally {
      await net.close();
    }
  });
});

describe('close', () => {
  it('rejects waiting calls and refuses new ones', async () => {
    const net = await Network.start({ nodes: ['a'] });
    const a = net.node('a');
    const invoice = await a.createInvoice({ amountMsat: 1_000 });
    const waiting = a.waitInvoice(invoice.paymentHash, { timeoutMs: 10_000 });
    await net.close();
    await expect(waiting).rejects.toMatchObject({ name: 'ClosedError', code: 'DEVNET_CLOSED' });
    await expect(a.createInvoice({})).rejects.toBeInstanceOf(Errors.ClosedError);
    await net.close();
  });
});
