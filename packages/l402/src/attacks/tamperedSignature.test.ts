import { expect, it } from 'vitest';
import * as Macaroon from '../Macaroon.js';
import { auth, Server } from './harness.js';

it('a token whose signature was altered is refused', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api');
  expect(server.check(auth(macaroon, preimage))).toBe('ok');
  for (let bit = 0; bit < 256; bit += 17) {
    const signature = macaroon.signature.slice();
    signature[bit >> 3] = (signature[bit >> 3] as number) ^ (1 << (bit & 7));
    expect(server.check(auth({ ...macaroon, signature }, preimage))).toBe('L402_BAD_SIGNATURE');
  }
  // A signature recomputed with a guessed key does not help either.
  const forged = Macaroon.create({
    rootKey: new Uint8Array(32),
    identifier: macaroon.identifier,
    location: 'lsat',
  });
  expect(server.check(auth(forged, preimage))).toBe('L402_BAD_SIGNATURE');
});
