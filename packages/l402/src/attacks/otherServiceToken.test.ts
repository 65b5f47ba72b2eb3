import { expect, it } from 'vitest';
import * as Caveat from '../Caveat.js';
import * as Macaroon from '../Macaroon.js';
import { auth, Server } from './harness.js';

it('a token bought for one service is refused by another, even with a caveat naming it appended', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('weather');
  expect(server.check(auth(macaroon, preimage), { service: 'weather' })).toBe('ok');
  expect(server.check(auth(macaroon, preimage), { service: 'maps' })).toBe('L402_SERVICE_NOT_ALLOWED');
  const claimed = Macaroon.addFirstPartyCaveat(macaroon, Caveat.services([{ name: 'maps', tier: 0 }]));
  expect(server.check(auth(claimed, preimage), { service: 'maps' })).toBe('L402_CAVEAT_WIDENED');
});
