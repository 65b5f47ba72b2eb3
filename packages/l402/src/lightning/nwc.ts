/**
 * The NWC backend: a {@link Backend} over Nostr Wallet Connect (NIP-47). Requests (kind 23194) are
 * signed with the connection URI's secret and encrypted to the wallet service, NIP-44 v2 when its info
 * event (kind 13194) offers it, else NIP-04; answers (kind 23195) and `payment_received` notifications
 * (23197, or 23196 under NIP-04) come back through the same relay.
 *
 * Amounts on the wire are msat. NIP-47 has no fee limit: `PayRequest.maxFeeMsat` cannot be passed on,
 * so the wallet service's own limit applies. Wallet errors map to codes: UNAUTHORIZED, RESTRICTED and
 * QUOTA_EXCEEDED → `L402_BACKEND_AUTH`, INSUFFICIENT_BALANCE → `L402_PAYMENT_INSUFFICIENT_BALANCE`,
 * PAYMENT_FAILED → `L402_PAYMENT_FAILED`, NOT_FOUND → `L402_BACKEND_NOT_FOUND`, NOT_IMPLEMENTED →
 * `L402_BACKEND_CONFIG`, RATE_LIMITED → `L402_BACKEND_UNREACHABLE` (try again shortly), anything else →
 * `L402_BACKEND_PROTOCOL`.
 *
 * @example
 * import { Nwc } from 'l402/lightning';
 *
 * const wallet = await Nwc.connect('nostr+walletconnect://b889…e9d4?relay=wss%3A%2F%2Frelay.example&secret=71a8…4f3c');
 * const { paymentRequest, paymentHash } = await wallet.createInvoice({ amountMsat: 21_000n, memo: 'api call' });
 * const settled = await wallet.waitInvoice(paymentHash, { timeoutMs: 60_000 });
 * await wallet.close();
 */
import * as platform from '#platform';
import { type BackendCode, BackendError } from '../Errors.js';
import * as Invoice from '../Invoice.js';
import { equalBytes, fromHex, toHex } from '../internal/bytes.js';
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
  unknownPayment,
} from './Backend.js';
import * as Nostr from './nostr.js';

/**
 * The event kinds of NIP-47.
 *
 * @example
 * relay.subscribe([{ kinds: [Nwc.KIND.info], authors: [walletPubkey], limit: 1 }], { event: console.log });
 */
export const KIND = {
  /** Replaceable: the wallet service's methods, encryptions and notifications. */
  info: 13194,
  request: 23194,
  response: 23195,
  /** A notification encrypted with NIP-04, for clients that predate NIP-44. */
  notificationNip04: 23196,
  notification: 23197,
} as const;

/**
 * The error codes a NIP-47 wallet service answers with (`PAYMENT_FAILED` and `NOT_FOUND` per method).
 *
 * @example
 * const error: { code: Nwc.ErrorCode; message: string } = { code: 'UNAUTHORIZED', message: 'unknown key' };
 */
export type ErrorCode =
  | 'RATE_LIMITED'
  | 'NOT_IMPLEMENTED'
  | 'INSUFFICIENT_BALANCE'
  | 'QUOTA_EXCEEDED'
  | 'RESTRICTED'
  | 'UNAUTHORIZED'
  | 'INTERNAL'
  | 'UNSUPPORTED_ENCRYPTION'
  | 'OTHER'
  | 'PAYMENT_FAILED'
  | 'NOT_FOUND';

/**
 * An invoice (`incoming`) or a payment (`outgoing`) as NIP-47 describes it; amounts in msat, times in
 * unix seconds, hashes and preimages in hex.
 *
 * @example
 * const tx: Nwc.Transaction = { type: 'incoming', state: 'pending', payment_hash: 'ab…', amount: 21_000, created_at: 1_700_000_000 };
 */
