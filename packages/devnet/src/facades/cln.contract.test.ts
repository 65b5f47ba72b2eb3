import { readFileSync } from 'node:fs';
import { Cln } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Listening, listen, readBody, reply } from '../internal/facadeServer.js';
import { type Schema, validate } from '../internal/jsonSchema.js';
import * as Network from '../Network.js';
import * as Facade from './cln.js';
import * as harness from './harness.js';

/** lightningd's own schemas (doc/schemas @ v26.06), copied unchanged into fixtures/cln. */
const METHODS = ['getinfo', 'invoice', 'listinvoices', 'listpays', 'pay', 'waitinvoice', 'xpay'] as const;
type Method = (typeof METHODS)[number];
const schemas = Object.fromEntries(
  METHODS.map((method) => [
    method,
    JSON.parse(readFileSync(new URL(`./fixtures/cln/${method}.json`, import.meta.url), 'utf8')) as {
      request: Schema;
      response: Schema;
    },
  ]),
) as Record<Method, { request: Schema; response: Schema }>;

type Body = Record<string, unknown>;

/**
 * A clnrest proxy that checks what passes through it against the schemas: the request a client sends,
 * and the facade's 201 answer. Methods without a schema here (listpeerchannels) pass unchecked.
 */
function checkingProxy(target: Facade.Facade, problems: string[], checked: Set<string>): Promise<Listening> {
  return listen(async (request, response) => {
    const body = await readBody(request);
    const method = (request.url ?? '').replace(/^\/v1\//, '') as Method;
    const schema = (METHODS as readonly string[]).includes(method) ? schemas[method] : undefined;
    if (schema)
      problems.push(
        ...validate(schema.request, JSON.parse(body || '{}')).map((p) => `${method} request ${p}`),
      );
    const upstream = await fetch(`${target.url}${request.url}`, {
      method: 'POST',
      headers: { Rune: String(request.headers.rune), 'Content-Type': 'application/json' },
      body,
    });
    const text = await upstream.text();
    if (schema && upstream.status === 201) {
      problems.push(...validate(schema.response, JSON.parse(text)).map((p) => `${method} response ${p}`));
      checked.add(method);
    }
    reply(response, upstream.status, 'application/json', text);
  });
}

describe('clnrest facade contract: every request and answer fits lightningd’s JSON schemas', () => {
  const clock = harness.movableClock();
  let net: Network.Network;
  let merchant: Facade.Facade;
  let payer: Facade.Facade;
  /** Which (method, answer kind) pairs the tests checked against a schema. */
  const covered = new Set<string>();

  const send = async (
    rest: Facade.Facade,
    method: string,
    params: unknown,
    headers: Record<string, string> = {},
  ) => {
    const response = await fetch(`${rest.url}/v1/${method}`, {
      method: 'POST',
      headers: { Rune: rest.rune, 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(params),
    });
    return { status: response.status, body: (await response.json()) as Body };
  };

  /** A call whose request fits the method's request schema, and whose 201 answer must fit its response schema. */
  const call = async (rest: Facade.Facade, method: Method, params: Body) => {
    expect(validate(schemas[method].request, params), `${method} request`).toEqual([]);
    const answer = await send(rest, method, params);
    if (answer.status === 201) {
      expect(validate(schemas[method].response, answer.body), `${method} response`).toEqual([]);
      covered.add(`${method} 201`);
    }
    return answer;
  };

  /** A call the schema itself rejects: the facade must refuse it too, as lightningd's param() does. */
  const refused = async (
    rest: Facade.Facade,
    method: Method,
    params: Body,
    code: number,
    message: string | RegExp,
  ) => {
    expect(validate(schemas[method].request, params), `${method} request`).not.toEqual([]);
    const answer = await send(rest, method, params);
    expect(answer.status).toBe(500);
    expect(answer.body.code).toBe(code);
    expect(answer.body.message).toMatch(message);
    covered.add(`${method} refused`);
  };

  const invoice = async (params: Body) => {
    const answer = await call(merchant, 'invoice', params);
    expect(answer.status).toBe(201);
    return answer.body as { bolt11: string; payment_hash: string };
  };

  beforeAll(async () => {
    net = await Network.start({
      nodes: ['payer', 'merchant'],
      channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000 }],
      now: clock.now,
    });
    merchant = await Facade.serve(net.node('merchant'));
    payer = await Facade.serve(net.node('payer'));
  }, 60_000);

  afterAll(async () => {
    await Promise.all([merchant?.close(), payer?.close()]);
    await net?.close();
  });

  it('getinfo', async () => {
    const answer = await call(merchant, 'getinfo', {});
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({
      id: net.node('merchant').nodeId,
      alias: 'merchant',
      network: 'regtest',
    });
  });

  it('invoice: msat numbers, "any", unit strings, expiry, preimage, deschashonly; label and preimage unique', async () => {
    const plain = await invoice({ amount_msat: 21_000, label: 'plain', description: 'coffee' });
    expect(plain.bolt11).toMatch(/^lnbcrt210n1/);
    await invoice({ amount_msat: 'any', label: 'any', description: 'tip jar' });
    await invoice({ amount_msat: '21sat', label: 7, description: 'numeric label', expiry: 120 });
    await invoice({ amount_msat: '0.00000021btc', label: 'btc', description: 'in btc', deschashonly: true });
    const preimage = '11'.repeat(32);
    const chosen = await invoice({ amount_msat: 1_000, label: 'chosen', description: 'x', preimage });
    expect(chosen.payment_hash).toBe('02d449a31fbb267c8f352e9968a79e3e5fc95c1bbeaa502fd6454ebde5a4bedc');

    await expect(
      send(merchant, 'invoice', { amount_msat: 1, label: 'plain', description: 'again' }),
    ).resolves.toEqual({
      status: 500,
      body: { code: 900, message: "Duplicate label 'plain'" },
    });
    await expect(
      send(merchant, 'invoice', { amount_msat: 1, label: 'other', description: 'x', preimage }),
    ).resolves.toEqual({
      status: 500,
      body: { code: 901, message: 'preimage already used' },
    });
    await refused(
      merchant,
      'invoice',
      { amount_msat: 1_000, description: 'no label' },
      -32602,
      'missing required parameter: label',
    );
    await refused(
      merchant,
      'invoice',
      { amount_msat: 1_000, label: 'x', description: 'y', colour: 'red' },
      -32602,
      /^unknown parameter: colour/,
    );
    await refused(
      merchant,
      'invoice',
      { amount_msat: 1_000, label: 'x', description: 'y', expiry: -1 },
      -32602,
      /^expiry: should be/,
    );
  });

  it('positional parameters, as lightningd takes them', async () => {
    const answer = await send(merchant, 'invoice', [2_000, 'positional', 'from an array']);
    expect(answer.status).toBe(201);
    expect(validate(schemas.invoice.response, answer.body)).toEqual([]);
    const listed = await call(merchant, 'listinvoices', { label: 'positional' });
    expect(listed.body.invoices).toMatchObject([
      { label: 'positional', amount_msat: 2_000, status: 'unpaid' },
    ]);
  });

  it('xpay, pay, listinvoices (unpaid and paid), waitinvoice (paid), listpays (complete and failed)', async () => {
    const first = await invoice({ amount_msat: 50_000, label: 'first', description: 'paid by xpay' });
    const second = await invoice({ amount_msat: 60_000, label: 'second', description: 'paid by pay' });
    expect(
      (await call(merchant, 'listinvoices', { payment_hash: first.payment_hash })).body.invoices,
    ).toMatchObject([{ label: 'first', status: 'unpaid' }]);

    const xpaid = await call(payer, 'xpay', { invstring: first.bolt11 });
    expect(xpaid).toMatchObject({
      status: 201,
      body: { amount_msat: 50_000, failed_parts: 0, successful_parts: 1 },
    });
    const paid = await call(payer, 'pay', { bolt11: second.bolt11, label: 'paying second' });
    expect(paid).toMatchObject({ status: 201, body: { status: 'complete', amount_msat: 60_000, parts: 1 } });

    // pay answers a second call for a paid invoice with the first result; xpay refuses with 219.
    expect(await call(payer, 'pay', { bolt11: second.bolt11 })).toEqual(paid);
    await expect(send(payer, 'xpay', { invstring: first.bolt11 })).resolves.toMatchObject({
      status: 500,
      body: { code: 219 },
    });

    const waited = await call(merchant, 'waitinvoice', { label: 'first' });
    expect(waited.body).toMatchObject({
      label: 'first',
      status: 'paid',
      amount_received_msat: 50_000,
      payment_preimage: xpaid.body.payment_preimage,
    });
    const all = await call(merchant, 'listinvoices', {});
    expect((all.body.invoices as Body[]).filter((i) => i.status === 'paid').map((i) => i.label)).toEqual([
      'first',
      'second',
    ]);
    expect(await call(merchant, 'listinvoices', { invstring: second.bolt11 })).toMatchObject({
      body: { invoices: [{ label: 'second', status: 'paid', pay_index: 2 }] },
    });
    const page = await call(merchant, 'listinvoices', { index: 'created', start: 2, limit: 2 });
    expect((page.body.invoices as Body[]).map((i) => i.created_index)).toEqual([2, 3]);

    // A failed payment: more than the channel holds.
    const huge = await invoice({ amount_msat: 2_000_000_000, label: 'huge', description: 'too much' });
    const failed = await call(payer, 'xpay', { invstring: huge.bolt11 });
    expect(failed).toMatchObject({ status: 500, body: { code: 205 } });
    const pays = await call(payer, 'listpays', {});
    expect((pays.body.pays as Body[]).map((p) => p.status)).toEqual(['complete', 'complete', 'failed']);
    expect(await call(payer, 'listpays', { payment_hash: second.payment_hash })).toMatchObject({
      body: { pays: [{ status: 'complete', label: 'paying second', preimage: paid.body.payment_preimage }] },
    });
    expect((await call(payer, 'listpays', { status: 'failed' })).body.pays).toMatchObject([
      { payment_hash: huge.payment_hash },
    ]);
    await refused(payer, 'listpays', { status: 'done' }, -32602, /^status: should be/);
  }, 30_000);

  it('errors: unknown method 404, wrong HTTP method 405, no rune 403, a foreign rune 401, unknown label -1', async () => {
    await expect(send(merchant, 'frobnicate', {})).resolves.toEqual({
      status: 404,
      body: { code: -32601, message: "Unknown command 'frobnicate'" },
    });
    const get = await fetch(`${merchant.url}/v1/getinfo`, { headers: { Rune: merchant.rune } });
    expect(get.status).toBe(405);
    expect(await get.json()).toMatchObject({ code: -32601 });
    const anonymous = await fetch(`${merchant.url}/v1/getinfo`, { method: 'POST' });
    expect({ status: anonymous.status, body: await anonymous.json() }).toEqual({
      status: 403,
      body: { code: 1501, message: 'Not authorized: Missing rune' },
    });
    await expect(send(merchant, 'getinfo', {}, { Rune: payer.rune })).resolves.toEqual({
      status: 401,
      body: { code: 1501, message: 'Not authorized: Not derived from master' },
    });
    await expect(send(merchant, 'waitinvoice', { label: 'nobody' })).resolves.toEqual({
      status: 500,
      body: { code: -1, message: 'Label not found' },
    });
  });

  it('the l402 Cln backend’s own calls fit the schemas too', async () => {
    const problems: string[] = [];
    const checked = new Set<string>();
    const merchantProxy = await checkingProxy(merchant, problems, checked);
    const payerProxy = await checkingProxy(payer, problems, checked);
    const merchantCln = Cln.connect({ url: merchantProxy.url, rune: merchant.rune, now: clock.now });
    const payerCln = Cln.connect({ url: payerProxy.url, rune: payer.rune, now: clock.now });
    try {
      expect((await merchantCln.info()).network).toBe('regtest');
      const fixed = await merchantCln.createInvoice({
        amountMsat: 7_000n,
        memo: 'via the backend',
        expirySeconds: 300,
      });
      const open = await merchantCln.createInvoice({
        amountMsat: 0n,
        preimage: new Uint8Array(32).fill(0x42),
      });
      const waiting = merchantCln.waitInvoice(fixed.paymentHash, { timeoutMs: 10_000 });
      await payerCln.pay(fixed.paymentRequest, { maxFeeMsat: 1_000n });
      await payerCln.pay(open.paymentRequest, { amountMsat: 4_000n });
      expect((await waiting).state).toBe('settled');
      expect((await merchantCln.lookupInvoice(open.paymentHash)).amountReceivedMsat).toBe(4_000n);
      expect((await payerCln.lookupPayment(fixed.paymentHash)).state).toBe('succeeded');
      await payerCln.balance();
      expect(problems).toEqual([]);
      expect([...checked].sort()).toEqual([
        'getinfo',
        'invoice',
        'listinvoices',
        'listpays',
        'waitinvoice',
        'xpay',
      ]);
    } finally {
      await Promise.all([merchantCln.close(), payerCln.close()]);
      await Promise.all([merchantProxy.close(), payerProxy.close()]);
    }
  });

  // Last: it moves the shared clock a day ahead.
  it('expiry: waitinvoice answers 903 with the invoice (in the response schema), listinvoices says expired, xpay 207', async () => {
    const doomed = await invoice({
      amount_msat: 3_000,
      label: 'doomed',
      description: 'never paid',
      expiry: 60,
    });
    const waiting = send(merchant, 'waitinvoice', { label: 'doomed' });
    clock.advance(86_400_000);
    const answer = await waiting;
    expect(answer).toMatchObject({
      status: 500,
      body: { code: 903, message: 'invoice expired during wait' },
    });
    expect(validate(schemas.waitinvoice.response, answer.body.data)).toEqual([]);
    expect(answer.body.data).toMatchObject({ label: 'doomed', status: 'expired' });
    covered.add('waitinvoice 903');

    expect((await call(merchant, 'listinvoices', { label: 'doomed' })).body.invoices).toMatchObject([
      { status: 'expired' },
    ]);
    expect(await send(payer, 'xpay', { invstring: doomed.bolt11 })).toEqual({
      status: 500,
      body: { code: 207, message: 'Invoice expired' },
    });
    // Every answer kind above was checked against a schema.
    expect([...covered].sort()).toEqual([
      'getinfo 201',
      'invoice 201',
      'invoice refused',
      'listinvoices 201',
      'listpays 201',
      'listpays refused',
      'pay 201',
      'waitinvoice 201',
      'waitinvoice 903',
      'xpay 201',
    ]);
  }, 30_000);
});

