import { createHash, randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bech32 } from '@scure/base';
import { describe, expect, it } from 'vitest';
import { InvoiceError } from './Errors.js';
import vectors from './fixtures/bolt11-vectors.json' with { type: 'json' };
import * as Invoice from './Invoice.js';
import { concat, fromHex, toHex, utf8 } from './internal/bytes.js';

const SPEC_KEY = fromHex(vectors.privateKey);
const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

const sha256 = (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());

/** The error code `fn` throws, or 'ok'; anything thrown that is not an InvoiceError fails the test. */
function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof InvoiceError) return e.code;
    throw e;
  }
}

// An independent signer for invoices the encoder refuses to write (bad amounts, broken tags, …), so the
// decoder's rules are tested on correctly signed input and not stopped early by the checksum.
function packWords(words: readonly number[]): Uint8Array {
  const bits = words.flatMap((w) => [16, 8, 4, 2, 1].map((mask) => (w & mask ? 1 : 0)));
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((bit, i) => {
    out[i >> 3] = (out[i >> 3] ?? 0) | (bit << (7 - (i & 7)));
  });
  return out;
}

function signRaw(hrp: string, data: readonly number[], key = SPEC_KEY): string {
  const digest = sha256(concat(utf8(hrp), packWords(data)));
  const sig = secp256k1.sign(digest, key, { prehash: false, format: 'recovered' });
  const trailer = concat(sig.subarray(1), sig.subarray(0, 1));
  return bech32.encode(hrp, [...data, ...bech32.toWords(trailer)], false);
}

const tag = (letter: string, words: readonly number[]) => [
  CHARSET.indexOf(letter),
  words.length >> 5,
  words.length & 31,
  ...words,
];
const bytesTag = (letter: string, bytes: Uint8Array) => tag(letter, bech32.toWords(bytes));
const TIMESTAMP = [0, 0, 0, 0, 0, 0, 0];
const HASH = new Uint8Array(32).fill(7);
const minimalTags = [...bytesTag('p', HASH), ...bytesTag('d', utf8('x'))];

/** Rewrites an invoice's signature (keeping its data) with a valid checksum, as an attacker could. */
function withSignature(text: string, signature: Uint8Array, recoveryId: number): string {
  const { prefix, words } = bech32.decode(text, false);
  const data = words.slice(0, -104);
  return bech32.encode(
    prefix,
    [...data, ...bech32.toWords(concat(signature, Uint8Array.of(recoveryId)))],
    false,
  );
}

function highS(invoice: Invoice.Invoice): { signature: Uint8Array; recoveryId: number } {
  const s = BigInt(`0x${toHex(invoice.signature.subarray(32))}`);
  const flipped = fromHex((CURVE_ORDER - s).toString(16).padStart(64, '0'));
  return {
    signature: concat(invoice.signature.subarray(0, 32), flipped),
    recoveryId: invoice.recoveryId ^ 1,
  };
}

