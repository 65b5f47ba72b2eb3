import { expect, it } from 'vitest';
import * as Macaroon from '../Macaroon.js';
import { auth, NOW, Server } from './harness.js';

it('reordering caveats breaks the signature', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api');
  const caveats = [...macaroon.caveats].reverse();
  expect(server.check(auth({ ...macaroon, caveats }, preimage))).toBe('L402_BAD_SIGNATURE');
});

it('a holder cannot reorder by appending: a later, wider expiry is refused even with a valid chain', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api', { validFor: 10 });
  const later = Macaroon.addFirstPartyCaveat(macaroon, `api_valid_until=${NOW + 99999}`);
  expect(server.check(auth(later, preimage), { service: 'api', now: NOW + 20 })).toBe('L402_CAVEAT_WIDENED');
});
