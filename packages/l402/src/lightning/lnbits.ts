/**
 * An LNbits wallet through its API (v0.12 to v1.x): the wallet's key in `X-Api-Key`, the invoice key to
 * create and read invoices, the admin key to pay. LNbits invoices are whole satoshis with an amount
 * (zero-amount invoices and caller-chosen preimages are L402_BACKEND_CONFIG). `waitInvoice` polls
 * `GET /api/v1/payments/{hash}` with backoff (LNbits also pushes payments on a WebSocket, which would
 * need a WebSocket client the library does not carry). `pay` posts `out: true` and never pays twice
 * (see {@link payOnce}); `lookupPayment` asks for the payment by hash. LNbits reports no node: `info()`
 * gives the wallet's name as alias, no pubkey, and the network from the options (default mainnet). Its
 * fee limit is its own fee reserve (1%, at least 2 sat): `maxFeeMsat` is not passed on.
 *
 * @example
 * const lnbits = Lnbits.fromUri('lnbits://legend.lnbits.com?key=<admin key>');
 * const { paymentRequest, paymentHash } = await lnbits.createInvoice({ amountMsat: 21_000n, memo: 'one call' });
 */
import { BackendError } from '../Errors.js';
import { toHex } from '../internal/bytes.js';
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
  /** LNbits' base URL, `https://host[/path]` (`http://` for a loopback instance). */
  readonly url: string;
  /** The wallet's admin key: needed to pay; also used for reads when `invoiceKey` is not given. */
  readonly adminKey?: string;
  /** The wallet's invoice (read) key: enough to create and watch invoices. */
  readonly invoiceKey?: string;
  /** What `info()` reports; LNbits does not say. Defaults to `'mainnet'`. */
  readonly network?: Network;
  /** Limit for each call other than waits and payments, in ms. Defaults to 30 000. */
  readonly timeoutMs?: number;
  /** The clock invoices are checked against (unix ms). Defaults to `Date.now`. */
  readonly now?: () => number;
}

/** An LNbits wallet as a {@link Backend}. */
export interface Lnbits extends Backend {
  readonly kind: 'lnbits';
}

const KIND = 'lnbits';
const NETWORKS: readonly Network[] = ['mainnet', 'testnet', 'signet', 'regtest', 'simnet'];

/** The payment error details LNbits (and its funding sources) give, as L402 codes. */
const FAILURES: readonly [
  RegExp,
  'L402_PAYMENT_INSUFFICIENT_BALANCE' | 'L402_PAYMENT_EXPIRED' | 'L402_PAYMENT_NO_ROUTE',
][] = [
  [
    /insufficient balance|must reserve at least|not enough (?:funds|balance)|can send at most/i,
    'L402_PAYMENT_INSUFFICIENT_BALANCE',
  ],
  [/expired/i, 'L402_PAYMENT_EXPIRED'],
  [/route/i, 'L402_PAYMENT_NO_ROUTE'],
];