describe('BOLT 11 specification examples', () => {
  it.each(vectors.valid)('$name', (vector) => {
    const want = vector.expected;
    const invoice = Invoice.decode(vector.invoice);
    expect(invoice.paymentRequest).toBe(vector.invoice.toLowerCase());
    expect(invoice.network).toBe(want.network);
    expect(invoice.amountMsat).toBe(want.amountMsat === null ? undefined : BigInt(want.amountMsat));
    expect(invoice.timestamp).toBe(want.timestamp);
    expect(toHex(invoice.paymentHash)).toBe(want.paymentHash);
    expect(invoice.paymentSecret && toHex(invoice.paymentSecret)).toBe(want.paymentSecret);
    expect(invoice.description).toBe(want.description ?? undefined);
    expect(invoice.descriptionHash && toHex(invoice.descriptionHash)).toBe(want.descriptionHash ?? undefined);
    if (want.hashedDescription !== undefined) {
      expect(toHex(sha256(utf8(want.hashedDescription)))).toBe(want.descriptionHash);
    }
    expect(invoice.expiry).toBe(want.expiry);
    expect(invoice.minFinalCltvExpiry).toBe(want.minFinalCltvExpiry);
    expect(invoice.fallbackAddresses.map((f) => ({ version: f.version, data: toHex(f.data) }))).toEqual(
      want.fallbackAddresses,
    );
    expect(
      invoice.routeHints.map((route) => route.map((hop) => ({ ...hop, pubkey: toHex(hop.pubkey) }))),
    ).toEqual(want.routeHints);
    expect(invoice.features?.bits).toEqual(want.features);
    expect(invoice.metadata && toHex(invoice.metadata)).toBe(want.metadata ?? undefined);
    expect(invoice.unknownTags).toEqual([]);
    expect(toHex(invoice.payeeNodeKey)).toBe(vectors.payeeNodeKey);

    // The spec signed with RFC 6979 nonces, so re-signing the decoded fields gives back the same text.
    expect(Invoice.encode(invoice, SPEC_KEY)).toBe(vector.invoice.toLowerCase());
  });

  it.each(vectors.invalid)('$name: $code', ({ invoice, code: expected }) => {
    expect(code(() => Invoice.decode(invoice))).toBe(expected);
  });

  it('the spec key is the payee key the examples name', () => {
    expect(toHex(secp256k1.getPublicKey(SPEC_KEY, true))).toBe(vectors.payeeNodeKey);
  });

  it('feature bits come with the BOLT 9 byte form', () => {
    const invoice = Invoice.decode(vectors.valid[0]?.invoice ?? '');
    expect(toHex(invoice.features?.raw ?? new Uint8Array())).toBe('4100'); // bits 8 and 14
  });
});

describe('Core Lightning invoices (doc/schemas examples)', () => {
  it.each(vectors.cln.invoices)('$source $paymentHash', (v) => {
    const invoice = Invoice.decode(v.invoice, { network: 'regtest' });
    expect(invoice.prefix).toBe('lnbcrt');
    expect(toHex(invoice.paymentHash)).toBe(v.paymentHash);
    if (v.amountMsat !== undefined) expect(invoice.amountMsat).toBe(BigInt(v.amountMsat));
    if (v.description !== undefined) expect(invoice.description).toBe(v.description);
    if (v.expiresAt !== undefined) expect(Invoice.expiresAt(invoice)).toBe(v.expiresAt);
    if (v.paymentSecret !== undefined) expect(invoice.paymentSecret).toEqual(fromHex(v.paymentSecret));
    if (v.payeeNodeKey !== undefined) expect(toHex(invoice.payeeNodeKey)).toBe(v.payeeNodeKey);
  });
});