export interface Transaction {
  readonly type: 'incoming' | 'outgoing';
  readonly state?: 'pending' | 'settled' | 'accepted' | 'expired' | 'failed';
  readonly invoice?: string;
  readonly description?: string;
  readonly description_hash?: string;
  readonly preimage?: string;
  readonly payment_hash: string;
  readonly amount: number;
  readonly fees_paid?: number;
  readonly created_at: number;
  readonly expires_at?: number;
  readonly settled_at?: number;
  readonly metadata?: Record<string, unknown>;
}

/**
 * The parts of a `nostr+walletconnect://` URI.
 *
 * @example
 * const parts: Nwc.ConnectionUri = { walletPubkey, relays: ['wss://relay.example'], secret: Nostr.randomSecretKey() };
 */
export interface ConnectionUri {
  /** The wallet service's x-only public key (32 bytes). */
  readonly walletPubkey: Uint8Array;
  /** At least one relay URL. */
  readonly relays: readonly string[];
  /** The client's secret key (32 bytes): it signs requests and, with the wallet's key, encrypts them. */
  readonly secret: Uint8Array;
  readonly lud16?: string;
}

/**
 * How {@link connect} talks to the relay and how patiently it waits.
 *
 * @example
 * const options: Nwc.Options = { timeoutMs: 15_000, pollIntervalMs: 2_000 };
 */
export interface Options {
  /** The WebSocket class; `globalThis.WebSocket` when omitted, else the `ws` package's. */
  readonly WebSocket?: Nostr.WebSocketConstructor;
  /** How long to wait for each answer (pay_invoice excepted: it takes `PayRequest.timeoutMs`). Defaults to 30 000. */
  readonly timeoutMs?: number;
  /** How often `waitInvoice` asks lookup_invoice, in case a notification is lost. Defaults to 5 000. */
  readonly pollIntervalMs?: number;
  /** Wall clock in unix milliseconds, for event timestamps. Defaults to `Date.now`. */
  readonly now?: () => number;
}

const BACKEND = 'nwc';
const SCHEME = /^nostr\+walletconnect:(?:\/\/)?([0-9a-fA-F]{64})\/?(?:\?(.*))?$/s;
const HEX32 = /^[0-9a-fA-F]{64}$/;
const NETWORKS: Readonly<Record<string, Network>> = {
  mainnet: 'mainnet',
  bitcoin: 'mainnet',
  testnet: 'testnet',
  signet: 'signet',
  regtest: 'regtest',
  simnet: 'simnet',
};

const fail = (code: BackendCode, message: string, cause?: unknown) =>
  new BackendError(code, BACKEND, message, cause === undefined ? undefined : { cause });

/**
 * Reads a `nostr+walletconnect://` URI; throws `L402_BACKEND_CONFIG` (never echoing the secret) when
 * it is malformed.
 *
 * @example
 * const { walletPubkey, relays } = Nwc.parseUri(uri);
 */
export function parseUri(uri: string): ConnectionUri {
  const match = typeof uri === 'string' ? SCHEME.exec(uri.trim()) : null;
  if (!match) {
    throw fail(
      'L402_BACKEND_CONFIG',
      'an NWC URI must look like nostr+walletconnect://<wallet pubkey hex>?relay=…&secret=…',
    );
  }
  const params = new URLSearchParams(match[2] ?? '');
  const relays = params.getAll('relay');
  if (relays.length === 0) throw fail('L402_BACKEND_CONFIG', 'the NWC URI names no relay');
  for (const relay of relays) {
    if (!/^wss?:\/\/./i.test(relay)) {
      throw fail(
        'L402_BACKEND_CONFIG',
        `the NWC URI's relay ${JSON.stringify(relay)} is not a ws:// or wss:// URL`,
      );
    }
  }
  const secret = params.get('secret');
  if (secret === null || !HEX32.test(secret)) {
    throw fail('L402_BACKEND_CONFIG', 'the NWC URI must carry secret=<32 bytes of hex>');
  }
  const lud16 = params.get('lud16');
  const parts = {
    walletPubkey: fromHex(match[1]!),
    relays,
    secret: fromHex(secret),
    ...(lud16 === null ? {} : { lud16 }),
  };
  try {
    // Every request needs this ECDH: a key off the curve or a secret out of range is a bad URI, found now.
    Nostr.conversationKey(parts.secret, parts.walletPubkey);
  } catch (error) {
    throw fail(
      'L402_BACKEND_CONFIG',
      "the NWC URI's wallet pubkey or secret is not a valid secp256k1 key",
      error,
    );
  }
  return parts;
}

