/**
 * The `request` parameter of Lightning Payment challenges (draft-lightning-charge-00,
 * draft-lightning-session-00): base64url of the JCS form of a JSON object whose amounts are decimal
 * strings of satoshis.
 *
 * @example
 * const request = Request.encode({ amount: '21', currency: 'sat', methodDetails: { invoice, paymentHash, network: 'regtest' } });
 * Request.charge(request).methodDetails.invoice; // invoice
 */
import { EncodingError } from '../Errors.js';
import * as Base64url from './Base64url.js';
import * as Json from './Json.js';

/** `intent="charge"`: one payment for one request. */
export interface ChargeRequest {
  readonly amount: string;
  readonly currency: 'sat';
  readonly description?: string;
  readonly recipient?: string;
  readonly externalId?: string;
  readonly methodDetails: {
    /** BOLT11; authoritative. */
    readonly invoice: string;
    /** Lower-case hex of the invoice's payment hash. */
    readonly paymentHash?: string;
    readonly network?: string;
  };
}

/** `intent="session"`: a prepaid deposit spent `amount` sats per unit of service. */
export interface SessionRequest {
  /** Sats per unit. */
  readonly amount: string;
  readonly currency: 'sat';
  readonly description?: string;
  readonly unitType?: string;
  /** BOLT11 to pay to open or top up. */
  readonly depositInvoice?: string;
  /** Lower-case hex of the deposit invoice's payment hash. */
  readonly paymentHash: string;
  readonly depositAmount?: string;
  readonly idleTimeout?: string;
}

const SATS = /^(?:0|[1-9]\d{0,18})$/;
const HASH = /^[0-9a-f]{64}$/;

/** The `request` text for a request object: base64url of its JCS form. */
export function encode(request: ChargeRequest | SessionRequest): string {
  return Base64url.encode(new TextEncoder().encode(Json.canonicalize(request as unknown as Json.Json)));
}

function decodeObject(text: string): Json.JsonObject {
  const json = Base64url.decodeJson(text, 'request');
  if (!Json.isObject(json)) throw new EncodingError('request is not a JSON object');
  return json;
}

function text(o: Json.JsonObject, name: string, required: true): string;
function text(o: Json.JsonObject, name: string, required: false): string | undefined;
function text(o: Json.JsonObject, name: string, required: boolean): string | undefined {
  const v = o[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string')
    throw new EncodingError(`request.${name} is ${v === undefined ? 'missing' : 'not a string'}`);
  return v;
}

function sats(value: string, name: string): string {
  if (!SATS.test(value) || BigInt(value) > 2n ** 63n - 1n)
    throw new EncodingError(`request.${name} is not a whole number of sats`);
  return value;
}

function common(o: Json.JsonObject) {
  const currency = text(o, 'currency', true);
  if (currency !== 'sat')
    throw new EncodingError(`request.currency is ${JSON.stringify(currency)}, not "sat"`);
  return { amount: sats(text(o, 'amount', true), 'amount'), currency } as const;
}

function optional<T extends string>(o: Json.JsonObject, names: readonly T[]): Partial<Record<T, string>> {
  const out: Partial<Record<T, string>> = {};
  for (const name of names) {
    const v = text(o, name, false);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/**
 * The charge request in a challenge's `request` parameter.
 *
 * @throws {EncodingError} `L402_ENCODING` when it is not one (bad base64url or JSON, a missing field,
 * an amount that is not whole sats, a currency other than `sat`, a payment hash that is not hex).
 */
export function charge(request: string): ChargeRequest {
  const o = decodeObject(request);
  const details = o.methodDetails;
  if (!Json.isObject(details)) throw new EncodingError('request.methodDetails is missing');
  const invoice = text(details, 'invoice', true);
  const extra = optional(details, ['paymentHash', 'network']);
  if (extra.paymentHash !== undefined && !HASH.test(extra.paymentHash))
    throw new EncodingError('request.methodDetails.paymentHash is not 64 lower-case hex digits');
  return {
    ...common(o),
    ...optional(o, ['description', 'recipient', 'externalId']),
    methodDetails: { invoice, ...extra },
  };
}

/**
 * The session request in a challenge's `request` parameter.
 *
 * @throws {EncodingError} `L402_ENCODING` when it is not one.
 */
export function session(request: string): SessionRequest {
  const o = decodeObject(request);
  const paymentHash = text(o, 'paymentHash', true);
  if (!HASH.test(paymentHash)) throw new EncodingError('request.paymentHash is not 64 lower-case hex digits');
  const extra = optional(o, ['description', 'unitType', 'depositInvoice', 'depositAmount', 'idleTimeout']);
  if (extra.depositAmount !== undefined) sats(extra.depositAmount, 'depositAmount');
  return { ...common(o), ...extra, paymentHash };
}
