import { expect, it } from 'vitest';
import { auth, Server } from './harness.js';

it("paying for one token does not unlock another: the other token's preimage is refused", () => {
  const server = new Server();
  const paid = server.issue('api');
  const unpaid = server.issue('api');
  expect(server.check(auth(paid.macaroon, paid.preimage))).toBe('ok');
  expect(server.check(auth(unpaid.macaroon, paid.preimage))).toBe('L402_BAD_PREIMAGE');
});
