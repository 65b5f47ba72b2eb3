/**
 * LNbits' wallet API (v1.5) in front of a devnet node, over plain HTTP on loopback: the node is one
 * LNbits wallet whose funding source is the node itself. Keys go in `X-Api-Key` (or `?api-key=`): the
 * invoice key creates invoices and reads, the admin key also pays. Errors are `{"detail": …}` with
 * LNbits' statuses: 401 without a key, 404 `Wallet not found.` for an unknown one, 403 when the invoice
 * key tries to pay, 400 for a malformed body (pydantic's error list), 520 `{detail, status}` for a payment
 * or invoice error, as `lnbits/core/views/payment_api.py` and `lnbits/exceptions.py` answer.
 *
 * Endpoints: `POST /api/v1/payments` (`out: false` creates an invoice, 201 with the `Payment`;
 * `out: true` pays `bolt11`, 201 with the `Payment`, `pending` if it takes longer than 5 s),
 * `GET /api/v1/payments/{payment_hash}` and `GET /api/v1/wallet` (balance in msat: what the node can
 * send now). As in LNbits, a payment that failed on the node is never retried for the same hash.
 * Webhooks, hold invoices and fiat units are refused rather than silently ignored.
 *
 * @example
 * const lnbits = await Lnbits.serve(net.node('merchant'));
 * const res = await fetch(`${lnbits.url}/api/v1/payments`, {
 *   method: 'POST',
 *   headers: { 'X-Api-Key': lnbits.invoiceKey, 'Content-Type': 'application/json' },
 *   body: JSON.stringify({ out: false, amount: 21, unit: 'sat', memo: 'coffee' }),
 * });
 * (await res.json()).payment_request; // "lnbcrt210n1…"
 * await lnbits.close();
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Invoice } from 'l402';
import { ClosedError, PaymentError } from '../Errors.js';
import { sha256, toHex } from '../internal/bytes.js';
import { BodyTooLargeError, listen, readBody, reply, sameSecret } from '../internal/facadeServer.js';
import type { Node } from '../Node.js';

export interface Options {
  /** Defaults to 127.0.0.1. */
  readonly host?: string;
  /** Defaults to an ephemeral port (LNbits' own default is 5000). */
  readonly port?: number;
}

export interface Facade {
  /** `http://127.0.0.1:<port>`: the API is under `${url}/api/v1/`. */
  readonly url: string;
  /** Pays, and everything the invoice key does. */
  readonly adminKey: string;
  /** Creates invoices and reads; cannot pay. */
  readonly invoiceKey: string;
  readonly walletId: string;
  close(): Promise<void>;
}

/** LNbits' defaults: `lightning_invoice_expiry`, `lnbits_site_title`, fee reserve, pay wait. */
const DEFAULT_EXPIRY = 3600;
const DEFAULT_MEMO = 'LNbits';
const RESERVE_FEE_MIN_MSAT = 2000;
const RESERVE_FEE_PERCENT = 1;
const PAY_WAIT_MS = 5000;
const MAX_MEMO = 640;

/** An answer other than success: `{detail}` (plus `status` for 520s). */
class Refusal extends Error {
  override name = 'Refusal';
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, detail: unknown, paymentStatus?: 'pending' | 'success' | 'failed') {
    super(typeof detail === 'string' ? detail : 'invalid request');
    this.status = status;
    this.body = { detail, ...(paymentStatus && { status: paymentStatus }) };
  }
}

const paymentError = (detail: string, status: 'pending' | 'success' | 'failed' = 'failed') =>
  new Refusal(520, detail, status);

/** One pydantic (v1) validation error, as LNbits' 400 lists them. */
const fieldError = (field: string, msg: string, type: string) => ({ loc: ['body', field], msg, type });

/** What LNbits' database holds beside the node's record. */
interface Entry {
  readonly memo: string;
  readonly extra: Record<string, unknown>;
  readonly labels: unknown[];
  readonly createdMs: number;
  /** Fee reserve held while an outgoing payment is pending (msat). */
  readonly reserveMsat: number;
}

/** Python's `datetime.isoformat()` of a UTC time: microseconds only when not zero. */
function isoformat(ms: number): string {
  const base = new Date(ms).toISOString().slice(0, 19);
  const micro = Math.round((ms % 1000) * 1000);
  return micro === 0 ? `${base}+00:00` : `${base}.${String(micro).padStart(6, '0')}+00:00`;
}

const feeReserve = (amountMsat: number) =>
  Math.max(RESERVE_FEE_MIN_MSAT, Math.floor((Math.abs(amountMsat) * RESERVE_FEE_PERCENT) / 100));

