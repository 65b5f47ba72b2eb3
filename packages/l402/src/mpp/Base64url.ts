/**
 * base64url (RFC 4648 §5) as the Payment scheme uses it: written without padding; read with or without
 * it, and nothing else. A second spelling of the same bytes (non-zero trailing bits, the standard
 * alphabet, embedded line breaks) is refused, so one credential or receipt has exactly one text.
 *
 * @example
 * Base64url.encode(new Uint8Array([0xff, 0xfe])); // '__4'
 * Base64url.decodeJson('eyJhIjoxfQ'); // { a: 1 }
 */
import { EncodingError } from '../Errors.js';
import { fromBase64, fromUtf8, toBase64Url, utf8 } from '../internal/bytes.js';
import * as Json from './Json.js';

const TEXT = /^([A-Za-z0-9_-]*)(={0,2})$/;

/** Unpadded base64url. */
export function encode(bytes: Uint8Array): string {
  return toBase64Url(bytes);
}

/**
 * The bytes of base64url text, padded or not.
 *
 * @throws {EncodingError} `L402_ENCODING` for another alphabet, whitespace, misplaced or excess
 * padding, a dangling character or non-zero trailing bits.
 * @example
 * Base64url.decode('aGVsbG8='); // the bytes of "hello"
 */
export function decode(text: string, what = 'base64url value'): Uint8Array {
  const match = TEXT.exec(text);
  if (match === null) throw new EncodingError(`${what} is not base64url`);
  const [, body = '', padding = ''] = match;
  if (body.length % 4 === 1 || (padding.length > 0 && text.length % 4 !== 0)) {
    throw new EncodingError(`${what} is not base64url (bad length or padding)`);
  }
  return fromBase64(body, what);
}

/** Unpadded base64url of `value` as JSON text (member order kept). */
export function encodeJson(value: Json.Json): string {
  return encode(utf8(Json.stringify(value)));
}

/**
 * The JSON value encoded in base64url text; integers beyond 2^53 come back as exact `bigint`s.
 *
 * @throws {EncodingError} for text that is not base64url of UTF-8 JSON.
 */
export function decodeJson(text: string, what = 'base64url JSON'): Json.Json {
  const json = fromUtf8(decode(text, what));
  if (json === undefined) throw new EncodingError(`${what} is not UTF-8`);
  return Json.parse(json, { bigints: true });
}
