/**
 * The one interface the server and the client use to reach Lightning: create and watch invoices, pay,
 * and read node state. LND (REST), Core Lightning (clnrest), phoenixd, LNbits and NWC implement it,
 * and the devnet answers each of their APIs, so the same code runs against a real node and the devnet.
 *
 * Hashes and preimages are 32-byte `Uint8Array`s; amounts are millisatoshis as `bigint`.
 *
 * @example
 * const backend = await Lightning.connect('lnd://127.0.0.1:8080?macaroon=…&cert=/path/tls.cert');
 * const { paymentRequest, paymentHash } = await backend.createInvoice({ amountMsat: 21_000n, memo: 'api call' });
 * const settled = await backend.waitInvoice(paymentHash, { timeoutMs: 60_000 });
 */
import { BackendError } from '../Errors.js';

export type Network = 'mainnet' | 'testnet' | 'signet' | 'regtest' | 'simnet';

export interface NodeInfo {
  /** 33-byte compressed public key, hex; undefined where the wallet does not expose one (LNbits). */
  readonly pubkey: string | undefined;
  readonly alias: string | undefined;
  readonly network: Network;
  readonly blockHeight: number | undefined;
}

export interface CreateInvoiceRequest {
  readonly amountMsat: bigint;
  readonly memo?: string;
  /** Seconds; the backend's default when omitted. */
  readonly expirySeconds?: number;
  /** A caller-chosen preimage, where the backend supports it (LND, CLN); others throw L402_BACKEND_CONFIG. */
  readonly preimage?: Uint8Array;
}

export interface CreatedInvoice {
  readonly paymentRequest: string;
  readonly paymentHash: Uint8Array;
}

export type InvoiceState = 'open' | 'settled' | 'expired' | 'canceled';

export interface InvoiceStatus {
  readonly paymentHash: Uint8Array;
  readonly state: InvoiceState;
  readonly amountMsat: bigint | undefined;
  /** What was received; set once settled. */
  readonly amountReceivedMsat: bigint | undefined;
  /** Unix seconds; set once settled. */
  readonly settledAt: number | undefined;
  /** Set once settled, where the backend reports it. */
  readonly preimage: Uint8Array | undefined;
}

export interface PayRequest {
  /**
   * Fee limit. Best effort: LND and Core Lightning enforce it; phoenixd, LNbits and NWC have no such
   * parameter, so their wallet's own limit applies.
   */
  readonly maxFeeMsat?: bigint;
  /** How long to wait for an outcome before asking the node for the payment's status. */
  readonly timeoutMs?: number;
  /** For zero-amount invoices only. */
  readonly amountMsat?: bigint;
  readonly signal?: AbortSignal;
}

export interface PaymentResult {
  readonly paymentHash: Uint8Array;
  readonly preimage: Uint8Array;
  readonly amountMsat: bigint;
  readonly feeMsat: bigint;
}

export type PaymentState = 'in-flight' | 'succeeded' | 'failed' | 'unknown';

export interface PaymentStatus {
  readonly paymentHash: Uint8Array;
  readonly state: PaymentState;
  /** Set when succeeded. */
  readonly preimage: Uint8Array | undefined;
  readonly amountMsat: bigint | undefined;
  readonly feeMsat: bigint | undefined;
  /** The node's reason, when failed. */
  readonly failure: string | undefined;
}

/**
 * The status of a payment the wallet never made, or cannot tell about.
 *
 * @example
 * if (record === undefined) return unknownPayment(paymentHash);
 */
export function unknownPayment(paymentHash: Uint8Array): PaymentStatus {
  return {
    paymentHash,
    state: 'unknown',
    preimage: undefined,
    amountMsat: undefined,
    feeMsat: undefined,
    failure: undefined,
  };
}

export interface Balance {
  /** What this wallet can send now. */
  readonly spendableMsat: bigint;
  /** What it can receive now, where known. */
  readonly receivableMsat: bigint | undefined;
}

/**
 * A Lightning wallet. Every method throws {@link BackendError} on failure, never a raw network error.
 * `pay` never pays twice: it asks the node for the payment's status by hash before sending, and
 * after a timeout it asks again rather than retrying (see {@link payOnce}).
 */
