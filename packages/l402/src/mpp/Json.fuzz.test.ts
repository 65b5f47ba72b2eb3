/**
 * The MPP parsers against random input: the JSON parser agrees with `JSON.parse` on everything
 * `JSON.stringify` writes and fails only with EncodingError on anything else; JCS is a fixed point;
 * credentials survive a round trip and random tokens fail only with HeaderError.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EncodingError, HeaderError } from '../Errors.js';
import * as Credential from './Credential.js';
import * as Json from './Json.js';

const RUNS = { numRuns: 1000 };

describe('Json', () => {
  it('reads whatever JSON.stringify writes exactly as JSON.parse does', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(Json.parse(text)).toEqual(JSON.parse(text));
        expect(Json.stringify(Json.parse(text))).toBe(text);
      }),
      RUNS,
    );
  });

  it('canonicalizes to a fixed point that parses back to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const canonical = Json.canonicalize(value as Json.Json);
        expect(Json.canonicalizeText(canonical)).toBe(canonical);
        expect(JSON.parse(canonical)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      RUNS,
    );
  });

  it('fails only with EncodingError on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (text) => {
        try {
          Json.parse(text);
        } catch (error) {
          expect(error).toBeInstanceOf(EncodingError);
        }
      }),
      RUNS,
    );
  });

  it('refuses duplicate members, excess depth and trailing text; keeps __proto__ as data', () => {
    for (const bad of [
      '{"a":1,"a":2}',
      `${'['.repeat(66)}${']'.repeat(66)}`,
      '{} x',
      '01',
      '"\\x"',
      '[1,]',
    ]) {
      expect(() => Json.parse(bad)).toThrow(EncodingError);
    }
    const parsed = Json.parse('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Json.parse('12345678901234567890', { bigints: true })).toBe(12345678901234567890n);
    expect(Json.parse('12345678901234567890')).toBe(12345678901234567000);
  });
});

describe('Credential', () => {
  const text = fc.string({ maxLength: 40 });
  const credential = fc.record(
    {
      challenge: fc.record(
        {
          id: fc.string({ minLength: 1, maxLength: 40 }),
          realm: text,
          method: fc.string({ minLength: 1, maxLength: 12 }),
          intent: fc.string({ minLength: 1, maxLength: 12 }),
          request: fc.string({ minLength: 1, maxLength: 40 }),
          expires: text,
          description: text,
          opaque: text,
          digest: text,
        },
        { requiredKeys: ['id', 'realm', 'method', 'intent', 'request'] },
      ),
      source: text,
      payload: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })),
    },
    { requiredKeys: ['challenge', 'payload'] },
  );

  it('round-trips any credential through its header', () => {
    fc.assert(
      fc.property(credential, (c) => {
        const header = Credential.format(c as Credential.Credential);
        const parsed = Credential.parse(header);
        expect(Credential.format(parsed)).toBe(header);
        const plain = (v: unknown) =>
          JSON.parse(JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? Number(x) : x)));
        expect(plain(parsed)).toEqual(plain(c));
      }),
      RUNS,
    );
  });

  it('fails only with HeaderError on arbitrary tokens', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.base64String({ maxLength: 80 }), (raw, b64) => {
        for (const value of [
          raw,
          `Payment ${raw}`,
          `Payment ${b64.replace(/\+/g, '-').replace(/\//g, '_')}`,
        ]) {
          try {
            Credential.parse(value);
          } catch (error) {
            expect(error).toBeInstanceOf(HeaderError);
          }
        }
      }),
      RUNS,
    );
  });

  it('refuses a token over the size limit before decoding it', () => {
    expect(() => Credential.parse(`Payment ${'A'.repeat(Credential.MAX_TOKEN_LENGTH + 4)}`)).toThrow(
      expect.objectContaining({ code: 'L402_HEADER_TOO_LARGE' }),
    );
  });
});
