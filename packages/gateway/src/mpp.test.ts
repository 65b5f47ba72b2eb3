/**
 * MPP (the `Payment` scheme) through the gateway, end to end on the devnet: real listeners, the
 * merchant node's LND API for invoices and refunds, the payer node's for paying, and the client helpers
 * of `l402/mpp` to build credentials. SQLite by default; two instances on PostgreSQL for replays.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { Challenge, Credential, Invoice, Macaroon } from 'l402';
import { Client, Json, Request } from 'l402/mpp';
import { beforeAll, describe, expect, it } from 'vitest';
import type * as Gateway from './Gateway.js';
import * as Testing from './testing.js';

// ——— an upstream that counts what reached it ———

let served = 0;
const upstream = http.createServer((request, response) => {
  served++;
  request.resume();
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ ok: true, path: request.url }));
});

type Reply = Testing.Reply;
const send = (url: string, headers: http.OutgoingHttpHeaders = {}) => Testing.send(url, { headers });

const challengeLines = (reply: Reply) => Testing.headerValues(reply.lines, 'www-authenticate');
const offer = (reply: Reply, intent: 'charge' | 'session') =>
  Client.offers(challengeLines(reply)).find((o) => o.intent === intent)!;
const problem = (reply: Reply) => JSON.parse(reply.body) as { type: string; status: number; detail: string };
const PROBLEMS = 'https://paymentauth.org/problems/';

// ——— the network and the gateways ———

// The merchant starts with outbound liquidity, as a node that refunds must have.
const world = Testing.useWorld({ name: 'l402-mpp-', backend: upstream, devnet: { pushSat: 1_000_000 } });

function yaml(extra = ''): string {
  return world.config(
    `
  - name: both
    pathregexp: '^/both/'
    address: "${world.upstream}"
    price: 3
    authscheme: l402+mpp
  - name: mpp
    pathregexp: '^/mpp/'
    address: "${world.upstream}"
    price: 2
    authscheme: mpp
  - name: cheap
    pathregexp: '^/cheap/'
    address: "${world.upstream}"
    price: 1
    authscheme: mpp
  - name: l402
    pathregexp: '^/l402/'
    address: "${world.upstream}"
    price: 1
`,
    {
      extra,
      authenticator:
        '  enablempp: true\n  mpprealm: api.test\n  enablesessions: true\n  sessiondepositmultiplier: 5\n',
    },
  );
}

const start = world.start;

/** Pays a charge offer with the payer's node; returns the Authorization value. */
async function payCharge(o: Client.Offer): Promise<string> {
  const { methodDetails } = Client.chargeRequest(o);
  const { preimage } = await world.payer.pay(methodDetails.invoice, { maxFeeMsat: 1_000n });
  return Client.charge(o, preimage);
}

/** Pays a session offer's deposit; returns its preimage and the session id (its payment hash). */
async function payDeposit(o: Client.Offer) {
  const request = Client.sessionRequest(o);
  const { preimage } = await world.payer.pay(request.depositInvoice!, { maxFeeMsat: 1_000n });
  return { preimage, sessionId: request.paymentHash, deposit: BigInt(request.depositAmount!) };
}