/**
 * Writes a `nostr+walletconnect://` URI, relay URLs percent-encoded.
 *
 * @example
 * Nwc.formatUri({ walletPubkey, relays: ['ws://127.0.0.1:7000'], secret });
 * // "nostr+walletconnect://b889…?relay=ws%3A%2F%2F127.0.0.1%3A7000&secret=71a8…"
 */
export function formatUri(parts: ConnectionUri): string {
  const query = [
    ...parts.relays.map((relay) => `relay=${encodeURIComponent(relay)}`),
    `secret=${toHex(parts.secret)}`,
    ...(parts.lud16 === undefined ? [] : [`lud16=${encodeURIComponent(parts.lud16)}`]),
  ];
  return `nostr+walletconnect://${toHex(parts.walletPubkey)}?${query.join('&')}`;
}

/**
 * A {@link Backend} talking NIP-47 to one wallet service.
 *
 * @example
 * const wallet: Nwc.Nwc = await Nwc.connect(uri);
 * wallet.encryption; // 'nip44_v2'
 */
export interface Nwc extends Backend {
  readonly kind: 'nwc';
  /** The scheme chosen from the wallet's info event. */
  readonly encryption: Nostr.Encryption;
  /** What the wallet's info event offers: methods, and `notifications` if it sends any. */
  readonly capabilities: readonly string[];
}

function wire(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw fail('L402_BACKEND_PROTOCOL', `the wallet service sent a bad ${what}`);
  }
  return value;
}

function msatToWire(value: bigint, what: string): number {
  if (typeof value !== 'bigint' || value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw fail('L402_BACKEND_CONFIG', `${what} must be a bigint from 0 to 2^53 - 1 msat`);
  }
  return Number(value);
}

function preimageOf(value: unknown, paymentHash: Uint8Array): Uint8Array | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !HEX32.test(value)) {
    throw fail('L402_BACKEND_PROTOCOL', 'the wallet service sent a malformed preimage');
  }
  const preimage = fromHex(value);
  // A wallet that hands out a preimage which does not open the hash is broken or lying: never trust it.
  if (!equalBytes(platform.sha256(preimage), paymentHash)) {
    throw fail(
      'L402_BACKEND_PROTOCOL',
      'the wallet service sent a preimage that does not hash to the payment hash',
    );
  }
  return preimage;
}

function transactionOf(value: unknown, paymentHash: Uint8Array): Transaction {
  if (typeof value !== 'object' || value === null) {
    throw fail('L402_BACKEND_PROTOCOL', 'the wallet service sent a transaction that is not an object');
  }
  const tx = value as Transaction;
  if (typeof tx.payment_hash !== 'string' || tx.payment_hash.toLowerCase() !== toHex(paymentHash)) {
    throw fail('L402_BACKEND_PROTOCOL', 'the wallet service answered about another payment hash');
  }
  if (tx.type !== 'incoming' && tx.type !== 'outgoing') {
    throw fail(
      'L402_BACKEND_PROTOCOL',
      'the wallet service sent a transaction without type incoming or outgoing',
    );
  }
  return tx;
}

function invoiceStatus(tx: Transaction, paymentHash: Uint8Array, nowSec: number): InvoiceStatus {
  const amountMsat = BigInt(wire(tx.amount, 'amount'));
  // Older services send no state: a settlement time then marks a settled invoice.
  const settled = tx.state === 'settled' || (tx.state === undefined && tx.settled_at !== undefined);
  const expired =
    tx.state === 'expired' ||
    (tx.state === undefined && !settled && tx.expires_at !== undefined && tx.expires_at < nowSec);
  return {
    paymentHash,
    state: settled ? 'settled' : expired ? 'expired' : tx.state === 'failed' ? 'canceled' : 'open',
    amountMsat,
    amountReceivedMsat: settled ? amountMsat : undefined,
    settledAt: settled && tx.settled_at !== undefined ? wire(tx.settled_at, 'settled_at') : undefined,
    preimage: settled ? preimageOf(tx.preimage, paymentHash) : undefined,
  };
}

