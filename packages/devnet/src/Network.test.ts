import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as Network from './Network.js';

const sha256 = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

describe('two nodes in memory', () => {
  let net: Network.Network;
  beforeAll(async () => {
    net = await Network.start({
      nodes: ['merchant', 'payer'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000, pushSat: 100_000 }],
    });
  }, 30_000);
  afterAll(() => net?.close());

  it('opens the channel with its capacity and push amount', () => {
    const [channel] = net.node('payer').listChannels();
    expect(channel).toMatchObject({
      peer: net.node('merchant').nodeId,
      capacitySat: 1_000_000,
      localBalanceMsat: 900_000_000,
      remoteBalanceMsat: 100_000_000,
      usable: true,
      public: true,
      initiator: true,
      confirmations: 6,
    });
    expect(net.node('merchant').balance()).toMatchObject({ localMsat: 100_000_000, remoteMsat: 900_000_000 });
    expect(net.node('payer').info()).toMatchObject({
      alias: 'payer',
      network: 'regtest',
      blockHeight: 6,
      channels: { active: 1, inactive: 0, pending: 0 },
    });
    expect(net.chain.confirmations(channel!.fundingTxid!)).toBe(6);
  });

  it('pays a BOLT11 invoice: the preimage hashes to the payment hash and both balances move', async () => {
    const merchant = net.node('merchant');
    const payer = net.node('payer');
    const before = { payer: payer.balance().localMsat, merchant: merchant.balance().localMsat };
    const settled: string[] = [];
    const stop = merchant.onInvoice((invoice) => settled.push(`${invoice.paymentHash}:${invoice.state}`));

    const invoice = await merchant.createInvoice({ amountMsat: 21_000, description: 'coffee' });
    expect(invoice.paymentRequest).toMatch(/^lnbcrt210n1/);
    const paid = await payer.payInvoice(invoice.paymentRequest);

    expect(paid.paymentHash).toBe(invoice.paymentHash);
    expect(sha256(paid.preimage)).toBe(invoice.paymentHash);
    expect(paid).toMatchObject({ state: 'succeeded', amountMsat: 21_000, destination: merchant.nodeId });
    const received = await merchant.waitInvoice(invoice.paymentHash, { timeoutMs: 5_000 });
    expect(received).toMatchObject({
      state: 'settled',
      receivedMsat: 21_000,
      preimage: paid.preimage,
      settleIndex: 1,
    });
    expect(received.settledAt).toBeGreaterThanOrEqual(received.createdAt);
    expect(payer.lookupPayment(invoice.paymentHash)).toEqual(paid);
    await vi.waitFor(() => {
      expect(payer.balance()).toMatchObject({
        localMsat: before.payer - 21_000 - paid.feeMsat,
        unsettledLocalMsat: 0,
      });
      expect(merchant.balance()).toMatchObject({
        localMsat: before.merchant + 21_000,
        unsettledRemoteMsat: 0,
      });
    });
    expect(settled).toEqual([`${invoice.paymentHash}:open`, `${invoice.paymentHash}:settled`]);
    stop();
  });

  it('pays back over the pushed balance', async () => {
    const invoice = await net.node('payer').createInvoice({ amountMsat: 50_000_000 });
    const paid = await net.node('merchant').payInvoice(invoice.paymentRequest);
    expect(sha256(paid.preimage)).toBe(invoice.paymentHash);
  });
});

describe('two nodes over loopback TCP', () => {
  let net: Network.Network;
  beforeAll(async () => {
    net = await Network.start({
      nodes: ['merchant', 'payer'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 500_000 }],
      transport: 'tcp',
    });
  }, 30_000);
  afterAll(() => net?.close());

  it('listens on 127.0.0.1 and pays the same way', async () => {
    const merchant = net.node('merchant');
    expect(merchant.info().address).toMatchObject({ host: '127.0.0.1', nodeId: merchant.nodeId });
    expect(merchant.info().address!.port).toBeGreaterThan(0);
    const invoice = await merchant.createInvoice({ amountMsat: 12_345 });
    const paid = await net.node('payer').payInvoice(invoice.paymentRequest);
    expect(sha256(paid.preimage)).toBe(invoice.paymentHash);
    expect(merchant.lookupInvoice(invoice.paymentHash)).toMatchObject({
      state: 'settled',
      receivedMsat: 12_345,
    });
    await vi.waitFor(() => expect(merchant.balance().localMsat).toBe(12_345));
  });
});

