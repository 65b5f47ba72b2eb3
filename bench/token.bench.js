/**
 * Token core: mint and verify of a token with 3 caveats, against a bare `createHmac` chain of the same
 * length (key derivation + identifier + 3 caveats = 5 HMAC-SHA256), all in this process.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Caveat, Credential, Macaroon, Token } from 'l402';
import { fmt, measure } from './lib.js';

export const title = 'Token core (3 caveats)';

export function run() {
  const rootKey = randomBytes(32);
  const preimage = new Uint8Array(randomBytes(32));
  const paymentHash = new Uint8Array(createHash('sha256').update(preimage).digest());
  const now = Math.floor(Date.now() / 1000);
  const caveats = [
    Caveat.services([{ name: 'weather', tier: 0 }]),
    Caveat.capabilities('weather', ['read', 'forecast']),
    Caveat.validUntil('weather', now + 3600),
  ];
  const { macaroon } = Token.mint({ rootKey, paymentHash, caveats });
  const header = Credential.format({ macaroon, preimage });
  const context = { service: 'weather', capabilities: ['read'], now };
  const identifier = macaroon.identifier;
  const caveatBytes = macaroon.caveats.map((c) => c.id);
  const keyGen = Buffer.from('macaroons-key-generator');

  const results = measure({
    'baseline: bare createHmac chain (5 HMACs)': () => {
      let sig = createHmac('sha256', keyGen).update(rootKey).digest();
      sig = createHmac('sha256', sig).update(identifier).digest();
      for (const c of caveatBytes) sig = createHmac('sha256', sig).update(c).digest();
    },
    'verify (decoded token)': () => Token.verify(macaroon, { rootKey, preimage, context }),
    'verify (from Authorization header)': () => {
      const cred = Credential.parse(header);
      Token.verify(cred.macaroon, { rootKey, preimage: cred.preimage, context });
    },
    'mint (to base64)': () => Macaroon.toBase64(Token.mint({ rootKey, paymentHash, caveats }).macaroon),
  });
  const base = results['baseline: bare createHmac chain (5 HMACs)'];
  const lines = Object.entries(results).map(
    ([name, ops]) =>
      `${name}: ${fmt(ops)} ops/s${name.startsWith('baseline') ? '' : ` (${(base / ops).toFixed(2)}x the baseline's time)`}`,
  );
  return { lines, results };
}
