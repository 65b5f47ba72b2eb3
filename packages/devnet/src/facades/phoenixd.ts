/**
 * phoenixd's HTTP API (v0.8) in front of a devnet node, over plain HTTP on loopback as phoenixd serves
 * it. HTTP Basic auth with any user name and one of two generated passwords: `password` (phoenix.conf's
 * `http-password`, full access) or `limitedPassword` (`http-password-limited-access`: everything but
 * paying). Requests are form-encoded, answers pretty-printed JSON without null fields, amounts in
 * satoshis (fees in msat), times in unix milliseconds; errors are plain text with 400/401/404/405, and
 * a payment that fails is still HTTP 200 with a `reason`, as phoenixd's `Api.kt` answers.
 *
 * Endpoints: `GET /getinfo`, `GET /getbalance`, `POST /createinvoice`, `GET /payments/incoming` and
 * `/payments/incoming/{paymentHash}`, `POST /payinvoice`, `GET /payments/outgoing/{paymentId}` and
 * `/payments/outgoingbyhash/{paymentHash}`. Webhooks (`webhookUrl`) are not sent by the devnet, so
 * asking for one is refused rather than silently dropped.
 *
 * @example
 * const phoenixd = await Phoenixd.serve(net.node('merchant'));
 * const res = await fetch(`${phoenixd.url}/createinvoice`, {
 *   method: 'POST',
 *   headers: { Authorization: `Basic ${btoa(`:${phoenixd.password}`)}` },
 *   body: new URLSearchParams({ amountSat: '21', description: 'coffee' }),
 * });
 * (await res.json()).serialized; // "lnbcrt210n1…"
 * await phoenixd.close();
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Invoice } from 'l402';
import { ClosedError, PaymentError } from '../Errors.js';
import { toHex } from '../internal/bytes.js';
import { BodyTooLargeError, listen, readBody, reply, sameSecret } from '../internal/facadeServer.js';
import type { Node, Invoice as NodeInvoice, Payment } from '../Node.js';

export interface Options {
  /** Defaults to 127.0.0.1. */
  readonly host?: string;
  /** Defaults to an ephemeral port (phoenixd's own default is 9740). */
  readonly port?: number;
}

export interface Facade {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Full access: the password of HTTP Basic auth, with any user name. */
  readonly password: string;
  /** Read and create invoices, but not pay. */
  readonly limitedPassword: string;
  close(): Promise<void>;
}

const VERSION = '0.8.0-devnet';
const MAX_DESCRIPTION = 128;
const UNAUTHORIZED = 'Invalid authentication (use basic auth with the http password set in phoenix.conf)';

