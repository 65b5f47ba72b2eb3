/**
 * LND over its REST API (grpc-gateway), as a {@link Backend}: HTTPS pinned to the node's `tls.cert`,
 * the macaroon in `Grpc-Metadata-macaroon`, invoices through `/v1/invoices`, settlement through the
 * `/v1/invoices/subscribe` stream, payments through `/v2/router/send` and `/v2/router/track`.
 *
 * The macaroon decides what works: `invoice.macaroon` creates, reads and watches invoices (a server
 * needs no more); paying needs `admin.macaroon` or one baked with `offchain:read` and `offchain:write`.
 * LND's default routing fee limit for a payment is zero, so pass `maxFeeMsat` to pay through nodes that
 * charge a fee.
 *
 * @example
 * const lnd = await Lnd.connect({ url: 'https://127.0.0.1:8080', macaroon: { path: 'invoice.macaroon' }, cert: { path: 'tls.cert' } });
 * const { paymentRequest, paymentHash } = await lnd.createInvoice({ amountMsat: 21_000n, memo: 'one call' });
 * const status = await lnd.waitInvoice(paymentHash, { timeoutMs: 60_000 });
 * await lnd.close();
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { type BackendCode, BackendError } from '../Errors.js';
import * as Invoice from '../Invoice.js';
import { equalBytes, fromBase64, toBase64, toBase64Url, toHex } from '../internal/bytes.js';
import { type Fields, proven, RestClient } from '../internal/restClient.js';
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
  unknownPayment,
} from './Backend.js';

/** Where an LND node's REST API is and how to authenticate to it. */
export interface ConnectOptions {
  /** LND's REST listener, `https://host:port` (port 8080 by default in LND), optionally with a path prefix. */
  readonly url: string;
  /** The macaroon: hex of the file's bytes, or the file's path. */
  readonly macaroon: string | { readonly path: string };
  /**
   * LND's `tls.cert` (PEM), or its path: the only certificate trusted for this node. Omit only for a
   * node behind a publicly trusted certificate.
   */
  readonly cert?: string | { readonly path: string };
  /** Limit for each call to answer (connect, TLS, headers, body). Defaults to 30 000. */
  readonly timeoutMs?: number;
  /** The clock invoice expiry is judged by (unix ms). Defaults to `Date.now`. */
  readonly now?: () => number;
}

const KIND = 'lnd';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_WAIT_MS = 60_000;
/** How often waited-on invoices are looked up while the invoice stream is not (yet) known to work. */
const POLL_MS = 1_000;
const MAX_TIMER_MS = 2_147_483_647;

/**
 * LND reports macaroon failures as gRPC `Unknown` (HTTP 500): only the message tells them apart
 * (`macaroons/service.go`, go-macaroon-bakery's checker).
 */
const MACAROON_FAILURE =
  /^(expected \d+ macaroons?, got \d+|verification failed|permission denied|cannot get macaroon|unknown macaroon version|invalid ID|encoding\/hex|cannot unmarshal macaroon|macaroon)/i;

/** Node's codes for a certificate chain or name that does not verify. */
const CERTIFICATE_FAILURES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const NETWORKS: Readonly<Record<string, Network>> = {
  mainnet: 'mainnet',
  testnet: 'testnet',
  testnet3: 'testnet',
  testnet4: 'testnet',
  signet: 'signet',
  regtest: 'regtest',
  simnet: 'simnet',
};

/** A gRPC status as grpc-gateway sends it. */
interface RpcStatus {
  readonly code: number;
  readonly message: string;
}

/** For errors raised before a backend (and its credentials) exist: they hold no secret. */
const fail = (code: BackendCode, message: string, cause?: unknown) =>
  new BackendError(code, KIND, message, cause === undefined ? undefined : { cause });

/** Abort reasons of our own, told apart from a caller's. */
const TIMED_OUT = new Error('timed out');
const STOPPED = new Error('stopped');
const CLOSED = new Error('closed');

// ---------------------------------------------------------------------------------------------------
// Reading LND's JSON: snake_case, 64-bit integers as strings, bytes as base64 (hashes of payments as hex).

/** A `bytes` field: standard base64 of exactly `length` bytes. */
function base64Bytes(answer: Fields, key: string, length: number): Uint8Array {
  const text = answer.string(key);
  let value: Uint8Array | undefined;
  try {
    value = fromBase64(text, key);
  } catch {
    value = undefined;
  }
  if (value?.length !== length) {
    throw fail('L402_BACKEND_PROTOCOL', `${key}: expected ${length} bytes of base64 in LND's answer`);
  }
  return value;
}

