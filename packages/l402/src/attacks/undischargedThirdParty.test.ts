import { createHmac } from 'node:crypto';
import { expect, it } from 'vitest';
import type * as Macaroon from '../Macaroon.js';
import { auth, Server } from './harness.js';

const hmac = (key: Uint8Array, msg: Uint8Array) =>
  new Uint8Array(createHmac('sha256', key).update(msg).digest());

it('a token with a third-party caveat and no discharge is refused even though its chain is valid', () => {
  const server = new Server();
  const { macaroon, preimage } = server.issue('api');
  const vid = new Uint8Array(72).fill(3);
  const cid = new TextEncoder().encode('is-authenticated-user');
  const s = macaroon.signature;
  const signature = hmac(s, new Uint8Array([...hmac(s, vid), ...hmac(s, cid)]));
  const withThirdParty: Macaroon.Macaroon = {
    ...macaroon,
    caveats: [...macaroon.caveats, { id: cid, verificationId: vid, location: 'https://auth.example' }],
    signature,
  };
  expect(server.check(auth(withThirdParty, preimage))).toBe('L402_UNDISCHARGED_CAVEAT');
});
