import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as Caveat from './Caveat.js';
import * as Credential from './Credential.js';
import { L402Error } from './Errors.js';
import * as Identifier from './Identifier.js';
import * as Macaroon from './Macaroon.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 20_000);

/** Only typed errors may escape a parser. */
function onlyTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof L402Error)) throw e;
  }
}

const caveatText = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.tuple(fc.stringMatching(/^[a-z_]{1,12}$/), fc.string({ maxLength: 40 })).map(([k, v]) => `${k}=${v}`),
);
const macaroonArb = fc.record({
  rootKey: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  identifier: fc.uint8Array({ maxLength: 300 }),
  location: fc.string({ maxLength: 30 }),
  caveats: fc.array(fc.oneof(caveatText, fc.uint8Array({ maxLength: 200 })), { maxLength: 8 }),
});

describe('Macaroon parsers never throw anything but typed errors', () => {
  it('arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => onlyTyped(() => Macaroon.decode(b))),
      {
        numRuns: RUNS,
      },
    );
  });

  it('bytes that start like a V2 macaroon, and mutations of real ones', () => {
    const real = fc.tuple(macaroonArb, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([m, at, b]) => {
      const bytes = Macaroon.encode(Macaroon.create(m));
      bytes[at % bytes.length] = b;
      return bytes;
    });
    const v2ish = fc.uint8Array({ maxLength: 200 }).map((b) => Uint8Array.of(2, ...b));
    fc.assert(
      fc.property(fc.oneof(real, v2ish), (b) => onlyTyped(() => Macaroon.decode(b))),
      { numRuns: RUNS },
    );
  });

  it('arbitrary text as base64, hex, JSON and V1', () => {
    const v1ish = fc.string({ maxLength: 200 }).map((s) => Buffer.from(`00${s}`).toString('base64'));
    const json = fc.jsonValue().map((v) => JSON.stringify(v));
    const text = fc.oneof(fc.string({ maxLength: 300 }), fc.base64String({ maxLength: 300 }), v1ish, json);
    fc.assert(
      fc.property(text, (s) => {
        onlyTyped(() => Macaroon.decode(s));
        onlyTyped(() => Macaroon.fromHex(s));
        onlyTyped(() => Macaroon.fromJSON(s));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('round trips hold', () => {
  it('V2 binary, base64, hex and JSON give back the same macaroon and a valid signature', () => {
    fc.assert(
      fc.property(macaroonArb, (m) => {
        const mac = Macaroon.create(m);
        expect(Macaroon.decode(Macaroon.encode(mac))).toEqual(mac);
        expect(Macaroon.decode(Macaroon.toBase64(mac))).toEqual(mac);
        expect(Macaroon.fromHex(Macaroon.toHex(mac))).toEqual(mac);
        expect(Macaroon.fromJSON(JSON.stringify(Macaroon.toJSON(mac)))).toEqual(mac);
        expect(Macaroon.verifySignature(mac, m.rootKey)).toBe(true);
      }),
      { numRuns: Math.ceil(RUNS / 4) },
    );
  });

  it('identifiers round-trip; other byte strings are refused with a typed error', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 80 }),
        (h, raw) => {
          const id = Identifier.create(h);
          expect(Identifier.decode(Identifier.encode(id))).toEqual(id);
          onlyTyped(() => Identifier.decode(raw));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('caveats: parse(format(k, v)) gives back k and v; verify never throws untyped', () => {
    const ctx = fc.record({
      service: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
      capabilities: fc.option(fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }), { nil: undefined }),
      now: fc.integer({ min: 0, max: 2 ** 40 }),
      tier: fc.option(fc.nat(5), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z_]{1,20}$/),
        fc.string(),
        fc.array(caveatText, { maxLength: 6 }),
        ctx,
        (k, v, list, c) => {
          expect(Caveat.parse(Caveat.format(k, v))).toEqual({ key: k, value: v });
          onlyTyped(() => Caveat.verify(list, c));
          onlyTyped(() => Caveat.verify(list, c, { strict: true }));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('credentials: arbitrary Authorization values never throw untyped; format/parse round-trips', () => {
    const auth = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc
        .tuple(
          fc.constantFrom('L402 ', 'LSAT ', 'l402  ', 'Bearer '),
          fc.base64String(),
          fc.stringMatching(/^[0-9a-fA-F]{0,70}$/),
        )
        .map(([s, b, h]) => `${s}${b}:${h}`),
    );
    fc.assert(
      fc.property(
        auth,
        fc.dictionary(
          fc.constantFrom('authorization', 'macaroon', 'token', 'grpc-metadata-macaroon'),
          fc.string(),
        ),
        (a, headers) => {
          onlyTyped(() => Credential.parse(a));
          onlyTyped(() => Credential.parse([a, a.toLowerCase()]));
          onlyTyped(() => Credential.fromHeaders(headers));
        },
      ),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(macaroonArb, fc.uint8Array({ minLength: 32, maxLength: 32 }), (m, preimage) => {
        const macaroon = Macaroon.create(m);
        const c = Credential.parse(Credential.format({ macaroon, preimage }));
        expect(c?.macaroon).toEqual(macaroon);
        expect(c?.preimage).toEqual(preimage);
      }),
      { numRuns: Math.ceil(RUNS / 10) },
    );
  });
});
