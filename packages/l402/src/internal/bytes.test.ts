import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EncodingError } from '../Errors.js';
import { fromBase64, fromHex, toBase64, toBase64Url, toHex } from './bytes.js';

describe('base64 and hex', () => {
  it('accepts standard (padded or not) and URL-safe text of the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const std = toBase64(bytes);
        expect(fromBase64(std)).toEqual(bytes);
        expect(fromBase64(std.replace(/=+$/, ''))).toEqual(bytes);
        expect(fromBase64(toBase64Url(bytes))).toEqual(bytes);
        expect(fromHex(toHex(bytes))).toEqual(bytes);
        expect(fromHex(toHex(bytes).toUpperCase())).toEqual(bytes);
      }),
      { numRuns: 1000 },
    );
  });
  it.each(['A', 'AB=', 'AB===', 'A+_B', 'AB C', 'AB\n', 'QQ=a', 'QR==', '===='])('refuses %j', (text) => {
    expect(() => fromBase64(text)).toThrow(EncodingError);
  });
  it.each(['a', 'zz', '0x00', ' 00'])('refuses hex %j', (text) => {
    expect(() => fromHex(text)).toThrow(EncodingError);
  });
});
