/**
 * The verifying side of an L402 exchange, as a server runs it, for the attack tests: root keys stored
 * under sha256(identifier), the credential read from request headers, then the whole token check.
 * Each attack file drives this with a forged or misused credential and expects a typed refusal.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as Caveat from '../Caveat.js';
import * as Credential from '../Credential.js';
import { L402Error } from '../Errors.js';
import { toHex } from '../internal/bytes.js';
import type * as Macaroon from '../Macaroon.js';
import * as Token from '../Token.js';

export const NOW = 1_800_000_000;

export class Server {
  private readonly keys = new Map<string, Uint8Array>();

  /** Mints a paid token for `service`; returns it with its preimage, as a client holds it after paying. */
  issue(service: string, options: { capabilities?: string[]; validFor?: number } = {}) {
    const preimage = new Uint8Array(randomBytes(32));
    const paymentHash = new Uint8Array(createHash('sha256').update(preimage).digest());
    const rootKey = new Uint8Array(randomBytes(32));
    const caveats = [
      Caveat.services([{ name: service, tier: 0 }]),
      Caveat.capabilities(service, options.capabilities ?? ['read']),
      Caveat.validUntil(service, NOW + (options.validFor ?? 3600)),
    ];
    const { macaroon } = Token.mint({ rootKey, paymentHash, caveats });
    this.keys.set(toHex(createHash('sha256').update(macaroon.identifier).digest()), rootKey);
    return { macaroon, preimage };
  }

  revoke(macaroon: Macaroon.Macaroon): void {
    this.keys.delete(toHex(createHash('sha256').update(macaroon.identifier).digest()));
  }

  /** `ok`, or the code of the typed error that refused the request. */
  check(
    headers: Credential.HeaderSource,
    request: { service: string; capabilities?: string[]; now?: number } = { service: 'api' },
  ): string {
    try {
      const credential = Credential.fromHeaders(headers);
      if (credential === undefined) return 'NO_CREDENTIAL';
      const rootKey = this.keys.get(
        toHex(createHash('sha256').update(credential.macaroon.identifier).digest()),
      );
      if (rootKey === undefined) return 'UNKNOWN_TOKEN';
      Token.verify(credential.macaroon, {
        rootKey,
        preimage: credential.preimage,
        context: { service: request.service, capabilities: request.capabilities, now: request.now ?? NOW },
      });
      return 'ok';
    } catch (e) {
      if (e instanceof L402Error) return e.code;
      throw e;
    }
  }
}

export const auth = (macaroon: Macaroon.Macaroon, preimage: Uint8Array) => ({
  authorization: Credential.format({ macaroon, preimage }),
});