/** LNbits' times: Python ISO 8601, with or without a zone (naive ones are UTC). */
function seconds(text: string): number | undefined {
  const ms = Date.parse(/(?:Z|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

class LnbitsBackend implements Lnbits {
  readonly kind = KIND;
  private readonly client: RestClient;
  private readonly readKey: string;
  private readonly adminKey: string | undefined;
  private readonly network: Network;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(options: Options) {
    const readKey = options.invoiceKey || options.adminKey;
    if (!readKey)
      throw new BackendError('L402_BACKEND_CONFIG', KIND, 'an adminKey or invoiceKey is required');
    if (options.network !== undefined && !NETWORKS.includes(options.network)) {
      throw new BackendError(
        'L402_BACKEND_CONFIG',
        KIND,
        `unknown network ${JSON.stringify(options.network)}`,
      );
    }
    this.client = new RestClient(KIND, checkBase(KIND, options.url), [
      options.adminKey ?? '',
      options.invoiceKey ?? '',
    ]);
    this.readKey = readKey;
    this.adminKey = options.adminKey || undefined;
    this.network = options.network ?? 'mainnet';
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  private async request(
    method: 'GET' | 'POST',
    path: string,
    key: string,
    body?: Record<string, unknown>,
    limits: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Reply> {
    const reply = await this.client.send({
      method,
      path,
      headers: { 'X-Api-Key': key, ...(body && { 'Content-Type': 'application/json' }) },
      body: body && JSON.stringify(body),
      timeoutMs: limits.timeoutMs ?? this.timeoutMs,
      signal: limits.signal,
    });
    const detail = this.detail(reply);
    if (
      reply.status === 401 ||
      reply.status === 403 ||
      (reply.status === 404 && detail === 'Wallet not found.')
    ) {
      const hint = reply.status === 403 ? ' (paying needs the admin key)' : '';
      throw this.client.error(
        'L402_BACKEND_AUTH',
        `LNbits refused the key${hint}: HTTP ${reply.status} ${detail ?? ''}`.trim(),
      );
    }
    return reply;
  }

  /** FastAPI's `{"detail": "…"}`, when the answer has one. */
  private detail(reply: Reply): string | undefined {
    try {
      const detail = (JSON.parse(reply.text) as { detail?: unknown }).detail;
      return typeof detail === 'string' ? detail : detail === undefined ? undefined : JSON.stringify(detail);
    } catch {
      return undefined;
    }
  }

  private expect(reply: Reply, what: string): Fields {
    if (reply.status === 200 || reply.status === 201)
      return this.client.fields(this.client.json(reply), what);
    const detail = this.detail(reply) ?? JSON.stringify(this.client.redact(reply.text, 160));
    throw this.client.error(
      'L402_BACKEND_PROTOCOL',
      `LNbits answered HTTP ${reply.status} to ${what}: ${detail}`,
    );
  }

  /** `GET /api/v1/payments/{hash}`: the wallet's own record of it, or undefined if it has none. */
  private async record(
    paymentHash: Uint8Array,
    key: string,
  ): Promise<{ paid: boolean; details: Fields } | undefined> {
    const reply = await this.request('GET', `/api/v1/payments/${toHex(paymentHash)}`, key);
    if (reply.status === 404) return undefined;
    const found = this.expect(reply, 'payments');
    // Without `details` the hash is known to LNbits but not as this key's wallet's.
    if (!found.has('details')) return undefined;
    return { paid: found.boolean('paid'), details: found.object('details') };
  }

  async info(): Promise<NodeInfo> {
    const wallet = this.expect(await this.request('GET', '/api/v1/wallet', this.readKey), 'wallet');
    return {
      pubkey: undefined,
      alias: wallet.optionalString('name'),
      network: this.network,
      blockHeight: undefined,
    };
  }

  async createInvoice(request: CreateInvoiceRequest): Promise<CreatedInvoice> {
    if (request.preimage !== undefined) {
      throw this.client.error(
        'L402_BACKEND_CONFIG',
        'LNbits cannot create an invoice for a caller-chosen preimage',
      );
    }
    const sats = wholeSats(this.client, request.amountMsat, 'amountMsat');
    if (sats === 0n)
      throw this.client.error('L402_BACKEND_CONFIG', 'LNbits cannot create zero-amount invoices');
    const reply = await this.request('POST', '/api/v1/payments', this.readKey, {
      out: false,
      amount: Number(sats),
      unit: 'sat',
      memo: request.memo ?? '',
      ...(request.expirySeconds !== undefined && { expiry: request.expirySeconds }),
    });
    const created = this.expect(reply, 'create invoice');
    // LNbits up to 0.12 answered payment_request only; 1.x also has bolt11 (the same text).
    const paymentRequest = created.optionalString('payment_request') ?? created.string('bolt11');
    return { paymentRequest, paymentHash: created.bytes32('payment_hash') };
  }

  async lookupInvoice(paymentHash: Uint8Array): Promise<InvoiceStatus> {
    const found = await this.record(paymentHash, this.readKey);
    const amount = found?.details.integer('amount');
    if (!found || amount === undefined || amount < 0n) {
      throw this.client.error(
        'L402_BACKEND_NOT_FOUND',
        `this wallet has no invoice with payment hash ${toHex(paymentHash)}`,
      );
    }
    const { paid, details } = found;
    const expiry = details.optionalString('expiry');
    const expired =
      expiry !== undefined && (seconds(expiry) ?? Number.POSITIVE_INFINITY) * 1000 <= this.now();
    const status = details.optionalString('status');
    // LNbits folds expired and canceled invoices into `failed`.
    const state = paid
      ? 'settled'
      : status === 'failed'
        ? expired
          ? 'expired'
          : 'canceled'
        : expired
          ? 'expired'
          : 'open';
    const updated = details.optionalString('updated_at');
    return {
      paymentHash,
      state,
      amountMsat: amount,
      amountReceivedMsat: paid ? amount : undefined,
      settledAt: paid && updated !== undefined ? seconds(updated) : undefined,
      preimage: paid ? proven(this.client, paymentHash, details.bytes32('preimage')) : undefined,
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

  private payKey(): string {
    if (!this.adminKey) throw this.client.error('L402_BACKEND_CONFIG', 'paying needs the wallet’s admin key');
    return this.adminKey;
  }

  async pay(paymentRequest: string, request: PayRequest = {}): Promise<PaymentResult> {
    const invoice = payable(this.client, paymentRequest, request, this.now());
    if (invoice.amountMsat === undefined)
      throw this.client.error('L402_BACKEND_CONFIG', 'LNbits cannot pay zero-amount invoices');
    const key = this.payKey();
    return payOnce(
      {
        kind: KIND,
        lookupPayment: (hash) => this.lookupPayment(hash),
        send: async (text, hash, attempt) => {
          const reply = await this.request(
            'POST',
            '/api/v1/payments',
            key,
            { out: true, bolt11: text },
            { timeoutMs: attempt.timeoutMs ?? 60_000, signal: attempt.signal },
          );
          if (reply.status === 520) throw this.payFailure(reply);
          const payment = this.expect(reply, 'pay');
          const status = payment.optionalString('status');
          if (status === 'success') {
            return {
              paymentHash: hash,
              preimage: proven(this.client, hash, payment.bytes32('preimage')),
              amountMsat: -payment.integer('amount'),
              feeMsat: -payment.integer('fee'),
            };
          }
          if (status === 'failed')
            throw this.client.error('L402_PAYMENT_FAILED', 'LNbits reports the payment failed');
          // LNbits stops waiting for its funding source after a few seconds and answers `pending`:
          // the payment goes on, and payOnce follows it by hash.
          throw this.client.error('L402_BACKEND_TIMEOUT', 'LNbits answered before the payment completed');
        },
      },
      paymentRequest,
      invoice.paymentHash,
      request,
    );
  }

  /** A 520 `{detail, status}` from a pay call, as an L402 error (or a late success). */
  private payFailure(reply: Reply) {
    let status: unknown;
    try {
      status = (JSON.parse(reply.text) as { status?: unknown }).status;
    } catch {
      return this.client.error(
        'L402_BACKEND_PROTOCOL',
        `LNbits answered 520 with something that is not JSON`,
      );
    }
    const detail = this.detail(reply) ?? 'no detail';
    // "Payment already paid." / "Payment is still pending.": the node has it; payOnce asks by hash.
    if (status === 'success' || status === 'pending') {
      return this.client.error('L402_BACKEND_TIMEOUT', `LNbits: ${detail}`);
    }
    const code = FAILURES.find(([pattern]) => pattern.test(detail))?.[1] ?? 'L402_PAYMENT_FAILED';
    return this.client.error(code, `LNbits: ${detail}`);
  }

  async lookupPayment(paymentHash: Uint8Array): Promise<PaymentStatus> {
    const none = { preimage: undefined, amountMsat: undefined, feeMsat: undefined, failure: undefined };
    const found = await this.record(paymentHash, this.adminKey ?? this.readKey);
    // Not this wallet's, or an invoice it issued (a positive amount): it never paid this hash.
    if (!found || found.details.integer('amount') > 0n) return { paymentHash, state: 'unknown', ...none };
    const { paid, details } = found;
    if (paid) {
      return {
        paymentHash,
        state: 'succeeded',
        preimage: proven(this.client, paymentHash, details.bytes32('preimage')),
        amountMsat: -details.integer('amount'),
        feeMsat: -details.integer('fee'),
        failure: undefined,
      };
    }
    if (details.optionalString('status') === 'failed') {
      return { paymentHash, state: 'failed', ...none, failure: 'LNbits reports the payment failed' };
    }
    return { paymentHash, state: 'in-flight', ...none };
  }

  async balance(): Promise<Balance> {
    const wallet = this.expect(await this.request('GET', '/api/v1/wallet', this.readKey), 'wallet');
    return { spendableMsat: wallet.integer('balance'), receivableMsat: undefined };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/**
 * An LNbits backend at `options.url`. No request is made until the first call.
 *
 * @example
 * const lnbits = Lnbits.connect({ url: 'https://lnbits.example.com', invoiceKey: process.env.LNBITS_INVOICE_KEY });
 */
export function connect(options: Options): Lnbits {
  return new LnbitsBackend(options);
}

/**
 * An LNbits backend from a URI: `lnbits://host[:port][/path]?key=<admin key>` over https (LNbits is
 * normally served behind TLS), `lnbits+https://…` (the same) or `lnbits+http://…` (plain HTTP, for
 * loopback). Instead of `key`, `adminKey=` and/or `invoiceKey=` (a receive-only backend); `network=`
 * sets what `info()` reports.
 *
 * @example
 * const lnbits = Lnbits.fromUri('lnbits+http://127.0.0.1:5000?invoiceKey=…&network=regtest');
 */
export function fromUri(uri: string, options: Omit<Options, 'url' | 'adminKey' | 'invoiceKey'> = {}): Lnbits {
  const { url, base } = parseUri(KIND, uri, {
    lnbits: 'https',
    'lnbits+https': 'https',
    'lnbits+http': 'http',
  });
  const query = url.searchParams;
  const network = (query.get('network') ?? undefined) as Network | undefined;
  return connect({
    ...options,
    url: base,
    adminKey: query.get('adminKey') ?? query.get('key') ?? undefined,
    invoiceKey: query.get('invoiceKey') ?? undefined,
    ...(network !== undefined && { network }),
  });
}
