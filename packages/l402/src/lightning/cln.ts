/**
 * Core Lightning through its REST plugin, clnrest (v24.08+; paying needs `xpay`, v24.11+). Every call
 * is `POST /v1/<method>` with the rune in a `Rune` header. Invoices get a random `l402-…` label;
 * `waitInvoice` blocks in lightningd's own `waitinvoice`; `pay` uses `xpay` and never pays twice
 * (see {@link payOnce}); `lookupPayment` asks `listpays` by payment hash.
 *
 * clnrest serves HTTPS by default with a self-signed certificate: `cln://` uses https and the system's
 * trust store (a certificate it does not trust is L402_BACKEND_UNREACHABLE), so put clnrest behind a trusted
 * certificate or, on loopback, run it with `clnrest-protocol=http` and use `cln+http://`.
 *
 * @example
 * const cln = Cln.fromUri('cln+http://127.0.0.1:3010?rune=tU-RLjMiDpY2U0o3W1oFowar36RFGpWloPbW9-RuZdo9MA==');
 * const { paymentRequest, paymentHash } = await cln.createInvoice({ amountMsat: 21_000n, memo: 'one call' });
 * const settled = await cln.waitInvoice(paymentHash, { timeoutMs: 60_000 });
 */
import * as platform from '#platform';
import { BackendError } from '../Errors.js';
import { toHex } from '../internal/bytes.js';
import { checkBase, type Fields, parseUri, payable, proven, RestClient } from '../internal/restClient.js';
import {
  type Backend,
  type Balance,
  type CreatedInvoice,
  type CreateInvoiceRequest,
  type InvoiceState,
  type InvoiceStatus,
  type Network,
  type NodeInfo,
  type PaymentResult,
  type PaymentStatus,
  type PayRequest,
  payOnce,
} from './Backend.js';

export interface Options {
  /** clnrest's base URL, `http(s)://host:port` (its port has no default; 3010 is conventional). */
  readonly url: string;
  /** A rune allowing the methods used: `getinfo`, `invoice`, `listinvoices`, `waitinvoice`, `xpay`, `listpays`, `listpeerchannels`. */
  readonly rune: string;
  /** Limit for each call other than waits and payments, in ms. Defaults to 30 000. */
  readonly timeoutMs?: number;
  /** The clock invoices are checked against before paying (unix ms). Defaults to `Date.now`. */
  readonly now?: () => number;
}

/** A Core Lightning node as a {@link Backend}. */
export interface Cln extends Backend {
  readonly kind: 'cln';
}

const KIND = 'cln';
/** xpay stops trying after `retry_for`; this is how long its answer may take to arrive after that. */
const PAY_GRACE_MS = 15_000;

/** lightningd's `{code, message}` for a failed RPC. */
interface RpcFailure {
  readonly code: number;
  readonly message: string;
}

const NETWORKS: Record<string, Network> = {
  bitcoin: 'mainnet',
  testnet: 'testnet',
  testnet4: 'testnet',
  signet: 'signet',
  regtest: 'regtest',
};