function rpcStatus(value: unknown): RpcStatus | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { code, message } = value as Record<string, unknown>;
  return typeof code === 'number' && typeof message === 'string' ? { code, message } : undefined;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The invoice as the {@link Backend} reports it. LND cancels an invoice at expiry; we call that expired. */
function invoiceStatus(invoice: Fields, nowSeconds: number): InvoiceStatus {
  const state = invoice.string('state');
  const expired = nowSeconds >= Number(invoice.integer('creation_date') + invoice.integer('expiry'));
  let mapped: InvoiceState;
  if (state === 'SETTLED') mapped = 'settled';
  else if (state === 'CANCELED') mapped = expired ? 'expired' : 'canceled';
  else if (state === 'OPEN') mapped = expired ? 'expired' : 'open';
  // A hold invoice with its HTLCs held: neither settled nor over, whatever the clock says.
  else if (state === 'ACCEPTED') mapped = 'open';
  else throw fail('L402_BACKEND_PROTOCOL', `LND reported an unknown invoice state ${JSON.stringify(state)}`);
  const settled = mapped === 'settled';
  const amountMsat = invoice.integer('value_msat');
  return {
    paymentHash: base64Bytes(invoice, 'r_hash', 32),
    state: mapped,
    amountMsat: amountMsat === 0n ? undefined : amountMsat,
    amountReceivedMsat: settled ? invoice.integer('amt_paid_msat') : undefined,
    settledAt: settled ? Number(invoice.integer('settle_date')) : undefined,
    preimage: settled ? base64Bytes(invoice, 'r_preimage', 32) : undefined,
  };
}

const terminal = (status: InvoiceStatus) => status.state !== 'open';

function paymentStatus(payment: Fields, paymentHash: Uint8Array): PaymentStatus {
  const status = payment.string('status');
  const state =
    status === 'SUCCEEDED'
      ? 'succeeded'
      : status === 'FAILED'
        ? 'failed'
        : status === 'IN_FLIGHT' || status === 'INITIATED'
          ? 'in-flight'
          : 'unknown';
  return {
    paymentHash,
    state,
    preimage: state === 'succeeded' ? payment.bytes32('payment_preimage') : undefined,
    amountMsat: payment.integer('value_msat'),
    feeMsat: payment.integer('fee_msat'),
    failure: state === 'failed' ? payment.string('failure_reason') : undefined,
  };
}

/** What a FAILED payment's `failure_reason` means for the caller. */
function paymentFailure(reason: string): BackendError {
  switch (reason) {
    case 'FAILURE_REASON_NO_ROUTE':
      return fail('L402_PAYMENT_NO_ROUTE', `no route to the payee was found (${reason})`);
    case 'FAILURE_REASON_INSUFFICIENT_BALANCE':
      return fail(
        'L402_PAYMENT_INSUFFICIENT_BALANCE',
        `the node's channels cannot send this much (${reason})`,
      );
    case 'FAILURE_REASON_INCORRECT_PAYMENT_DETAILS':
      return fail(
        'L402_PAYMENT_FAILED',
        `the payee refused the payment: unknown or expired invoice, or wrong amount (${reason})`,
      );
    case 'FAILURE_REASON_TIMEOUT':
      return fail('L402_PAYMENT_FAILED', `no route succeeded before the payment timed out (${reason})`);
    default:
      return fail('L402_PAYMENT_FAILED', `the payment failed (${reason})`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Configuration.

async function readText(
  source: string | { readonly path: string },
  what: string,
): Promise<string | Uint8Array> {
  if (typeof source === 'string') return source;
  const path = source.path.startsWith('~/') ? `${homedir()}${source.path.slice(1)}` : source.path;
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw fail(
      'L402_BACKEND_CONFIG',
      `cannot read the ${what} file ${path}: ${(error as Error).message}`,
      error,
    );
  }
}

async function macaroonHex(source: ConnectOptions['macaroon']): Promise<string> {
  const value = await readText(source, 'macaroon');
  if (value instanceof Uint8Array) return toHex(value);
  const trimmed = value.trim();
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(trimmed))
    throw fail('L402_BACKEND_CONFIG', 'the macaroon must be hex (or a { path } to the file)');
  return trimmed.toLowerCase();
}

async function certificates(
  source: ConnectOptions['cert'],
): Promise<{ pem: string; ders: Uint8Array[] } | undefined> {
  if (source === undefined) return undefined;
  const value = await readText(source, 'certificate');
  const pem = typeof value === 'string' ? value : new TextDecoder().decode(value);
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw fail('L402_BACKEND_CONFIG', 'the certificate is not PEM (no BEGIN CERTIFICATE block)');
  try {
    return { pem, ders: blocks.map((block) => new Uint8Array(new X509Certificate(block).raw)) };
  } catch (error) {
    throw fail('L402_BACKEND_CONFIG', `the certificate cannot be read: ${(error as Error).message}`, error);
  }
}

function timeLimit(value: number | undefined, fallback: number, what: string): number {
  const ms = value ?? fallback;
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > MAX_TIMER_MS) {
    throw fail(
      'L402_BACKEND_CONFIG',
      `${what} must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}`,
    );
  }
  return ms;
}

