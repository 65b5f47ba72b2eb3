/**
 * Typed errors. Every error thrown by l402 is an {@link L402Error}: a stable `name` per class and a
 * stable `code` per cause, so callers branch on `code`, never on message text.
 *
 * @example
 * try { Macaroon.decode(input) } catch (e) {
 *   if (e instanceof Errors.MacaroonFormatError) console.error(e.code, e.message);
 * }
 */

/** Every stable error code, in one place. */
export type Code =
  | 'L402_ENCODING'
  | 'L402_MACAROON_FORMAT'
  | 'L402_IDENTIFIER_LENGTH'
  | 'L402_IDENTIFIER_VERSION'
  | 'L402_CAVEAT_FORMAT'
  | 'L402_BAD_SIGNATURE'
  | 'L402_BAD_PREIMAGE'
  | 'L402_UNDISCHARGED_CAVEAT'
  | 'L402_CAVEAT_WIDENED'
  | 'L402_CAVEAT_UNSATISFIED'
  | 'L402_CAVEAT_UNKNOWN'
  | 'L402_TOKEN_EXPIRED'
  | 'L402_SERVICE_NOT_ALLOWED'
  | 'L402_CAPABILITY_NOT_ALLOWED'
  | 'L402_HEADER_FORMAT'
  | 'L402_HEADER_TOO_LARGE'
  | 'L402_INVOICE_FORMAT'
  | 'L402_INVOICE_CHECKSUM'
  | 'L402_INVOICE_SIGNATURE'
  | 'L402_INVOICE_NETWORK'
  | BackendCode
  | StoreCode
  | 'L402_MIDDLEWARE_CONFIG'
  | ClientCode
  | AgentCode;

/** Codes of the agent tools (`l402/agent`): forbidden destination, bad input, declined or pending approval. */
export type AgentCode =
  | 'L402_AGENT_FORBIDDEN'
  | 'L402_AGENT_INPUT'
  | 'L402_AGENT_DECLINED'
  | 'L402_AGENT_APPROVAL_REQUIRED'
  | 'L402_AGENT_UNSUPPORTED'
  | 'L402_AGENT_ERROR';

/** Base class of every l402 error. */
export class L402Error extends Error {
  override name = 'L402Error';
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Bad hex or base64 text. */
export class EncodingError extends L402Error {
  override name = 'EncodingError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('L402_ENCODING', message, options);
  }
}

/** Macaroon bytes or JSON that do not follow the V1/V2 format (truncated, bad field order, …). */
export class MacaroonFormatError extends L402Error {
  override name = 'MacaroonFormatError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('L402_MACAROON_FORMAT', message, options);
  }
}

/** An L402 identifier of the wrong length or an unknown version. */
export class IdentifierError extends L402Error {
  override name = 'IdentifierError';
  constructor(code: 'L402_IDENTIFIER_LENGTH' | 'L402_IDENTIFIER_VERSION', message: string) {
    super(code, message);
  }
}

/** A caveat that is not `key=value`, or whose value does not parse for its key. */
export class CaveatFormatError extends L402Error {
  override name = 'CaveatFormatError';
  constructor(message: string) {
    super('L402_CAVEAT_FORMAT', message);
  }
}

/** Why a token was refused: a bad signature, the wrong preimage, or a caveat that does not hold. */
export type VerificationCode =
  | 'L402_BAD_SIGNATURE'
  | 'L402_BAD_PREIMAGE'
  | 'L402_UNDISCHARGED_CAVEAT'
  | 'L402_CAVEAT_WIDENED'
  | 'L402_CAVEAT_UNSATISFIED'
  | 'L402_CAVEAT_UNKNOWN'
  | 'L402_TOKEN_EXPIRED'
  | 'L402_SERVICE_NOT_ALLOWED'
  | 'L402_CAPABILITY_NOT_ALLOWED';

