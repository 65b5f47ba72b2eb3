/**
 * Every section of Aperture's MPP vectors (`fixtures/mpp-vectors.json`): JCS, base64url, challenge ids,
 * credentials and receipts here; challenge headers and lists through this module's challenge code
 * as well as in `Challenge.test.ts`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as Challenges from '../Challenge.js';
import { fromHex, toHex } from '../internal/bytes.js';
import * as Base64url from './Base64url.js';
import * as Challenge from './Challenge.js';
import * as Credential from './Credential.js';
import * as Json from './Json.js';
import * as Receipt from './Receipt.js';

interface Vectors {
  hmacSecretHex: string;
  canonicalization: { name: string; input: string; canonical?: string; error?: boolean }[];
  base64url: { name: string; encoded: string; decodedHex?: string; canonical: boolean; error?: boolean }[];
  challengeHeaders: {
    name: string;
    params: Challenge.Bound;
    header: string;
    parsed: Record<string, string>;
  }[];
  challengeLists: { name: string; header: string; challenges?: Record<string, string>[]; error?: boolean }[];
  challengeIds: { name: string; params: Challenge.Bound; hmacInput: string }[];
  credentials: { name: string; credentialJson: string; header: string; error?: boolean }[];
  receipts: { name: string; receiptJson: string; header: string }[];
}

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/mpp-vectors.json', import.meta.url), 'utf8'),
) as Vectors;
const secret = fromHex(vectors.hmacSecretHex);

describe('canonicalization (RFC 8785)', () => {
  for (const v of vectors.canonicalization) {
    it(v.name, () => {
      if (v.error)
        expect(() => Json.canonicalizeText(v.input)).toThrow(
          expect.objectContaining({ code: 'L402_ENCODING' }),
        );
      else expect(Json.canonicalizeText(v.input)).toBe(v.canonical);
    });
  }
});

describe('base64url', () => {
  for (const v of vectors.base64url) {
    it(v.name, () => {
      if (v.error) {
        expect(() => Base64url.decode(v.encoded)).toThrow(expect.objectContaining({ code: 'L402_ENCODING' }));
        return;
      }
      const bytes = Base64url.decode(v.encoded);
      expect(toHex(bytes)).toBe(v.decodedHex ?? '');
      expect(Base64url.encode(bytes) === v.encoded).toBe(v.canonical);
    });
  }
});

describe('challenge ids (HMAC-SHA256 over seven slots)', () => {
  for (const v of vectors.challengeIds) {
    it(v.name, () => {
      expect(Challenge.hmacInput(v.params)).toBe(v.hmacInput);
      expect(Challenge.id(secret, v.params)).toBe(v.params.id);
      expect(Challenge.verify(secret, v.params)).toBe(true);
      const { id: _, ...unbound } = v.params;
      expect(Challenge.create(secret, unbound)).toEqual(v.params);
      expect(Challenge.verify(secret, { ...v.params, realm: `${v.params.realm}x` })).toBe(false);
      expect(Challenge.verify(fromHex('00'), v.params)).toBe(false);
    });
  }
});

describe('challenge headers, through this module', () => {
  for (const v of vectors.challengeHeaders) {
    it(v.name, () => {
      expect(Challenge.format(v.params)).toBe(v.header);
      const [parsed] = Challenges.payment(Challenges.parse(v.header));
      expect(parsed).toMatchObject(v.parsed);
    });
  }
  for (const v of vectors.challengeLists) {
    it(`list: ${v.name}`, () => {
      if (v.error) expect(() => Challenges.payment(Challenges.parse(v.header))).toThrow();
      else
        expect(
          Challenges.payment(Challenges.parse(v.header)).map(({ scheme: _, params: __, ...c }) => c),
        ).toEqual(v.challenges);
    });
  }
});

describe('credentials', () => {
  for (const v of vectors.credentials) {
    it(v.name, () => {
      if (v.error) {
        expect(() => Credential.parse(v.header)).toThrow(expect.objectContaining({ name: 'HeaderError' }));
        return;
      }
      const credential = Credential.parse(v.header);
      expect(credential).toEqual(JSON.parse(v.credentialJson));
      // Written back, it is the vector's bytes (scheme in its canonical case).
      expect(Credential.format(credential)).toBe(v.header.replace(/^payment/i, 'Payment'));
      expect(new TextDecoder().decode(Base64url.decode(v.header.split(' ')[1]!))).toBe(v.credentialJson);
    });
  }
});

describe('receipts', () => {
  for (const v of vectors.receipts) {
    it(v.name, () => {
      const receipt = Receipt.parse(v.header);
      expect(Json.stringify(receipt)).toBe(v.receiptJson);
      expect(Receipt.format(receipt)).toBe(v.header);
    });
  }

  it('builds the vectors’ charge and close receipts in their member order', () => {
    const [charge, , refunded, skipped, big, biggest] = vectors.receipts;
    expect(
      Receipt.format(
        Receipt.charge({
          timestamp: '2026-03-10T21:00:00Z',
          reference: 'bc230847abcdef1234567890',
          challengeId: 'kM9xPqWvT2nJrHsY4aDfEb',
        }),
      ),
    ).toBe(charge!.header);
    const close = (refundSats: bigint, refundStatus: Receipt.RefundStatus) =>
      Receipt.format(
        Receipt.close({ timestamp: '2026-03-10T21:00:00Z', reference: 'aa11bb22', refundSats, refundStatus }),
      );
    expect(close(140n, 'succeeded')).toBe(refunded!.header);
    expect(close(0n, 'skipped')).toBe(skipped!.header);
    expect(close(9007199254740993n, 'succeeded')).toBe(big!.header);
    expect(close(2n ** 63n - 1n, 'succeeded')).toBe(biggest!.header);
    expect(Receipt.parse(biggest!.header).refundSats).toBe(2n ** 63n - 1n);
  });
});