// ---------------------------------------------------------------------------------------------------
// The backend.

interface Waiter {
  readonly hash: string;
  readonly addIndex: bigint;
  /** Look the invoice up again: something may have changed unseen. */
  check(): void;
  /** The invoice as a stream line carried it. */
  update(invoice: Fields): void;
  fail(error: BackendError): void;
}

interface Connection {
  readonly origin: string;
  /** A path prefix in front of LND's paths (a reverse proxy's), or ''. */
  readonly base: string;
  readonly macaroon: string;
  /** Whether a certificate was pinned, for what a failed TLS handshake means. */
  readonly pinned: boolean;
  readonly agent: Agent;
  readonly timeoutMs: number;
  readonly now: () => number;
}

class LndBackend implements Backend {
  readonly kind = KIND;
  /** Error messages with the macaroon blanked out, and checked reads of answers. */
  private readonly rest: RestClient;
  private readonly closing = new AbortController();
  private readonly invoices: InvoiceStream;

  constructor(private readonly connection: Connection) {
    this.rest = new RestClient(KIND, `${connection.origin}${connection.base}`, [connection.macaroon]);
    this.invoices = new InvoiceStream(this);
  }

  async info(): Promise<NodeInfo> {
    const info = await this.call('GET', '/v1/getinfo');
    const [chain] = info.list('chains');
    const network = chain && NETWORKS[chain.string('network')];
    if (!network) throw this.rest.error('L402_BACKEND_PROTOCOL', 'LND did not say which network it is on');
    return {
      pubkey: info.string('identity_pubkey'),
      alias: info.string('alias'),
      network,
      blockHeight: Number(info.integer('block_height')),
    };
  }

  async createInvoice(request: CreateInvoiceRequest): Promise<CreatedInvoice> {
    if (typeof request.amountMsat !== 'bigint' || request.amountMsat < 0n) {
      throw this.rest.error('L402_BACKEND_CONFIG', 'amountMsat must be a bigint ≥ 0');
    }
    if (request.preimage !== undefined && request.preimage.length !== 32) {
      throw this.rest.error('L402_BACKEND_CONFIG', 'preimage must be 32 bytes');
    }
    const added = await this.call('POST', '/v1/invoices', {
      value_msat: String(request.amountMsat),
      memo: request.memo ?? '',
      ...(request.expirySeconds !== undefined && { expiry: String(request.expirySeconds) }),
      ...(request.preimage && { r_preimage: toBase64(request.preimage) }),
    });
    const paymentHash = base64Bytes(added, 'r_hash', 32);
    const paymentRequest = added.string('payment_request');
    let decoded: Invoice.Invoice;
    try {
      decoded = Invoice.decode(paymentRequest);
    } catch (error) {
      throw this.rest.error(
        'L402_BACKEND_PROTOCOL',
        'LND returned a payment request that does not decode',
        error,
      );
    }
    // The hash is what a token is bound to: the invoice itself must carry it.
    if (!equalBytes(decoded.paymentHash, paymentHash)) {
      throw this.rest.error(
        'L402_BACKEND_PROTOCOL',
        "LND's r_hash differs from the payment hash in its payment request",
      );
    }
    return { paymentRequest, paymentHash };
  }

