import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bech32 } from '@scure/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvoiceError } from './Errors.js';
import vectors from './fixtures/bolt11-vectors.json' with { type: 'json' };
import * as Invoice from './Invoice.js';

const RUNS = { numRuns: 3000 };
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const SPEC_INVOICES = vectors.valid.map((v) => v.invoice);

/** Runs `fn`; anything thrown must be an InvoiceError. Returns the result or the error's code. */
function outcome<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof InvoiceError)) throw e;
    return e.code;
  }
}

const prefix = fc.constantFrom(
  'lnbc',
  'lntb',
  'lntbs',
  'lnbcrt',
  'lnsb',
  'ln',
  'lnxy',
  'LNBC',
  'bc',
  'lightning:lnbc',
);
const amount = fc.oneof(
  fc.constant(''),
  fc
    .tuple(fc.stringMatching(/^[0-9]{1,12}$/), fc.constantFrom('', 'm', 'u', 'n', 'p', 'x'))
    .map(([d, m]) => d + m),
);
const bech32Chars = fc.string({ unit: fc.constantFrom(...CHARSET), maxLength: 600 });
const word = fc.integer({ min: 0, max: 31 });

/** Random words with a valid checksum, so the tag parser and signature check see them. */
const checksummed = fc
  .tuple(
    fc.constantFrom('lnbc', 'lntb', 'lnbcrt', 'lnbc2500u', 'lnbc10p', 'lnbc0m'),
    fc.array(word, { maxLength: 700 }),
  )
  .map(([hrp, words]) => bech32.encode(hrp, words, false));

/** A spec invoice with a few of its words changed and the checksum fixed: reaches the deepest checks. */
const mutated = fc
  .tuple(
    fc.constantFrom(...SPEC_INVOICES),
    fc.array(fc.tuple(fc.nat(), word), { minLength: 1, maxLength: 4 }),
    fc.option(fc.nat({ max: 40 }), { nil: undefined }),
  )
  .map(([text, changes, cut]) => {
    const { prefix: hrp, words } = bech32.decode(text.toLowerCase(), false);
    const out = [...words];
    for (const [at, value] of changes) out[at % out.length] = value;
    return bech32.encode(hrp, cut === undefined ? out : out.slice(0, out.length - cut), false);
  });

describe('Invoice.decode never throws anything but InvoiceError', () => {
  it('on arbitrary text', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 400 })),
        (text) => {
          outcome(() => Invoice.decode(text));
        },
      ),
      RUNS,
    );
  });

  it('on bech32-looking text', () => {
    fc.assert(
      fc.property(prefix, amount, bech32Chars, fc.boolean(), (p, a, data, upper) => {
        const text = `${p}${a}1${data}`;
        outcome(() => Invoice.decode(upper ? text.toUpperCase() : text));
      }),
      RUNS,
    );
  });

  it('on random words with a valid checksum', () => {
    fc.assert(
      fc.property(checksummed, (text) => {
        const result = outcome(() => Invoice.decode(text));
        expect(result).not.toBe('L402_INVOICE_CHECKSUM');
      }),
      RUNS,
    );
  });

  it('on spec invoices with changed words and a fixed checksum', () => {
    fc.assert(
      fc.property(mutated, (text) => {
        const result = outcome(() => Invoice.decode(text));
        if (typeof result !== 'string') expect(result.paymentRequest).toBe(text);
      }),
      RUNS,
    );
  });

  it('on spec invoices with one character changed: always caught', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SPEC_INVOICES),
        fc.nat(),
        fc.constantFrom(...CHARSET, '1', 'B'),
        (text, at, ch) => {
          const i = at % text.length;
          fc.pre(text[i]?.toLowerCase() !== ch.toLowerCase());
          const changed = text.slice(0, i) + ch + text.slice(i + 1);
          expect(['L402_INVOICE_CHECKSUM', 'L402_INVOICE_FORMAT']).toContain(
            outcome(() => Invoice.decode(changed)),
          );
        },
      ),
      RUNS,
    );
  });
});

