import { expect, it } from 'vitest';
import { auth, Server } from './harness.js';

it("moving a paid token's identifier onto another token's caveats and signature is refused", () => {
  const server = new Server();
  const paid = server.issue('api', { capabilities: ['read'] });
  const other = server.issue('api', { capabilities: ['read', 'write'] });
  // The paid identifier (so the paid preimage matches) with the other token's wider caveats.
  const swapped = { ...other.macaroon, identifier: paid.macaroon.identifier };
  expect(server.check(auth(swapped, paid.preimage), { service: 'api', capabilities: ['write'] })).toBe(
    'L402_BAD_SIGNATURE',
  );
  // And the other way: the unpaid identifier with the paid token's signature.
  const reverse = { ...paid.macaroon, identifier: other.macaroon.identifier };
  expect(server.check(auth(reverse, other.preimage))).toBe('L402_BAD_SIGNATURE');
});
