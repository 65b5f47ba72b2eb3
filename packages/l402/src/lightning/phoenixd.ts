/**
 * phoenixd (ACINQ's server wallet) through its HTTP API: HTTP Basic auth with the `http-password` from
 * phoenix.conf (the limited-access password creates and reads invoices but cannot pay), form-encoded
 * requests, amounts in satoshis. Invoices are therefore whole satoshis, and phoenixd cannot take a
 * caller-chosen preimage (both L402_BACKEND_CONFIG). `waitInvoice` polls
 * `GET /payments/incoming/{hash}` with backoff; phoenixd also pushes `payment_received` on a WebSocket,
 * which would save the polling but needs a WebSocket client the library does not carry. `pay` posts
 * `/payinvoice` and never pays twice (see {@link payOnce}); `lookupPayment` asks
 * `/payments/outgoingbyhash/{hash}`. phoenixd takes no fee limit: `maxFeeMsat` is not enforced, its
 * own trampoline fee policy applies.
 *
 * @example
 * const phoenixd = Phoenixd.fromUri('phoenixd://:3f9a…@127.0.0.1:9740');
 * const { paymentRequest, paymentHash } = await phoenixd.createInvoice({ amountMsat: 21_000n, memo: 'one call' });
 * await phoenixd.waitInvoice(paymentHash, { timeoutMs: 60_000 });
 */
import { BackendError } from '../Errors.js';
import * as Invoice from '../Invoice.js';
import { toBase64, toHex, utf8 } from '../internal/bytes.js';
import {
  checkBase,
  type Fields,
  parseUri,
  payable,
  proven,
  type Reply,
  RestClient,
  wholeSats,
} from '../internal/restClient.js';
import {
  type Backend,
  type Balance,
  type CreatedInvoice,
  type CreateInvoiceRequest,
  type InvoiceStatus,
  type Network,
  type NodeInfo,
  type PaymentResult,
  type PaymentStatus,
  type PayRequest,
  payOnce,
} from './Backend.js';

export interface Options {
  /** phoenixd's base URL, `http://host:port` (phoenixd listens on 127.0.0.1:9740 by default). */
  readonly url: string;
  /** `http-password` from phoenix.conf, or `http-password-limited-access` for a backend that never pays. */
  readonly password: string;
  /** Limit for each call other than waits and payments, in ms. Defaults to 30 000. */
  readonly timeoutMs?: number;
  /** The clock invoices are checked against before paying (unix ms). Defaults to `Date.now`. */
  readonly now?: () => number;
}

/** A phoenixd wallet as a {@link Backend}. */
export interface Phoenixd extends Backend {
  readonly kind: 'phoenixd';
}

const KIND = 'phoenixd';

const NETWORKS: Record<string, Network> = {
  mainnet: 'mainnet',
  testnet: 'testnet',
  testnet3: 'testnet',
  testnet4: 'testnet',
  signet: 'signet',
  regtest: 'regtest',
};

/** lightning-kmp's failure reasons (`FinalFailure.toString()`), as L402 codes. */
const REASONS: readonly [
  RegExp,
  'L402_PAYMENT_INSUFFICIENT_BALANCE' | 'L402_PAYMENT_NO_ROUTE' | 'L402_PAYMENT_IN_FLIGHT',
][] = [
  [/^not enough funds/, 'L402_PAYMENT_INSUFFICIENT_BALANCE'],
  [/^another payment is in progress/, 'L402_PAYMENT_IN_FLIGHT'],
  [
    /^(?:the recipient was offline|unable to route|no channels available|payment could not be sent through existing channels|channel (?:is not connected|creation is in progress|closing is in progress))/,
    'L402_PAYMENT_NO_ROUTE',
  ],
];