export interface Backend {
  /** `lnd`, `cln`, `phoenixd`, `lnbits` or `nwc`. */
  readonly kind: string;
  info(): Promise<NodeInfo>;
  createInvoice(request: CreateInvoiceRequest): Promise<CreatedInvoice>;
  lookupInvoice(paymentHash: Uint8Array): Promise<InvoiceStatus>;
  /** Resolves when the invoice is settled, expired or canceled, or rejects with L402_BACKEND_TIMEOUT. */
  waitInvoice(
    paymentHash: Uint8Array,
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<InvoiceStatus>;
  pay(paymentRequest: string, request?: PayRequest): Promise<PaymentResult>;
  lookupPayment(paymentHash: Uint8Array): Promise<PaymentStatus>;
  balance(): Promise<Balance>;
  /** Releases connections and subscriptions. */
  close(): Promise<void>;
}

/** The two calls {@link payOnce} needs from a backend implementation. */
export interface PaySteps {
  readonly kind: string;
  lookupPayment(paymentHash: Uint8Array): Promise<PaymentStatus>;
  /** Sends the payment and waits for its outcome; may throw on timeout or a lost connection. */
  send(paymentRequest: string, paymentHash: Uint8Array, request: PayRequest): Promise<PaymentResult>;
}

const IN_FLIGHT_POLL_MS = 250;

/** Waits `ms`, or rejects at once when `signal` aborts; never leaves a listener on a long-lived signal. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const abort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', abort, { once: true });
  });

function settled(status: PaymentStatus): PaymentResult | undefined {
  if (status.state !== 'succeeded' || status.preimage === undefined) return undefined;
  return {
    paymentHash: status.paymentHash,
    preimage: status.preimage,
    amountMsat: status.amountMsat ?? 0n,
    feeMsat: status.feeMsat ?? 0n,
  };
}

/**
 * Pays at most once. Before sending it asks the node whether this payment hash was already paid (then
 * returns that result) or is in flight (then waits for it); after a send that timed out or lost its
 * connection it asks again instead of retrying. Only a payment the node reports as failed, or never
 * saw, is sent.
 */
export async function payOnce(
  steps: PaySteps,
  paymentRequest: string,
  paymentHash: Uint8Array,
  request: PayRequest = {},
): Promise<PaymentResult> {
  const deadline = Date.now() + (request.timeoutMs ?? 60_000);
  const awaitOutcome = async (): Promise<PaymentResult> => {
    for (;;) {
      const status = await steps.lookupPayment(paymentHash);
      const done = settled(status);
      if (done !== undefined) return done;
      if (status.state === 'failed') {
        throw new BackendError(
          'L402_PAYMENT_FAILED',
          steps.kind,
          `payment failed: ${status.failure ?? 'no reason given'}`,
        );
      }
      if (status.state !== 'in-flight') {
        throw new BackendError(
          'L402_BACKEND_PROTOCOL',
          steps.kind,
          'node lost track of a payment it was sending',
        );
      }
      if (Date.now() >= deadline) {
        throw new BackendError(
          'L402_PAYMENT_IN_FLIGHT',
          steps.kind,
          'payment is still in flight; ask again later, do not pay again',
        );
      }
      await sleep(IN_FLIGHT_POLL_MS, request.signal);
    }
  };

  const before = await steps.lookupPayment(paymentHash);
  const already = settled(before);
  if (already !== undefined) return already;
  if (before.state === 'in-flight') return awaitOutcome();
  try {
    return await steps.send(paymentRequest, paymentHash, {
      ...request,
      timeoutMs: Math.max(1, deadline - Date.now()),
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    // A definite refusal from the node is final; anything else may have left a payment in flight.
    if (
      code !== 'L402_BACKEND_TIMEOUT' &&
      code !== 'L402_BACKEND_UNREACHABLE' &&
      code !== 'L402_BACKEND_PROTOCOL' &&
      code !== 'L402_PAYMENT_IN_FLIGHT'
    ) {
      throw error;
    }
    const after = await steps.lookupPayment(paymentHash).catch(() => undefined);
    if (after === undefined || after.state === 'unknown') throw error;
    return awaitOutcome();
  }
}