  async lookupInvoice(paymentHash: Uint8Array): Promise<InvoiceStatus> {
    return invoiceStatus(await this.getInvoice(paymentHash), this.connection.now() / 1000);
  }

  async waitInvoice(
    paymentHash: Uint8Array,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<InvoiceStatus> {
    const timeoutMs = timeLimit(options.timeoutMs, DEFAULT_WAIT_MS, 'timeoutMs');
    const { signal } = options;
    signal?.throwIfAborted();
    const first = await this.getInvoice(paymentHash);
    const status = invoiceStatus(first, this.connection.now() / 1000);
    if (terminal(status)) return status;
    const hash = toHex(paymentHash);
    const expiresAtMs = Number(first.integer('creation_date') + first.integer('expiry')) * 1000;

    return new Promise<InvoiceStatus>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      let done = false;
      const finish = (error: unknown, result?: InvoiceStatus) => {
        if (done) return;
        done = true;
        for (const timer of timers) clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        unwatch();
        if (result) resolve(result);
        else reject(error);
      };
      const consider = (invoice: Fields) => {
        try {
          const now = invoiceStatus(invoice, this.connection.now() / 1000);
          if (terminal(now)) finish(undefined, now);
        } catch (error) {
          finish(error);
        }
      };
      const check = () => {
        this.getInvoice(paymentHash).then(consider, (error: BackendError) => {
          // A node that is down or slow is tried again when the stream comes back; anything else is final.
          if (error.code !== 'L402_BACKEND_UNREACHABLE' && error.code !== 'L402_BACKEND_TIMEOUT')
            finish(error);
        });
      };
      const aborted = () => finish(signal?.reason);
      const unwatch = this.invoices.add({
        hash,
        addIndex: first.integer('add_index'),
        check,
        update: consider,
        fail: (error) => finish(error),
      });
      signal?.addEventListener('abort', aborted, { once: true });
      if (signal?.aborted) aborted();
      const expire = () =>
        finish(
          this.rest.error('L402_BACKEND_TIMEOUT', `invoice ${hash} was still open after ${timeoutMs} ms`),
        );
      timers.push(setTimeout(expire, timeoutMs));
      // LND's invoice stream does not carry cancellations, so expiry is seen by looking again.
      const untilExpiry = expiresAtMs - this.connection.now() + 1;
      if (untilExpiry < timeoutMs) timers.push(setTimeout(check, Math.max(0, untilExpiry)));
      // The invoice may have settled between the first look and the subscription.
      check();
    });
  }

  async pay(paymentRequest: string, request: PayRequest = {}): Promise<PaymentResult> {
    let decoded: Invoice.Invoice;
    try {
      decoded = Invoice.decode(paymentRequest);
    } catch (error) {
      throw this.rest.error('L402_PAYMENT_FAILED', `cannot pay: ${(error as Error).message}`, error);
    }
    return payOnce(
      {
        kind: KIND,
        lookupPayment: (hash) => this.lookupPayment(hash),
        send: (text, hash, options) => this.send(text, hash, options),
      },
      paymentRequest,
      decoded.paymentHash,
      request,
    );
  }

  async lookupPayment(paymentHash: Uint8Array): Promise<PaymentStatus> {
    let status: PaymentStatus | undefined;
    try {
      // TrackPaymentV2 sends the current state first, then waits for changes: one line is enough.
      await this.stream(
        'GET',
        `/v2/router/track/${toBase64Url(paymentHash)}=?no_inflight_updates=false`,
        undefined,
        {
          paying: false,
          onResult: (payment) => {
            status = paymentStatus(payment, paymentHash);
            return true;
          },
        },
      );
    } catch (error) {
      if ((error as BackendError).code !== 'L402_BACKEND_NOT_FOUND') throw error;
      return unknownPayment(paymentHash);
    }
    if (!status) throw this.rest.error('L402_BACKEND_PROTOCOL', 'the payment stream ended without a state');
    return status;
  }

  async balance(): Promise<Balance> {
    // LND's ChannelBalance counts channels whose peer is offline too: only active ones can send now.
    const channels = (await this.call('GET', '/v1/channels?active_only=true')).list('channels');
    let spendableMsat = 0n;
    let receivableMsat = 0n;
    for (const channel of channels) {
      spendableMsat += channel.integer('local_balance') * 1000n;
      receivableMsat += channel.integer('remote_balance') * 1000n;
    }
    return { spendableMsat, receivableMsat };
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.invoices.stop(this.rest.error('L402_BACKEND_UNREACHABLE', 'this LND backend was closed'));
    this.closing.abort(CLOSED);
    await this.connection.agent.destroy();
  }

  /** GET /v1/invoice/{hex}: the invoice as LND's JSON. */
  getInvoice(paymentHash: Uint8Array): Promise<Fields> {
    if (!(paymentHash instanceof Uint8Array) || paymentHash.length !== 32) {
      return Promise.reject(this.rest.error('L402_BACKEND_CONFIG', 'a payment hash is 32 bytes'));
    }
    return this.call('GET', `/v1/invoice/${toHex(paymentHash)}`);
  }

  /** Sends a payment with SendPaymentV2 and reads its updates until it succeeds or fails. */
  private async send(
    paymentRequest: string,
    paymentHash: Uint8Array,
    request: PayRequest,
  ): Promise<PaymentResult> {
    const timeoutMs = timeLimit(request.timeoutMs, DEFAULT_WAIT_MS, 'timeoutMs');
    let outcome: PaymentResult | BackendError | undefined;
    const body = {
      payment_request: paymentRequest,
      timeout_seconds: Math.max(1, Math.ceil(timeoutMs / 1000)),
      no_inflight_updates: false,
      ...(request.maxFeeMsat !== undefined && { fee_limit_msat: String(request.maxFeeMsat) }),
      ...(request.amountMsat !== undefined && { amt_msat: String(request.amountMsat) }),
    };
    await this.stream('POST', '/v2/router/send', body, {
      paying: true,
      signals: [AbortSignal.timeout(timeoutMs), ...(request.signal ? [request.signal] : [])],
      onResult: (payment) => {
        const status = paymentStatus(payment, paymentHash);
        if (status.state === 'failed') outcome = paymentFailure(status.failure ?? '');
        else if (status.state === 'succeeded') {
          outcome = {
            paymentHash,
            preimage: proven(this.rest, paymentHash, status.preimage!),
            amountMsat: status.amountMsat ?? 0n,
            feeMsat: status.feeMsat ?? 0n,
          };
        }
        return outcome !== undefined;
      },
    });
    if (outcome === undefined)
      throw this.rest.error('L402_BACKEND_PROTOCOL', 'the payment stream ended before the payment did');
    if (outcome instanceof BackendError) throw outcome;
    return outcome;
  }

  /** A unary call: one JSON object within the time limit. */
  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Fields> {
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(TIMED_OUT), this.connection.timeoutMs);
    const signal = AbortSignal.any([timer.signal, this.closing.signal]);
    try {
      const response = await this.request(method, path, body, signal);
      const text = await response.body.text();
      if (response.statusCode !== 200) throw this.refusal(response.statusCode, parse(text), text, false);
      return this.rest.fields(
        this.rest.json({ status: response.statusCode, text }),
        method === 'GET' ? path : `${method} ${path}`,
      );
    } catch (error) {
      throw this.failure(error, signal);
    } finally {
      clearTimeout(timeout);
    }
  }

  /**
   * A server stream: waits (within the time limit) for its first line, then hands each line's
   * `result` to `onResult` until it returns true, the stream ends, or a signal aborts it.
   */
  async stream(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    options: { paying: boolean; signals?: readonly AbortSignal[]; onResult: (result: Fields) => boolean },
  ): Promise<void> {
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(TIMED_OUT), this.connection.timeoutMs);
    const signal = AbortSignal.any([timer.signal, this.closing.signal, ...(options.signals ?? [])]);
    try {
      const response = await this.request(method, path, body, signal);
      if (response.statusCode !== 200) {
        const text = await response.body.text();
        throw this.refusal(response.statusCode, parse(text), text, options.paying);
      }
      clearTimeout(timeout);
      const decoder = new TextDecoder();
      let pending = '';
      const line = (text: string): boolean => {
        if (text.trim() === '') return false;
        const message = this.rest.fields(this.rest.json({ status: 200, text }), 'a stream line');
        if (message.has('error')) throw this.refusal(200, message.value, text, options.paying);
        return options.onResult(message.object('result'));
      };
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        pending += decoder.decode(chunk, { stream: true });
        for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
          const text = pending.slice(0, end);
          pending = pending.slice(end + 1);
          if (line(text)) return; // leaving the loop destroys the body and ends the request
        }
      }
      line(pending + decoder.decode());
    } catch (error) {
      throw this.failure(error, signal);
    } finally {
      clearTimeout(timeout);
    }
  }

  /**
   * Sends a request and resolves with its response once the headers arrive, or rejects with the
   * signal's reason as soon as it aborts: undici would let a connection attempt run to its own timeout.
   */
  private request(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    if (this.closing.signal.aborted) return Promise.reject(CLOSED);
    const { agent, origin, base, macaroon } = this.connection;
    const sent = agent.request({
      origin,
      path: `${base}${path}`,
      method,
      headers: {
        'grpc-metadata-macaroon': macaroon,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal,
      // Our own timers bound every call; undici's would cut long streams.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    return new Promise((resolve, reject) => {
      const aborted = () => reject(signal.reason);
      signal.addEventListener('abort', aborted, { once: true });
      sent.then(
        (response) => {
          signal.removeEventListener('abort', aborted);
          if (signal.aborted) response.body.destroy();
          else resolve(response);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', aborted);
          reject(error);
        },
      );
    });
  }

  /** An error answer (or an `{"error": …}` stream line) as a BackendError. */
  private refusal(status: number, json: unknown, text: string, paying: boolean): BackendError {
    const { origin } = this.connection;
    const rpc = rpcStatus(json) ?? rpcStatus((json as { error?: unknown } | undefined)?.error);
    const error = (code: BackendCode, message: string) => this.rest.error(code, message);
    if (!rpc) {
      if (status === 401 || status === 403)
        return error('L402_BACKEND_AUTH', `${origin} refused the credentials (HTTP ${status})`);
      if (status === 502 || status === 503) {
        return error(
          'L402_BACKEND_UNREACHABLE',
          `${origin} is up, but LND behind it is not (HTTP ${status})`,
        );
      }
      if (status === 504)
        return error('L402_BACKEND_TIMEOUT', `${origin} timed out waiting for LND (HTTP ${status})`);
      const snippet = JSON.stringify(this.rest.redact(text, 120));
      return error(
        'L402_BACKEND_PROTOCOL',
        `${origin} answered HTTP ${status} with something that is not an LND error: ${snippet}`,
      );
    }
    const { code, message } = rpc;
    if (
      status === 401 ||
      status === 403 ||
      code === 16 ||
      code === 7 ||
      (code === 2 && MACAROON_FAILURE.test(message))
    ) {
      return error('L402_BACKEND_AUTH', `LND refused the macaroon: ${message}`);
    }
    if (code === 5) return error('L402_BACKEND_NOT_FOUND', `LND: ${message}`);
    if (code === 4) return error('L402_BACKEND_TIMEOUT', `LND: ${message}`);
    if (code === 14) return error('L402_BACKEND_UNREACHABLE', `LND is unavailable: ${message}`);
    if (paying) {
      if (/invoice expired/i.test(message))
        return error('L402_PAYMENT_EXPIRED', `the invoice has expired: ${message}`);
      // "invoice is already paid" / "payment is in transition": this node paid it, or is paying it (a
      // race with another caller). payOnce then looks the payment up and waits for its outcome.
      if (code === 6) {
        return error(
          'L402_PAYMENT_IN_FLIGHT',
          `LND already has a payment of this invoice (${message}); ask again later, do not pay again`,
        );
      }
      if (/insufficient (local )?balance/i.test(message))
        return error('L402_PAYMENT_INSUFFICIENT_BALANCE', `LND: ${message}`);
      return error('L402_PAYMENT_FAILED', `LND refused the payment: ${message}`);
    }
    return error(
      'L402_BACKEND_PROTOCOL',
      `LND refused the call: ${message} (gRPC code ${code}, HTTP ${status})`,
    );
  }

  /** Any error of a call as a BackendError, or a caller's own abort reason as it is. */
  private failure(error: unknown, signal: AbortSignal): unknown {
    if (error instanceof BackendError) return error;
    const { origin, pinned } = this.connection;
    const closed = () => this.rest.error('L402_BACKEND_UNREACHABLE', 'this LND backend was closed');
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      if (reason === TIMED_OUT || (reason as Error)?.name === 'TimeoutError') {
        return this.rest.error('L402_BACKEND_TIMEOUT', `${origin} did not answer within the time limit`);
      }
      return reason === CLOSED ? closed() : reason;
    }
    if (error === CLOSED) return closed();
    let code: string | undefined;
    for (let e: unknown = error; e && !code; e = (e as { cause?: unknown }).cause)
      code = (e as { code?: string }).code;
    if (code && CERTIFICATE_FAILURES.has(code)) {
      const what = pinned
        ? "the node's TLS certificate did not match the pinned certificate"
        : "the node's TLS certificate is not trusted (pass LND's tls.cert as `cert`)";
      return this.rest.error('L402_BACKEND_UNREACHABLE', `${what} (${code}) at ${origin}`, error);
    }
    if (code === 'ECONNREFUSED') {
      return this.rest.error(
        'L402_BACKEND_UNREACHABLE',
        `nothing is listening at ${origin} (connection refused)`,
        error,
      );
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return this.rest.error('L402_BACKEND_UNREACHABLE', `cannot resolve the host of ${origin}`, error);
    }
    if (
      code === 'UND_ERR_CONNECT_TIMEOUT' ||
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_BODY_TIMEOUT'
    ) {
      return this.rest.error('L402_BACKEND_TIMEOUT', `${origin} did not answer in time (${code})`, error);
    }
    if (code?.startsWith('ERR_SSL') || code === 'EPROTO') {
      return this.rest.error(
        'L402_BACKEND_UNREACHABLE',
        `the TLS handshake with ${origin} failed (${code}): is it LND's REST port?`,
        error,
      );
    }
    const detail = this.rest.redact(String((error as Error)?.message ?? error), 200);
    return this.rest.error(
      'L402_BACKEND_UNREACHABLE',
      `the connection to ${origin} failed: ${detail}`,
      error,
    );
  }
}