describe('round trips', () => {
  const key = (() => {
    for (;;) {
      const candidate = new Uint8Array(randomBytes(32));
      if (secp256k1.utils.isValidSecretKey(candidate)) return candidate;
    }
  })();
  const pub = secp256k1.getPublicKey(key, true);
  const fields: Invoice.EncodeFields = {
    network: 'mainnet',
    amountMsat: 123_456_789n,
    timestamp: 1_700_000_000,
    paymentHash: new Uint8Array(randomBytes(32)),
    paymentSecret: new Uint8Array(randomBytes(32)),
    description: 'L402: weather API, one call',
    expiry: 600,
    minFinalCltvExpiry: 80,
    fallbackAddresses: [{ version: 0, data: new Uint8Array(randomBytes(20)) }],
    routeHints: [
      [
        {
          pubkey: pub,
          shortChannelId: '800000x1234x1',
          feeBaseMsat: 1000,
          feeProportionalMillionths: 100,
          cltvExpiryDelta: 144,
        },
      ],
    ],
    features: { bits: [9, 14, 17] },
    metadata: Uint8Array.of(1, 2, 3),
  };
  const prefixes = {
    mainnet: 'lnbc',
    testnet: 'lntb',
    signet: 'lntbs',
    regtest: 'lnbcrt',
    simnet: 'lnsb',
  } as const;

  it.each(Object.entries(prefixes))('%s (%s)', (network, prefix) => {
    const text = Invoice.encode({ ...fields, network: network as Invoice.Network }, key);
    expect(text.startsWith(`${prefix}1234567890p1`)).toBe(true);
    const invoice = Invoice.decode(text, { network: network as Invoice.Network });
    expect(invoice).toMatchObject({
      ...fields,
      network,
      prefix,
      payeeNodeKey: pub,
      features: { bits: [9, 14, 17] },
      unknownTags: [],
    });
    expect(Invoice.encode(invoice, key)).toBe(text);
    for (const other of Object.keys(prefixes).filter((n) => n !== network)) {
      expect(code(() => Invoice.decode(text, { network: other as Invoice.Network }))).toBe(
        'L402_INVOICE_NETWORK',
      );
    }
  });

  it('writes tag n on request, and decode then verifies against it', () => {
    const text = Invoice.encode({ ...fields, includePayee: true }, key);
    const invoice = Invoice.decode(text);
    expect(invoice.tagOrder).toContain('n');
    expect(invoice.payeeNodeKey).toEqual(pub);
    expect(Invoice.encode(invoice, key)).toBe(text);
    expect(Invoice.encode({ ...fields, includePayee: true, payeeNodeKey: pub }, key)).toBe(text);
  });

  it('refuses tag n that does not name the signing key', () => {
    const other = secp256k1.getPublicKey(SPEC_KEY, true);
    expect(code(() => Invoice.encode({ ...fields, includePayee: true, payeeNodeKey: other }, key))).toBe(
      'L402_INVOICE_SIGNATURE',
    );
    // A decoded invoice carries its tag n, so re-signing it with another key is refused the same way.
    const decoded = Invoice.decode(Invoice.encode({ ...fields, includePayee: true }, key));
    expect(code(() => Invoice.encode(decoded, SPEC_KEY))).toBe('L402_INVOICE_SIGNATURE');
  });

  it('a signature by another node over the same data fails against tag n', () => {
    const text = Invoice.encode({ ...fields, includePayee: true }, key);
    const { prefix, words } = bech32.decode(text, false);
    const forged = signRaw(prefix, words.slice(0, -104), SPEC_KEY);
    expect(() => Invoice.decode(forged)).toThrow(/does not match its payee node key/);
    expect(code(() => Invoice.decode(forged))).toBe('L402_INVOICE_SIGNATURE');
  });

  it('without tag n, a swapped signature recovers another payee, never the real one', () => {
    const text = Invoice.encode(fields, key);
    const invoice = Invoice.decode(text);
    const other = Invoice.decode(Invoice.encode({ ...fields, amountMsat: 1n }, key));
    const swapped = withSignature(text, other.signature, other.recoveryId);
    const result = code(() => Invoice.decode(swapped));
    if (result === 'ok') expect(Invoice.decode(swapped).payeeNodeKey).not.toEqual(invoice.payeeNodeKey);
    else expect(result).toBe('L402_INVOICE_SIGNATURE');
  });

  it('any changed character is caught', () => {
    const text = Invoice.encode(fields, key);
    for (let i = 0; i < text.length; i++) {
      const ch = text[i] === 'q' ? 'p' : 'q';
      const changed = text.slice(0, i) + ch + text.slice(i + 1);
      expect(['L402_INVOICE_CHECKSUM', 'L402_INVOICE_FORMAT']).toContain(code(() => Invoice.decode(changed)));
    }
  });

  it('is deterministic', () => {
    expect(Invoice.encode(fields, key)).toBe(Invoice.encode(fields, key));
  });

  it('an any-amount invoice has no amount in its prefix', () => {
    const text = Invoice.encode({ ...fields, amountMsat: undefined, network: 'regtest' }, key);
    expect(text.startsWith('lnbcrt1p')).toBe(true);
    expect(Invoice.decode(text).amountMsat).toBeUndefined();
  });

  it.each([
    [1n, 'lnbc10p1'],
    [100n, 'lnbc1n1'],
    [1_000n, 'lnbc10n1'],
    [100_000n, 'lnbc1u1'],
    [250_000_000n, 'lnbc2500u1'],
    [100_000_000n, 'lnbc1m1'],
    [100_000_000_000n, 'lnbc11'],
    [2_100_000_000_000_000_000n, 'lnbc210000001'],
  ])('writes %s msat in the shortest form %s', (amountMsat, start) => {
    const text = Invoice.encode({ ...fields, amountMsat }, key);
    expect(text.startsWith(start)).toBe(true);
    expect(Invoice.decode(text).amountMsat).toBe(amountMsat);
  });
});

