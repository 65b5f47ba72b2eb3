import { describe, expect, it } from 'vitest';
import { IdentifierError } from './Errors.js';
import * as Identifier from './Identifier.js';
import { toHex } from './internal/bytes.js';

const hash = Uint8Array.from({ length: 32 }, (_, i) => i);
const tokenId = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);

describe('Identifier', () => {
  it('lays out uint16 BE version, payment hash, token id in 66 bytes', () => {
    const bytes = Identifier.encode(Identifier.create(hash, tokenId));
    expect(bytes.length).toBe(66);
    expect(toHex(bytes.subarray(0, 2))).toBe('0000');
    expect(bytes.subarray(2, 34)).toEqual(hash);
    expect(bytes.subarray(34, 66)).toEqual(tokenId);
    expect(Identifier.decode(bytes)).toEqual({ version: 0, paymentHash: hash, tokenId });
  });
  it('gives each token a fresh random id', () => {
    expect(Identifier.create(hash).tokenId).not.toEqual(Identifier.create(hash).tokenId);
  });
  it.each([
    ['65 bytes', new Uint8Array(65), 'L402_IDENTIFIER_LENGTH'],
    ['67 bytes', new Uint8Array(67), 'L402_IDENTIFIER_LENGTH'],
    ['1 byte', new Uint8Array(1), 'L402_IDENTIFIER_LENGTH'],
    ['version 1', Uint8Array.of(0, 1, ...new Uint8Array(64)), 'L402_IDENTIFIER_VERSION'],
    ['version 256', Uint8Array.of(1, 0, ...new Uint8Array(64)), 'L402_IDENTIFIER_VERSION'],
  ])('refuses %s', (_n, bytes, code) => {
    expect(() => Identifier.decode(bytes)).toThrow(IdentifierError);
    try {
      Identifier.decode(bytes);
    } catch (e) {
      expect((e as IdentifierError).code).toBe(code);
    }
  });
  it('refuses hashes and token ids of the wrong length', () => {
    expect(() => Identifier.create(new Uint8Array(31))).toThrow(IdentifierError);
    expect(() => Identifier.create(hash, new Uint8Array(33))).toThrow(IdentifierError);
  });
  it('prints hex fields', () => {
    expect(Identifier.toJSON(Identifier.create(hash, tokenId))).toEqual({
      version: 0,
      paymentHash: toHex(hash),
      tokenId: toHex(tokenId),
    });
  });
});