/**
 * One `/v1/invoices/subscribe` stream shared by every waitInvoice of a backend. It opens with
 * `add_index` just below the oldest waited-on invoice, so LND first replays the waited-on invoices as
 * they are now. Until a first line proves LND has the subscription (and whenever the stream is down),
 * each waited-on invoice is looked up once a second; a dropped stream is reopened as often.
 */
class InvoiceStream {
  private readonly waiters = new Set<Waiter>();
  private running: AbortController | undefined;
  private polling: NodeJS.Timeout | undefined;

  constructor(private readonly backend: LndBackend) {}

  add(waiter: Waiter): () => void {
    this.waiters.add(waiter);
    if (!this.running) this.open();
    return () => {
      this.waiters.delete(waiter);
      if (this.waiters.size === 0) this.stop();
    };
  }

  /** Stops the stream; with an error, every waiter fails with it. */
  stop(error?: BackendError): void {
    if (error) for (const waiter of [...this.waiters]) waiter.fail(error);
    this.running?.abort(STOPPED);
    this.running = undefined;
    clearInterval(this.polling);
    this.polling = undefined;
  }

  private open(): void {
    const controller = new AbortController();
    this.running = controller;
    let from = -1n;
    for (const waiter of this.waiters)
      if (from < 0n || waiter.addIndex - 1n < from) from = waiter.addIndex - 1n;
    this.poll();
    this.backend
      .stream('GET', `/v1/invoices/subscribe?add_index=${from < 0n ? 0n : from}`, undefined, {
        paying: false,
        signals: [controller.signal],
        onResult: (invoice) => {
          if (this.polling) {
            // LND has the subscription from here on: one last look covers whatever changed before.
            clearInterval(this.polling);
            this.polling = undefined;
            for (const waiter of this.waiters) waiter.check();
          }
          const hash = toHex(base64Bytes(invoice, 'r_hash', 32));
          for (const waiter of this.waiters) if (waiter.hash === hash) waiter.update(invoice);
          return false;
        },
      })
      .then(
        () => this.dropped(controller),
        (error: unknown) => {
          if (controller.signal.aborted) return;
          const code = (error as BackendError).code;
          if (code === 'L402_BACKEND_AUTH' || code === 'L402_BACKEND_PROTOCOL')
            this.stop(error as BackendError);
          else this.dropped(controller);
        },
      );
  }

