/** Byte helpers for the edges, where hex meets the `Uint8Array`s used inside. */
import { createHash } from 'node:crypto';
import { ArgumentError } from '../Errors.js';

const HEX = /^(?:[0-9a-f]{2})*$/i;

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Bytes of a hex string; throws {@link ArgumentError} naming `what` on bad hex or the wrong length. */
export function fromHex(text: string, length: number, what: string): Uint8Array {
  if (typeof text !== 'string' || !HEX.test(text) || text.length !== length * 2) {
    throw new ArgumentError(`${what} must be ${length} bytes of hex (${length * 2} digits)`);
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** Hex of `bytes` reversed: how Bitcoin displays txids and block hashes. */
export function toReversedHex(bytes: Uint8Array): string {
  return toHex(Uint8Array.from(bytes).reverse());
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

/** Bitcoin's double SHA-256 (txids, block hashes, merkle nodes). */
export function sha256d(data: Uint8Array): Uint8Array {
  return sha256(sha256(data));
}

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
