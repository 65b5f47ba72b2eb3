/**
 * The L402 macaroon identifier, version 0: 66 bytes, big-endian
 * `uint16 version | 32-byte payment hash | 32-byte token id` (Aperture `l402/identifier.go`).
 *
 * @example
 * const id = Identifier.create(paymentHash);          // random token id
 * const bytes = Identifier.encode(id);                // 66 bytes, the macaroon identifier
 * Identifier.decode(bytes).paymentHash;               // the same 32 bytes
 */
import * as platform from '#platform';
import { IdentifierError } from './Errors.js';
import { toHex } from './internal/bytes.js';

export interface Identifier {
  readonly version: 0;
  /** SHA-256 of the invoice preimage. */
  readonly paymentHash: Uint8Array;
  /** Random, unique per token; the server's handle for revocation and accounting. */
  readonly tokenId: Uint8Array;
}

export const LENGTH = 66;
const HASH_LENGTH = 32;

/** An identifier for `paymentHash` with a fresh random token id (or the one given). */
export function create(paymentHash: Uint8Array, tokenId: Uint8Array = platform.randomBytes(32)): Identifier {
  if (paymentHash.length !== HASH_LENGTH) {
    throw new IdentifierError(
      'L402_IDENTIFIER_LENGTH',
      `payment hash is ${paymentHash.length} bytes, expected 32`,
    );
  }
  if (tokenId.length !== HASH_LENGTH) {
    throw new IdentifierError('L402_IDENTIFIER_LENGTH', `token id is ${tokenId.length} bytes, expected 32`);
  }
  return { version: 0, paymentHash, tokenId };
}

/** The 66 identifier bytes. */
export function encode(id: Identifier): Uint8Array {
  const out = new Uint8Array(LENGTH);
  // bytes 0..1 stay 0: version 0, big-endian.
  out.set(id.paymentHash, 2);
  out.set(id.tokenId, 2 + HASH_LENGTH);
  return out;
}

/**
 * Reads an identifier. Exactly 66 bytes and version 0, else {@link IdentifierError}
 * (`L402_IDENTIFIER_LENGTH` or `L402_IDENTIFIER_VERSION`). Stricter than Aperture, which ignores
 * trailing bytes: two different identifiers must never name the same token.
 */
export function decode(bytes: Uint8Array): Identifier {
  if (bytes.length < 2) {
    throw new IdentifierError('L402_IDENTIFIER_LENGTH', `identifier is ${bytes.length} bytes, expected 66`);
  }
  const version = ((bytes[0] as number) << 8) | (bytes[1] as number);
  if (version !== 0) {
    throw new IdentifierError(
      'L402_IDENTIFIER_VERSION',
      `identifier version ${version} is not supported (only 0)`,
    );
  }
  if (bytes.length !== LENGTH) {
    throw new IdentifierError('L402_IDENTIFIER_LENGTH', `identifier is ${bytes.length} bytes, expected 66`);
  }
  return { version: 0, paymentHash: bytes.slice(2, 34), tokenId: bytes.slice(34, 66) };
}

/** The identifier with hex fields, for logs and JSON. */
export function toJSON(id: Identifier): { version: 0; paymentHash: string; tokenId: string } {
  return { version: id.version, paymentHash: toHex(id.paymentHash), tokenId: toHex(id.tokenId) };
}