  private poll(): void {
    clearInterval(this.polling);
    this.polling = setInterval(() => {
      for (const waiter of this.waiters) waiter.check();
      if (!this.running) this.open();
    }, POLL_MS);
  }

  /** The stream ended or broke: poll, and reopen it at the next tick of the poll. */
  private dropped(controller: AbortController): void {
    if (this.running !== controller) return;
    this.running = undefined;
    if (this.waiters.size > 0) this.poll();
  }
}

/**
 * A {@link Backend} for an LND node's REST API. Reads the macaroon and certificate files when given
 * paths; connects lazily, on the first call.
 *
 * @example
 * const lnd = await Lnd.connect({
 *   url: 'https://127.0.0.1:8080',
 *   macaroon: { path: '~/.lnd/data/chain/bitcoin/mainnet/admin.macaroon' },
 *   cert: { path: '~/.lnd/tls.cert' },
 * });
 * const { preimage } = await lnd.pay(invoice, { maxFeeMsat: 10_000n });
 */
export async function connect(options: ConnectOptions): Promise<Backend> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (error) {
    throw fail('L402_BACKEND_CONFIG', `not a URL: ${JSON.stringify(options.url)}`, error);
  }
  if (url.protocol !== 'https:')
    throw fail('L402_BACKEND_CONFIG', `LND's REST API is served over HTTPS, not ${url.protocol}`);
  if (url.search || url.hash || url.username || url.password) {
    throw fail('L402_BACKEND_CONFIG', 'the LND URL takes no query, fragment or credentials');
  }
  const timeoutMs = timeLimit(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
  const macaroon = await macaroonHex(options.macaroon);
  const pinned = await certificates(options.cert);
  const agent = new Agent({
    connect: {
      // Connecting (TCP and TLS) is bounded like the rest of a call.
      timeout: timeoutMs,
      ...(pinned && {
        ca: pinned.pem,
        // The pin is the identity: a node presenting exactly the pinned certificate is the node,
        // whatever name it was reached by (LND's certificate names only the hosts it knew of).
        checkServerIdentity: (host: string, cert: PeerCertificate) =>
          pinned.ders.some((der) => equalBytes(der, cert.raw)) ? undefined : checkServerIdentity(host, cert),
      }),
    },
  });
  const base = url.pathname.replace(/\/+$/, '');
  return new LndBackend({
    origin: url.origin,
    base,
    macaroon,
    pinned: pinned !== undefined,
    agent,
    timeoutMs,
    now: options.now ?? Date.now,
  });
}