describe('MPP through the gateway on the devnet', () => {
  let gateway: Gateway.Gateway;
  beforeAll(async () => {
    gateway = await start(yaml());
  });

  it('offers L402 and Payment challenges for l402+mpp, in that order, with a problem+json body', async () => {
    const reply = await send(`${gateway.url}/both/x`);
    expect(reply.status).toBe(402);
    expect(reply.headers['content-type']).toBe('application/problem+json');
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(reply.body)).toEqual({
      type: `${PROBLEMS}payment-required`,
      title: 'Payment Required',
      status: 402,
      detail: 'Payment required for access.',
    });
    const lines = challengeLines(reply);
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['LSAT', 'L402', 'Payment', 'Payment']);
    expect(lines[2]).toMatch(
      /^Payment id="[\w-]{43}", realm="api\.test", method="lightning", intent="charge", request="[\w-]+", expires="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", opaque="[\w-]+"$/,
    );
    const charge = offer(reply, 'charge');
    const request = Request.charge(charge.request);
    expect(request).toMatchObject({ amount: '3', currency: 'sat', methodDetails: { network: 'regtest' } });
    const invoice = Invoice.decode(request.methodDetails.invoice);
    expect(invoice.amountMsat).toBe(3_000n);
    expect(Buffer.from(invoice.paymentHash).toString('hex')).toBe(request.methodDetails.paymentHash);
    // The MPP invoice is not the L402 one.
    expect(Challenge.l402(Challenge.parse(lines))!.invoice).not.toBe(request.methodDetails.invoice);
    // The request parameter is the JCS form of its JSON.
    const json = Buffer.from(charge.request, 'base64url').toString();
    expect(Json.canonicalizeText(json)).toBe(json);
    const expiresIn = Date.parse(charge.expires!) - Date.now();
    expect(expiresIn).toBeGreaterThan(14 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(15 * 60_000);
    const session = Client.sessionRequest(offer(reply, 'session'));
    expect(session).toMatchObject({
      amount: '3',
      currency: 'sat',
      depositAmount: '15',
      unitType: 'request',
      idleTimeout: '300',
    });
    expect(Invoice.decode(session.depositInvoice!).amountMsat).toBe(15_000n);
  });

  it('offers only Payment challenges for mpp, whatever L402 token comes along', async () => {
    const reply = await send(`${gateway.url}/mpp/x`);
    expect(reply.status).toBe(402);
    expect(challengeLines(reply).map((l) => l.split(' ')[0])).toEqual(['Payment', 'Payment']);
    // An L402 token bought for this gateway does not open an mpp-only service.
    const l402 = await send(`${gateway.url}/l402/x`);
    const o = Challenge.l402(Challenge.parse(challengeLines(l402)))!;
    const { preimage } = await world.payer.pay(o.invoice, { maxFeeMsat: 1_000n });
    const authorization = Credential.format({ macaroon: Macaroon.decode(o.macaroon), preimage });
    expect((await send(`${gateway.url}/l402/x`, { authorization })).status).toBe(200);
    const refused = await send(`${gateway.url}/mpp/x`, { authorization });
    expect(refused.status).toBe(402);
    expect(challengeLines(refused).map((l) => l.split(' ')[0])).toEqual(['Payment', 'Payment']);
  });

  it('serves a paid charge once, with a Payment-Receipt, and refuses its replay', async () => {
    const o = offer(await send(`${gateway.url}/both/items`), 'charge');
    const authorization = await payCharge(o);
    const before = served;
    const paid = await send(`${gateway.url}/both/items`, { authorization });
    expect(paid.status).toBe(200);
    expect(JSON.parse(paid.body)).toEqual({ ok: true, path: '/both/items' });
    expect(served).toBe(before + 1);
    expect(paid.headers['cache-control']).toBe('private');
    const receipt = Client.receipt(paid.headers['payment-receipt'] as string)!;
    expect(receipt).toEqual({
      status: 'success',
      method: 'lightning',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      reference: Client.chargeRequest(o).methodDetails.paymentHash,
      challengeId: o.id,
    });

    const replay = await send(`${gateway.url}/both/items`, { authorization });
    expect(replay.status).toBe(402);
    expect(served).toBe(before + 1);
    expect(replay.headers['payment-receipt']).toBeUndefined();
    expect(problem(replay)).toMatchObject({ type: `${PROBLEMS}invalid-challenge`, status: 402 });
    expect(problem(replay).detail).toContain('already used');
    // A refusal carries fresh challenges of both schemes.
    expect(challengeLines(replay).map((l) => l.split(' ')[0])).toEqual([
      'LSAT',
      'L402',
      'Payment',
      'Payment',
    ]);
    expect(offer(replay, 'charge').id).not.toBe(o.id);
  });

  it('still sells and honours L402 tokens on l402+mpp', async () => {
    const o = Challenge.l402(Challenge.parse(challengeLines(await send(`${gateway.url}/both/y`))))!;
    const { preimage } = await world.payer.pay(o.invoice, { maxFeeMsat: 1_000n });
    const authorization = Credential.format({ macaroon: Macaroon.decode(o.macaroon), preimage });
    const paid = await send(`${gateway.url}/both/y`, { authorization });
    expect(paid.status).toBe(200);
    expect(paid.headers['payment-receipt']).toBeUndefined();
  });

  it('refuses tampered challenges, challenges of another service, and wrong preimages', async () => {
    const o = offer(await send(`${gateway.url}/mpp/t`), 'charge');
    const { methodDetails } = Client.chargeRequest(o);
    const preimage = randomBytes(32);
    const refusedWith = async (authorization: string) => {
      const reply = await send(`${gateway.url}/mpp/t`, { authorization });
      expect(reply.status).toBe(402);
      expect(reply.headers['content-type']).toBe('application/problem+json');
      return problem(reply);
    };
    // A cheaper amount, a later expiry, another id: the HMAC no longer matches.
    const cheaper = Request.encode({ ...Client.chargeRequest(o), amount: '1' });
    expect((await refusedWith(Client.charge({ ...o, request: cheaper }, preimage))).type).toBe(
      `${PROBLEMS}invalid-challenge`,
    );
    expect((await refusedWith(Client.charge({ ...o, expires: '2099-01-01T00:00:00Z' }, preimage))).type).toBe(
      `${PROBLEMS}invalid-challenge`,
    );
    expect((await refusedWith(Client.charge({ ...o, id: `${o.id.slice(0, -2)}AA` }, preimage))).type).toBe(
      `${PROBLEMS}invalid-challenge`,
    );
    // Genuine, but issued for the 1-sat service: it does not buy this one.
    const cheap = offer(await send(`${gateway.url}/cheap/t`), 'charge');
    const other = await refusedWith(await payCharge(cheap));
    expect(other).toMatchObject({ type: `${PROBLEMS}invalid-challenge` });
    expect(other.detail).toContain('service mpp');
    // Genuine challenge, wrong preimage.
    const wrong = await refusedWith(Client.charge(o, preimage));
    expect(wrong.type).toBe(`${PROBLEMS}verification-failed`);
    // Not a credential at all.
    expect((await refusedWith('Payment !!!')).type).toBe(`${PROBLEMS}malformed-credential`);
    expect(methodDetails.paymentHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a paid charge presented after its challenge expired', async () => {
    let now = Date.now();
    const clocked = await start(yaml(), { now: () => now });
    const o = offer(await send(`${clocked.url}/mpp/late`), 'charge');
    const authorization = await payCharge(o);
    now += 16 * 60_000;
    const late = await send(`${clocked.url}/mpp/late`, { authorization });
    expect(late.status).toBe(402);
    expect(problem(late)).toMatchObject({ type: `${PROBLEMS}payment-expired` });
    now -= 16 * 60_000;
    // Within its window the same credential was good all along.
    expect((await send(`${clocked.url}/mpp/late`, { authorization })).status).toBe(200);
  });

  it('runs a session: open with a deposit, bearer requests, top-up, close with the refund received', async () => {
    const first = offer(await send(`${gateway.url}/mpp/s`), 'session');
    const { preimage, sessionId, deposit } = await payDeposit(first);
    expect(deposit).toBe(10n);
    const refund = await world.payer.createInvoice({ amountMsat: 0n, memo: 'refund', expirySeconds: 86_400 });
    const before = served;

    const opened = await send(`${gateway.url}/mpp/s`, {
      authorization: Client.open(first, { preimage, returnInvoice: refund.paymentRequest }),
    });
    expect(opened.status).toBe(200);
    expect(Client.receipt(opened.headers['payment-receipt'] as string)).toMatchObject({
      status: 'success',
      reference: sessionId,
      challengeId: first.id,
    });
    // The same deposit opens nothing twice.
    const again = await send(`${gateway.url}/mpp/s`, {
      authorization: Client.open(first, { preimage, returnInvoice: refund.paymentRequest }),
    });
    expect(problem(again).type).toBe(`${PROBLEMS}lightning/unknown-challenge`);

    const bearer = Client.bearer(first, { sessionId, preimage });
    for (let i = 0; i < 2; i++) {
      const reply = await send(`${gateway.url}/mpp/s`, { authorization: bearer });
      expect(reply.status).toBe(200);
      expect(Client.receipt(reply.headers['payment-receipt'] as string)).toMatchObject({
        reference: sessionId,
      });
    }
    expect(served).toBe(before + 3); // open + 2 bearer, 2 sat each: 6 of 10 spent
    // Someone without the preimage cannot spend it.
    const thief = await send(`${gateway.url}/mpp/s`, {
      authorization: Client.bearer(first, { sessionId, preimage: randomBytes(32) }),
    });
    expect(problem(thief).type).toBe(`${PROBLEMS}lightning/invalid-preimage`);

    // Top up with a fresh offer's deposit: answered by the gateway, not forwarded.
    const fresh = offer(await send(`${gateway.url}/mpp/s`), 'session');
    const topUp = await payDeposit(fresh);
    const topped = await send(`${gateway.url}/mpp/s`, {
      authorization: Client.topUp(fresh, { sessionId, topUpPreimage: topUp.preimage }),
    });
    expect(topped.status).toBe(200);
    expect(JSON.parse(topped.body)).toEqual({ status: 'ok' });
    expect(served).toBe(before + 3);
    // A retried top-up gets the original answer and credits nothing again (the refund below shows it).
    const twice = await send(`${gateway.url}/mpp/s`, {
      authorization: Client.topUp(fresh, { sessionId, topUpPreimage: topUp.preimage }),
    });
    expect(twice.status).toBe(200);
    expect(twice.body).toBe(topped.body);
    expect((await send(`${gateway.url}/mpp/s`, { authorization: bearer })).status).toBe(200); // 8 of 20

    const closed = await send(`${gateway.url}/mpp/s`, {
      authorization: Client.close(first, { sessionId, preimage }),
    });
    expect(closed.status).toBe(200);
    expect(JSON.parse(closed.body)).toEqual({ status: 'closed', refundSats: 12, refundStatus: 'succeeded' });
    const receipt = Client.receipt(closed.headers['payment-receipt'] as string)!;
    expect(receipt).toEqual({
      method: 'lightning',
      reference: sessionId,
      status: 'success',
      timestamp: expect.any(String),
      refundSats: 12,
      refundStatus: 'succeeded',
    });
    // The client's own node received the 12 sat.
    const received = await world.payer.lookupInvoice(refund.paymentHash);
    expect(received).toMatchObject({ state: 'settled', amountReceivedMsat: 12_000n });

    const after = await send(`${gateway.url}/mpp/s`, { authorization: bearer });
    expect(problem(after).type).toBe(`${PROBLEMS}lightning/session-closed`);
    // A retried close gets the original answer, and pays nothing again.
    const reclose = await send(`${gateway.url}/mpp/s`, {
      authorization: Client.close(first, { sessionId, preimage }),
    });
    expect(reclose.status).toBe(200);
    expect(reclose.body).toBe(closed.body);
    // Closing needs the session's preimage, even once it is closed.
    const stranger = await send(`${gateway.url}/mpp/s`, {
      authorization: Client.close(first, { sessionId, preimage: randomBytes(32) }),
    });
    expect(problem(stranger).type).toBe(`${PROBLEMS}lightning/invalid-preimage`);
    expect(served).toBe(before + 4);
  }, 30_000);

  it('answers a retried top-up with the original 200 and a receipt, crediting it once', async () => {
    const path = `${gateway.url}/cheap/retry`;
    const refund = await world.payer.createInvoice({ amountMsat: 0n, memo: 'refund', expirySeconds: 86_400 });
    /** Opens a session on a fresh offer: 5 sat at 1 sat a request, the opening request paid from it. */
    const open = async () => {
      const o = offer(await send(path), 'session');
      const deposit = await payDeposit(o);
      const opened = await send(path, {
        authorization: Client.open(o, { preimage: deposit.preimage, returnInvoice: refund.paymentRequest }),
      });
      expect(opened.status).toBe(200);
      return { o, ...deposit };
    };
    /** Pays a fresh offer's deposit as a top-up of `sessionId`; returns the credential. */
    const topUpCredential = async (sessionId: string) => {
      const o = offer(await send(path), 'session');
      const { preimage } = await payDeposit(o);
      return { o, authorization: Client.topUp(o, { sessionId, topUpPreimage: preimage }), preimage };
    };
    const { o, preimage, sessionId } = await open(); // 4 sat left
    const before = served;

    const first = await topUpCredential(sessionId);
    const answers = [];
    // The answer lost on the way, the client retries: the same 200 and receipt each time.
    for (let i = 0; i < 3; i++) answers.push(await send(path, { authorization: first.authorization }));
    for (const reply of answers) {
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toBe('application/json');
      expect(JSON.parse(reply.body)).toEqual({ status: 'ok' });
      expect(Client.receipt(reply.headers['payment-receipt'] as string)).toEqual({
        status: 'success',
        method: 'lightning',
        timestamp: expect.any(String),
        reference: sessionId,
        challengeId: first.o.id,
      });
    }
    // The original and its retry racing: both answered ok, one credit.
    const second = await topUpCredential(sessionId);
    const raced = await Promise.all(
      Array.from({ length: 3 }, () => send(path, { authorization: second.authorization })),
    );
    expect(raced.map((r) => [r.status, r.body])).toEqual(Array(3).fill([200, '{"status":"ok"}']));

    // The same top-up payment for another session, or the deposit as a top-up: refused as before.
    const other = await open();
    const elsewhere = await send(path, {
      authorization: Client.topUp(first.o, { sessionId: other.sessionId, topUpPreimage: first.preimage }),
    });
    expect(problem(elsewhere).type).toBe(`${PROBLEMS}lightning/unknown-challenge`);
    const deposit = await send(path, {
      authorization: Client.topUp(o, { sessionId, topUpPreimage: preimage }),
    });
    expect(problem(deposit).type).toBe(`${PROBLEMS}lightning/unknown-challenge`);
    expect(served).toBe(before + 1); // the other session's opening request

    // 4 + 5 + 5 sat: fourteen requests, not one more.
    const bearer = Client.bearer(o, { sessionId, preimage });
    for (let i = 0; i < 14; i++) expect((await send(path, { authorization: bearer })).status).toBe(200);
    const spent = await send(path, { authorization: bearer });
    expect(problem(spent)).toMatchObject({ type: `${PROBLEMS}lightning/insufficient-balance` });
    expect(problem(spent).detail).toContain('0 sat left');
    expect(served).toBe(before + 15);
    const closed = await send(path, { authorization: Client.close(o, { sessionId, preimage }) });
    expect(JSON.parse(closed.body)).toEqual({ status: 'closed', refundSats: 0, refundStatus: 'skipped' });
    // Even once the session is closed, the retry gets its original answer; it credits nothing.
    const late = await send(path, { authorization: first.authorization });
    expect([late.status, late.body]).toEqual([200, '{"status":"ok"}']);
    expect(await send(path, { authorization: bearer }).then(problem)).toMatchObject({
      type: `${PROBLEMS}lightning/session-closed`,
    });
  }, 30_000);

  it('closes a session idle for sessionidletimeout and refunds it', async () => {
    let now = Date.now();
    const clocked = await start(yaml(), { now: () => now, sweepIntervalMs: 50 });
    const o = offer(await send(`${clocked.url}/mpp/idle`), 'session');
    const { preimage, sessionId } = await payDeposit(o);
    const refund = await world.payer.createInvoice({ amountMsat: 0n, memo: 'refund', expirySeconds: 86_400 });
    const opened = await send(`${clocked.url}/mpp/idle`, {
      authorization: Client.open(o, { preimage, returnInvoice: refund.paymentRequest }),
    });
    expect(opened.status).toBe(200); // 2 of 10 spent
    now += 299_000;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await world.payer.lookupInvoice(refund.paymentHash)).state).toBe('open');
    now += 2_000;
    await expect
      .poll(() => world.payer.lookupInvoice(refund.paymentHash), { timeout: 10_000 })
      .toMatchObject({ state: 'settled', amountReceivedMsat: 8_000n });
    const after = await send(`${clocked.url}/mpp/idle`, {
      authorization: Client.bearer(o, { sessionId, preimage }),
    });
    expect(problem(after).type).toBe(`${PROBLEMS}lightning/session-closed`);
  }, 30_000);

  it('debits a session exactly under concurrent requests', async () => {
    const o = offer(await send(`${gateway.url}/cheap/c`), 'session');
    const { preimage, sessionId } = await payDeposit(o); // 5 sat at 1 sat a request
    const refund = await world.payer.createInvoice({ amountMsat: 0n, memo: 'refund', expirySeconds: 86_400 });
    const open = await send(`${gateway.url}/cheap/c`, {
      authorization: Client.open(o, { preimage, returnInvoice: refund.paymentRequest }),
    });
    expect(open.status).toBe(200);
    const before = served;
    const authorization = Client.bearer(o, { sessionId, preimage });
    const replies = await Promise.all(
      Array.from({ length: 12 }, () => send(`${gateway.url}/cheap/c`, { authorization })),
    );
    expect(replies.filter((r) => r.status === 200)).toHaveLength(4);
    const refused = replies.filter((r) => r.status === 402);
    expect(refused).toHaveLength(8);
    for (const r of refused) expect(problem(r).type).toBe(`${PROBLEMS}lightning/insufficient-balance`);
    expect(served).toBe(before + 4);
    const closed = await send(`${gateway.url}/cheap/c`, {
      authorization: Client.close(o, { sessionId, preimage }),
    });
    expect(JSON.parse(closed.body)).toEqual({ status: 'closed', refundSats: 0, refundStatus: 'skipped' });
    expect(Client.receipt(closed.headers['payment-receipt'] as string)).not.toHaveProperty('refundSats');
  }, 30_000);

  it('refuses a charge replayed on a second instance sharing PostgreSQL', async () => {
    const db = await Testing.database('l402_mpp');
    try {
      const [one, two] = await Promise.all([start(yaml(db.yaml)), start(yaml(db.yaml))]);
      const o = offer(await send(`${one.url}/mpp/pg`), 'charge');
      const authorization = await payCharge(o);
      // Issued by one, honoured by two (one HMAC secret, from the shared store) ...
      const paid = await send(`${two.url}/mpp/pg`, { authorization });
      expect(paid.status).toBe(200);
      // ... and then refused by both.
      for (const gateway of [one, two]) {
        const replay = await send(`${gateway.url}/mpp/pg`, { authorization });
        expect(replay.status).toBe(402);
        expect(problem(replay).detail).toContain('already used');
      }
      // Racing the same fresh credential at both instances: exactly one is served.
      const raced = offer(await send(`${two.url}/mpp/pg`), 'charge');
      const racedAuthorization = await payCharge(raced);
      const replies = await Promise.all(
        [one, two, one, two].map((g) => send(`${g.url}/mpp/pg`, { authorization: racedAuthorization })),
      );
      expect(replies.map((r) => r.status).sort()).toEqual([200, 402, 402, 402]);
      await Promise.all([one.close(), two.close()]);
    } finally {
      await db.drop();
    }
  }, 30_000);
});