function paymentStatus(tx: Transaction, paymentHash: Uint8Array): PaymentStatus {
  const preimage = preimageOf(tx.preimage, paymentHash);
  const succeeded = tx.state === 'settled' || (tx.state === undefined && preimage !== undefined);
  return {
    paymentHash,
    state: succeeded ? 'succeeded' : tx.state === 'failed' ? 'failed' : 'in-flight',
    preimage: succeeded ? preimage : undefined,
    amountMsat: BigInt(wire(tx.amount, 'amount')),
    feeMsat: tx.fees_paid === undefined ? undefined : BigInt(wire(tx.fees_paid, 'fees_paid')),
    failure: tx.state === 'failed' ? 'the wallet service reports the payment as failed' : undefined,
  };
}

function walletError(method: string, error: { code?: unknown; message?: unknown }): BackendError {
  const code = typeof error.code === 'string' ? error.code : 'OTHER';
  const said = `${method}: ${code}${typeof error.message === 'string' && error.message ? ` (${error.message})` : ''}`;
  switch (code as ErrorCode) {
    case 'UNAUTHORIZED':
      return fail('L402_BACKEND_AUTH', `the wallet service does not know this connection's key: ${said}`);
    case 'RESTRICTED':
    case 'QUOTA_EXCEEDED':
      return fail('L402_BACKEND_AUTH', `this connection is not allowed to do that: ${said}`);
    case 'INSUFFICIENT_BALANCE':
      return fail('L402_PAYMENT_INSUFFICIENT_BALANCE', `the wallet cannot afford it: ${said}`);
    case 'PAYMENT_FAILED':
      return fail('L402_PAYMENT_FAILED', `the payment failed: ${said}`);
    case 'NOT_FOUND':
      return fail('L402_BACKEND_NOT_FOUND', `the wallet service does not know it: ${said}`);
    case 'NOT_IMPLEMENTED':
      return fail('L402_BACKEND_CONFIG', `the wallet service does not offer this: ${said}`);
    case 'RATE_LIMITED':
      return fail(
        'L402_BACKEND_UNREACHABLE',
        `the wallet service is rate limiting; try again in a few seconds: ${said}`,
      );
    default:
      return fail('L402_BACKEND_PROTOCOL', `the wallet service failed: ${said}`);
  }
}

interface Pending {
  fail(error: Error): void;
}

class Client implements Nwc {
  readonly kind = 'nwc';
  encryption: Nostr.Encryption = 'nip04';
  capabilities: readonly string[] = [];

  private readonly walletPubkey: string;
  private readonly relays: readonly string[];
  private readonly secret: Uint8Array;
  private readonly clientPubkey: string;
  private readonly options: Options;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly waiters = new Map<string, Set<(tx: Transaction) => void>>();
  private readonly pending = new Set<Pending>();
  private relay: Nostr.Connection | undefined;
  private connecting: Promise<Nostr.Connection> | undefined;
  private notifies = false;
  private started = false;
  private closed = false;