class ClnBackend implements Cln {
  readonly kind = KIND;
  private readonly client: RestClient;
  private readonly rune: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(options: Options) {
    if (typeof options.rune !== 'string' || options.rune === '') {
      throw new BackendError('L402_BACKEND_CONFIG', KIND, 'a rune is required');
    }
    this.client = new RestClient(KIND, checkBase(KIND, options.url), [options.rune]);
    this.rune = options.rune;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /** Calls `method`; resolves with its result, or with lightningd's error for the caller to map. */
  private async rpc(
    method: string,
    params: Record<string, unknown>,
    limits: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Fields | RpcFailure> {
    const reply = await this.client.send({
      method: 'POST',
      path: `/v1/${method}`,
      headers: { Rune: this.rune, 'Content-Type': 'application/json' },
      body: JSON.stringify(params),
      timeoutMs: limits.timeoutMs ?? this.timeoutMs,
      signal: limits.signal,
    });
    if (reply.status === 200 || reply.status === 201)
      return this.client.fields(this.client.json(reply), method);
    let failure: RpcFailure | undefined;
    try {
      const body = JSON.parse(reply.text) as { code?: unknown; message?: unknown };
      if (typeof body.code === 'number' && typeof body.message === 'string')
        failure = { code: body.code, message: body.message };
    } catch {
      // Not CLN's error shape: reported below as a protocol error.
    }
    if (reply.status === 401 || reply.status === 403) {
      const detail = failure ? `, CLN error ${failure.code}: ${failure.message}` : '';
      throw this.client.error(
        'L402_BACKEND_AUTH',
        `clnrest refused the rune (HTTP ${reply.status}${detail})`,
      );
    }
    if (failure) return failure;
    throw this.client.error(
      'L402_BACKEND_PROTOCOL',
      `clnrest answered HTTP ${reply.status} to ${method}: ${JSON.stringify(this.client.redact(reply.text, 120))}`,
    );
  }

  private async call(method: string, params: Record<string, unknown>): Promise<Fields> {
    const result = await this.rpc(method, params);
    if ('code' in result) throw this.failed(method, result);
    return result;
  }

  private failed(method: string, failure: RpcFailure) {
    if (failure.code === -32601) {
      return this.client.error(
        'L402_BACKEND_PROTOCOL',
        `this node has no \`${method}\` (${failure.message}): is it Core Lightning v24.11 or later?`,
      );
    }
    return this.client.error(
      'L402_BACKEND_PROTOCOL',
      `${method} failed: CLN error ${failure.code}: ${failure.message}`,
    );
  }

  async info(): Promise<NodeInfo> {
    const info = await this.call('getinfo', {});
    const network = NETWORKS[info.string('network')];
    if (network === undefined) {
      throw this.client.error(
        'L402_BACKEND_PROTOCOL',
        `getinfo.network: unknown network ${JSON.stringify(info.string('network'))}`,
      );
    }
    return {
      pubkey: info.string('id'),
      alias: info.optionalString('alias'),
      network,
      blockHeight: Number(info.integer('blockheight')),
    };
  }

  async createInvoice(request: CreateInvoiceRequest): Promise<CreatedInvoice> {
    if (request.amountMsat < 0n || request.amountMsat > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw this.client.error('L402_BACKEND_CONFIG', `amountMsat out of range: ${request.amountMsat}`);
    }
    if (request.preimage !== undefined && request.preimage.length !== 32) {
      throw this.client.error('L402_BACKEND_CONFIG', 'preimage must be 32 bytes');
    }
    const created = await this.call('invoice', {
      // lightningd takes "any" for an invoice the payer chooses the amount of.
      amount_msat: request.amountMsat === 0n ? 'any' : Number(request.amountMsat),
      label: `l402-${toHex(platform.randomBytes(16))}`,
      description: request.memo ?? '',
      ...(request.expirySeconds !== undefined && { expiry: request.expirySeconds }),
      ...(request.preimage !== undefined && { preimage: toHex(request.preimage) }),
    });
    return { paymentRequest: created.string('bolt11'), paymentHash: created.bytes32('payment_hash') };
  }

  /** The invoice's `listinvoices` entry, or L402_BACKEND_NOT_FOUND. */
  private async find(paymentHash: Uint8Array): Promise<Fields> {
    const [found] = (await this.call('listinvoices', { payment_hash: toHex(paymentHash) })).list('invoices');
    if (!found)
      throw this.client.error('L402_BACKEND_NOT_FOUND', `no invoice with payment hash ${toHex(paymentHash)}`);
    return found;
  }

  private status(invoice: Fields): InvoiceStatus {
    const status = invoice.string('status');
    const states: Record<string, InvoiceState> = { unpaid: 'open', paid: 'settled', expired: 'expired' };
    const state = states[status];
    if (state === undefined)
      throw this.client.error('L402_BACKEND_PROTOCOL', `unknown invoice status ${JSON.stringify(status)}`);
    const paid = state === 'settled';
    return {
      paymentHash: invoice.bytes32('payment_hash'),
      state,
      amountMsat: invoice.optionalInteger('amount_msat'),
      amountReceivedMsat: paid ? invoice.integer('amount_received_msat') : undefined,
      settledAt: paid ? Number(invoice.integer('paid_at')) : undefined,
      preimage: paid ? invoice.bytes32('payment_preimage') : undefined,
    };
  }

  async lookupInvoice(paymentHash: Uint8Array): Promise<InvoiceStatus> {
    return this.status(await this.find(paymentHash));
  }

  async waitInvoice(
    paymentHash: Uint8Array,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<InvoiceStatus> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const invoice = await this.find(paymentHash);
      const current = this.status(invoice);
      if (current.state !== 'open') return current;
      const left = deadline - Date.now();
      if (left <= 0) break;
      let result: Fields | RpcFailure;
      try {
        result = await this.rpc(
          'waitinvoice',
          { label: invoice.string('label') },
          { timeoutMs: left, signal: options.signal },
        );
      } catch (error) {
        if ((error as { code?: string }).code === 'L402_BACKEND_TIMEOUT' && !options.signal?.aborted) break;
        throw error;
      }
      if (!('code' in result)) return this.status(result);
      // 903: it expired while we waited; the next lookup reports it. -1: it was deleted.
      if (result.code === -1)
        throw this.client.error('L402_BACKEND_NOT_FOUND', `invoice ${toHex(paymentHash)} was deleted`);
      if (result.code !== 903) throw this.failed('waitinvoice', result);
    }
    throw this.client.error(
      'L402_BACKEND_TIMEOUT',
      `invoice ${toHex(paymentHash)} still open after ${timeoutMs} ms`,
    );
  }

  async pay(paymentRequest: string, request: PayRequest = {}): Promise<PaymentResult> {
    const invoice = payable(this.client, paymentRequest, request, this.now());
    const amountMsat = invoice.amountMsat ?? request.amountMsat!;
    return payOnce(
      {
        kind: KIND,
        lookupPayment: (hash) => this.lookupPayment(hash),
        send: async (text, hash, attempt) => {
          const timeoutMs = attempt.timeoutMs ?? 60_000;
          const result = await this.rpc(
            'xpay',
            {
              invstring: text,
              ...(invoice.amountMsat === undefined && { amount_msat: Number(amountMsat) }),
              ...(attempt.maxFeeMsat !== undefined && { maxfee: Number(attempt.maxFeeMsat) }),
              retry_for: Math.max(1, Math.floor(timeoutMs / 1000)),
            },
            { timeoutMs: timeoutMs + PAY_GRACE_MS, signal: attempt.signal },
          );
          if ('code' in result) throw await this.payFailure(result, hash, amountMsat);
          const sent = result.integer('amount_sent_msat');
          const delivered = result.integer('amount_msat');
          return {
            paymentHash: hash,
            preimage: proven(this.client, hash, result.bytes32('payment_preimage')),
            amountMsat: delivered,
            feeMsat: sent - delivered,
          };
        },
      },
      paymentRequest,
      invoice.paymentHash,
      request,
    );
  }

  /** xpay's error codes as L402_PAYMENT_* errors. */
  private async payFailure(failure: RpcFailure, paymentHash: Uint8Array, amountMsat: bigint) {
    const why = failure.message;
    switch (failure.code) {
      case 205: {
        // lightningd says only that no route was found: our own balance tells whether that is why.
        const { spendableMsat } = await this.balance();
        return spendableMsat < amountMsat
          ? this.client.error(
              'L402_PAYMENT_INSUFFICIENT_BALANCE',
              `can send ${spendableMsat} msat, the payment needs ${amountMsat} msat: ${why}`,
            )
          : this.client.error('L402_PAYMENT_NO_ROUTE', why);
      }
      case 207:
        return this.client.error('L402_PAYMENT_EXPIRED', why);
      case 200:
        return this.client.error(
          'L402_PAYMENT_IN_FLIGHT',
          `a payment of ${toHex(paymentHash)} is in flight: ${why}`,
        );
      case -32601:
        return this.failed('xpay', failure);
      default:
        return this.client.error('L402_PAYMENT_FAILED', `CLN error ${failure.code}: ${why}`);
    }
  }

  async lookupPayment(paymentHash: Uint8Array): Promise<PaymentStatus> {
    const pays = (await this.call('listpays', { payment_hash: toHex(paymentHash) })).list('pays');
    const complete = pays.find((pay) => pay.string('status') === 'complete');
    if (complete) {
      const amountMsat = complete.optionalInteger('amount_msat');
      return {
        paymentHash,
        state: 'succeeded',
        preimage: proven(this.client, paymentHash, complete.bytes32('preimage')),
        amountMsat,
        feeMsat: amountMsat === undefined ? undefined : complete.integer('amount_sent_msat') - amountMsat,
        failure: undefined,
      };
    }
    const state = pays.some((pay) => pay.string('status') === 'pending')
      ? 'in-flight'
      : pays.length > 0
        ? 'failed'
        : 'unknown';
    return {
      paymentHash,
      state,
      preimage: undefined,
      amountMsat: undefined,
      feeMsat: undefined,
      failure: state === 'failed' ? 'lightningd reports every attempt failed' : undefined,
    };
  }

  async balance(): Promise<Balance> {
    const channels = (await this.call('listpeerchannels', {}))
      .list('channels')
      .filter(
        (channel) => channel.string('state') === 'CHANNELD_NORMAL' && channel.value.peer_connected === true,
      );
    return {
      spendableMsat: channels.reduce((sum, channel) => sum + channel.integer('spendable_msat'), 0n),
      receivableMsat: channels.reduce((sum, channel) => sum + channel.integer('receivable_msat'), 0n),
    };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/**
 * A Core Lightning backend for clnrest at `options.url`. No request is made until the first call, so
 * a node that is down shows as L402_BACKEND_UNREACHABLE then, not here.
 *
 * @example
 * const cln = Cln.connect({ url: 'http://127.0.0.1:3010', rune: process.env.CLN_RUNE! });
 * await cln.info(); // { pubkey: '02…', alias: 'merchant', network: 'regtest', blockHeight: 107 }
 */
export function connect(options: Options): Cln {
  return new ClnBackend(options);
}

/**
 * A Core Lightning backend from a URI: `cln://host:port?rune=…` (https), `cln+https://…` (the same)
 * or `cln+http://…` (plain HTTP, for loopback).
 *
 * @example
 * const cln = Cln.fromUri('cln+http://127.0.0.1:3010?rune=…', { timeoutMs: 10_000 });
 */
export function fromUri(uri: string, options: Omit<Options, 'url' | 'rune'> = {}): Cln {
  const { url, base } = parseUri(KIND, uri, { cln: 'https', 'cln+https': 'https', 'cln+http': 'http' });
  const rune = url.searchParams.get('rune');
  if (!rune) throw new BackendError('L402_BACKEND_CONFIG', KIND, 'the URI has no rune= parameter');
  return connect({ ...options, url: base, rune });
}
