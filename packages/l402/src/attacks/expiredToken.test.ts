import { expect, it } from 'vitest';
import { auth, NOW, Server } from './harness.js';

it('a token past its valid_until is refused, and stays refused whatever is appended', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api', { validFor: 60 });
  expect(server.check(auth(macaroon, preimage), { service: 'api', now: NOW + 59 })).toBe('ok');
  expect(server.check(auth(macaroon, preimage), { service: 'api', now: NOW + 60 })).toBe(
    'L402_TOKEN_EXPIRED',
  );
  expect(server.check(auth(macaroon, preimage), { service: 'api', now: NOW + 86400 })).toBe(
    'L402_TOKEN_EXPIRED',
  );
});
