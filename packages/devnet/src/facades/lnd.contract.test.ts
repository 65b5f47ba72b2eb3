/**
 * Every body the LND facade writes, successes and errors, unary and streamed, checked against the
 * swagger files of real LND (lightningnetwork/lnd lnrpc/ @ 90ea05d5, v0.21.2-beta, MIT), copied into
 * `fixtures/lnd/`. A field renamed, missing, mistyped or out of an enum
 * fails here.
 */
import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { load } from '../internal/swagger.js';
import * as Network from '../Network.js';
import * as Lnd from './lnd.js';

const specs = fileURLToPath(new URL('./fixtures/lnd/', import.meta.url));
const contract = load(['lightning', 'router', 'invoices'].map((name) => `${specs}${name}.swagger.json`));

let net: Network.Network;
let merchant: Lnd.Facade;
let payer: Lnd.Facade;

interface Answer {
  readonly status: number;
  readonly contentType: string | undefined;
  /** The body's JSON values, one per line (one for a unary answer). */
  readonly lines: unknown[];
}

/**
 * Calls the facade and collects the answer: the whole body, or for a stream its first `lines` lines
 * (the connection is then dropped, as a client leaving a stream would).
 */
function call(
  facade: Lnd.Facade,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { body?: string | object; macaroon?: string | null; lines?: number } = {},
): Promise<Answer> {
  const macaroon = options.macaroon === undefined ? facade.macaroonHex : options.macaroon;
  const body = typeof options.body === 'object' ? JSON.stringify(options.body) : options.body;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${facade.url}${path}`,
      {
        method,
        ca: facade.certPem,
        headers: macaroon === null ? {} : { 'Grpc-Metadata-macaroon': macaroon },
        agent: false,
      },
      (res) => {
        let text = '';
        const lines: unknown[] = [];
        const done = () =>
          resolve({ status: res.statusCode!, contentType: res.headers['content-type'], lines });
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n')) {
            lines.push(JSON.parse(text.slice(0, end)));
            text = text.slice(end + 1);
          }
          if (options.lines !== undefined && lines.length >= options.lines) {
            req.destroy();
            done();
          }
        });
        res.on('end', () => {
          if (text.trim() !== '') lines.push(JSON.parse(text));
          done();
        });
      },
    );
    req.on('error', (error) => (options.lines !== undefined ? undefined : reject(error)));
    req.end(body);
  });
}

/** A unary success: 200 and a body that is the operation's response message. */
async function ok(facade: Lnd.Facade, method: 'GET' | 'POST', path: string, template: string, body?: object) {
  const answer = await call(facade, method, path, body === undefined ? {} : { body });
  expect(answer.status).toBe(200);
  expect(answer.contentType).toBe('application/json');
  expect(answer.lines).toHaveLength(1);
  expect(contract.validate(contract.response(method, template, 200), answer.lines[0])).toEqual([]);
  return answer.lines[0] as Record<string, unknown>;
}

/** A unary error: grpc-gateway's status for the code, and an rpcStatus body. */
async function refused(
  answer: Answer,
  method: string,
  template: string,
  status: number,
  code: number,
  message: RegExp,
) {
  expect(answer.status).toBe(status);
  expect(answer.lines).toHaveLength(1);
  expect(contract.validate(contract.response(method, template, 'default'), answer.lines[0])).toEqual([]);
  expect(answer.lines[0]).toMatchObject({ code, details: [] });
  expect((answer.lines[0] as { message: string }).message).toMatch(message);
}

/** A streaming call's lines, each checked against the operation's stream envelope. */
function streamed(answer: Answer, method: string, template: string): Record<string, unknown>[] {
  expect(contract.streams(method, template)).toBe(true);
  for (const line of answer.lines)
    expect(contract.validate(contract.response(method, template, 200), line)).toEqual([]);
  return answer.lines as Record<string, unknown>[];
}

const b64url = (hex: string) => `${Buffer.from(hex, 'hex').toString('base64url')}=`;

beforeAll(async () => {
  net = await Network.start({
    nodes: ['merchant', 'payer', 'island'],
    channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000, pushSat: 100_000 }],
  });
  merchant = await Lnd.serve(net.node('merchant'));
  payer = await Lnd.serve(net.node('payer'));
});

afterAll(async () => {
  await Promise.all([merchant?.close(), payer?.close()]);
  await net?.close();
});

describe('the swagger validator', () => {
  test('accepts a conforming body and names each departure from the contract', () => {
    const status = { code: 5, message: 'unable to locate invoice', details: [] };
    expect(contract.validate('rpcStatus', status)).toEqual([]);
    expect(contract.validate('rpcStatus', { ...status, extra: 1 })).toEqual([
      '$: property extra is not in the contract',
    ]);
    expect(contract.validate('rpcStatus', { code: 5, message: 'x' })).toEqual([
      '$: property details is missing',
    ]);
    expect(contract.validate('rpcStatus', { code: 5, message: 'x' }, { complete: false })).toEqual([]);
    expect(contract.validate('rpcStatus', { ...status, code: '5' })).toEqual([
      '$.code: expected an integer (JSON number), got "5"',
    ]);
    expect(contract.validate('lnrpcAmount', { sat: 21, msat: '21000' })).toEqual([
      '$.sat: expected a uint64 as a decimal string, got 21',
    ]);
    expect(contract.validate('lnrpcAmount', { sat: '-1', msat: '21000' })).toEqual([
      '$.sat: expected a uint64 as a decimal string, got "-1"',
    ]);
    expect(
      contract.validate('lnrpcAddInvoiceResponse', {
        r_hash: 'zz!',
        payment_request: '',
        add_index: '1',
        payment_addr: '',
      }),
    ).toEqual(['$.r_hash: expected standard base64 (bytes), got "zz!"']);
    expect(contract.validate({ $ref: '#/definitions/InvoiceInvoiceState' }, 'EXPIRED')).toEqual([
      '$: expected one of OPEN, SETTLED, CANCELED, ACCEPTED, got "EXPIRED"',
    ]);
    const envelope = contract.response('get', '/v1/invoices/subscribe', 200);
    expect(contract.validate(envelope, { result: null, error: null })[0]).toMatch(
      /exactly one of result, error/,
    );
  });
});

describe('LND facade responses conform to the LND swagger', () => {
  test('GET /v1/getinfo, /v1/balance/channels, /v1/channels', async () => {
    const info = await ok(merchant, 'GET', '/v1/getinfo', '/v1/getinfo');
    expect(info).toMatchObject({
      identity_pubkey: net.node('merchant').nodeId,
      chains: [{ chain: 'bitcoin', network: 'regtest' }],
    });
    const balance = await ok(merchant, 'GET', '/v1/balance/channels', '/v1/balance/channels');
    expect(balance.local_balance).toEqual({ sat: '100000', msat: '100000000' });
    const { channels } = await ok(payer, 'GET', '/v1/channels?active_only=true', '/v1/channels');
    expect(channels).toEqual([
      expect.objectContaining({ active: true, capacity: '1000000', local_balance: '900000' }),
    ]);
  });

  test('POST /v1/invoices, GET /v1/invoice/{r_hash_str}, GET /v2/invoices/lookup, GET /v1/payreq/{pay_req}', async () => {
    const preimage = Buffer.alloc(32, 7);
    const added = await ok(merchant, 'POST', '/v1/invoices', '/v1/invoices', {
      value: '21',
      memo: 'contract',
      expiry: 600,
      r_preimage: preimage.toString('base64'),
    });
    const hash = Buffer.from(added.r_hash as string, 'base64').toString('hex');
    const invoice = await ok(merchant, 'GET', `/v1/invoice/${hash}`, '/v1/invoice/{r_hash_str}');
    expect(invoice).toMatchObject({
      memo: 'contract',
      value: '21',
      value_msat: '21000',
      state: 'OPEN',
      expiry: '600',
      settled: false,
    });
    expect(invoice.r_preimage).toBe(preimage.toString('base64'));
    expect(
      await ok(merchant, 'GET', `/v2/invoices/lookup?payment_hash=${b64url(hash)}`, '/v2/invoices/lookup'),
    ).toEqual(invoice);
    const payReq = await ok(payer, 'GET', `/v1/payreq/${added.payment_request}`, '/v1/payreq/{pay_req}');
    expect(payReq).toMatchObject({
      destination: net.node('merchant').nodeId,
      payment_hash: hash,
      num_satoshis: '21',
      num_msat: '21000',
    });

    const anyAmount = await ok(merchant, 'POST', '/v1/invoices', '/v1/invoices', {
      value_msat: 0,
      description_hash: Buffer.alloc(32, 1).toString('base64'),
    });
    expect(anyAmount.add_index).toBe(String(Number(added.add_index) + 1));
  });

  test('invoice errors: unknown, malformed hash, conflicting amounts, duplicate preimage, bad JSON', async () => {
    const unknown = 'ab'.repeat(32);
    await refused(
      await call(merchant, 'GET', `/v1/invoice/${unknown}`),
      'GET',
      '/v1/invoice/{r_hash_str}',
      404,
      5,
      /^unable to locate invoice$/,
    );
    await refused(
      await call(merchant, 'GET', `/v2/invoices/lookup?payment_hash=${b64url(unknown)}`),
      'GET',
      '/v2/invoices/lookup',
      404,
      5,
      /unable to locate invoice/,
    );
    await refused(
      await call(merchant, 'GET', '/v1/invoice/zz'),
      'GET',
      '/v1/invoice/{r_hash_str}',
      500,
      2,
      /^encoding\/hex: invalid byte: U\+007A 'z'$/,
    );
    await refused(
      await call(merchant, 'GET', '/v1/invoice/abcd'),
      'GET',
      '/v1/invoice/{r_hash_str}',
      500,
      2,
      /exactly 32 bytes/,
    );
    const both = await call(merchant, 'POST', '/v1/invoices', { body: { value: 1, value_msat: 1000 } });
    await refused(both, 'POST', '/v1/invoices', 500, 2, /mutually exclusive/);
    const body = { value: 1, r_preimage: Buffer.alloc(32, 9).toString('base64') };
    await ok(merchant, 'POST', '/v1/invoices', '/v1/invoices', body);
    await refused(
      await call(merchant, 'POST', '/v1/invoices', { body }),
      'POST',
      '/v1/invoices',
      500,
      2,
      /already exists/,
    );
    await refused(
      await call(merchant, 'POST', '/v1/invoices', { body: '{"value":' }),
      'POST',
      '/v1/invoices',
      400,
      3,
      /syntax error/,
    );
    await refused(
      await call(merchant, 'POST', '/v1/invoices', { body: { value: 'lots' } }),
      'POST',
      '/v1/invoices',
      400,
      3,
      /invalid value/,
    );
    await refused(
      await call(payer, 'GET', '/v1/payreq/lnbcrt1garbage'),
      'GET',
      '/v1/payreq/{pay_req}',
      500,
      2,
      /./,
    );
  });

  test('macaroon errors, as LND returns them: gRPC Unknown, HTTP 500', async () => {
    const path = '/v1/getinfo';
    await refused(
      await call(merchant, 'GET', path, { macaroon: null }),
      'GET',
      path,
      500,
      2,
      /^expected 1 macaroon, got 0$/,
    );
    await refused(
      await call(merchant, 'GET', path, { macaroon: 'xyz' }),
      'GET',
      path,
      500,
      2,
      /^encoding\/hex: invalid byte/,
    );
    await refused(
      await call(merchant, 'GET', path, { macaroon: payer.macaroonHex }),
      'GET',
      path,
      500,
      2,
      /^verification failed: signature mismatch/,
    );
    await refused(
      await call(merchant, 'GET', path, { macaroon: merchant.invoiceMacaroonHex }),
      'GET',
      path,
      500,
      2,
      /^permission denied$/,
    );
    const create = await call(merchant, 'POST', '/v1/invoices', {
      body: { value: 1 },
      macaroon: merchant.readonlyMacaroonHex,
    });
    await refused(create, 'POST', '/v1/invoices', 500, 2, /^permission denied$/);
    // A streaming call fails the same way, inside the stream's envelope.
    const subscribe = await call(merchant, 'GET', '/v1/invoices/subscribe', { macaroon: null });
    expect(subscribe.status).toBe(500);
    const [line] = streamed(subscribe, 'GET', '/v1/invoices/subscribe');
    expect(line).toEqual({ error: { code: 2, message: 'expected 1 macaroon, got 0', details: [] } });
  });

  test('routing errors, as grpc-gateway returns them', async () => {
    const notFound = await call(merchant, 'GET', '/v1/nothing-here');
    expect(notFound.status).toBe(404);
    expect(contract.validate('rpcStatus', notFound.lines[0])).toEqual([]);
    expect(notFound.lines[0]).toEqual({ code: 5, message: 'Not Found', details: [] });
    const wrongMethod = await call(merchant, 'DELETE', '/v1/getinfo');
    expect(wrongMethod.status).toBe(501);
    expect(wrongMethod.lines[0]).toEqual({ code: 12, message: 'Method Not Allowed', details: [] });
  });

  test('a payment: /v1/invoices/subscribe, /v2/router/send, /v2/router/track, /v1/payments', async () => {
    const first = await ok(merchant, 'POST', '/v1/invoices', '/v1/invoices', { value: 1 });
    const added = await ok(merchant, 'POST', '/v1/invoices', '/v1/invoices', {
      value_msat: '50000',
      memo: 'stream',
    });
    const hash = Buffer.from(added.r_hash as string, 'base64').toString('hex');
    // Catch-up from the first invoice's index: the second one, as it is now, then its settle.
    const subscription = call(merchant, 'GET', `/v1/invoices/subscribe?add_index=${first.add_index}`, {
      lines: 2,
    });

    await new Promise((resolve) => setTimeout(resolve, 100));
    const send = await call(payer, 'POST', '/v2/router/send', {
      body: { payment_request: added.payment_request, timeout_seconds: 30, fee_limit_sat: '10' },
    });
    expect(send.status).toBe(200);
    const updates = streamed(send, 'POST', '/v2/router/send').map(
      (line) => line.result as Record<string, unknown>,
    );
    expect(updates.map((u) => u.status)).toEqual(['IN_FLIGHT', 'SUCCEEDED']);
    expect(updates[1]).toMatchObject({
      payment_hash: hash,
      value_msat: '50000',
      failure_reason: 'FAILURE_REASON_NONE',
    });
    expect(updates[0]!.payment_preimage).toBe('0'.repeat(64));

    const events = streamed(await subscription, 'GET', '/v1/invoices/subscribe').map(
      (line) => line.result as Record<string, unknown>,
    );
    expect(events.map((e) => [e.add_index, e.state])).toEqual([
      [added.add_index, 'OPEN'],
      [added.add_index, 'SETTLED'],
    ]);
    expect(events[1]).toMatchObject({
      settled: true,
      amt_paid_msat: '50000',
      amt_paid_sat: '50',
      settle_index: '1',
    });

    const tracked = await call(payer, 'GET', `/v2/router/track/${b64url(hash)}`);
    expect(
      streamed(tracked, 'GET', '/v2/router/track/{payment_hash}').map(
        (line) => (line.result as { status: string }).status,
      ),
    ).toEqual(['SUCCEEDED']);
    const payments = await ok(
      payer,
      'GET',
      '/v1/payments?include_incomplete=true&count_total_payments=true',
      '/v1/payments',
    );
    expect(payments.payments).toEqual([expect.objectContaining({ payment_hash: hash, status: 'SUCCEEDED' })]);
    expect(payments.total_num_payments).toBe('1');

    const settled = await ok(merchant, 'GET', `/v1/invoice/${hash}`, '/v1/invoice/{r_hash_str}');
    expect(settled).toMatchObject({ state: 'SETTLED', amt_paid_msat: '50000' });

    // Paying again: the stream's first message is an AlreadyExists error, so it is also the HTTP status.
    const again = await call(payer, 'POST', '/v2/router/send', {
      body: { payment_request: added.payment_request, timeout_seconds: 30 },
    });
    expect(again.status).toBe(409);
    expect(streamed(again, 'POST', '/v2/router/send')).toEqual([
      { error: { code: 6, message: 'invoice is already paid', details: [] } },
    ]);
  });

  test('payment failures: no route, insufficient balance, expired, unknown payment, bad requests', async () => {
    const island = await Lnd.serve(net.node('island'));
    try {
      const far = await ok(island, 'POST', '/v1/invoices', '/v1/invoices', { value: 10 });
      const noRoute = await call(payer, 'POST', '/v2/router/send', {
        body: { payment_request: far.payment_request, timeout_seconds: 30 },
      });
      const [failed] = streamed(noRoute, 'POST', '/v2/router/send').map(
        (line) => line.result as Record<string, unknown>,
      );
      expect(failed).toMatchObject({ status: 'FAILED', failure_reason: 'FAILURE_REASON_NO_ROUTE' });
    } finally {
      await island.close();
    }

    const big = await ok(merchant, 'POST', '/v1/invoices', '/v1/invoices', { value: 5_000_000 });
    const poor = await call(payer, 'POST', '/v2/router/send', {
      body: { payment_request: big.payment_request, timeout_seconds: 30 },
    });
    const [short] = streamed(poor, 'POST', '/v2/router/send').map(
      (line) => line.result as Record<string, unknown>,
    );
    expect(short).toMatchObject({ status: 'FAILED', failure_reason: 'FAILURE_REASON_INSUFFICIENT_BALANCE' });
    const payments = await ok(payer, 'GET', '/v1/payments?include_incomplete=true', '/v1/payments');
    expect((payments.payments as unknown[]).length).toBeGreaterThanOrEqual(2);

    const soon = await ok(merchant, 'POST', '/v1/invoices', '/v1/invoices', { value: 1, expiry: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const expiredHash = Buffer.from(soon.r_hash as string, 'base64').toString('hex');
    const canceled = await ok(merchant, 'GET', `/v1/invoice/${expiredHash}`, '/v1/invoice/{r_hash_str}');
    expect(canceled.state).toBe('CANCELED');
    const late = await call(payer, 'POST', '/v2/router/send', {
      body: { payment_request: soon.payment_request, timeout_seconds: 30 },
    });
    expect(late.status).toBe(500);
    const [lateLine] = streamed(late, 'POST', '/v2/router/send');
    expect(lateLine).toMatchObject({
      error: {
        code: 2,
        message: expect.stringMatching(
          /^invoice expired\. Valid until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/,
        ),
      },
    });

    const untracked = await call(payer, 'GET', `/v2/router/track/${b64url('cd'.repeat(32))}`);
    expect(untracked.status).toBe(404);
    expect(streamed(untracked, 'GET', '/v2/router/track/{payment_hash}')).toEqual([
      { error: { code: 5, message: "payment isn't initiated", details: [] } },
    ]);

    const noTimeout = await call(payer, 'POST', '/v2/router/send', {
      body: { payment_request: big.payment_request },
    });
    expect(streamed(noTimeout, 'POST', '/v2/router/send')).toEqual([
      { error: { code: 2, message: 'timeout_seconds must be specified', details: [] } },
    ]);
    // A body that does not decode never reaches the RPC: a plain status, not a stream line.
    await refused(
      await call(payer, 'POST', '/v2/router/send', { body: 'not json' }),
      'POST',
      '/v2/router/send',
      400,
      3,
      /syntax error/,
    );
  });
});
