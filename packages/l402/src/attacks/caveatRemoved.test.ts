import { expect, it } from 'vitest';
import { auth, Server } from './harness.js';

it('dropping any caveat breaks the signature', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api', { validFor: 10 });
  for (let i = 0; i < macaroon.caveats.length; i++) {
    const caveats = macaroon.caveats.filter((_, j) => j !== i);
    expect(server.check(auth({ ...macaroon, caveats }, preimage))).toBe('L402_BAD_SIGNATURE');
  }
  expect(server.check(auth({ ...macaroon, caveats: [] }, preimage))).toBe('L402_BAD_SIGNATURE');
});
