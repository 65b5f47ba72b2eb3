/**
 * Platform primitives for browsers and edge runtimes: @noble/hashes and @scure/base, no `node:` import.
 * Same contract as `platform.node.ts`.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { base64nopad, base64urlnopad, hex } from '@scure/base';

export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, message);
}

export function sha256(message: Uint8Array): Uint8Array {
  return nobleSha256(message);
}

export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** Constant-time equality for secrets of equal length; unequal lengths compare false at once. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

export function hexEncode(bytes: Uint8Array): string {
  return hex.encode(bytes);
}

/** Decodes hex already checked to be well-formed. */
export function hexDecode(text: string): Uint8Array {
  return hex.decode(text.toLowerCase());
}

export function base64Encode(bytes: Uint8Array, urlSafe: boolean): string {
  if (urlSafe) return base64urlnopad.encode(bytes);
  const body = base64nopad.encode(bytes);
  return body + '='.repeat((4 - (body.length % 4)) % 4);
}

/** Decodes unpadded base64 already checked to use one alphabet; `urlSafe` names which. */
export function base64Decode(body: string, urlSafe: boolean): Uint8Array {
  return (urlSafe ? base64urlnopad : base64nopad).decode(body);
}