describe('decoding rules', () => {
  const spec = vectors.valid[1]?.invoice ?? '';

  it('strips a lightning: prefix in any case', () => {
    expect(Invoice.decode(`lightning:${spec}`).paymentRequest).toBe(spec);
    expect(Invoice.decode(`LIGHTNING:${spec.toUpperCase()}`).paymentRequest).toBe(spec);
    expect(Invoice.decode(`Lightning:${spec}`).amountMsat).toBe(250_000_000n);
  });

  it.each([
    ['empty', ''],
    ['only the prefix', 'lnbc'],
    ['a space', ` ${spec}`],
    ['a trailing newline', `${spec}\n`],
    ['a non-ASCII character', `${spec.slice(0, 20)}é${spec.slice(21)}`],
    ['a "b", outside bech32', `${spec.slice(0, 20)}b${spec.slice(21)}`],
    ['an "o", outside bech32', `${spec.slice(0, 20)}o${spec.slice(21)}`],
    ['mixed case in the data', `${spec.slice(0, 20)}Q${spec.slice(21)}`],
    ['a bitcoin address', 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4'],
    ['separator only', '1qqqqqq'],
  ])('refuses %s', (_, text) => {
    expect(code(() => Invoice.decode(text))).toBe('L402_INVOICE_FORMAT');
  });

  it('names the invalid character and its position', () => {
    expect(() => Invoice.decode(`${spec.slice(0, 20)}b${spec.slice(21)}`)).toThrow(/"b" at position 20/);
  });

  it(`refuses more than ${Invoice.MAX_LENGTH} characters before any other work`, () => {
    const long = `lnbc1${'q'.repeat(Invoice.MAX_LENGTH)}`;
    expect(() => Invoice.decode(long)).toThrow(/at most 7089/);
    expect(code(() => Invoice.decode(long))).toBe('L402_INVOICE_FORMAT');
  });

  it('refuses to encode past the length limit', () => {
    const routeHints = Array.from({ length: 40 }, () =>
      Array.from({ length: 12 }, () => ({
        pubkey: secp256k1.getPublicKey(SPEC_KEY, true),
        shortChannelId: '1x2x3',
        feeBaseMsat: 0,
        feeProportionalMillionths: 0,
        cltvExpiryDelta: 0,
      })),
    );
    const fields = {
      network: 'mainnet' as const,
      timestamp: 0,
      paymentHash: HASH,
      description: '',
      routeHints,
    };
    expect(() => Invoice.encode(fields, SPEC_KEY)).toThrow(/at most 7089/);
  });

  it('refuses a non-string', () => {
    expect(code(() => Invoice.decode(42 as unknown as string))).toBe('L402_INVOICE_FORMAT');
  });

  it.each([
    ['lnbc', undefined],
    ['lnbc1', 100_000_000_000n],
    ['lnbc20m', 2_000_000_000n],
    ['lnbc2500u', 250_000_000n],
    ['lnbc10n', 1_000n],
    ['lnbc10p', 1n],
    ['lntbs5u', 500_000n],
    ['lnbcrt1u', 100_000n],
    ['lnsb7m', 700_000_000n],
  ])('reads the prefix and amount of %s', (hrp, amountMsat) => {
    const invoice = Invoice.decode(signRaw(hrp, [...TIMESTAMP, ...minimalTags]));
    expect(invoice.amountMsat).toBe(amountMsat);
    expect(invoice.prefix).toBe(hrp.replace(/[0-9].*$/, ''));
  });

  it.each([
    ['leading zero', 'lnbc0100u'],
    ['zero', 'lnbc0'],
    ['zero with multiplier', 'lnbc0m'],
    ['sub-millisatoshi pico amount', 'lnbc15p'],
    ['unknown multiplier', 'lnbc1k'],
    ['two multipliers', 'lnbc1mu'],
    ['multiplier without a number', 'lnbcm'],
    ['unknown network', 'lnxy'],
    ['no network', 'ln'],
    ['not ln', 'bc'],
    ['bitcoin prefix after ln', 'lnbcx'],
  ])('refuses the prefix %s (%s)', (_, hrp) => {
    expect(code(() => Invoice.decode(signRaw(hrp, [...TIMESTAMP, ...minimalTags])))).toBe(
      'L402_INVOICE_FORMAT',
    );
  });

  it('refuses an invoice without a payment hash', () => {
    expect(() => Invoice.decode(signRaw('lnbc', [...TIMESTAMP, ...bytesTag('d', utf8('x'))]))).toThrow(
      /tag p/,
    );
  });

  it('skips p, h, s and n of the wrong length and f of an unknown version, as BOLT 11 requires', () => {
    const ignored = [
      ...tag('p', new Array(51).fill(3)),
      ...tag('h', new Array(53).fill(3)),
      ...tag('s', new Array(51).fill(3)),
      ...tag('n', new Array(52).fill(3)),
      ...tag('f', [19, 1, 2, 3]),
      ...tag('2', [0, 0, 0]),
    ];
    const text = signRaw('lnbc', [
      ...TIMESTAMP,
      ...ignored.slice(0, 54),
      ...minimalTags,
      ...ignored.slice(54),
    ]);
    const invoice = Invoice.decode(text);
    expect(invoice.paymentHash).toEqual(HASH);
    expect(invoice.paymentSecret).toBeUndefined();
    expect(invoice.descriptionHash).toBeUndefined();
    expect(invoice.fallbackAddresses).toEqual([]);
    expect(invoice.payeeNodeKey).toEqual(secp256k1.getPublicKey(SPEC_KEY, true));
    expect(invoice.unknownTags.map((t) => [CHARSET[t.type], t.words.length])).toEqual([
      ['p', 51],
      ['h', 53],
      ['s', 51],
      ['n', 52],
      ['f', 4],
      ['2', 3],
    ]);
    expect(invoice.tagOrder).toEqual(['?', 'p', 'd', '?', '?', '?', '?', '?']);
    expect(Invoice.encode(invoice, SPEC_KEY)).toBe(text);
  });

  it('skips a wrong-length p even when it is the only one', () => {
    const text = signRaw('lnbc', [
      ...TIMESTAMP,
      ...tag('p', new Array(53).fill(0)),
      ...bytesTag('d', utf8('x')),
    ]);
    expect(code(() => Invoice.decode(text))).toBe('L402_INVOICE_FORMAT');
  });

  it.each(['p', 's', 'd', 'h', 'x', 'c', '9', 'm'])('refuses two %s tags', (letter) => {
    const twice = {
      p: bytesTag('p', HASH),
      s: bytesTag('s', HASH),
      d: bytesTag('d', utf8('x')),
      h: bytesTag('h', HASH),
      x: tag('x', [1]),
      c: tag('c', [1]),
      '9': tag('9', [2]),
      m: tag('m', [0, 0]),
    }[letter] as number[];
    const text = signRaw('lnbc', [...TIMESTAMP, ...minimalTags, ...twice, ...(letter === 'p' ? [] : twice)]);
    expect(() => Invoice.decode(text)).toThrow(/more than one/);
  });

  it('accepts unknown odd features and refuses unknown even ones', () => {
    const odd = Invoice.decode(signRaw('lnbc', [...TIMESTAMP, ...minimalTags, ...tag('9', [2, 0, 0, 0, 0])]));
    expect(odd.features?.bits).toEqual([21]);
    expect(odd.features?.raw).toEqual(Uint8Array.of(0, 0x20, 0, 0));
    const even = signRaw('lnbc', [...TIMESTAMP, ...minimalTags, ...tag('9', [1, 0, 0, 0, 0])]);
    expect(() => Invoice.decode(even)).toThrow(/feature bit 20/);
    // Every even bit BOLT 9 defines for invoices is understood.
    for (const bit of [8, 14, 16, 24, 48]) {
      const text = Invoice.encode(
        { network: 'mainnet', timestamp: 0, paymentHash: HASH, description: '', features: { bits: [bit] } },
        SPEC_KEY,
      );
      expect(Invoice.decode(text).features?.bits).toEqual([bit]);
    }
    const required = Invoice.encode(
      { network: 'mainnet', timestamp: 0, paymentHash: HASH, description: '', features: { bits: [8, 30] } },
      SPEC_KEY,
    );
    expect(() => Invoice.decode(required)).toThrow(/feature bit 30/);
  });

  it('keeps an empty feature tag', () => {
    const text = Invoice.encode(
      { network: 'mainnet', timestamp: 0, paymentHash: HASH, description: '', features: { bits: [] } },
      SPEC_KEY,
    );
    expect(Invoice.decode(text).features).toEqual({ bits: [], raw: new Uint8Array() });
  });

  it.each([
    ['a tag running past the end', [...TIMESTAMP, ...minimalTags, 1, 2, 0, 0, 0]],
    ['a cut-off tag header', [...TIMESTAMP, ...minimalTags, 13, 0]],
    ['non-zero padding in p', [...TIMESTAMP, ...tag('p', [...bech32.toWords(HASH).slice(0, 51), 1])]],
    ['excess padding in d', [...TIMESTAMP, ...bytesTag('p', HASH), ...tag('d', [0, 0, 0])]],
    [
      'invalid UTF-8 in d',
      [...TIMESTAMP, ...bytesTag('p', HASH), ...bytesTag('d', Uint8Array.of(0xff, 0xfe))],
    ],
    ['a route hint of 50 bytes', [...TIMESTAMP, ...minimalTags, ...bytesTag('r', new Uint8Array(50))]],
    ['an empty route hint', [...TIMESTAMP, ...minimalTags, ...tag('r', [])]],
    ['an expiry beyond 2^53', [...TIMESTAMP, ...minimalTags, ...tag('x', new Array(11).fill(31))]],
  ])('refuses %s', (_, data) => {
    expect(code(() => Invoice.decode(signRaw('lnbc', data)))).toBe('L402_INVOICE_FORMAT');
  });

  it('keeps a leading byte-order mark in a description: it is signed text', () => {
    const text = Invoice.encode(
      { network: 'mainnet', timestamp: 0, paymentHash: HASH, description: '\ufeffhi' },
      SPEC_KEY,
    );
    expect(Invoice.decode(text).description).toBe('\ufeffhi');
  });

  it('reads expiry and min_final_cltv_expiry written with extra leading zeros', () => {
    const text = signRaw('lnbc', [
      ...TIMESTAMP,
      ...minimalTags,
      ...tag('x', [0, 0, 1, 28]),
      ...tag('c', [0, 9]),
    ]);
    const invoice = Invoice.decode(text);
    expect(invoice.expiry).toBe(60);
    expect(invoice.minFinalCltvExpiry).toBe(9);
  });

  it('reads an empty x as zero seconds', () => {
    expect(Invoice.decode(signRaw('lnbc', [...TIMESTAMP, ...minimalTags, ...tag('x', [])])).expiry).toBe(0);
  });

  it('refuses a recovery id above 3', () => {
    const invoice = Invoice.decode(spec);
    expect(code(() => Invoice.decode(withSignature(spec, invoice.signature, 4)))).toBe(
      'L402_INVOICE_SIGNATURE',
    );
  });

  it('refuses r or s out of range', () => {
    const zero = new Uint8Array(64);
    expect(code(() => Invoice.decode(withSignature(spec, zero, 0)))).toBe('L402_INVOICE_SIGNATURE');
    const big = new Uint8Array(64).fill(0xff);
    expect(code(() => Invoice.decode(withSignature(spec, big, 0)))).toBe('L402_INVOICE_SIGNATURE');
  });

  it('recovers the payee from a high-S signature when there is no tag n', () => {
    const invoice = Invoice.decode(spec);
    const { signature, recoveryId } = highS(invoice);
    const decoded = Invoice.decode(withSignature(spec, signature, recoveryId));
    expect(toHex(decoded.payeeNodeKey)).toBe(vectors.payeeNodeKey);
  });

  it('refuses a high-S signature checked against tag n', () => {
    const text = Invoice.encode({ ...Invoice.decode(spec), includePayee: true }, SPEC_KEY);
    const invoice = Invoice.decode(text);
    const { signature, recoveryId } = highS(invoice);
    expect(() => Invoice.decode(withSignature(text, signature, recoveryId))).toThrow(/low-S/);
  });

  it('verifies against tag n without recovery, so the recovery id does not matter there', () => {
    const text = Invoice.encode({ ...Invoice.decode(spec), includePayee: true }, SPEC_KEY);
    const invoice = Invoice.decode(text);
    const other = withSignature(text, invoice.signature, invoice.recoveryId ^ 1);
    expect(toHex(Invoice.decode(other).payeeNodeKey)).toBe(vectors.payeeNodeKey);
  });

  it('refuses a tag n that is not a public key', () => {
    const text = signRaw('lnbc', [
      ...TIMESTAMP,
      ...minimalTags,
      ...bytesTag('n', new Uint8Array(33).fill(5)),
    ]);
    expect(() => Invoice.decode(text)).toThrow(/not a valid public key/);
  });
});

describe('encode refuses bad fields', () => {
  const base: Invoice.EncodeFields = {
    network: 'mainnet',
    timestamp: 0,
    paymentHash: HASH,
    description: 'x',
  };
  it.each<[string, Partial<Invoice.EncodeFields> & Record<string, unknown>]>([
    ['a short payment hash', { paymentHash: new Uint8Array(31) }],
    ['a long payment secret', { paymentSecret: new Uint8Array(33) }],
    ['both description and hash', { descriptionHash: HASH }],
    ['neither description nor hash', { description: undefined }],
    ['a lone surrogate', { description: 'a\ud800b' }],
    ['a description over 639 bytes', { description: 'x'.repeat(640) }],
    ['amount 0', { amountMsat: 0n }],
    ['a number amount', { amountMsat: 5 as unknown as bigint }],
    ['a timestamp of 2^35', { timestamp: 2 ** 35 }],
    ['a negative expiry', { expiry: -1 }],
    ['a fractional cltv', { minFinalCltvExpiry: 1.5 }],
    ['fallback version 19', { fallbackAddresses: [{ version: 19, data: new Uint8Array(20) }] }],
    ['an empty route', { routeHints: [[]] }],
    ['13 hops in one route', { routeHints: [new Array(13).fill(hop('1x1x1'))] }],
    ['a malformed short channel id', { routeHints: [[hop('1:1:1')]] }],
    ['a block beyond 24 bits', { routeHints: [[hop('16777216x1x1')]] }],
    ['an unknown network', { network: 'liquid' as Invoice.Network }],
    ['a feature bit beyond one tag', { features: { bits: [5115] } }],
    ['an unknown tag word of 32', { unknownTags: [{ type: 0, words: [32] }] }],
  ])('%s', (_, change) => {
    expect(code(() => Invoice.encode({ ...base, ...change }, SPEC_KEY))).toBe('L402_INVOICE_FORMAT');
  });

  it('refuses a bad private key', () => {
    expect(code(() => Invoice.encode(base, new Uint8Array(32)))).toBe('L402_INVOICE_SIGNATURE');
    expect(code(() => Invoice.encode(base, new Uint8Array(31).fill(1)))).toBe('L402_INVOICE_SIGNATURE');
  });

  it('accepts a 639-byte description and 12 hops', () => {
    const text = Invoice.encode(
      { ...base, description: 'x'.repeat(639), routeHints: [new Array(12).fill(hop('1x1x1'))] },
      SPEC_KEY,
    );
    expect(Invoice.decode(text).routeHints[0]).toHaveLength(12);
  });

  function hop(shortChannelId: string): Invoice.RouteHop {
    return {
      pubkey: secp256k1.getPublicKey(SPEC_KEY, true),
      shortChannelId,
      feeBaseMsat: 1,
      feeProportionalMillionths: 1,
      cltvExpiryDelta: 1,
    };
  }
});

describe('expiry', () => {
  const invoice = { timestamp: 1_000, expiry: 60 };
  it('expiresAt is timestamp + expiry', () => {
    expect(Invoice.expiresAt(invoice)).toBe(1_060);
  });
  it('isExpired from the expiry second on', () => {
    expect(Invoice.isExpired(invoice, 1_059)).toBe(false);
    expect(Invoice.isExpired(invoice, 1_060)).toBe(true);
    expect(Invoice.isExpired(invoice)).toBe(true);
    expect(Invoice.isExpired({ timestamp: Date.now() / 1000, expiry: 3600 })).toBe(false);
  });
  it('defaults to 3600 seconds', () => {
    expect(Invoice.decode(vectors.valid[0]?.invoice ?? '').expiry).toBe(3600);
  });
});