/** A request phoenixd refuses before doing anything: plain text, status 400 unless said otherwise. */
class Refusal extends Error {
  override name = 'Refusal';
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

const missing = (name: string) => new Refusal(`Request parameter ${name} is missing`);
const invalid = (name: string, type: string) =>
  new Refusal(`Request parameter ${name} couldn't be parsed/converted to ${type}`);

/** One attempt to pay, as phoenixd keeps it: each has its own payment id. */
interface Attempt {
  readonly id: string;
  readonly index: number;
  readonly paymentHash: string;
  readonly paymentRequest: string;
  readonly amountMsat: number;
  readonly createdAt: number;
  /** Unix ms, once the attempt failed. */
  failedAt: number | undefined;
}

interface Route {
  readonly method: 'GET' | 'POST';
  readonly pattern: RegExp;
  readonly fullAccess?: boolean;
  run(match: string[], params: URLSearchParams): Promise<unknown>;
}

/**
 * Serves phoenixd's API for `node` on loopback. Invoices and payments are the node's own, whichever
 * facade created them.
 *
 * @example
 * const { url, password, close } = await Phoenixd.serve(net.node('payer'));
 */
export async function serve(node: Node, options: Options = {}): Promise<Facade> {
  const password = randomBytes(32).toString('hex');
  const limitedPassword = randomBytes(32).toString('hex');
  const externalIds = new Map<string, string>();
  const attempts = new Map<string, Attempt>();
  const attemptIds = new Map<string, string>(); // `${paymentHash}/${index}` → payment id

  const attemptOf = (payment: Payment): Attempt => {
    const key = `${payment.paymentHash}/${payment.index}`;
    const known = attemptIds.get(key);
    if (known !== undefined) return attempts.get(known)!;
    const attempt: Attempt = {
      id: randomUUID(),
      index: payment.index,
      paymentHash: payment.paymentHash,
      paymentRequest: payment.paymentRequest,
      amountMsat: payment.amountMsat,
      createdAt: payment.createdAt * 1000,
      failedAt: undefined,
    };
    attempts.set(attempt.id, attempt);
    attemptIds.set(key, attempt.id);
    return attempt;
  };
  const stopWatching = node.onPayment((payment) => {
    const attempt = attemptOf(payment);
    if (payment.state === 'failed') attempt.failedAt ??= Date.now();
  });

  const channels = () => node.listChannels().filter((channel) => channel.ready);

  const incoming = (invoice: NodeInvoice) => {
    const paid = invoice.state === 'settled';
    return compact({
      type: 'incoming_payment',
      subType: 'lightning',
      paymentHash: invoice.paymentHash,
      preimage: invoice.preimage,
      externalId: externalIds.get(invoice.paymentHash),
      description: invoice.description,
      invoice: invoice.paymentRequest,
      isPaid: paid,
      isExpired: invoice.state === 'expired' || invoice.state === 'canceled',
      requestedSat: invoice.amountMsat === undefined ? undefined : Math.floor(invoice.amountMsat / 1000),
      receivedSat: Math.floor(invoice.receivedMsat / 1000),
      fees: 0,
      expiresAt: invoice.expiresAt * 1000,
      completedAt: paid && invoice.settledAt !== undefined ? invoice.settledAt * 1000 : undefined,
      createdAt: invoice.createdAt * 1000,
    });
  };

  const outgoing = (attempt: Attempt) => {
    const current = node.lookupPayment(attempt.paymentHash);
    // The node keeps the latest attempt per hash and retries only after a failure: an older attempt failed.
    const payment = current?.index === attempt.index ? current : undefined;
    const paid = payment?.state === 'succeeded';
    const failed = !payment || payment.state === 'failed';
    const fees = paid ? (payment.feeMsat ?? 0) : 0;
    return compact({
      type: 'outgoing_payment',
      subType: 'lightning',
      paymentId: attempt.id,
      paymentHash: attempt.paymentHash,
      preimage: paid ? payment.preimage : undefined,
      isPaid: paid,
      sent: Math.floor((attempt.amountMsat + fees) / 1000),
      fees,
      invoice: attempt.paymentRequest,
      completedAt: paid
        ? (payment.settledAt ?? 0) * 1000
        : failed
          ? (attempt.failedAt ?? attempt.createdAt)
          : undefined,
      createdAt: attempt.createdAt,
    });
  };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/getinfo$/,
      async run() {
        const info = node.info();
        return {
          nodeId: info.nodeId,
          channels: channels().map((channel) =>
            compact({
              state: 'Normal',
              channelId: channel.channelId,
              balanceSat: Math.floor(channel.spendableMsat / 1000),
              inboundLiquiditySat: Math.floor(channel.receivableMsat / 1000),
              capacitySat: channel.capacitySat,
              fundingTxId: channel.fundingTxid,
            }),
          ),
          chain: 'regtest',
          blockHeight: info.blockHeight,
          version: VERSION,
        };
      },
    },
    {
      method: 'GET',
      pattern: /^\/getbalance$/,
      async run() {
        const spendable = channels()
          .filter((channel) => channel.usable)
          .reduce((sum, channel) => sum + channel.spendableMsat, 0);
        return { balanceSat: Math.floor(spendable / 1000), feeCreditSat: 0 };
      },
    },
    {
      method: 'POST',
      pattern: /^\/createinvoice$/,
      async run(_, form) {
        const amountSat = optionalLong(form, 'amountSat');
        const description = form.get('description') ?? undefined;
        if (description !== undefined && description.length > MAX_DESCRIPTION) {
          throw new Refusal(`Request parameter description is too long (max ${MAX_DESCRIPTION} characters)`);
        }
        const descriptionHash = optionalHex32(form, 'descriptionHash');
        if ((description === undefined) === (descriptionHash === undefined)) {
          throw new Refusal('Must provide either a description or descriptionHash');
        }
        const expirySeconds = optionalLong(form, 'expirySeconds');
        if (form.has('webhookUrl'))
          throw new Refusal('webhookUrl is not supported by the devnet: no webhook would be sent');
        if (amountSat !== undefined && amountSat < 0) throw new Refusal('amountSat must not be negative');
        const invoice = await node.createInvoice({
          amountMsat: amountSat === undefined ? undefined : amountSat * 1000,
          ...(descriptionHash === undefined ? { description } : { descriptionHash }),
          expirySeconds,
        });
        const externalId = form.get('externalId');
        if (externalId !== null) externalIds.set(invoice.paymentHash, externalId);
        return compact({ amountSat, paymentHash: invoice.paymentHash, serialized: invoice.paymentRequest });
      },
    },
    {
      method: 'GET',
      pattern: /^\/payments\/incoming$/,
      async run(_, query) {
        const from = optionalLong(query, 'from') ?? 0;
        const to = optionalLong(query, 'to') ?? Number.MAX_SAFE_INTEGER;
        const limit = optionalLong(query, 'limit') ?? 20;
        const offset = optionalLong(query, 'offset') ?? 0;
        const all = query.get('all') === 'true';
        const externalId = query.get('externalId');
        return node
          .listInvoices()
          .filter(
            (invoice) =>
              (all || invoice.state === 'settled') &&
              invoice.createdAt * 1000 >= from &&
              invoice.createdAt * 1000 <= to &&
              (externalId === null || externalIds.get(invoice.paymentHash) === externalId),
          )
          .sort((a, b) => b.addIndex - a.addIndex)
          .slice(offset, offset + limit)
          .map(incoming);
      },
    },
    {
      method: 'GET',
      pattern: /^\/payments\/incoming\/([^/]+)$/,
      async run([hash]) {
        const invoice = node.lookupInvoice(hex32(hash!, 'paymentHash'));
        if (!invoice) throw new Refusal('Not found', 404);
        return incoming(invoice);
      },
    },
    {
      method: 'GET',
      pattern: /^\/payments\/outgoing\/([^/]+)$/,
      async run([id]) {
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id!))
          throw invalid('uuid', 'uuid');
        const attempt = attempts.get(id!.toLowerCase());
        if (!attempt) throw new Refusal('Not found', 404);
        return outgoing(attempt);
      },
    },
    {
      method: 'GET',
      pattern: /^\/payments\/outgoingbyhash\/([^/]+)$/,
      async run([hash]) {
        const payment = node.lookupPayment(hex32(hash!, 'paymentHash'));
        if (!payment) throw new Refusal('Not found', 404);
        return outgoing(attemptOf(payment));
      },
    },
    {
      method: 'POST',
      pattern: /^\/payinvoice$/,
      fullAccess: true,
      async run(_, form) {
        const override = optionalLong(form, 'amountSat');
        const text = form.get('invoice');
        if (text === null) throw missing('invoice');
        let decoded: Invoice.Invoice;
        try {
          decoded = Invoice.decode(text);
        } catch {
          throw invalid('invoice', 'bolt11invoice');
        }
        if (decoded.amountMsat === undefined && override === undefined) throw missing('amountSat');
        if (
          decoded.amountMsat !== undefined &&
          override !== undefined &&
          BigInt(override) * 1000n !== decoded.amountMsat
        ) {
          throw new Refusal('amountSat other than the invoice amount: the devnet does not overpay invoices');
        }
        const paymentHash = toHex(decoded.paymentHash);
        try {
          const paid = await node.payInvoice(text, {
            amountMsat: decoded.amountMsat === undefined ? override! * 1000 : undefined,
          });
          return {
            recipientAmountSat: Math.floor(paid.amountMsat / 1000),
            routingFeeSat: Math.floor(paid.feeMsat / 1000),
            paymentId: attemptOf(paid).id,
            paymentHash: paid.paymentHash,
            paymentPreimage: paid.preimage,
          };
        } catch (error) {
          if (!(error instanceof PaymentError)) throw error;
          if (error.code === 'DEVNET_INVALID_INVOICE') throw invalid('invoice', 'bolt11invoice');
          return { paymentHash, reason: reason(error) };
        }
      },
    },
  ];

  const text = (response: ServerResponse, status: number, body: string, headers?: Record<string, string>) =>
    reply(response, status, 'text/plain; charset=UTF-8', body, headers);

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://phoenixd');
    const matching = routes.filter((route) => route.pattern.test(url.pathname));
    if (matching.length === 0) return text(response, 404, 'Unknown endpoint (check api doc)');
    const route = matching.find((candidate) => candidate.method === request.method);
    if (!route) return text(response, 405, 'Invalid http method (use the correct GET/POST)');

    const presented = basicPassword(request.headers.authorization);
    const full = presented !== undefined && sameSecret(presented, password);
    const limited = presented !== undefined && sameSecret(presented, limitedPassword);
    if (!(full || (limited && !route.fullAccess))) {
      return text(response, 401, UNAUTHORIZED, {
        'www-authenticate': 'Basic realm="Ktor Server", charset=UTF-8',
      });
    }
    let params = url.searchParams;
    if (route.method === 'POST') {
      try {
        params = new URLSearchParams(await readBody(request));
      } catch (error) {
        if (error instanceof BodyTooLargeError) return text(response, 413, error.message);
        throw error;
      }
    }
    try {
      const result = await route.run(route.pattern.exec(url.pathname)!.slice(1), params);
      reply(response, 200, 'application/json; charset=UTF-8', JSON.stringify(result, null, 4));
    } catch (error) {
      if (error instanceof Refusal) return text(response, error.status, error.message);
      if (error instanceof ClosedError) return text(response, 500, 'the node is stopped');
      throw error;
    }
  };

  const server = await listen(handle, options);
  return {
    url: server.url,
    password,
    limitedPassword,
    async close() {
      stopWatching();
      await server.close();
    },
  };
}