class PhoenixdBackend implements Phoenixd {
  readonly kind = KIND;
  private readonly client: RestClient;
  private readonly authorization: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(options: Options) {
    if (typeof options.password !== 'string' || options.password === '') {
      throw new BackendError('L402_BACKEND_CONFIG', KIND, 'a password is required');
    }
    const token = toBase64(utf8(`:${options.password}`));
    this.client = new RestClient(KIND, checkBase(KIND, options.url), [options.password, token]);
    this.authorization = `Basic ${token}`;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  private async request(
    method: 'GET' | 'POST',
    path: string,
    form?: Record<string, string>,
    limits: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Reply> {
    const reply = await this.client.send({
      method,
      path,
      headers: {
        Authorization: this.authorization,
        ...(form && { 'Content-Type': 'application/x-www-form-urlencoded' }),
      },
      body: form && new URLSearchParams(form).toString(),
      timeoutMs: limits.timeoutMs ?? this.timeoutMs,
      signal: limits.signal,
    });
    if (reply.status === 401) {
      const hint = path === '/payinvoice' ? ' (a limited-access password cannot pay)' : '';
      throw this.client.error('L402_BACKEND_AUTH', `phoenixd refused the password${hint}`);
    }
    return reply;
  }

  /** The JSON answer of a 200, or `undefined` for phoenixd's 404 "Not found" of a lookup. */
  private async read(reply: Reply, what: string): Promise<Fields | undefined> {
    if (reply.status === 200) return this.client.fields(this.client.json(reply), what);
    if (reply.status === 404 && reply.text.trim() === 'Not found') return undefined;
    const text = JSON.stringify(this.client.redact(reply.text, 160));
    throw this.client.error(
      'L402_BACKEND_PROTOCOL',
      `phoenixd answered HTTP ${reply.status} to ${what}: ${text}`,
    );
  }

  /** The JSON answer of a 200; anything else, 404 included, is a protocol error. */
  private async expect(reply: Reply, what: string): Promise<Fields> {
    const found = await this.read(reply, what);
    if (!found) throw this.client.error('L402_BACKEND_PROTOCOL', `phoenixd answered 404 to ${what}`);
    return found;
  }

  private async get(path: string, what: string): Promise<Fields> {
    return this.expect(await this.request('GET', path), what);
  }

  async info(): Promise<NodeInfo> {
    const info = await this.get('/getinfo', 'getinfo');
    const network = NETWORKS[info.string('chain')];
    if (network === undefined) {
      throw this.client.error(
        'L402_BACKEND_PROTOCOL',
        `getinfo.chain: unknown chain ${JSON.stringify(info.string('chain'))}`,
      );
    }
    const height = info.optionalInteger('blockHeight');
    return {
      pubkey: info.string('nodeId'),
      alias: undefined,
      network,
      blockHeight: height === undefined ? undefined : Number(height),
    };
  }

  async createInvoice(request: CreateInvoiceRequest): Promise<CreatedInvoice> {
    if (request.preimage !== undefined) {
      throw this.client.error(
        'L402_BACKEND_CONFIG',
        'phoenixd cannot create an invoice for a caller-chosen preimage',
      );
    }
    const sats = wholeSats(this.client, request.amountMsat, 'amountMsat');
    const reply = await this.request('POST', '/createinvoice', {
      ...(sats > 0n && { amountSat: String(sats) }),
      description: request.memo ?? '',
      ...(request.expirySeconds !== undefined && { expirySeconds: String(request.expirySeconds) }),
    });
    const created = await this.expect(reply, 'createinvoice');
    return { paymentRequest: created.string('serialized'), paymentHash: created.bytes32('paymentHash') };
  }

  async lookupInvoice(paymentHash: Uint8Array): Promise<InvoiceStatus> {
    const hex = toHex(paymentHash);
    const found = await this.read(
      await this.request('GET', `/payments/incoming/${hex}`),
      'payments/incoming',
    );
    if (!found) throw this.client.error('L402_BACKEND_NOT_FOUND', `no invoice with payment hash ${hex}`);
    const paid = found.boolean('isPaid');
    const requested = found.optionalInteger('requestedSat');
    const completedAt = found.optionalInteger('completedAt');
    return {
      paymentHash: found.bytes32('paymentHash'),
      state: paid ? 'settled' : found.boolean('isExpired') ? 'expired' : 'open',
      amountMsat: requested === undefined ? undefined : requested * 1000n,
      amountReceivedMsat: paid ? found.integer('receivedSat') * 1000n : undefined,
      settledAt: paid && completedAt !== undefined ? Number(completedAt / 1000n) : undefined,
      preimage: paid ? proven(this.client, paymentHash, found.bytes32('preimage')) : undefined,
    };
  }

  async waitInvoice(
    paymentHash: Uint8Array,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<InvoiceStatus> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    return this.client.poll(
      async () => {
        const status = await this.lookupInvoice(paymentHash);
        return status.state === 'open' ? undefined : status;
      },
      { timeoutMs, signal: options.signal, what: `invoice ${toHex(paymentHash)} still open` },
    );
  }

  async pay(paymentRequest: string, request: PayRequest = {}): Promise<PaymentResult> {
    const invoice = payable(this.client, paymentRequest, request, this.now());
    const amountMsat = invoice.amountMsat ?? request.amountMsat!;
    const override =
      invoice.amountMsat === undefined ? wholeSats(this.client, amountMsat, 'amountMsat') : undefined;
    return payOnce(
      {
        kind: KIND,
        lookupPayment: (hash) => this.lookupPayment(hash),
        send: async (text, hash, attempt) => {
          const reply = await this.request(
            'POST',
            '/payinvoice',
            { invoice: text, ...(override !== undefined && { amountSat: String(override) }) },
            { timeoutMs: attempt.timeoutMs ?? 60_000, signal: attempt.signal },
          );
          const outcome = await this.expect(reply, 'payinvoice');
          if (outcome.has('paymentPreimage')) {
            const preimage = proven(this.client, hash, outcome.bytes32('paymentPreimage'));
            // routingFeeSat is rounded down to satoshis; the payment's record has the fee in msat.
            const sent = await this.get(
              `/payments/outgoing/${encodeURIComponent(outcome.string('paymentId'))}`,
              'payments/outgoing',
            );
            return { paymentHash: hash, preimage, amountMsat, feeMsat: sent.integer('fees') };
          }
          const reason = outcome.optionalString('reason');
          if (reason === undefined) {
            throw this.client.error(
              'L402_BACKEND_PROTOCOL',
              'payinvoice answered with neither paymentPreimage nor reason',
            );
          }
          if (reason === 'this invoice has already been paid') {
            const earlier = await this.lookupPayment(hash);
            if (earlier.state === 'succeeded') {
              return {
                paymentHash: hash,
                preimage: earlier.preimage!,
                amountMsat,
                feeMsat: earlier.feeMsat ?? 0n,
              };
            }
          }
          const code = REASONS.find(([pattern]) => pattern.test(reason))?.[1] ?? 'L402_PAYMENT_FAILED';
          throw this.client.error(code, `phoenixd: ${reason}`);
        },
      },
      paymentRequest,
      invoice.paymentHash,
      request,
    );
  }

  async lookupPayment(paymentHash: Uint8Array): Promise<PaymentStatus> {
    const found = await this.read(
      await this.request('GET', `/payments/outgoingbyhash/${toHex(paymentHash)}`),
      'payments/outgoingbyhash',
    );
    const none = { preimage: undefined, amountMsat: undefined, feeMsat: undefined, failure: undefined };
    if (!found) return { paymentHash, state: 'unknown', ...none };
    if (found.boolean('isPaid')) {
      const feeMsat = found.integer('fees');
      // `sent` is rounded down to satoshis: the invoice gives the exact amount when it has one.
      const amountMsat =
        this.invoiceAmount(found.optionalString('invoice')) ?? found.integer('sent') * 1000n - feeMsat;
      return {
        paymentHash,
        state: 'succeeded',
        preimage: proven(this.client, paymentHash, found.bytes32('preimage')),
        amountMsat,
        feeMsat,
        failure: undefined,
      };
    }
    // phoenixd records no failure state: a payment that completed without being paid failed.
    if (found.has('completedAt'))
      return { paymentHash, state: 'failed', ...none, failure: 'phoenixd reports the payment failed' };
    return { paymentHash, state: 'in-flight', ...none };
  }

  /** The amount of an invoice phoenixd reports, if it reads and has one. */
  private invoiceAmount(text: string | undefined): bigint | undefined {
    if (text === undefined) return undefined;
    try {
      return Invoice.decode(text).amountMsat;
    } catch {
      return undefined;
    }
  }

  async balance(): Promise<Balance> {
    const [balance, info] = await Promise.all([
      this.get('/getbalance', 'getbalance'),
      this.get('/getinfo', 'getinfo'),
    ]);
    const inbound = info
      .list('channels')
      .reduce((sum, channel) => sum + (channel.optionalInteger('inboundLiquiditySat') ?? 0n), 0n);
    return { spendableMsat: balance.integer('balanceSat') * 1000n, receivableMsat: inbound * 1000n };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/**
 * A phoenixd backend at `options.url`. No request is made until the first call.
 *
 * @example
 * const phoenixd = Phoenixd.connect({ url: 'http://127.0.0.1:9740', password: process.env.PHOENIXD_PASSWORD! });
 */
export function connect(options: Options): Phoenixd {
  return new PhoenixdBackend(options);
}

/**
 * A phoenixd backend from a URI with the password as userinfo: `phoenixd://:password@host:port` (plain
 * HTTP, as phoenixd serves it), or `phoenixd+https://…` behind a TLS proxy.
 *
 * @example
 * const phoenixd = Phoenixd.fromUri('phoenixd://:3f9a…@127.0.0.1:9740');
 */
export function fromUri(uri: string, options: Omit<Options, 'url' | 'password'> = {}): Phoenixd {
  const { url, base } = parseUri(KIND, uri, {
    phoenixd: 'http',
    'phoenixd+http': 'http',
    'phoenixd+https': 'https',
  });
  const password = decodeURIComponent(url.password || url.username);
  if (!password)
    throw new BackendError(
      'L402_BACKEND_CONFIG',
      KIND,
      'the URI has no password (phoenixd://:password@host:port)',
    );
  return connect({ ...options, url: base, password });
}
