import { expect, it } from 'vitest';
import { auth, Server } from './harness.js';

it('a revoked token (root key deleted) is refused', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api');
  expect(server.check(auth(macaroon, preimage))).toBe('ok');
  server.revoke(macaroon);
  expect(server.check(auth(macaroon, preimage))).toBe('UNKNOWN_TOKEN');
});
