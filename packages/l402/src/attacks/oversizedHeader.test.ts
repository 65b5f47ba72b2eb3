import { expect, it } from 'vitest';
import * as Challenge from '../Challenge.js';
import * as Credential from '../Credential.js';
import { HeaderError } from '../Errors.js';
import * as Macaroon from '../Macaroon.js';
import { auth, Server } from './harness.js';

it('oversized credential and challenge headers are refused before any decoding', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api');
  // A macaroon padded with thousands of caveats: the header exceeds the bound.
  const huge = Macaroon.addFirstPartyCaveat(
    macaroon,
    ...Array.from({ length: 400 }, (_, i) => `pad${i}=${'x'.repeat(20)}`),
  );
  expect(server.check(auth(huge, preimage))).toBe('L402_HEADER_TOO_LARGE');
  expect(server.check({ macaroon: Credential.formatMacaroonHeader({ macaroon: huge, preimage }) })).toBe(
    'L402_HEADER_TOO_LARGE',
  );
  expect(server.check({ authorization: `L402 ${'A'.repeat(1_000_000)}:${'0'.repeat(64)}` })).toBe(
    'L402_HEADER_TOO_LARGE',
  );
  expect(() => Challenge.parse(`L402 macaroon="${'A'.repeat(100_000)}", invoice="lnbc1"`)).toThrow(
    HeaderError,
  );
});
