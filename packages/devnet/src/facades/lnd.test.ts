import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import {
  type AddressInfo,
  createServer as createTcpServer,
  connect as dial,
  type Server,
  type Socket,
} from 'node:net';
import { Errors } from 'l402';
import { type Backend, Lnd as LndBackend } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { selfSigned } from '../internal/tls.js';
import * as Network from '../Network.js';
import * as harness from './harness.js';
import * as Lnd from './lnd.js';

const sha256 = (bytes: Uint8Array) => new Uint8Array(createHash('sha256').update(bytes).digest());
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

let net: Network.Network;
let merchantLnd: Lnd.Facade;
let payerLnd: Lnd.Facade;
/** The merchant's server-side view: invoice.macaroon, as an L402 server would run. */
let merchant: Backend;
/** The merchant's readonly view, for balances (invoice.macaroon cannot read channels). */
let merchantReader: Backend;
let payer: Backend;
const closers: (() => Promise<unknown>)[] = [];

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

/** Expects `promise` to reject with a BackendError of `code`, and returns it. */
async function rejection(promise: Promise<unknown>, code: Errors.BackendCode): Promise<Errors.BackendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Errors.BackendError);
  expect((error as Errors.BackendError).code).toBe(code);
  return error as Errors.BackendError;
}

beforeAll(async () => {
  net = await Network.start({
    nodes: ['merchant', 'payer', 'island'],
    channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000, pushSat: 100_000 }],
  });
  merchantLnd = await Lnd.serve(net.node('merchant'));
  payerLnd = await Lnd.serve(net.node('payer'));
  merchant = await LndBackend.connect({
    url: merchantLnd.url,
    macaroon: merchantLnd.invoiceMacaroonHex,
    cert: merchantLnd.certPem,
  });
  merchantReader = await LndBackend.connect({
    url: merchantLnd.url,
    macaroon: merchantLnd.readonlyMacaroonHex,
    cert: merchantLnd.certPem,
  });
  payer = await LndBackend.connect({
    url: payerLnd.url,
    macaroon: payerLnd.macaroonHex,
    cert: payerLnd.certPem,
    timeoutMs: 10_000,
  });
});

afterAll(async () => {
  await Promise.all([
    merchant?.close(),
    merchantReader?.close(),
    payer?.close(),
    ...closers.map((close) => close()),
  ]);
  await Promise.all([merchantLnd?.close(), payerLnd?.close()]);
  await net?.close();
});

