/**
 * `Authorization: Payment <base64url JSON>`: the credential a client sends after paying. Its JSON is
 * `{"challenge":{id, realm, method, intent, request, expires?, description?, opaque?, digest?},
 * "source"?, "payload":{…}}`, the challenge echoed unchanged so the server can check its HMAC, and the
 * payload method-specific (for Lightning charge `{preimage}`, for sessions `{action, …}`).
 *
 * @example
 * const header = Credential.format({ challenge, payload: { preimage: '0a1b…' } });
 * const credential = Credential.parse(header); // the same object back
 */
import { EncodingError, HeaderError } from '../Errors.js';
import * as Base64url from './Base64url.js';
import type * as Challenge from './Challenge.js';
import * as Json from './Json.js';

/** A decoded Payment credential. */
export interface Credential {
  readonly challenge: Challenge.Bound;
  /** The payer's identifier (a DID), when the client gives one. */
  readonly source?: string;
  /** Method- and intent-specific proof of payment, members in the order sent. */
  readonly payload: Json.JsonObject;
}

/** Longest credential token read (Node's default header limit is 16 KiB for the whole head). */
export const MAX_TOKEN_LENGTH = 16384;

const REQUIRED = ['id', 'realm', 'method', 'intent', 'request'] as const;
// Aperture's order, which the vectors follow.
const OPTIONAL = ['expires', 'description', 'opaque', 'digest'] as const;
const SCHEME = /^payment[ \t]+(.*)$/is;

const bad = (message: string) => new HeaderError('L402_HEADER_FORMAT', message);

/** Whether an `Authorization` value uses the Payment scheme (any case), well formed or not. */
export function isPayment(value: string): boolean {
  return /^payment(?:[ \t]|$)/i.test(value);
}

/**
 * Decodes an `Authorization` value of the Payment scheme (case-insensitive, RFC 9110 §11.1).
 *
 * @throws {HeaderError} `L402_HEADER_FORMAT` for another scheme, an empty or non-base64url token, JSON
 * that is not a credential (a missing or non-string challenge field, no payload object);
 * `L402_HEADER_TOO_LARGE` over {@link MAX_TOKEN_LENGTH}.
 * @example
 * Credential.parse('Payment eyJjaGFsbGVuZ2UiOnsi…').payload.preimage;
 */
export function parse(value: string): Credential {
  const token = SCHEME.exec(value.trim())?.[1]?.trim();
  if (token === undefined) throw bad('not a Payment credential');
  if (token === '') throw bad('the Payment credential is empty');
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new HeaderError(
      'L402_HEADER_TOO_LARGE',
      `the Payment credential is ${token.length} characters, over ${MAX_TOKEN_LENGTH}`,
    );
  }
  let json: Json.Json;
  try {
    json = Base64url.decodeJson(token, 'the Payment credential');
  } catch (error) {
    if (error instanceof EncodingError) throw bad(error.message);
    throw error;
  }
  if (!Json.isObject(json)) throw bad('the Payment credential is not a JSON object');
  const { challenge, source, payload } = json;
  if (!Json.isObject(challenge)) throw bad('the Payment credential has no challenge object');
  const echo: Record<string, string> = {};
  for (const name of REQUIRED) {
    const v = challenge[name];
    if (typeof v !== 'string' || (v === '' && name !== 'realm'))
      throw bad(`the Payment credential has no challenge.${name}`);
    echo[name] = v;
  }
  for (const name of OPTIONAL) {
    const v = challenge[name];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw bad(`challenge.${name} is not a string`);
    echo[name] = v;
  }
  if (source !== undefined && typeof source !== 'string') throw bad('source is not a string');
  if (!Json.isObject(payload)) throw bad('the Payment credential has no payload object');
  return {
    challenge: echo as unknown as Challenge.Bound,
    ...(source === undefined ? {} : { source }),
    payload,
  };
}

/**
 * The `Authorization` value for a credential: the challenge's fields in Aperture's order (id, realm,
 * method, intent, request, expires, description, opaque, digest), then `source`, then the payload as
 * given.
 *
 * @example
 * Credential.format({ challenge, payload: { preimage } }); // 'Payment eyJjaGFsbGVuZ2Ui…'
 */
export function format(credential: Credential): string {
  const c = credential.challenge;
  const challenge: Json.JsonObject = {};
  for (const name of [...REQUIRED, ...OPTIONAL]) if (c[name] !== undefined) challenge[name] = c[name]!;
  const body: Json.JsonObject = { challenge };
  if (credential.source !== undefined) body.source = credential.source;
  body.payload = credential.payload;
  return `Payment ${Base64url.encodeJson(body)}`;
}
