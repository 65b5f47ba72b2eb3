/**
 * `Payment-Receipt`: base64url JSON the server sends with a response it was paid for, never with a
 * refusal. Charge receipts are `{status, method, timestamp, reference, challengeId?}`; a session close
 * adds `refundSats` (omitted when 0) and `refundStatus`; the member order is Aperture's.
 *
 * @example
 * const header = Receipt.format(Receipt.charge({ timestamp: '2026-03-10T21:00:00Z', reference: hash, challengeId }));
 * Receipt.parse(header).reference; // hash
 */
import { EncodingError, HeaderError } from '../Errors.js';
import * as Base64url from './Base64url.js';
import * as Json from './Json.js';

export const HEADER = 'payment-receipt';

/** The outcome of a session close's refund. */
export type RefundStatus = 'succeeded' | 'failed' | 'skipped';

/** A receipt as decoded: its members in the order sent, numbers beyond 2^53 as exact `bigint`s. */
export type Receipt = Json.JsonObject;

/**
 * A charge (or session open, bearer or top-up) receipt.
 *
 * @example
 * Receipt.charge({ timestamp: '2026-03-10T21:00:00Z', reference: 'bc23…' }); // no challengeId member
 */
export function charge(r: { timestamp: string; reference: string; challengeId?: string }): Receipt {
  return {
    status: 'success',
    method: 'lightning',
    timestamp: r.timestamp,
    reference: r.reference,
    ...(r.challengeId ? { challengeId: r.challengeId } : {}),
  };
}

/** A session close receipt: `refundSats` left out when nothing was refunded. */
export function close(r: {
  timestamp: string;
  reference: string;
  refundSats: bigint;
  refundStatus: RefundStatus;
}): Receipt {
  return {
    method: 'lightning',
    reference: r.reference,
    status: 'success',
    timestamp: r.timestamp,
    ...(r.refundSats > 0n ? { refundSats: r.refundSats } : {}),
    refundStatus: r.refundStatus,
  };
}

/** The header value of a receipt. */
export function format(receipt: Receipt): string {
  return Base64url.encodeJson(receipt);
}

/**
 * Decodes a `Payment-Receipt` value (or the JSON of a session's SSE events, encoded the same way).
 *
 * @throws {HeaderError} `L402_HEADER_FORMAT` when it is not base64url of a JSON object.
 */
export function parse(value: string): Receipt {
  let json: Json.Json;
  try {
    json = Base64url.decodeJson(value.trim(), 'Payment-Receipt');
  } catch (error) {
    if (error instanceof EncodingError) throw new HeaderError('L402_HEADER_FORMAT', error.message);
    throw error;
  }
  if (!Json.isObject(json))
    throw new HeaderError('L402_HEADER_FORMAT', 'Payment-Receipt is not a JSON object');
  return json;
}

/** RFC 3339 UTC to the second, as receipts and `expires` carry it. */
export function timestamp(unixMs: number): string {
  return `${new Date(Math.floor(unixMs / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}