/** A well-formed token that does not grant the request. `caveat` names the caveat at fault, if any. */
export class VerificationError extends L402Error {
  override name = 'VerificationError';
  readonly caveat: string | undefined;
  constructor(code: VerificationCode, message: string, caveat?: string) {
    super(code, message);
    this.caveat = caveat;
  }
}

/** A `WWW-Authenticate` or `Authorization` value that cannot be read, or one over the size limit. */
export class HeaderError extends L402Error {
  override name = 'HeaderError';
  constructor(code: 'L402_HEADER_FORMAT' | 'L402_HEADER_TOO_LARGE', message: string) {
    super(code, message);
  }
}

/** A BOLT11 invoice that is malformed, fails its checksum or signature, or is for another network. */
export class InvoiceError extends L402Error {
  override name = 'InvoiceError';
  constructor(
    code: 'L402_INVOICE_FORMAT' | 'L402_INVOICE_CHECKSUM' | 'L402_INVOICE_SIGNATURE' | 'L402_INVOICE_NETWORK',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Why a Lightning backend call failed. */
export type BackendCode =
  | 'L402_BACKEND_AUTH'
  | 'L402_BACKEND_UNREACHABLE'
  | 'L402_BACKEND_TIMEOUT'
  | 'L402_BACKEND_PROTOCOL'
  | 'L402_BACKEND_CONFIG'
  | 'L402_BACKEND_NOT_FOUND'
  | 'L402_PAYMENT_FAILED'
  | 'L402_PAYMENT_NO_ROUTE'
  | 'L402_PAYMENT_INSUFFICIENT_BALANCE'
  | 'L402_PAYMENT_EXPIRED'
  | 'L402_PAYMENT_IN_FLIGHT';

/**
 * A Lightning backend (LND, Core Lightning, phoenixd, LNbits, NWC) refused or failed a call: bad
 * credentials, an unreachable node, a timeout, an answer we cannot read, or a payment that failed.
 * `backend` names which one; messages never contain credentials.
 */
export class BackendError extends L402Error {
  override name = 'BackendError';
  readonly backend: string;
  constructor(code: BackendCode, backend: string, message: string, options?: { cause?: unknown }) {
    super(code, `${backend}: ${message}`, options);
    this.backend = backend;
  }
}

/** Why a root-key store call failed (see `l402/stores/*`). */
export type StoreCode =
  | 'L402_STORE_UNAVAILABLE'
  | 'L402_STORE_CORRUPT'
  | 'L402_STORE_CONFLICT'
  | 'L402_STORE_CONFIG';

/**
 * A root-key store (memory, SQLite, PostgreSQL) failed: `L402_STORE_UNAVAILABLE` when the database cannot
 * be reached or written (connection refused, disk full, read-only file, the store closed),
 * `L402_STORE_CORRUPT` when what it holds cannot be read (a schema newer than this code, a malformed row),
 * `L402_STORE_CONFLICT` when a mint would reuse an identifier already minted or revoked, and
 * `L402_STORE_CONFIG` for options that cannot work. `store` names which one; messages never contain
 * credentials.
 *
 * @example
 * try { await store.mint(record) } catch (e) {
 *   if (e instanceof Errors.StoreError && e.code === 'L402_STORE_UNAVAILABLE') return serviceUnavailable();
 * }
 */
export class StoreError extends L402Error {
  override name = 'StoreError';
  readonly store: string;
  constructor(code: StoreCode, store: string, message: string, options?: { cause?: unknown }) {
    super(code, `${store}: ${message}`, options);
    this.store = store;
  }
}

/**
 * Middleware options (`l402/node`, `l402/express`, `l402/fastify`, `l402/hono`) that cannot work: a
 * negative or fractional price, a backend that is neither a wallet URI, a `Backend` nor `'devnet'`, no
 * master key, a route demanding a capability it never sells, or no devnet running for `'devnet'`. Thrown
 * when the options are given (or, for the devnet, when the middleware first needs it), never per request.
 *
 * @example
 * try { l402({ backend: 'devnet' }) } catch (e) {
 *   if (e instanceof Errors.MiddlewareError) console.error(e.message); // "… set L402_MASTER_KEY …"
 * }
 */
export class MiddlewareError extends L402Error {
  override name = 'MiddlewareError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('L402_MIDDLEWARE_CONFIG', message, options);
  }
}

/** Why the client SDK (`l402/client`) refused or failed a request. */
export type ClientCode =
  | 'L402_BUDGET'
  | 'L402_INVOICE_REFUSED'
  | 'L402_PAYMENT_FAILED'
  | 'L402_INSECURE_TRANSPORT'
  | 'L402_REPLAY'
  | 'L402_CLIENT_STORE'
  | 'L402_CLIENT_CONFIG'
  | 'L402_NO_CHALLENGE';

/**
 * Base class of the client SDK's errors (`l402/client`). `code` says why; subclasses carry the details.
 *
 * @example
 * try { await fetch402(url) } catch (e) {
 *   if (e instanceof Errors.ClientError) console.error(e.code, e.message);
 * }
 */
export class ClientError extends L402Error {
  override name = 'ClientError';
  constructor(code: ClientCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Which budget limit refused a payment. */
export type BudgetLimit = 'maxCost' | 'maxFee' | 'perRequest' | 'perOrigin' | 'perHour' | 'perDay' | 'total';

/**
 * A payment the budget does not allow, refused before anything was paid. `limit` names the limit,
 * `priceSats` what the server asked, `remainingSats` what that limit still allowed.
 *
 * @example
 * catch (e) { if (e instanceof Errors.BudgetError && e.limit === 'perDay') waitUntilTomorrow(); }
 */
export class BudgetError extends ClientError {
  override name = 'BudgetError';
  readonly limit: BudgetLimit;
  readonly priceSats: number;
  readonly remainingSats: number;
  constructor(limit: BudgetLimit, priceSats: number, remainingSats: number, message: string) {
    super('L402_BUDGET', message);
    this.limit = limit;
    this.priceSats = priceSats;
    this.remainingSats = remainingSats;
  }
}

/** Why an invoice was refused before paying. */
export type InvoiceRefusal =
  | 'zero-amount'
  | 'malformed'
  | 'network'
  | 'hash-mismatch'
  | 'expired'
  | 'amount-mismatch';

/**
 * An invoice the client will not pay: no amount, malformed, another network than the wallet's, a payment
 * hash that is not the macaroon identifier's, expired, or an amount that differs from the offer's.
 *
 * @example
 * catch (e) { if (e instanceof Errors.InvoiceRefusedError) console.error(e.reason); }
 */
export class InvoiceRefusedError extends ClientError {
  override name = 'InvoiceRefusedError';
  readonly reason: InvoiceRefusal;
  constructor(reason: InvoiceRefusal, message: string, options?: { cause?: unknown }) {
    super('L402_INVOICE_REFUSED', message, options);
    this.reason = reason;
  }
}

/**
 * The wallet (every one of a fallback list) failed to pay; `cause` holds the last wallet error. Nothing
 * was paid, or the payment is still in flight when `inFlight` is true (then it is resolved on the next
 * request to that origin, never paid twice).
 */
export class PaymentFailedError extends ClientError {
  override name = 'PaymentFailedError';
  readonly inFlight: boolean;
  constructor(message: string, options?: { cause?: unknown; inFlight?: boolean }) {
    super('L402_PAYMENT_FAILED', message, options);
    this.inFlight = options?.inFlight ?? false;
  }
}

/** Plain `http:` to a host that is not loopback, refused unless `allowInsecureHttp` is set. */
export class InsecureTransportError extends ClientError {
  override name = 'InsecureTransportError';
  constructor(message: string) {
    super('L402_INSECURE_TRANSPORT', message);
  }
}

/** A request body that cannot be replayed after paying: larger than `maxReplayBytes`, or a one-shot stream. */
export class ReplayError extends ClientError {
  override name = 'ReplayError';
  constructor(message: string) {
    super('L402_REPLAY', message);
  }
}