const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const secretKey = bytes(32).filter((k) => secp256k1.utils.isValidSecretKey(k));
const hop = fc.record({
  pubkey: bytes(33),
  shortChannelId: fc
    .tuple(fc.nat({ max: 0xffffff }), fc.nat({ max: 0xffffff }), fc.nat({ max: 0xffff }))
    .map(([block, tx, out]) => `${block}x${tx}x${out}`),
  feeBaseMsat: fc.nat({ max: 0xffffffff }),
  feeProportionalMillionths: fc.nat({ max: 0xffffffff }),
  cltvExpiryDelta: fc.nat({ max: 0xffff }),
});
// Tag types this module does not read, so they come back as unknown tags.
const unknownType = fc.constantFrom(
  0,
  2,
  4,
  7,
  8,
  10,
  11,
  12,
  14,
  15,
  17,
  18,
  20,
  21,
  22,
  25,
  26,
  28,
  29,
  30,
  31,
);
const knownFeature = fc.constantFrom(8, 9, 14, 15, 16, 17, 24, 25, 48, 49);
const oddFeature = fc.nat({ max: 300 }).map((n) => n * 2 + 1);

const fields = fc.record(
  {
    network: fc.constantFrom<Invoice.Network>('mainnet', 'testnet', 'signet', 'regtest', 'simnet'),
    amountMsat: fc.option(fc.bigInt({ min: 1n, max: 2n ** 70n }), { nil: undefined }),
    timestamp: fc.nat({ max: 2 ** 35 - 1 }),
    paymentHash: bytes(32),
    paymentSecret: fc.option(bytes(32), { nil: undefined }),
    // 'binary' is every code point, U+FEFF and controls included, never a lone surrogate.
    description: fc.option(fc.string({ unit: 'binary', maxLength: 120 }), { nil: undefined }),
    descriptionHash: bytes(32),
    expiry: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    minFinalCltvExpiry: fc.nat({ max: 2 ** 32 }),
    fallbackAddresses: fc.array(
      fc.record({ version: fc.nat({ max: 18 }), data: fc.uint8Array({ maxLength: 40 }) }),
      { maxLength: 2 },
    ),
    routeHints: fc.array(fc.array(hop, { minLength: 1, maxLength: 3 }), { maxLength: 2 }),
    features: fc.option(
      fc.uniqueArray(fc.oneof(knownFeature, oddFeature), { maxLength: 6 }).map((bits) => ({ bits })),
      { nil: undefined },
    ),
    metadata: fc.option(fc.uint8Array({ maxLength: 60 }), { nil: undefined }),
    includePayee: fc.boolean(),
    unknownTags: fc.array(fc.record({ type: unknownType, words: fc.array(word, { maxLength: 40 }) }), {
      maxLength: 3,
    }),
  },
  { requiredKeys: ['network', 'timestamp', 'paymentHash'] },
);

describe('Invoice.encode / Invoice.decode', () => {
  // Two signatures and two key derivations per run, about 9 s in all: the timeout leaves a loaded CI room.
  it('round-trip any fields: decode gives them back, re-encoding gives the same text', () => {
    fc.assert(
      fc.property(fields, secretKey, (generated, key) => {
        // A writer sets exactly one of description and descriptionHash.
        const input: Invoice.EncodeFields =
          generated.description !== undefined
            ? { ...generated, descriptionHash: undefined }
            : { ...generated, descriptionHash: generated.descriptionHash ?? new Uint8Array(32) };
        const text = Invoice.encode(input, key);
        const invoice = Invoice.decode(text, { network: input.network });
        const bitsSorted = input.features && [...input.features.bits].sort((a, b) => a - b);
        expect(invoice).toMatchObject({
          network: input.network,
          amountMsat: input.amountMsat,
          timestamp: input.timestamp,
          paymentHash: input.paymentHash,
          paymentSecret: input.paymentSecret,
          description: input.description,
          descriptionHash: input.descriptionHash,
          expiry: input.expiry ?? 3600,
          minFinalCltvExpiry: input.minFinalCltvExpiry ?? 18,
          fallbackAddresses: input.fallbackAddresses ?? [],
          routeHints: input.routeHints ?? [],
          metadata: input.metadata,
          unknownTags: input.unknownTags ?? [],
          payeeNodeKey: secp256k1.getPublicKey(key, true),
        });
        expect(invoice.features?.bits).toEqual(bitsSorted);
        expect(invoice.tagOrder.includes('n')).toBe(input.includePayee === true);
        expect(Invoice.encode(invoice, key)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  }, 120_000);
});