describe('Lnd.serve', () => {
  test('serves a self-signed ECDSA P-256 CA certificate for localhost and 127.0.0.1', () => {
    const cert = new X509Certificate(merchantLnd.certPem);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 365 * 24 * 3600 * 1000);
    expect(merchantLnd.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test('mints three different macaroons, each a V2 macaroon in hex', () => {
    const macaroons = [
      merchantLnd.macaroonHex,
      merchantLnd.invoiceMacaroonHex,
      merchantLnd.readonlyMacaroonHex,
    ];
    expect(new Set(macaroons).size).toBe(3);
    for (const macaroon of macaroons) expect(macaroon).toMatch(/^02[0-9a-f]+$/);
  });
});

describe('Lnd backend against the devnet facade', () => {
  test('info reports the node behind the facade', async () => {
    const info = await payer.info();
    expect(info).toEqual({
      pubkey: net.node('payer').nodeId,
      alias: 'payer',
      network: 'regtest',
      blockHeight: net.chain.tip.height,
    });
  });

  test('a real payment: invoice, pay, settle seen through the invoice stream, balances moved', async () => {
    // An earlier invoice, so the one waited on is not the node's first: the stream then opens with a
    // catch-up line and is known to be live before the payment.
    await merchant.createInvoice({ amountMsat: 1_000n });
    const payerBefore = await payer.balance();
    const merchantBefore = await merchantReader.balance();

    const { paymentRequest, paymentHash } = await merchant.createInvoice({
      amountMsat: 21_000n,
      memo: 'coffee',
    });
    expect(hex(paymentHash)).toBe(net.node('merchant').lookupInvoice(hex(paymentHash))?.paymentHash);
    expect(await merchant.lookupInvoice(paymentHash)).toMatchObject({ state: 'open', amountMsat: 21_000n });
    const waiting = merchant
      .waitInvoice(paymentHash, { timeoutMs: 15_000 })
      .then((status) => ({ status, at: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 200));

    const paid = await payer.pay(paymentRequest, { timeoutMs: 15_000 });
    const paidAt = Date.now();
    expect(hex(sha256(paid.preimage))).toBe(hex(paymentHash));
    expect(paid).toMatchObject({ amountMsat: 21_000n, feeMsat: 0n });

    const { status, at } = await waiting;
    expect(status).toMatchObject({ state: 'settled', amountMsat: 21_000n, amountReceivedMsat: 21_000n });
    expect(hex(status.preimage!)).toBe(hex(paid.preimage));
    // No lookups run while the stream is live: only its settle line can have resolved the wait this soon.
    expect(at - paidAt).toBeLessThan(900);

    await harness.settled(net);
    expect((await payer.balance()).spendableMsat).toBe(payerBefore.spendableMsat - 21_000n);
    expect((await merchantReader.balance()).spendableMsat).toBe(merchantBefore.spendableMsat + 21_000n);
    expect(await payer.lookupPayment(paymentHash)).toMatchObject({ state: 'succeeded', amountMsat: 21_000n });
    expect(await merchant.lookupInvoice(paymentHash)).toMatchObject({
      state: 'settled',
      amountReceivedMsat: 21_000n,
    });

    // Paying again answers with the first payment (payOnce asks the node first): nothing moves.
    const again = await payer.pay(paymentRequest, { timeoutMs: 15_000 });
    expect(hex(again.preimage)).toBe(hex(paid.preimage));
    expect((await payer.balance()).spendableMsat).toBe(payerBefore.spendableMsat - 21_000n);
    expect(
      net
        .node('payer')
        .listPayments()
        .filter((p) => p.paymentHash === hex(paymentHash)),
    ).toHaveLength(1);
  });

  test('waitInvoice sees a settle that happened before it was called, and a caller-chosen preimage', async () => {
    const preimage = new Uint8Array(randomBytes(32));
    const { paymentRequest, paymentHash } = await merchant.createInvoice({ amountMsat: 5_000n, preimage });
    expect(hex(paymentHash)).toBe(hex(sha256(preimage)));
    await payer.pay(paymentRequest);
    const status = await merchant.waitInvoice(paymentHash, { timeoutMs: 5_000 });
    expect(status.state).toBe('settled');
    expect(hex(status.preimage!)).toBe(hex(preimage));
  });

  test('waitInvoice falls back to lookups when the stream drops, and resubscribes', async () => {
    // A TCP relay in front of the merchant's facade, to cut the connection under the stream.
    const sockets = new Set<Socket>();
    const relay = createTcpServer((client) => {
      const upstream = dial(Number(new URL(merchantLnd.url).port), '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
    });
    const port = await listen(relay);
    closers.push(() => new Promise((resolve) => relay.close(resolve)));
    const relayed = await LndBackend.connect({
      url: `https://127.0.0.1:${port}`,
      macaroon: merchantLnd.invoiceMacaroonHex,
      cert: merchantLnd.certPem,
    });
    closers.push(() => relayed.close());

    const { paymentRequest, paymentHash } = await relayed.createInvoice({ amountMsat: 3_000n });
    const waiting = relayed.waitInvoice(paymentHash, { timeoutMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const socket of sockets) socket.destroy();
    await net.node('payer').payInvoice(paymentRequest);
    expect(await waiting).toMatchObject({ state: 'settled', amountReceivedMsat: 3_000n });
  });

  test('waitInvoice reports an invoice that expires unpaid as expired; paying it then fails as expired', async () => {
    const { paymentRequest, paymentHash } = await merchant.createInvoice({
      amountMsat: 2_000n,
      expirySeconds: 1,
    });
    const started = Date.now();
    expect(await merchant.waitInvoice(paymentHash, { timeoutMs: 5_000 })).toMatchObject({ state: 'expired' });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(await merchant.lookupInvoice(paymentHash)).toMatchObject({ state: 'expired' });
    const error = await rejection(payer.pay(paymentRequest), 'L402_PAYMENT_EXPIRED');
    expect(error.message).toMatch(/invoice expired/);
  });

  test('an open invoice past its expiry by the injected clock reads as expired (LND cancels it at expiry)', async () => {
    const later = await LndBackend.connect({
      url: merchantLnd.url,
      macaroon: merchantLnd.invoiceMacaroonHex,
      cert: merchantLnd.certPem,
      now: () => Date.now() + 2 * 3600 * 1000,
    });
    closers.push(() => later.close());
    const { paymentHash } = await merchant.createInvoice({ amountMsat: 1_000n, expirySeconds: 3600 });
    expect(await merchant.lookupInvoice(paymentHash)).toMatchObject({ state: 'open' });
    expect(await later.lookupInvoice(paymentHash)).toMatchObject({ state: 'expired' });
    expect(await later.waitInvoice(paymentHash, { timeoutMs: 1_000 })).toMatchObject({ state: 'expired' });
  });

  test('waitInvoice times out on an open invoice', async () => {
    const { paymentHash } = await merchant.createInvoice({ amountMsat: 1_000n });
    await rejection(merchant.waitInvoice(paymentHash, { timeoutMs: 300 }), 'L402_BACKEND_TIMEOUT');
  });

  test('unknown invoices and payments', async () => {
    const unknown = new Uint8Array(randomBytes(32));
    await rejection(merchant.lookupInvoice(unknown), 'L402_BACKEND_NOT_FOUND');
    expect(await payer.lookupPayment(unknown)).toMatchObject({ state: 'unknown', preimage: undefined });
  });

  test('no route: an invoice of a node no channel reaches', async () => {
    const island = await Lnd.serve(net.node('island'));
    closers.push(() => island.close());
    const islander = await LndBackend.connect({
      url: island.url,
      macaroon: island.invoiceMacaroonHex,
      cert: island.certPem,
    });
    closers.push(() => islander.close());
    const { paymentRequest, paymentHash } = await islander.createInvoice({ amountMsat: 10_000n });
    const error = await rejection(payer.pay(paymentRequest), 'L402_PAYMENT_NO_ROUTE');
    expect(error.message).toMatch(/FAILURE_REASON_NO_ROUTE/);
    expect(await payer.lookupPayment(paymentHash)).toMatchObject({
      state: 'failed',
      failure: 'FAILURE_REASON_NO_ROUTE',
    });
  });

  test('insufficient balance: more than the channel holds', async () => {
    const { paymentRequest } = await merchant.createInvoice({ amountMsat: 2_000_000_000n });
    const before = await payer.balance();
    await rejection(payer.pay(paymentRequest), 'L402_PAYMENT_INSUFFICIENT_BALANCE');
    expect(await payer.balance()).toEqual(before);
  });

  test('fromUri: hex macaroon and base64url PEM, or lndconnect base64url macaroon and DER', async () => {
    const { port } = new URL(payerLnd.url);
    const pem = Buffer.from(payerLnd.certPem).toString('base64url');
    const viaLnd = await LndBackend.fromUri(
      `lnd://127.0.0.1:${port}?macaroon=${payerLnd.readonlyMacaroonHex}&cert=${pem}`,
    );
    closers.push(() => viaLnd.close());
    expect((await viaLnd.info()).alias).toBe('payer');

    const der = Buffer.from(new X509Certificate(payerLnd.certPem).raw).toString('base64url');
    const macaroon = Buffer.from(payerLnd.readonlyMacaroonHex, 'hex').toString('base64url');
    const viaLndconnect = await LndBackend.fromUri(
      `lndconnect://127.0.0.1:${port}?cert=${der}&macaroon=${macaroon}`,
    );
    closers.push(() => viaLndconnect.close());
    expect((await viaLndconnect.info()).pubkey).toBe(net.node('payer').nodeId);
  });

  test('close rejects a pending waitInvoice and every later call', async () => {
    const backend = await LndBackend.connect({
      url: merchantLnd.url,
      macaroon: merchantLnd.invoiceMacaroonHex,
      cert: merchantLnd.certPem,
    });
    const { paymentHash } = await backend.createInvoice({ amountMsat: 1_000n });
    const waiting = rejection(
      backend.waitInvoice(paymentHash, { timeoutMs: 10_000 }),
      'L402_BACKEND_UNREACHABLE',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await backend.close();
    await waiting;
    await rejection(backend.lookupInvoice(paymentHash), 'L402_BACKEND_UNREACHABLE');
  });
});

describe('Lnd backend failures', () => {
  test('a macaroon of another node: L402_BACKEND_AUTH, and the message never holds the macaroon', async () => {
    const wrong = await LndBackend.connect({
      url: merchantLnd.url,
      macaroon: payerLnd.macaroonHex,
      cert: merchantLnd.certPem,
    });
    closers.push(() => wrong.close());
    const error = await rejection(wrong.info(), 'L402_BACKEND_AUTH');
    expect(error.message).toMatch(/signature mismatch/);
    expect(error.message).not.toContain(payerLnd.macaroonHex);
    await rejection(wrong.createInvoice({ amountMsat: 1_000n }), 'L402_BACKEND_AUTH');
  });

  test('invoice.macaroon creates invoices but cannot pay (nor read node info)', async () => {
    const invoiceOnly = await LndBackend.connect({
      url: payerLnd.url,
      macaroon: payerLnd.invoiceMacaroonHex,
      cert: payerLnd.certPem,
    });
    closers.push(() => invoiceOnly.close());
    const { paymentRequest, paymentHash } = await merchant.createInvoice({ amountMsat: 1_000n });
    const error = await rejection(invoiceOnly.pay(paymentRequest), 'L402_BACKEND_AUTH');
    expect(error.message).toMatch(/permission denied/);
    expect(net.node('payer').lookupPayment(hex(paymentHash))).toBeUndefined();
    await rejection(invoiceOnly.info(), 'L402_BACKEND_AUTH');
    expect((await invoiceOnly.createInvoice({ amountMsat: 1_000n })).paymentRequest).toMatch(/^lnbcrt/);
  });

  test('readonly.macaroon reads but cannot create invoices', async () => {
    const reader = await LndBackend.connect({
      url: merchantLnd.url,
      macaroon: merchantLnd.readonlyMacaroonHex,
      cert: merchantLnd.certPem,
    });
    closers.push(() => reader.close());
    expect((await reader.info()).alias).toBe('merchant');
    await rejection(reader.createInvoice({ amountMsat: 1_000n }), 'L402_BACKEND_AUTH');
  });

  test('the wrong certificate pinned: L402_BACKEND_UNREACHABLE saying the certificate did not match', async () => {
    const mismatched = await LndBackend.connect({
      url: merchantLnd.url,
      macaroon: merchantLnd.macaroonHex,
      cert: payerLnd.certPem,
    });
    closers.push(() => mismatched.close());
    const error = await rejection(mismatched.info(), 'L402_BACKEND_UNREACHABLE');
    expect(error.message).toMatch(/certificate did not match/);
  });

  test('nothing listening: L402_BACKEND_UNREACHABLE', async () => {
    const port = await harness.closedPort();
    const nobody = await LndBackend.connect({
      url: `https://127.0.0.1:${port}`,
      macaroon: merchantLnd.macaroonHex,
      cert: merchantLnd.certPem,
    });
    closers.push(() => nobody.close());
    const error = await rejection(nobody.info(), 'L402_BACKEND_UNREACHABLE');
    expect(error.message).toMatch(/nothing is listening/);
  });

  test('a node that accepts and never answers (not even the TLS handshake): L402_BACKEND_TIMEOUT within the limit', async () => {
    const silent = await harness.silentServer();
    closers.push(() => silent.close());
    const { port } = new URL(silent.url);
    const slow = await LndBackend.connect({
      url: `https://127.0.0.1:${port}`,
      macaroon: merchantLnd.macaroonHex,
      cert: merchantLnd.certPem,
      timeoutMs: 300,
    });
    closers.push(() => slow.close());
    const started = Date.now();
    await rejection(slow.info(), 'L402_BACKEND_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test('plain HTTP where LND REST should be: L402_BACKEND_UNREACHABLE naming the TLS handshake', async () => {
    const web = await harness.htmlServer();
    closers.push(() => web.close());
    const { port } = new URL(web.url);
    const wrong = await LndBackend.connect({
      url: `https://127.0.0.1:${port}`,
      macaroon: merchantLnd.macaroonHex,
      cert: merchantLnd.certPem,
    });
    closers.push(() => wrong.close());
    expect((await rejection(wrong.info(), 'L402_BACKEND_UNREACHABLE')).message).toMatch(/TLS handshake/);
  });

  test('an answer that is not JSON: L402_BACKEND_PROTOCOL', async () => {
    const { certPem, keyPem } = selfSigned({ hosts: ['127.0.0.1'] });
    const garbage = createHttpsServer({ cert: certPem, key: keyPem }, (req, res) => {
      res.writeHead(req.url === '/v1/getinfo' ? 200 : 500, { 'Content-Type': 'text/html' });
      res.end('<html>this is not LND</html>');
    });
    const port = await listen(garbage);
    closers.push(
      () =>
        new Promise((resolve) => {
          garbage.closeAllConnections();
          garbage.close(resolve);
        }),
    );
    const confused = await LndBackend.connect({
      url: `https://127.0.0.1:${port}`,
      macaroon: merchantLnd.macaroonHex,
      cert: certPem,
    });
    closers.push(() => confused.close());
    expect((await rejection(confused.info(), 'L402_BACKEND_PROTOCOL')).message).toMatch(/not JSON/);
    expect(
      (await rejection(confused.lookupInvoice(new Uint8Array(32)), 'L402_BACKEND_PROTOCOL')).message,
    ).toMatch(/HTTP 500/);
  });

  test('bad configuration fails at connect with L402_BACKEND_CONFIG', async () => {
    await rejection(
      LndBackend.connect({ url: 'http://127.0.0.1:8080', macaroon: merchantLnd.macaroonHex }),
      'L402_BACKEND_CONFIG',
    );
    await rejection(LndBackend.connect({ url: merchantLnd.url, macaroon: 'not hex' }), 'L402_BACKEND_CONFIG');
    await rejection(
      LndBackend.connect({ url: merchantLnd.url, macaroon: { path: '/nonexistent/admin.macaroon' } }),
      'L402_BACKEND_CONFIG',
    );
    await rejection(
      LndBackend.connect({
        url: merchantLnd.url,
        macaroon: merchantLnd.macaroonHex,
        cert: 'not a certificate',
      }),
      'L402_BACKEND_CONFIG',
    );
    await rejection(LndBackend.fromUri('lnd://127.0.0.1:8080'), 'L402_BACKEND_CONFIG');
  });
});
