/**
 * The NWC URI. The backend itself runs against the devnet's wallet service and relay in
 * packages/devnet/src/facades/nwc.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../internal/bytes.js';
import * as Nwc from './nwc.js';

// The example connection string of NIP-47 (47.md, nostr-protocol/nips @ db5fe3de).
const SPEC =
  'nostr+walletconnect://b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4?relay=wss%3A%2F%2Frelay.damus.io&secret=71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c';

describe('Nwc.parseUri / formatUri', () => {
  it("reads NIP-47's example connection string", () => {
    const parts = Nwc.parseUri(SPEC);
    expect(toHex(parts.walletPubkey)).toBe(
      'b889ff5b1513b641e2a139f661a661364979c5beee91842f8f0ef42ab558e9d4',
    );
    expect(parts.relays).toEqual(['wss://relay.damus.io']);
    expect(toHex(parts.secret)).toBe('71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c');
    expect(Nwc.formatUri(parts)).toBe(SPEC);
  });

  it('reads several relays, lud16, the form without //, and upper-case hex', () => {
    const uri =
      'nostr+walletconnect:B889FF5B1513B641E2A139F661A661364979C5BEEE91842F8F0EF42AB558E9D4?relay=ws://127.0.0.1:7000&relay=wss%3A%2F%2Fr.example&secret=71A8C14C1407C113601079C4302DAB36460F0CCD0AD506F1F2DC73B5100E4F3C&lud16=me%40example.com';
    const parts = Nwc.parseUri(uri);
    expect(parts.relays).toEqual(['ws://127.0.0.1:7000', 'wss://r.example']);
    expect(parts.lud16).toBe('me@example.com');
    expect(Nwc.parseUri(Nwc.formatUri(parts))).toEqual(parts);
  });

  it('refuses malformed URIs with L402_BACKEND_CONFIG, never echoing the secret', () => {
    const secret = '71a8c14c1407c113601079c4302dab36460f0ccd0ad506f1f2dc73b5100e4f3c';
    const bad = [
      'https://example.com',
      `nostr+walletconnect://abc?relay=wss%3A%2F%2Fr&secret=${secret}`,
      `nostr+walletconnect://${'b8'.repeat(32)}?secret=${secret}`,
      `nostr+walletconnect://${'b8'.repeat(32)}?relay=http%3A%2F%2Fr&secret=${secret}`,
      `nostr+walletconnect://${'b8'.repeat(32)}?relay=wss%3A%2F%2Fr&secret=${secret.slice(2)}`,
      `nostr+walletconnect://${'b8'.repeat(32)}?relay=wss%3A%2F%2Fr`,
      // x = 5 is not on secp256k1 (5³ + 7 = 132 has no square root mod p); a zero secret is out of range.
      `nostr+walletconnect://${'00'.repeat(31)}05?relay=wss%3A%2F%2Fr&secret=${secret}`,
      SPEC.replace(/secret=[0-9a-f]+/, `secret=${'00'.repeat(32)}`),
    ];
    for (const uri of bad) {
      let caught: unknown;
      try {
        Nwc.parseUri(uri);
      } catch (error) {
        caught = error;
      }
      expect(caught).toMatchObject({ name: 'BackendError', code: 'L402_BACKEND_CONFIG', backend: 'nwc' });
      expect((caught as Error).message).not.toContain(secret.slice(2, 20));
    }
  });
});