/**
 * Serves LNbits' wallet API for `node` on loopback, as one wallet with fresh keys. Only invoices and
 * payments made through this facade are in its "database".
 *
 * @example
 * const { url, adminKey, invoiceKey, close } = await Lnbits.serve(net.node('payer'));
 */
export async function serve(node: Node, options: Options = {}): Promise<Facade> {
  const adminKey = randomBytes(16).toString('hex');
  const invoiceKey = randomBytes(16).toString('hex');
  const walletId = randomBytes(16).toString('hex');
  const alias = node.info().alias;
  const incoming = new Map<string, Entry>();
  const outgoing = new Map<string, Entry>();

  const balanceMsat = () =>
    node
      .listChannels()
      .filter((channel) => channel.usable)
      .reduce((sum, channel) => sum + channel.spendableMsat, 0);

  /** The `Payment` model of an invoice or payment of this wallet, or undefined. */
  const paymentOf = (hash: string): Record<string, unknown> | undefined => {
    const base = { wallet_id: walletId, fiat_provider: null };
    const invoiceEntry = incoming.get(hash);
    const invoice = invoiceEntry && node.lookupInvoice(hash);
    if (invoiceEntry && invoice) {
      const status =
        invoice.state === 'settled' ? 'success' : invoice.state === 'open' ? 'pending' : 'failed';
      return {
        checking_id: hash,
        payment_hash: hash,
        ...base,
        amount: invoice.amountMsat ?? 0,
        fee: 0,
        bolt11: invoice.paymentRequest,
        payment_request: invoice.paymentRequest,
        status,
        memo: invoiceEntry.memo,
        expiry: isoformat(invoice.expiresAt * 1000),
        webhook: null,
        webhook_status: null,
        preimage: status === 'success' ? invoice.preimage : null,
        tag: null,
        extension: null,
        time: isoformat(invoiceEntry.createdMs),
        created_at: isoformat(invoiceEntry.createdMs),
        updated_at: isoformat(
          invoice.settledAt === undefined ? invoiceEntry.createdMs : invoice.settledAt * 1000,
        ),
        labels: invoiceEntry.labels,
        extra: invoiceEntry.extra,
      };
    }
    const paymentEntry = outgoing.get(hash);
    const payment = paymentEntry && node.lookupPayment(hash);
    if (!paymentEntry || !payment) return undefined;
    const status =
      payment.state === 'succeeded' ? 'success' : payment.state === 'failed' ? 'failed' : 'pending';
    const expiry = Invoice.decode(payment.paymentRequest);
    return {
      checking_id: hash,
      payment_hash: hash,
      ...base,
      amount: -payment.amountMsat,
      fee: status === 'success' ? -(payment.feeMsat ?? 0) : -paymentEntry.reserveMsat,
      bolt11: payment.paymentRequest,
      payment_request: payment.paymentRequest,
      status,
      memo: paymentEntry.memo,
      expiry: isoformat(Invoice.expiresAt(expiry) * 1000),
      webhook: null,
      webhook_status: null,
      preimage: status === 'success' ? payment.preimage : null,
      tag: null,
      extension: null,
      time: isoformat(paymentEntry.createdMs),
      created_at: isoformat(paymentEntry.createdMs),
      updated_at: isoformat(
        payment.settledAt === undefined ? paymentEntry.createdMs : payment.settledAt * 1000,
      ),
      labels: paymentEntry.labels,
      extra: paymentEntry.extra,
    };
  };

  const createInvoice = async (body: Record<string, unknown>) => {
    const amount = body.amount as number | undefined;
    const amountSat = Math.floor(amount ?? 0);
    if (amountSat <= 0) throw paymentError('Amountless invoices not supported.');
    if (body.payment_hash !== undefined)
      throw paymentError('Hold invoices are not supported by the funding source.');
    let descriptionHash: string | undefined;
    if (body.description_hash !== undefined)
      descriptionHash = hexField(body.description_hash, 'description_hash');
    else if (body.unhashed_description !== undefined) {
      const unhashed = hexField(body.unhashed_description, 'unhashed_description');
      descriptionHash = toHex(sha256(new Uint8Array(Buffer.from(unhashed, 'hex'))));
    }
    const memo = descriptionHash === undefined ? (body.memo as string | undefined) || DEFAULT_MEMO : '';
    const invoice = await node.createInvoice({
      amountMsat: amountSat * 1000,
      ...(descriptionHash === undefined ? { description: memo.slice(0, MAX_MEMO) } : { descriptionHash }),
      expirySeconds: (body.expiry as number | undefined) || DEFAULT_EXPIRY,
    });
    incoming.set(invoice.paymentHash, {
      memo,
      extra: (body.extra as Record<string, unknown> | undefined) ?? {},
      labels: (body.labels as unknown[] | undefined) ?? [],
      createdMs: Date.now(),
      reserveMsat: 0,
    });
    return paymentOf(invoice.paymentHash)!;
  };

  const pay = async (body: Record<string, unknown>) => {
    if (body.bolt11 === undefined || body.bolt11 === '') throw new Refusal(400, 'Missing BOLT11 invoice');
    const text = body.bolt11 as string;
    let decoded: Invoice.Invoice;
    try {
      decoded = Invoice.decode(text);
    } catch {
      throw paymentError('Bolt11 decoding failed.');
    }
    if (!decoded.amountMsat) throw paymentError('Amountless invoices not supported.');
    const amountMsat = Number(decoded.amountMsat);
    const hash = toHex(decoded.paymentHash);
    const reserveMsat = feeReserve(amountMsat);
    const balance = balanceMsat();
    if (balance < amountMsat) throw paymentError('Insufficient balance.');
    if (balance < amountMsat + reserveMsat) {
      throw paymentError(
        `You must reserve at least (${Math.round(reserveMsat / 1000)}  sat) to cover potential routing fees.`,
      );
    }
    const earlier = outgoing.has(hash) ? paymentOf(hash) : undefined;
    if (earlier?.status === 'pending') throw paymentError('Payment is still pending.', 'pending');
    if (earlier?.status === 'success') throw paymentError('Payment already paid.', 'success');
    if (earlier) throw paymentError('Payment is failed node, retrying is not possible.');
    outgoing.set(hash, {
      memo: decoded.description ?? '',
      extra: (body.extra as Record<string, unknown> | undefined) ?? {},
      labels: (body.labels as unknown[] | undefined) ?? [],
      createdMs: Date.now(),
      reserveMsat,
    });
    const paying = node.payInvoice(text, { maxFeeMsat: reserveMsat });
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'pending'>((resolve) => {
      timer = setTimeout(() => resolve('pending'), PAY_WAIT_MS);
    });
    try {
      await Promise.race([paying, waited]);
    } catch (error) {
      if (!(error instanceof PaymentError)) throw error;
      if (!node.lookupPayment(hash)) outgoing.delete(hash); // refused before anything was sent
      throw paymentError(`Payment failed: ${error.message}`);
    } finally {
      clearTimeout(timer);
    }
    // A payment still running after the wait is answered as pending, and finishes on its own.
    paying.catch(() => undefined);
    return paymentOf(hash)!;
  };

  const routes: {
    method: string;
    pattern: RegExp;
    run(match: string[], key: Key | undefined, request: IncomingMessage): Promise<[number, unknown]>;
  }[] = [
    {
      method: 'POST',
      pattern: /^\/api\/v1\/payments\/?$/,
      async run(_, key, request) {
        const wallet = required(key);
        const body = parseCreate(await readBody(request));
        if (body.out === true && wallet === 'admin') return [201, await pay(body)];
        if (body.out === true) throw new Refusal(403, 'Invoice (or Admin) key required.');
        return [201, await createInvoice(body)];
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/payments\/([^/]+)$/,
      async run([hash], key) {
        // The key is optional here: with this wallet's key the answer carries `details`.
        const mine = key === 'admin' || key === 'invoice';
        const payment = paymentOf(hash!.toLowerCase());
        if (!payment) throw new Refusal(404, 'Payment does not exist.');
        const details = mine ? { details: payment } : {};
        if (payment.status === 'success')
          return [200, { paid: true, preimage: payment.preimage, ...details }];
        if (payment.status === 'failed') return [200, { paid: false, status: 'failed', ...details }];
        return [
          200,
          mine
            ? { paid: false, status: 'pending', preimage: null, ...details }
            : { paid: false, preimage: null },
        ];
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/wallet\/?$/,
      async run(_, key) {
        const wallet = required(key);
        return [200, { name: alias, balance: balanceMsat(), ...(wallet === 'admin' && { id: walletId }) }];
      },
    },
  ];

  /** The wallet key the request carries: admin, invoice, unknown, or none. */
  type Key = 'admin' | 'invoice' | 'unknown';
  const keyOf = (request: IncomingMessage, url: URL): Key | undefined => {
    const header = request.headers['x-api-key'];
    const presented =
      (Array.isArray(header) ? header[0] : header) || url.searchParams.get('api-key') || undefined;
    if (presented === undefined) return undefined;
    if (sameSecret(presented, adminKey)) return 'admin';
    if (sameSecret(presented, invoiceKey)) return 'invoice';
    return 'unknown';
  };
  const required = (key: Key | undefined): 'admin' | 'invoice' => {
    if (key === undefined) throw new Refusal(401, 'No Api Key provided.');
    if (key === 'unknown') throw new Refusal(404, 'Wallet not found.');
    return key;
  };

  const json = (response: ServerResponse, status: number, body: unknown) =>
    reply(response, status, 'application/json', JSON.stringify(body));

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://lnbits');
    const matching = routes.filter((route) => route.pattern.test(url.pathname));
    if (matching.length === 0) return json(response, 404, { detail: 'Not Found' });
    const route = matching.find((candidate) => candidate.method === request.method);
    if (!route) return json(response, 405, { detail: 'Method Not Allowed' });
    try {
      const [status, body] = await route.run(
        route.pattern.exec(url.pathname)!.slice(1),
        keyOf(request, url),
        request,
      );
      json(response, status, body);
    } catch (error) {
      if (error instanceof Refusal) return json(response, error.status, error.body);
      if (error instanceof BodyTooLargeError) return json(response, 413, { detail: error.message });
      if (error instanceof ClosedError) return json(response, 500, { detail: 'the node is stopped' });
      throw error;
    }
  };

  const server = await listen(handle, options);
  return { url: server.url, adminKey, invoiceKey, walletId, close: () => server.close() };
}

function hexField(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(value)) {
    throw new Refusal(400, `'${field}' must be a valid hex string`);
  }
  return value.toLowerCase();
}