describe('the JSON schema subset those checks rely on', () => {
  const response = schemas.listinvoices.response;
  const paid = {
    label: 'a',
    payment_hash: 'ab'.repeat(32),
    status: 'paid',
    expires_at: 1,
    created_index: 1,
    pay_index: 1,
    amount_received_msat: 5,
    paid_at: 2,
    payment_preimage: 'cd'.repeat(32),
  };

  it('accepts a conforming answer', () => {
    expect(validate(response, { invoices: [paid] })).toEqual([]);
  });

  it('catches a wrong type, a missing field, an unknown field, a bad enum value and a broken if/then branch', () => {
    expect(validate(response, { invoices: [{ ...paid, amount_received_msat: -5 }] })).toEqual([
      '$.invoices[0].amount_received_msat: expected msat, got -5',
    ]);
    expect(validate(response, {})).toEqual(['$: missing required property invoices']);
    expect(validate(response, { invoices: [], extra: 1 })).toEqual(['$: unexpected property extra']);
    expect(validate(response, { invoices: [{ ...paid, status: 'settled' }] })).toContain(
      '$.invoices[0].status: "settled" is not one of ["unpaid","paid","expired"]',
    );
    const { payment_preimage: _, ...withoutPreimage } = paid;
    expect(validate(response, { invoices: [withoutPreimage] })).toEqual([
      '$.invoices[0]: missing required property payment_preimage',
    ]);
    // An unpaid invoice must not carry the paid-only fields (the `else` branch).
    expect(validate(response, { invoices: [{ ...paid, status: 'unpaid' }] })).toContain(
      '$.invoices[0]: unexpected property pay_index',
    );
  });

  it('checks oneOf, CLN’s own types, dependentUpon, and refuses keywords it does not know', () => {
    const label = schemas.invoice.request;
    expect(validate(label, { amount_msat: 'any', label: 5, description: '' })).toEqual([]);
    expect(validate(label, { amount_msat: 'lots', label: true, description: '' })).toEqual([
      '$.amount_msat: expected msat_or_any, got "lots"',
      '$.label: matches 0 of the oneOf alternatives, not exactly one',
    ]);
    expect(validate(schemas.listinvoices.request, { start: 3 })).toEqual(['$: start needs index']);
    expect(validate({ type: 'pubkey' }, `04${'00'.repeat(32)}`)).toHaveLength(1);
    expect(validate({ type: 'u16' }, 65_536)).toHaveLength(1);
    expect(() => validate({ patternProperties: {} }, {})).toThrow(/unsupported JSON schema keyword/);
    expect(() => validate({ type: 'float128' }, 1)).toThrow(/unsupported type/);
  });
});