describe('three nodes in a line', () => {
  let net: Network.Network;
  beforeAll(async () => {
    net = await Network.line(['alice', 'bob', 'carol'], { capacitySat: 2_000_000 });
  }, 30_000);
  afterAll(() => net?.close());

  it('learns the whole line from gossip', () => {
    for (const name of net.names) expect(net.node(name).graph().channels).toHaveLength(2);
  });

  it('routes alice → bob → carol, and bob earns the forwarding fee', async () => {
    const alice = net.node('alice');
    const bob = net.node('bob');
    const carol = net.node('carol');
    const before = [alice, bob, carol].map((node) => node.balance().localMsat);
    const invoice = await carol.createInvoice({ amountMsat: 100_000 });
    const paid = await alice.payInvoice(invoice.paymentRequest);

    expect(sha256(paid.preimage)).toBe(invoice.paymentHash);
    expect(paid.feeMsat).toBeGreaterThan(0); // LDK's default: 1 000 msat base, 0 ppm
    await vi.waitFor(() => {
      expect(alice.balance().localMsat).toBe(before[0]! - 100_000 - paid.feeMsat);
      expect(bob.balance().localMsat).toBe(before[1]! + paid.feeMsat);
      expect(carol.balance().localMsat).toBe(before[2]! + 100_000);
    });
  });
});

describe('private channels', () => {
  let net: Network.Network;
  beforeAll(async () => {
    net = await Network.line(['alice', 'bob', 'carol'], { private: true });
  }, 30_000);
  afterAll(() => net?.close());

  it('reach the payee through the route hint in its invoice', async () => {
    expect(net.node('alice').graph().channels).toHaveLength(0);
    const invoice = await net.node('carol').createInvoice({ amountMsat: 7_000 });
    const paid = await net.node('alice').payInvoice(invoice.paymentRequest);
    expect(sha256(paid.preimage)).toBe(invoice.paymentHash);
    expect(net.node('carol').lookupInvoice(invoice.paymentHash)?.state).toBe('settled');
  });
});

describe('Network', () => {
  it('derives node ids from a seed, so they repeat', async () => {
    const seed = new Uint8Array(32).fill(7);
    const first = await Network.start({ nodes: ['a', 'b'], seed });
    const ids = first.names.map((name) => first.node(name).nodeId);
    await first.close();
    const second = await Network.start({ nodes: ['a', 'b'], seed });
    expect(second.names.map((name) => second.node(name).nodeId)).toEqual(ids);
    await second.close();
  });

  it('opens more channels later, with mining and announcement', async () => {
    const net = await Network.start({ nodes: ['a', 'b', 'c'] });
    try {
      const channel = await net.openChannel({ from: 'a', to: 'b', capacitySat: 300_000, pushSat: 1_000 });
      expect(channel).toMatchObject({ usable: true, capacitySat: 300_000, localBalanceMsat: 299_000_000 });
      expect(net.chain.height).toBe(6);
      expect(
        net
          .node('c')
          .graph()
          .channels.map((c) => c.shortChannelId),
      ).toEqual([channel.shortChannelId]);
    } finally {
      await net.close();
    }
  });

  it('refuses bad options with typed errors', async () => {
    await expect(Network.start({ nodes: ['a', 'a'] })).rejects.toMatchObject({
      code: 'DEVNET_INVALID_ARGUMENT',
    });
    await expect(
      Network.start({ nodes: ['a'], channels: [{ from: 'a', to: 'z', capacitySat: 1 }] }),
    ).rejects.toMatchObject({ name: 'ArgumentError', message: expect.stringContaining('"z"') });
    await expect(
      Network.start({ nodes: ['a', 'b'], channels: [{ from: 'a', to: 'b', capacitySat: 10, pushSat: 20 }] }),
    ).rejects.toMatchObject({ code: 'DEVNET_INVALID_ARGUMENT' });
  });
});