/** The password of an HTTP Basic `Authorization` header; the user name is ignored, as phoenixd does. */
function basicPassword(header: string | undefined): string | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

/** phoenixd's JSON leaves out null fields (`explicitNulls = false`). */
function compact<T extends Record<string, unknown>>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function optionalLong(params: URLSearchParams, name: string): number | undefined {
  const value = params.get(name);
  if (value === null) return undefined;
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw invalid(name, 'integer');
  return Number(value);
}

function optionalHex32(params: URLSearchParams, name: string): string | undefined {
  const value = params.get(name);
  return value === null ? undefined : hex32(value, name);
}

function hex32(value: string, name: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(value)) throw invalid(name, 'hex32');
  return value.toLowerCase();
}

/** lightning-kmp's words for why a payment was not sent (`FinalFailure.toString()`). */
function reason(error: PaymentError): string {
  switch (error.code) {
    case 'DEVNET_ALREADY_PAID':
      return 'this invoice has already been paid';
    case 'DEVNET_PAYMENT_IN_FLIGHT':
      return 'another payment is in progress for that invoice';
    case 'DEVNET_INSUFFICIENT_BALANCE':
      return 'not enough funds in wallet to afford payment';
    case 'DEVNET_NO_ROUTE':
      return 'the recipient was offline or did not have enough liquidity to receive the payment';
    // The payee refuses an expired invoice; a phoenixd payer only learns that it was rejected.
    case 'DEVNET_PAYMENT_REJECTED':
    case 'DEVNET_INVOICE_EXPIRED':
      return 'the recipient rejected the payment';
    case 'DEVNET_TIMEOUT':
      return 'payment attempts exhausted without success';
    default:
      return 'an unknown error occurred';
  }
}
