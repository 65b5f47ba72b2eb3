import { expect, it } from 'vitest';
import { auth, Server } from './harness.js';

it('a credential with a preimage that does not hash to the payment hash is refused', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api');
  const wrong = preimage.slice();
  wrong[0] = (wrong[0] as number) ^ 1;
  expect(server.check(auth(macaroon, wrong))).toBe('L402_BAD_PREIMAGE');
  expect(server.check(auth(macaroon, new Uint8Array(32)))).toBe('L402_BAD_PREIMAGE');
});
