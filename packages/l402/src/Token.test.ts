import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as Caveat from './Caveat.js';
import { IdentifierError, type VerificationError } from './Errors.js';
import * as Identifier from './Identifier.js';
import * as Macaroon from './Macaroon.js';
import * as Token from './Token.js';

const preimage = new Uint8Array(randomBytes(32));
const paymentHash = new Uint8Array(createHash('sha256').update(preimage).digest());
const rootKey = new Uint8Array(randomBytes(32));
const now = 1_700_000_000;
const caveats = [
  Caveat.services([{ name: 'weather', tier: 0 }]),
  Caveat.capabilities('weather', ['read']),
  Caveat.validUntil('weather', now + 3600),
];

describe('Token', () => {
  const { macaroon, identifier } = Token.mint({ rootKey, paymentHash, caveats });

  it('mints an Aperture-shaped macaroon: location lsat, 66-byte v0 identifier', () => {
    expect(macaroon.location).toBe('lsat');
    expect(Identifier.decode(macaroon.identifier)).toEqual(identifier);
    expect(identifier.paymentHash).toEqual(paymentHash);
    expect(Macaroon.firstPartyCaveats(macaroon)).toEqual(caveats);
    expect(Macaroon.toBase64(macaroon).startsWith('AgEEbHNhdAJC')).toBe(true);
  });

  it('verifies with the preimage for the granted service and capability', () => {
    const v = Token.verify(macaroon, {
      rootKey,
      preimage,
      context: { service: 'weather', capabilities: ['read'], now },
    });
    expect(v.identifier.tokenId).toEqual(identifier.tokenId);
    expect(v.caveats).toEqual(caveats);
  });

  const code = (fn: () => unknown) => {
    try {
      fn();
      return 'ok';
    } catch (e) {
      return (e as VerificationError).code;
    }
  };

  it('checks preimage, signature and caveats, in that order', () => {
    const ctx = { service: 'weather', now };
    expect(code(() => Token.verify(macaroon, { rootKey, preimage: new Uint8Array(32), context: ctx }))).toBe(
      'L402_BAD_PREIMAGE',
    );
    expect(code(() => Token.verify(macaroon, { rootKey: new Uint8Array(32), preimage, context: ctx }))).toBe(
      'L402_BAD_SIGNATURE',
    );
    expect(code(() => Token.verify(macaroon, { rootKey, preimage, context: { service: 'maps', now } }))).toBe(
      'L402_SERVICE_NOT_ALLOWED',
    );
    expect(
      code(() => Token.verify(macaroon, { rootKey, preimage, context: { ...ctx, now: now + 3600 } })),
    ).toBe('L402_TOKEN_EXPIRED');
    expect(
      code(() => Token.verify(macaroon, { rootKey, preimage, context: { ...ctx, capabilities: ['write'] } })),
    ).toBe('L402_CAPABILITY_NOT_ALLOWED');
  });

  it("accepts a macaroon carrying lnget's appended preimage caveat", () => {
    const paid = Macaroon.addFirstPartyCaveat(
      macaroon,
      Caveat.preimage(Buffer.from(preimage).toString('hex')),
    );
    expect(code(() => Token.verify(paid, { rootKey, preimage, context: { service: 'weather', now } }))).toBe(
      'ok',
    );
    expect(
      code(() =>
        Token.verify(paid, { rootKey, preimage, context: { service: 'weather', now }, strict: true }),
      ),
    ).toBe('ok');
  });

  it('refuses a token whose identifier is not L402 v0', () => {
    const foreign = Macaroon.create({ rootKey, identifier: 'not an l402 id', location: 'lsat' });
    expect(() => Token.verify(foreign, { rootKey })).toThrow(IdentifierError);
  });

  it('refuses a preimage of the wrong length', () => {
    expect(Token.preimageMatches(identifier, preimage.subarray(0, 31))).toBe(false);
    expect(Token.preimageMatches(identifier, preimage)).toBe(true);
  });

  it('strict mode refuses caveats nobody understands', () => {
    const extra = Macaroon.addFirstPartyCaveat(macaroon, 'color=blue');
    expect(code(() => Token.verify(extra, { rootKey, preimage, context: { service: 'weather', now } }))).toBe(
      'ok',
    );
    expect(
      code(() =>
        Token.verify(extra, { rootKey, preimage, context: { service: 'weather', now }, strict: true }),
      ),
    ).toBe('L402_CAVEAT_UNKNOWN');
  });
});
