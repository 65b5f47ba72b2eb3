import { createHash } from 'node:crypto';
import { Nwc as Client, Nostr } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import * as Network from '../Network.js';
import * as Nwc from './nwc.js';
import * as Relay from './relay.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A client secret other than the one the service serves, in the same URI. */
function withSecret(uri: string, secret: Uint8Array): string {
  return uri.replace(/secret=[0-9a-f]{64}/, `secret=${hex(secret)}`);
}

describe('NWC: the devnet wallet service and the l402 NWC backend, over a loopback relay', () => {
  let net: Network.Network;
  let relay: Relay.Relay;
  let merchantService: Nwc.Nwc;
  let payerService: Nwc.Nwc;
  let merchant: Client.Nwc;
  let payer: Client.Nwc;
  const closing: { close(): Promise<void> | void }[] = [];

  beforeAll(async () => {
    net = await Network.start({
      nodes: ['payer', 'merchant'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000 }],
    });
    relay = await Relay.start();
    merchantService = await Nwc.serve(net.node('merchant'), { relayUrl: relay.url });
    payerService = await Nwc.serve(net.node('payer'), { relayUrl: relay.url });
    // A poll interval longer than any test: a wait that resolves did so through the notification.
    merchant = await Client.connect(merchantService.uri, { WebSocket, pollIntervalMs: 600_000 });
    payer = await Client.connect(payerService.uri, { WebSocket });
    closing.push(merchant, payer, merchantService, payerService);
  }, 60_000);

  afterAll(async () => {
    for (const item of closing.reverse()) await item.close();
    await relay?.close();
    await net?.close();
  });

  it('reads the info event: NIP-44 v2, the methods and notifications', () => {
    expect(merchant.kind).toBe('nwc');
    expect(merchant.encryption).toBe('nip44_v2');
    expect(merchant.capabilities).toEqual([...Nwc.METHODS, 'notifications']);
    expect(merchantService.uri).toBe(
      Client.formatUri({
        walletPubkey: Buffer.from(merchantService.walletPubkey, 'hex'),
        relays: [relay.url],
        secret: Client.parseUri(merchantService.uri).secret,
      }),
    );
    expect(merchantService.uri).toMatch(
      /^nostr\+walletconnect:\/\/[0-9a-f]{64}\?relay=ws%3A%2F%2F127\.0\.0\.1%3A\d+&secret=[0-9a-f]{64}$/,
    );
    const info = relay.events().find((e) => e.kind === 13194 && e.pubkey === merchantService.walletPubkey)!;
    expect(info.content).toBe('make_invoice lookup_invoice pay_invoice get_balance get_info notifications');
    expect(info.tags).toEqual([
      ['encryption', 'nip44_v2 nip04'],
      ['notifications', 'payment_received payment_sent'],
    ]);
  });

  it('get_info and get_balance describe the node', async () => {
    const node = net.node('payer');
    const info = await payer.info();
    expect(info).toEqual({
      pubkey: node.nodeId,
      alias: 'payer',
      network: 'regtest',
      blockHeight: node.info().blockHeight,
    });
    expect((await payer.balance()).spendableMsat).toBe(BigInt(node.balance().localMsat));
  });

  it('finds a WebSocket by itself when none is given (the global one, else the ws package)', async () => {
    const plain = await Client.connect(payerService.uri);
    closing.push(plain);
    expect((await plain.info()).pubkey).toBe(net.node('payer').nodeId);
  });

  it('merchant invoices, payer pays, the preimage opens the hash, the merchant hears it by notification', async () => {
    const created = await merchant.createInvoice({
      amountMsat: 21_000n,
      memo: 'one request',
      expirySeconds: 600,
    });
    expect(created.paymentRequest).toMatch(/^lnbcrt210n1/);
    const open = await merchant.lookupInvoice(created.paymentHash);
    expect(open).toMatchObject({
      state: 'open',
      amountMsat: 21_000n,
      preimage: undefined,
      settledAt: undefined,
    });

    const waiting = merchant.waitInvoice(created.paymentHash, { timeoutMs: 20_000 });
    const before = await payer.balance();
    const paid = await payer.pay(created.paymentRequest, { timeoutMs: 20_000 });
    expect(sha256(paid.preimage)).toBe(hex(created.paymentHash));
    expect(paid).toMatchObject({ amountMsat: 21_000n, feeMsat: 0n });

    const settled = await waiting;
    expect(settled).toMatchObject({ state: 'settled', amountMsat: 21_000n, amountReceivedMsat: 21_000n });
    expect(settled.preimage).toEqual(paid.preimage);
    expect(settled.settledAt).toBeGreaterThan(0);
    expect((await merchant.lookupInvoice(created.paymentHash)).state).toBe('settled');
    expect(await payer.lookupPayment(created.paymentHash)).toMatchObject({
      state: 'succeeded',
      preimage: paid.preimage,
    });
    expect((await payer.balance()).spendableMsat).toBe(before.spendableMsat - 21_000n);
  }, 30_000);

  it('paying again does not pay twice: the earlier payment is found first', async () => {
    const created = await merchant.createInvoice({ amountMsat: 5_000n });
    const first = await payer.pay(created.paymentRequest, { timeoutMs: 20_000 });
    const balance = await payer.balance();
    const again = await payer.pay(created.paymentRequest, { timeoutMs: 20_000 });
    expect(again.preimage).toEqual(first.preimage);
    expect(await payer.balance()).toEqual(balance);
    const tries = net
      .node('payer')
      .listPayments()
      .filter((p) => p.paymentHash === hex(created.paymentHash));
    expect(tries).toHaveLength(1);
  }, 30_000);

  it('a lookup of an unknown hash is L402_BACKEND_NOT_FOUND, and an unpaid invoice is unknown to the payer', async () => {
    await expect(merchant.lookupInvoice(new Uint8Array(32).fill(9))).rejects.toMatchObject({
      code: 'L402_BACKEND_NOT_FOUND',
    });
    const created = await merchant.createInvoice({ amountMsat: 1_000n });
    expect((await payer.lookupPayment(created.paymentHash)).state).toBe('unknown');
    await expect(payer.lookupInvoice(created.paymentHash)).rejects.toMatchObject({
      code: 'L402_BACKEND_NOT_FOUND',
    });
  });

  it('waitInvoice falls back to lookup_invoice polling: an invoice that expires (no notification) is seen', async () => {
    const polling = await Client.connect(merchantService.uri, { WebSocket, pollIntervalMs: 250 });
    closing.push(polling);
    const created = await polling.createInvoice({ amountMsat: 2_000n, expirySeconds: 1 });
    const status = await polling.waitInvoice(created.paymentHash, { timeoutMs: 10_000 });
    expect(status.state).toBe('expired');
  }, 15_000);

  it('a payment the wallet cannot afford is L402_PAYMENT_INSUFFICIENT_BALANCE', async () => {
    // The merchant's side of the channel holds only what it was paid above.
    const created = await payer.createInvoice({ amountMsat: 500_000_000n });
    await expect(merchant.pay(created.paymentRequest, { timeoutMs: 20_000 })).rejects.toMatchObject({
      name: 'BackendError',
      code: 'L402_PAYMENT_INSUFFICIENT_BALANCE',
      backend: 'nwc',
    });
  }, 30_000);

  it('a pay_invoice request that reaches the wallet after its expiration is not paid', async () => {
    // A client whose clock is an hour slow stamps requests that have expired on arrival.
    const late = await Client.connect(payerService.uri, { WebSocket, now: () => Date.now() - 3_600_000 });
    closing.push(late);
    const created = await merchant.createInvoice({ amountMsat: 4_000n });
    await expect(late.pay(created.paymentRequest, { timeoutMs: 1_500 })).rejects.toMatchObject({
      code: 'L402_BACKEND_TIMEOUT',
    });
    expect(net.node('payer').lookupPayment(hex(created.paymentHash))).toBeUndefined();
    expect((await merchant.lookupInvoice(created.paymentHash)).state).toBe('open');
    // Without the skew, the same invoice pays.
    expect(sha256((await payer.pay(created.paymentRequest)).preimage)).toBe(hex(created.paymentHash));
  });

  it('a client key the wallet service does not serve is answered UNAUTHORIZED: L402_BACKEND_AUTH', async () => {
    const stranger = await Client.connect(withSecret(merchantService.uri, Nostr.randomSecretKey()), {
      WebSocket,
    });
    closing.push(stranger);
    await expect(stranger.createInvoice({ amountMsat: 1_000n })).rejects.toMatchObject({
      code: 'L402_BACKEND_AUTH',
      message: expect.stringContaining('UNAUTHORIZED'),
    });
    await expect(stranger.pay('lnbcrt1invalid')).rejects.toMatchObject({ code: 'L402_PAYMENT_FAILED' });
    expect(net.node('merchant').listInvoices().length).toBeGreaterThan(0);
  });

  it('a relay that is down is L402_BACKEND_UNREACHABLE, at connect and after; back up, the client reconnects', async () => {
    const doomed = await Relay.start();
    const keys = { walletSecret: Nostr.randomSecretKey(), clientSecret: Nostr.randomSecretKey() };
    const service = await Nwc.serve(net.node('merchant'), { relayUrl: doomed.url, ...keys });
    const client = await Client.connect(service.uri, { WebSocket, timeoutMs: 5_000 });
    closing.push(client, service);
    await doomed.close();
    await expect(client.balance()).rejects.toMatchObject({ code: 'L402_BACKEND_UNREACHABLE' });
    await expect(Client.connect(service.uri, { WebSocket, timeoutMs: 5_000 })).rejects.toMatchObject({
      code: 'L402_BACKEND_UNREACHABLE',
    });

    const revived = await Relay.start({ port: doomed.port });
    closing.push(revived);
    const again = await Nwc.serve(net.node('merchant'), { relayUrl: revived.url, ...keys });
    closing.push(again);
    expect(again.uri).toBe(service.uri);
    expect((await client.balance()).spendableMsat).toBe(BigInt(net.node('merchant').balance().localMsat));
  });

  it('a wallet service that never answers is L402_BACKEND_TIMEOUT', async () => {
    // Its info event stays on the relay after it stops, as after a crash.
    const gone = await Nwc.serve(net.node('merchant'), { relayUrl: relay.url });
    await gone.close();
    const client = await Client.connect(gone.uri, { WebSocket, timeoutMs: 1_000 });
    closing.push(client);
    const started = Date.now();
    await expect(client.balance()).rejects.toMatchObject({ code: 'L402_BACKEND_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(client.waitInvoice(new Uint8Array(32), { timeoutMs: 1_500 })).rejects.toMatchObject({
      code: 'L402_BACKEND_TIMEOUT',
    });
  });

  it('an info event without a wallet service behind it at connect: no info event is L402_BACKEND_UNREACHABLE', async () => {
    const nobody = Client.formatUri({
      walletPubkey: Nostr.publicKey(Nostr.randomSecretKey()),
      relays: [relay.url],
      secret: Nostr.randomSecretKey(),
    });
    await expect(Client.connect(nobody, { WebSocket })).rejects.toMatchObject({
      code: 'L402_BACKEND_UNREACHABLE',
      message: expect.stringContaining('info event'),
    });
    await expect(Client.connect('nostr+walletconnect://nope', { WebSocket })).rejects.toMatchObject({
      code: 'L402_BACKEND_CONFIG',
    });
  });

  it('an independent NWC client, @getalby/sdk 7 (NWCClient on nostr-tools), talks to the wallet service', async () => {
    const scope = globalThis as { WebSocket?: unknown };
    const had = scope.WebSocket;
    // Alby's SDK takes WebSocket from the global scope when its module loads, as in a browser; Alby's
    // documentation tells Node users to provide one the same way (a polyfill).
    scope.WebSocket = WebSocket;
    const { NWCClient } = await import('@getalby/sdk/nwc');
    const albyMerchant = new NWCClient({ nostrWalletConnectUrl: merchantService.uri });
    const albyPayer = new NWCClient({ nostrWalletConnectUrl: payerService.uri });
    let albyLegacy: InstanceType<typeof NWCClient> | undefined;
    try {
      const received: { notification_type: string; notification: Record<string, unknown> }[] = [];
      const unsubscribe = await albyMerchant.subscribeNotifications(
        (n) => received.push(n),
        ['payment_received'],
      );
      const invoice = await albyMerchant.makeInvoice({ amount: 7_000, description: 'from alby' });
      expect(albyMerchant.encryptionType).toBe('nip44_v2');
      expect(invoice).toMatchObject({
        type: 'incoming',
        state: 'pending',
        amount: 7_000,
        description: 'from alby',
      });
      const { preimage } = await albyPayer.payInvoice({ invoice: invoice.invoice! });
      expect(sha256(Buffer.from(preimage, 'hex'))).toBe(invoice.payment_hash);
      await expect.poll(() => received.length, { timeout: 10_000 }).toBe(1);
      expect(received[0]).toMatchObject({
        notification_type: 'payment_received',
        notification: {
          type: 'incoming',
          state: 'settled',
          payment_hash: invoice.payment_hash,
          preimage,
          amount: 7_000,
        },
      });
      expect(await albyMerchant.lookupInvoice({ payment_hash: invoice.payment_hash })).toMatchObject({
        state: 'settled',
        preimage,
      });
      expect(await albyPayer.lookupInvoice({ invoice: invoice.invoice! })).toMatchObject({
        type: 'outgoing',
        state: 'settled',
        preimage,
      });
      expect((await albyPayer.getBalance()).balance).toBe(net.node('payer').balance().localMsat);
      expect(await albyPayer.getInfo()).toMatchObject({
        pubkey: net.node('payer').nodeId,
        network: 'regtest',
      });
      await expect(albyPayer.listTransactions({})).rejects.toMatchObject({ code: 'NOT_IMPLEMENTED' });
      // What Alby's client made and paid, the l402 backend reads the same way.
      expect((await merchant.lookupInvoice(Buffer.from(invoice.payment_hash, 'hex'))).state).toBe('settled');
      unsubscribe();

      // And over NIP-04, with a wallet service that offers nothing else.
      const legacy = await Nwc.serve(net.node('payer'), { relayUrl: relay.url, encryptions: ['nip04'] });
      closing.push(legacy);
      albyLegacy = new NWCClient({ nostrWalletConnectUrl: legacy.uri });
      expect((await albyLegacy.getBalance()).balance).toBe(net.node('payer').balance().localMsat);
      expect(albyLegacy.encryptionType).toBe('nip04');
    } finally {
      albyMerchant.close();
      albyPayer.close();
      albyLegacy?.close();
      if (had === undefined) delete scope.WebSocket;
      else scope.WebSocket = had;
    }
  }, 30_000);

  it('falls back to NIP-04 with a wallet service that offers only nip04: requests, answers and notifications', async () => {
    const legacyPayer = await Nwc.serve(net.node('payer'), { relayUrl: relay.url, encryptions: ['nip04'] });
    const legacyMerchant = await Nwc.serve(net.node('merchant'), {
      relayUrl: relay.url,
      encryptions: ['nip04'],
    });
    closing.push(legacyPayer, legacyMerchant);
    const oldPayer = await Client.connect(legacyPayer.uri, { WebSocket });
    const oldMerchant = await Client.connect(legacyMerchant.uri, { WebSocket, pollIntervalMs: 600_000 });
    closing.push(oldPayer, oldMerchant);
    expect([oldPayer.encryption, oldMerchant.encryption]).toEqual(['nip04', 'nip04']);

    // Watch the wire: every request, answer and notification of these connections is NIP-04.
    const watcher = await Nostr.connect(relay.url, { WebSocket });
    const seen: Nostr.Event[] = [];
    const authors = [
      legacyPayer.walletPubkey,
      legacyPayer.clientPubkey,
      legacyMerchant.walletPubkey,
      legacyMerchant.clientPubkey,
    ];
    const sub = watcher.subscribe([{ authors, kinds: [23194, 23195, 23196, 23197] }], {
      event: (e) => seen.push(e),
    });
    await sub.stored;

    const created = await oldMerchant.createInvoice({ amountMsat: 3_000n });
    const waiting = oldMerchant.waitInvoice(created.paymentHash, { timeoutMs: 20_000 });
    const paid = await oldPayer.pay(created.paymentRequest, { timeoutMs: 20_000 });
    const settled = await waiting;
    expect(settled.preimage).toEqual(paid.preimage);
    await expect.poll(() => seen.filter((e) => e.kind === 23196).length).toBeGreaterThanOrEqual(2);
    watcher.close();

    expect(seen.some((e) => e.kind === 23197)).toBe(false);
    for (const event of seen) expect(event.content).toMatch(/\?iv=/);
    for (const event of seen.filter((e) => e.kind === 23194))
      expect(event.tags).toContainEqual(['encryption', 'nip04']);
  }, 30_000);
});