  constructor(uri: ConnectionUri, options: Options) {
    this.walletPubkey = toHex(uri.walletPubkey);
    this.relays = uri.relays;
    this.secret = uri.secret;
    this.clientPubkey = toHex(Nostr.publicKey(uri.secret));
    this.options = options;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /** Connects and reads the wallet's info event: which encryption, which methods, which notifications. */
  async start(): Promise<void> {
    const relay = await this.connect();
    const events: Nostr.Event[] = [];
    const sub = relay.subscribe([{ kinds: [KIND.info], authors: [this.walletPubkey], limit: 1 }], {
      event: (event) => events.push(event),
    });
    try {
      await this.within(sub.stored, this.timeoutMs, 'the wallet service info event');
    } finally {
      sub.close();
    }
    const info = events.sort((a, b) => b.created_at - a.created_at)[0];
    if (!info) {
      throw fail(
        'L402_BACKEND_UNREACHABLE',
        `no wallet service info event (kind ${KIND.info}) from ${this.walletPubkey} on ${relay.url}: is the wallet service running and using this relay?`,
      );
    }
    const tag = (name: string) => info.tags.find((t) => t[0] === name)?.[1]?.split(/\s+/);
    // No encryption tag means a wallet service that predates NIP-44 (NIP-47 "Encryption").
    const offered = tag('encryption') ?? ['nip04'];
    if (offered.includes('nip44_v2')) this.encryption = 'nip44_v2';
    else if (offered.includes('nip04')) this.encryption = 'nip04';
    else {
      throw fail(
        'L402_BACKEND_PROTOCOL',
        `the wallet service offers no encryption this client speaks (${offered.join(' ')})`,
      );
    }
    this.capabilities = info.content.split(/[\s,]+/).filter(Boolean);
    this.notifies = (tag('notifications') ?? []).includes('payment_received');
    this.started = true;
    this.listen(relay);
  }

  async info(): Promise<NodeInfo> {
    const result = await this.request('get_info', {});
    const name = String(result.network);
    if (!Object.hasOwn(NETWORKS, name)) {
      throw fail(
        'L402_BACKEND_PROTOCOL',
        `the wallet service reports an unknown network ${JSON.stringify(name)}`,
      );
    }
    const pubkey =
      typeof result.pubkey === 'string' && /^[0-9a-f]{66}$/i.test(result.pubkey) ? result.pubkey : undefined;
    return {
      pubkey: pubkey?.toLowerCase(),
      alias: typeof result.alias === 'string' ? result.alias : undefined,
      network: NETWORKS[name]!,
      blockHeight: result.block_height === undefined ? undefined : wire(result.block_height, 'block_height'),
    };
  }

  async createInvoice(request: CreateInvoiceRequest): Promise<CreatedInvoice> {
    if (request.preimage !== undefined) {
      throw fail('L402_BACKEND_CONFIG', 'NWC make_invoice cannot take a caller-chosen preimage');
    }
    const result = await this.request('make_invoice', {
      amount: msatToWire(request.amountMsat, 'amountMsat'),
      ...(request.memo === undefined ? {} : { description: request.memo }),
      ...(request.expirySeconds === undefined ? {} : { expiry: request.expirySeconds }),
    });
    if (typeof result.invoice !== 'string') {
      throw fail('L402_BACKEND_PROTOCOL', 'make_invoice answered without an invoice');
    }
    let decoded: Invoice.Invoice;
    try {
      decoded = Invoice.decode(result.invoice);
    } catch (error) {
      throw fail(
        'L402_BACKEND_PROTOCOL',
        'make_invoice answered with an invoice that does not decode',
        error,
      );
    }
    if (
      typeof result.payment_hash === 'string' &&
      result.payment_hash.toLowerCase() !== toHex(decoded.paymentHash)
    ) {
      throw fail('L402_BACKEND_PROTOCOL', "make_invoice's payment_hash is not the invoice's");
    }
    // Amount 0 asks for an invoice the payer chooses the amount of.
    if (decoded.amountMsat !== (request.amountMsat === 0n ? undefined : request.amountMsat)) {
      throw fail(
        'L402_BACKEND_PROTOCOL',
        `make_invoice made an invoice for ${decoded.amountMsat ?? 'any'} msat, not ${request.amountMsat}`,
      );
    }
    return { paymentRequest: result.invoice, paymentHash: decoded.paymentHash };
  }

  async lookupInvoice(paymentHash: Uint8Array): Promise<InvoiceStatus> {
    const tx = transactionOf(
      await this.request('lookup_invoice', { payment_hash: toHex(paymentHash) }),
      paymentHash,
    );
    if (tx.type !== 'incoming') {
      throw fail(
        'L402_BACKEND_NOT_FOUND',
        `lookup_invoice: ${toHex(paymentHash)} is a payment this wallet sent, not an invoice`,
      );
    }
    return invoiceStatus(tx, paymentHash, Math.floor(this.now() / 1000));
  }

  waitInvoice(
    paymentHash: Uint8Array,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<InvoiceStatus> {
    const key = toHex(paymentHash);
    const timeoutMs = options.timeoutMs ?? 60_000;
    const pollIntervalMs = this.options.pollIntervalMs ?? 5_000;
    const { signal } = options;
    if (this.closed) return Promise.reject(fail('L402_BACKEND_UNREACHABLE', 'the NWC connection was closed'));
    return new Promise((resolve, reject) => {
      let done = false;
      let pollTimer: ReturnType<typeof setTimeout> | undefined;
      let lastError: unknown;
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        clearTimeout(pollTimer);
        signal?.removeEventListener('abort', aborted);
        const set = this.waiters.get(key);
        set?.delete(notified);
        if (set?.size === 0) this.waiters.delete(key);
        this.pending.delete(entry);
        settle();
      };
      const consider = (status: InvoiceStatus) => {
        if (status.state !== 'open') finish(() => resolve(status));
      };
      const notified = (tx: Transaction) => {
        try {
          consider(invoiceStatus(transactionOf(tx, paymentHash), paymentHash, Math.floor(this.now() / 1000)));
        } catch (error) {
          lastError = error;
        }
      };
      const poll = () => {
        this.lookupInvoice(paymentHash).then(
          (status) => {
            consider(status);
            if (!done) pollTimer = setTimeout(poll, pollIntervalMs);
          },
          (error: BackendError) => {
            // Not found or not allowed will not change by waiting; a lost relay or a slow answer may.
            if (['L402_BACKEND_NOT_FOUND', 'L402_BACKEND_AUTH', 'L402_BACKEND_CONFIG'].includes(error.code)) {
              finish(() => reject(error));
            } else {
              lastError = error;
              if (!done) pollTimer = setTimeout(poll, pollIntervalMs);
            }
          },
        );
      };
      const aborted = () => finish(() => reject(signal?.reason));
      const entry: Pending = { fail: (error) => finish(() => reject(error)) };
      const deadline = setTimeout(() => {
        const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
        finish(() =>
          reject(fail('L402_BACKEND_TIMEOUT', `invoice ${key} was still open after ${timeoutMs} ms${why}`)),
        );
      }, timeoutMs);
      if (signal?.aborted) return aborted();
      signal?.addEventListener('abort', aborted);
      this.pending.add(entry);
      // Listen before the first lookup, so a settlement between the two is not missed.
      const set = this.waiters.get(key) ?? new Set();
      this.waiters.set(key, set);
      set.add(notified);
      poll();
    });
  }

  async pay(paymentRequest: string, request: PayRequest = {}): Promise<PaymentResult> {
    let invoice: Invoice.Invoice;
    try {
      invoice = Invoice.decode(paymentRequest);
    } catch (error) {
      throw fail('L402_PAYMENT_FAILED', `not a payable BOLT11 invoice: ${(error as Error).message}`, error);
    }
    return payOnce(
      {
        kind: BACKEND,
        lookupPayment: (hash) => this.lookupPayment(hash),
        send: async (text, hash, options) => {
          const params = {
            invoice: text,
            ...(options.amountMsat === undefined
              ? {}
              : { amount: msatToWire(options.amountMsat, 'amountMsat') }),
          };
          const timeoutMs = options.timeoutMs ?? 60_000;
          const result = await this.request('pay_invoice', params, {
            timeoutMs,
            signal: options.signal,
            // A request that reaches the wallet after we gave up on it must not pay: NIP-47's expiration tag.
            expiresAt: Math.ceil((this.now() + timeoutMs) / 1000),
          });
          const preimage = preimageOf(result.preimage, hash);
          if (!preimage) throw fail('L402_BACKEND_PROTOCOL', 'pay_invoice answered without a preimage');
          return {
            paymentHash: hash,
            preimage,
            amountMsat: invoice.amountMsat ?? options.amountMsat ?? 0n,
            feeMsat: result.fees_paid === undefined ? 0n : BigInt(wire(result.fees_paid, 'fees_paid')),
          };
        },
      },
      paymentRequest,
      invoice.paymentHash,
      request,
    );
  }

  async lookupPayment(paymentHash: Uint8Array): Promise<PaymentStatus> {
    let result: Record<string, unknown>;
    try {
      result = await this.request('lookup_invoice', { payment_hash: toHex(paymentHash) });
    } catch (error) {
      if ((error as BackendError).code !== 'L402_BACKEND_NOT_FOUND') throw error;
      return unknownPayment(paymentHash);
    }
    const tx = transactionOf(result, paymentHash);
    // An invoice of our own with this hash says nothing about paying it.
    return tx.type === 'outgoing' ? paymentStatus(tx, paymentHash) : unknownPayment(paymentHash);
  }

  async balance(): Promise<Balance> {
    const result = await this.request('get_balance', {});
    return { spendableMsat: BigInt(wire(result.balance, 'balance')), receivableMsat: undefined };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = fail('L402_BACKEND_UNREACHABLE', 'the NWC connection was closed');
    for (const entry of [...this.pending]) entry.fail(error);
    this.relay?.close();
    this.relay = undefined;
  }

  /** Sends one request and resolves with its `result`, or rejects with the wallet's error mapped. */
  private async request(
    method: string,
    params: Record<string, unknown>,
    options: { timeoutMs?: number; signal?: AbortSignal; expiresAt?: number } = {},
  ): Promise<Record<string, unknown>> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const relay = await this.connect();
    const tags = [
      ['p', this.walletPubkey],
      ['encryption', this.encryption],
      ...(options.expiresAt === undefined ? [] : [['expiration', String(options.expiresAt)]]),
    ];
    const content = Nostr.encrypt(
      this.encryption,
      JSON.stringify({ method, params }),
      this.secret,
      fromHex(this.walletPubkey),
    );
    const event = Nostr.sign({ kind: KIND.request, tags, content }, this.secret, this.now);
    const { signal } = options;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        sub.close();
        this.pending.delete(entry);
        settle();
      };
      const aborted = () => finish(() => reject(signal?.reason));
      const entry: Pending = { fail: (error) => finish(() => reject(error)) };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              fail(
                'L402_BACKEND_TIMEOUT',
                `the wallet service did not answer ${method} within ${timeoutMs} ms`,
              ),
            ),
          ),
        timeoutMs,
      );
      // Subscribe before publishing: answers are ephemeral, a relay keeps none for a late subscriber.
      const sub = relay.subscribe(
        [{ kinds: [KIND.response], authors: [this.walletPubkey], '#e': [event.id] }],
        {
          event: (answer) => finish(() => this.answer(method, answer).then(resolve, reject)),
          closed: (reason) =>
            entry.fail(
              relay.isOpen
                ? fail(
                    'L402_BACKEND_PROTOCOL',
                    `the relay ended the wait for the answer to ${method}: ${reason}`,
                  )
                : fail(
                    'L402_BACKEND_UNREACHABLE',
                    `lost the relay while waiting for the answer to ${method}: ${reason}`,
                  ),
            ),
        },
      );
      sub.stored.catch((error: Error) => entry.fail(error));
      if (signal?.aborted) return aborted();
      signal?.addEventListener('abort', aborted);
      this.pending.add(entry);
      relay.publish(event, { timeoutMs }).catch((error: Error) => entry.fail(error));
    });
  }

  /** Reads one answer event. */
  private async answer(method: string, event: Nostr.Event): Promise<Record<string, unknown>> {
    let response: {
      result_type?: unknown;
      result?: unknown;
      error?: { code?: unknown; message?: unknown } | null;
    };
    try {
      response = JSON.parse(
        Nostr.decrypt(this.encryption, event.content, this.secret, fromHex(this.walletPubkey)),
      );
    } catch (error) {
      throw fail('L402_BACKEND_PROTOCOL', `the answer to ${method} does not decrypt to JSON`, error);
    }
    if (typeof response !== 'object' || response === null) {
      throw fail('L402_BACKEND_PROTOCOL', `the answer to ${method} is not a JSON object`);
    }
    if (response.error !== null && response.error !== undefined) {
      // Some services set no result_type on errors; the error is about our request all the same.
      throw walletError(
        method,
        typeof response.error === 'object' ? response.error : { message: String(response.error) },
      );
    }
    if (response.result_type !== method) {
      throw fail(
        'L402_BACKEND_PROTOCOL',
        `asked ${method}, the wallet service answered ${String(response.result_type)}`,
      );
    }
    if (typeof response.result !== 'object' || response.result === null) {
      throw fail('L402_BACKEND_PROTOCOL', `the answer to ${method} has no result`);
    }
    return response.result as Record<string, unknown>;
  }

  /** The open relay connection, opening one (first relay of the URI that answers) when there is none. */
  private connect(): Promise<Nostr.Connection> {
    if (this.closed) return Promise.reject(fail('L402_BACKEND_UNREACHABLE', 'the NWC connection was closed'));
    if (this.relay?.isOpen) return Promise.resolve(this.relay);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async open(): Promise<Nostr.Connection> {
    let lastError: unknown;
    for (const url of this.relays) {
      try {
        const relay = await Nostr.connect(url, {
          WebSocket: this.options.WebSocket,
          timeoutMs: this.timeoutMs,
          name: BACKEND,
        });
        if (this.closed) {
          relay.close();
          break;
        }
        this.relay = relay;
        relay.onClose(() => {
          if (this.relay === relay) this.relay = undefined;
        });
        // Reconnecting: the notification subscription died with the old connection.
        if (this.started) this.listen(relay);
        return relay;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError ?? fail('L402_BACKEND_UNREACHABLE', 'the NWC connection was closed');
  }

  /** Subscribes to payment_received notifications, which settle `waitInvoice` calls without polling. */
  private listen(relay: Nostr.Connection): void {
    if (!this.notifies) return;
    const kind = this.encryption === 'nip44_v2' ? KIND.notification : KIND.notificationNip04;
    relay.subscribe([{ kinds: [kind], authors: [this.walletPubkey], '#p': [this.clientPubkey] }], {
      event: (event) => {
        let notification: { notification_type?: unknown; notification?: { payment_hash?: unknown } };
        try {
          notification = JSON.parse(
            Nostr.decrypt(this.encryption, event.content, this.secret, fromHex(this.walletPubkey)),
          );
        } catch {
          return; // Not for us after all, or garbled: lookup_invoice polling still covers the wait.
        }
        if (notification?.notification_type !== 'payment_received') return;
        const hash = notification.notification?.payment_hash;
        if (typeof hash !== 'string') return;
        for (const waiter of [...(this.waiters.get(hash.toLowerCase()) ?? [])]) {
          waiter(notification.notification as Transaction);
        }
      },
    });
  }

  /** Rejects after `timeoutMs` unless `promise` settles first. */
  private within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(fail('L402_BACKEND_TIMEOUT', `the relay did not deliver ${what} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}

/**
 * Connects to a wallet service: opens the first relay of the URI that answers, reads the wallet's info
 * event (NIP-44 v2 when offered, else NIP-04) and listens for its `payment_received` notifications.
 * Throws `L402_BACKEND_CONFIG` for a malformed URI, `L402_BACKEND_UNREACHABLE` when no relay answers or
 * the wallet service has no info event there.
 *
 * @example
 * const wallet = await Nwc.connect(process.env.NWC_URI!, { timeoutMs: 15_000 });
 * const { preimage } = await wallet.pay('lnbcrt10u1p…');
 * await wallet.close();
 */
export async function connect(uri: string, options: Options = {}): Promise<Nwc> {
  const client = new Client(parseUri(uri), options);
  try {
    await client.start();
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}
