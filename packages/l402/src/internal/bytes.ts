import * as platform from '#platform';
import { EncodingError } from '../Errors.js';

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return platform.hexEncode(bytes);
}

/** Bytes of a hex string (either case). Throws {@link EncodingError} on odd length or a non-hex digit. */
export function fromHex(text: string, what = 'hex value'): Uint8Array {
  if (!HEX.test(text)) throw new EncodingError(`${what} is not valid hex (an even number of 0-9a-f digits)`);
  return platform.hexDecode(text);
}

const STD_BODY = /^[A-Za-z0-9+/]*$/;
const URL_BODY = /^[A-Za-z0-9_-]*$/;

/**
 * Bytes of base64 text in the standard (`+/`) or URL-safe (`-_`) alphabet, padded or not.
 * Strict: whitespace, mixed alphabets, wrong padding and non-zero trailing bits are rejected.
 */
export function fromBase64(text: string, what = 'base64 value'): Uint8Array {
  const body = text.endsWith('==') ? text.slice(0, -2) : text.endsWith('=') ? text.slice(0, -1) : text;
  const padded = body.length !== text.length;
  const urlSafe = !STD_BODY.test(body);
  if (urlSafe && !URL_BODY.test(body)) throw new EncodingError(`${what} is not valid base64`);
  if (body.length % 4 === 1 || (padded && text.length % 4 !== 0)) {
    throw new EncodingError(`${what} is not valid base64 (bad length or padding)`);
  }
  const bytes = platform.base64Decode(body, urlSafe);
  if (
    platform.base64Encode(bytes, true) !== (urlSafe ? body : body.replace(/\+/g, '-').replace(/\//g, '_'))
  ) {
    throw new EncodingError(`${what} is not canonical base64 (non-zero trailing bits)`);
  }
  return bytes;
}

/** Standard padded base64, the form Aperture puts in headers. */
export function toBase64(bytes: Uint8Array): string {
  return platform.base64Encode(bytes, false);
}

/** URL-safe base64 without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  return platform.base64Encode(bytes, true);
}

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: it is part of the bytes (a caveat, an identifier), not a marker.
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** UTF-8 text of `bytes`, or `undefined` when they are not valid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Plain (not constant-time) equality, for public values such as payment hashes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
