/**
 * Platform primitives on Node: `node:crypto` for the server hot path (native HMAC is ~10x a JS one) and
 * Buffer for hex and base64. `platform.web.ts` is the twin for browsers and edge runtimes; the package's
 * `#platform` import picks one by condition, and a test checks both give the same bytes.
 */
import * as crypto from 'node:crypto';

const { createHash, createHmac, randomBytes: nodeRandomBytes, timingSafeEqual } = crypto;
// One-shot `crypto.hash` (Node >= 20.12) skips the Hash object: about twice as fast for short inputs.
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;

// Results are plain Uint8Array views, never Buffer, so values compare equal across platforms.
const plain = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  return plain(createHmac('sha256', key).update(message).digest());
}

export function sha256(message: Uint8Array): Uint8Array {
  return plain(
    oneShot !== undefined
      ? oneShot('sha256', message, 'buffer')
      : createHash('sha256').update(message).digest(),
  );
}

export function randomBytes(n: number): Uint8Array {
  return plain(nodeRandomBytes(n));
}

/** Constant-time equality for secrets of equal length; unequal lengths compare false at once. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const view = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export function hexEncode(bytes: Uint8Array): string {
  return view(bytes).toString('hex');
}

/** Decodes hex already checked to be well-formed. */
export function hexDecode(hex: string): Uint8Array {
  return plain(Buffer.from(hex, 'hex'));
}

export function base64Encode(bytes: Uint8Array, urlSafe: boolean): string {
  return view(bytes).toString(urlSafe ? 'base64url' : 'base64');
}

/** Decodes unpadded base64 already checked to use one alphabet; `urlSafe` names which. */
export function base64Decode(body: string, urlSafe: boolean): Uint8Array {
  return plain(Buffer.from(body, urlSafe ? 'base64url' : 'base64'));
}
