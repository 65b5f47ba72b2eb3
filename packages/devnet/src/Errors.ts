/**
 * Typed errors. Everything the devnet throws or rejects with is a {@link DevnetError}: a stable `name`
 * per class and a stable `code` per cause, so callers (the wallet-API facades first of all) branch on
 * `code`, never on message text.
 *
 * @example
 * try {
 *   await payer.payInvoice(invoice);
 * } catch (e) {
 *   if (e instanceof Errors.PaymentError && e.code === 'DEVNET_NO_ROUTE') console.error(e.message);
 * }
 */
import type { Payment } from './Node.js';

/** Why a payment did not succeed. Also found in `Payment.failure.code` of a failed payment. */
export type PaymentCode =
  | 'DEVNET_INVALID_INVOICE'
  | 'DEVNET_INVOICE_EXPIRED'
  | 'DEVNET_AMOUNT_REQUIRED'
  | 'DEVNET_WRONG_AMOUNT'
  | 'DEVNET_SELF_PAYMENT'
  | 'DEVNET_ALREADY_PAID'
  | 'DEVNET_PAYMENT_IN_FLIGHT'
  | 'DEVNET_INSUFFICIENT_BALANCE'
  | 'DEVNET_NO_ROUTE'
  | 'DEVNET_PAYMENT_REJECTED'
  | 'DEVNET_TIMEOUT'
  | 'DEVNET_PAYMENT_FAILED';

/** Every stable error code, in one place. */
export type Code =
  | PaymentCode
  | 'DEVNET_INVALID_ARGUMENT'
  | 'DEVNET_NOT_FOUND'
  | 'DEVNET_CLOSED'
  | 'DEVNET_CONNECT_FAILED'
  | 'DEVNET_CHANNEL_FAILED'
  | 'DEVNET_INVOICE_EXISTS'
  | 'DEVNET_INVOICE_SETTLED';

/** Base class of every devnet error. */
export class DevnetError extends Error {
  override name = 'DevnetError';
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** An option or argument out of range: a bad amount, a malformed hex value, an unknown node name. */
export class ArgumentError extends DevnetError {
  override name = 'ArgumentError';
  constructor(message: string) {
    super('DEVNET_INVALID_ARGUMENT', message);
  }
}

/** No invoice, payment, node or peer by that key. */
export class NotFoundError extends DevnetError {
  override name = 'NotFoundError';
  constructor(message: string) {
    super('DEVNET_NOT_FOUND', message);
  }
}

/** The node (or network) was closed, before or while the call ran. */
export class ClosedError extends DevnetError {
  override name = 'ClosedError';
  constructor(message = 'the node is closed') {
    super('DEVNET_CLOSED', message);
  }
}

/** A wait (for a peer, a channel, an invoice) ran past its time limit. */
export class TimeoutError extends DevnetError {
  override name = 'TimeoutError';
  constructor(message: string) {
    super('DEVNET_TIMEOUT', message);
  }
}

/** A peer connection that could not be made, or whose handshake failed. */
export class PeerError extends DevnetError {
  override name = 'PeerError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVNET_CONNECT_FAILED', message, options);
  }
}

/** LDK refused to open a channel, or the channel closed before it was funded. */
export class ChannelError extends DevnetError {
  override name = 'ChannelError';
  constructor(message: string) {
    super('DEVNET_CHANNEL_FAILED', message);
  }
}

/** An invoice that cannot be created (its hash is taken) or canceled (it is already settled). */
export class InvoiceError extends DevnetError {
  override name = 'InvoiceError';
  constructor(code: 'DEVNET_INVOICE_EXISTS' | 'DEVNET_INVOICE_SETTLED', message: string) {
    super(code, message);
  }
}

/**
 * A payment that did not succeed. `payment` is the node's record of it when one exists: for
 * `DEVNET_ALREADY_PAID` that is the earlier, succeeded payment, preimage included.
 */
export class PaymentError extends DevnetError {
  override name = 'PaymentError';
  override readonly code: PaymentCode;
  readonly paymentHash: string | undefined;
  readonly payment: Payment | undefined;
  constructor(code: PaymentCode, message: string, details: { paymentHash?: string; payment?: Payment } = {}) {
    super(code, message);
    this.code = code;
    this.paymentHash = details.paymentHash;
    this.payment = details.payment;
  }
}