/**
 * The `CreateInvoice` body, checked as its pydantic model: field types and bounds, `out` defaulting to
 * true, the `sat` unit only (the devnet has no exchange rates), no webhooks.
 */
function parseCreate(text: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new Refusal(400, [
      { loc: ['body', 0], msg: (error as Error).message, type: 'value_error.jsondecode' },
    ]);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new Refusal(400, [{ loc: ['body'], msg: 'value is not a valid dict', type: 'type_error.dict' }]);
  }
  const fields = { ...(body as Record<string, unknown>) };
  for (const [key, value] of Object.entries(fields)) if (value === null) delete fields[key];
  const problems: ReturnType<typeof fieldError>[] = [];
  const check = (field: string, ok: (value: unknown) => boolean, msg: string, type: string) => {
    if (fields[field] !== undefined && !ok(fields[field])) problems.push(fieldError(field, msg, type));
  };
  const isString = (v: unknown) => typeof v === 'string';
  check('out', (v) => typeof v === 'boolean', 'value could not be parsed to a boolean', 'type_error.bool');
  check(
    'internal',
    (v) => typeof v === 'boolean',
    'value could not be parsed to a boolean',
    'type_error.bool',
  );
  check(
    'amount',
    (v) => typeof v === 'number' && Number.isFinite(v),
    'value is not a valid float',
    'type_error.float',
  );
  check(
    'amount',
    (v) => typeof v !== 'number' || v >= 0,
    'ensure this value is greater than or equal to 0',
    'value_error.number.not_ge',
  );
  check('unit', (v) => v === 'sat', 'The provided unit is not supported', 'value_error');
  check('memo', isString, 'str type expected', 'type_error.str');
  check(
    'memo',
    (v) => typeof v !== 'string' || v.length <= MAX_MEMO,
    `ensure this value has at most ${MAX_MEMO} characters`,
    'value_error.any_str.max_length',
  );
  check('expiry', (v) => Number.isSafeInteger(v), 'value is not a valid integer', 'type_error.integer');
  check('bolt11', isString, 'str type expected', 'type_error.str');
  check('description_hash', isString, 'str type expected', 'type_error.str');
  check('unhashed_description', isString, 'str type expected', 'type_error.str');
  check(
    'payment_hash',
    (v) => typeof v === 'string' && /^[0-9a-fA-F]{64}$/.test(v),
    'ensure this value is 64 hex characters',
    'value_error',
  );
  check(
    'extra',
    (v) => typeof v === 'object' && !Array.isArray(v),
    'value is not a valid dict',
    'type_error.dict',
  );
  check('labels', Array.isArray, 'value is not a valid list', 'type_error.list');
  check(
    'webhook',
    () => false,
    'webhooks are not supported by the devnet: none would be sent',
    'value_error',
  );
  check('fiat_provider', () => false, 'fiat providers are not supported by the devnet', 'value_error');
  check('lnurl_withdraw', () => false, 'LNURL-withdraw is not supported by the devnet', 'value_error');
  if (problems.length > 0) throw new Refusal(400, problems);
  fields.out = fields.out ?? true;
  return fields;
}
