import { expect, it } from 'vitest';
import * as Caveat from '../Caveat.js';
import * as Macaroon from '../Macaroon.js';
import { auth, Server } from './harness.js';

it('appended caveats that widen services, capabilities or tiers are refused', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api', { capabilities: ['read'] });
  const widen = (c: string) =>
    server.check(auth(Macaroon.addFirstPartyCaveat(macaroon, c), preimage), {
      service: 'api',
      capabilities: ['read'],
    });
  expect(
    widen(
      Caveat.services([
        { name: 'api', tier: 0 },
        { name: 'admin', tier: 0 },
      ]),
    ),
  ).toBe('L402_CAVEAT_WIDENED');
  expect(widen(Caveat.services([{ name: 'api', tier: 9 }]))).toBe('L402_CAVEAT_WIDENED');
  expect(widen(Caveat.capabilities('api', ['read', 'write']))).toBe('L402_CAVEAT_WIDENED');
  // A narrowing caveat is fine, and then the narrower rule holds.
  expect(widen(Caveat.capabilities('api', ['read']))).toBe('ok');
  const narrowed = Macaroon.addFirstPartyCaveat(macaroon, 'api_capabilities=');
  expect(server.check(auth(narrowed, preimage), { service: 'api', capabilities: ['read'] })).toBe(
    'L402_CAPABILITY_NOT_ALLOWED',
  );
});