/**
 * A {@link Backend} from a connection URI: `lnd://host:port?macaroon=…&cert=…` (or lndconnect's
 * `lndconnect://`, same parameters). `macaroon` is hex or base64url; `cert` is a file path, or
 * base64url of the PEM or of the DER (lndconnect's form). The port defaults to 8080.
 *
 * @example
 * const lnd = await Lnd.fromUri('lnd://127.0.0.1:8080?macaroon=0201036c6e64…&cert=/home/me/.lnd/tls.cert');
 */
export async function fromUri(
  uri: string,
  options: Omit<ConnectOptions, 'url' | 'macaroon' | 'cert'> = {},
): Promise<Backend> {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (error) {
    throw fail('L402_BACKEND_CONFIG', 'not a valid lnd:// URI', error);
  }
  if (url.protocol !== 'lnd:' && url.protocol !== 'lndconnect:') {
    throw fail(
      'L402_BACKEND_CONFIG',
      `an LND URI starts with lnd:// or lndconnect://, not ${url.protocol}//`,
    );
  }
  const macaroonParam = url.searchParams.get('macaroon');
  if (!macaroonParam) throw fail('L402_BACKEND_CONFIG', 'the LND URI needs a macaroon parameter');
  const certParam = url.searchParams.get('cert');
  return connect({
    url: `https://${url.hostname}:${url.port || 8080}`,
    macaroon: /^(?:[0-9a-fA-F]{2})+$/.test(macaroonParam)
      ? macaroonParam
      : toHex(uriBytes(macaroonParam, 'macaroon')),
    ...(certParam && { cert: uriCert(certParam) }),
    ...options,
  });
}

function uriBytes(value: string, what: string): Uint8Array {
  try {
    return fromBase64(value, what);
  } catch (error) {
    throw fail('L402_BACKEND_CONFIG', `the ${what} in the LND URI is neither hex nor base64url`, error);
  }
}

/** A base64url value is the certificate itself (PEM text or DER); anything else is a path. */
function uriCert(value: string): string | { path: string } {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(value)) return { path: value };
  const decoded = uriBytes(value, 'cert');
  const text = new TextDecoder().decode(decoded);
  if (text.startsWith('-----BEGIN')) return text;
  const body = toBase64(decoded).replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`;
}
