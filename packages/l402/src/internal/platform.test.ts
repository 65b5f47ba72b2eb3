import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as node from './platform.node.js';
import * as web from './platform.web.js';

// The browser build must compute the very same bytes as the Node build.
describe('platform.web matches platform.node', () => {
  const bytes = fc.uint8Array({ maxLength: 200 });
  it('hmac, sha256, hex, base64', () => {
    fc.assert(
      fc.property(bytes, bytes, (key, msg) => {
        expect(web.hmacSha256(key, msg)).toEqual(node.hmacSha256(key, msg));
        expect(web.sha256(msg)).toEqual(node.sha256(msg));
        expect(web.hexEncode(msg)).toBe(node.hexEncode(msg));
        expect(web.hexDecode(node.hexEncode(msg).toUpperCase())).toEqual(node.hexDecode(node.hexEncode(msg)));
        for (const urlSafe of [false, true]) {
          const text = node.base64Encode(msg, urlSafe);
          expect(web.base64Encode(msg, urlSafe)).toBe(text);
          const body = text.replace(/=+$/, '');
          expect(web.base64Decode(body, urlSafe)).toEqual(node.base64Decode(body, urlSafe));
        }
        expect(web.constantTimeEqual(key, msg)).toBe(node.constantTimeEqual(key, msg));
        expect(web.constantTimeEqual(msg, msg.slice())).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
  it('random bytes have the asked length and differ', () => {
    expect(web.randomBytes(32)).toHaveLength(32);
    expect(web.randomBytes(32)).not.toEqual(web.randomBytes(32));
    expect(node.randomBytes(32)).not.toEqual(node.randomBytes(32));
  });
});
