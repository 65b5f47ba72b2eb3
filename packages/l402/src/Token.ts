/**
 * An L402 token: a macaroon whose identifier commits to a payment hash, plus the preimage that proves
 * payment. Minting and the whole verification, in the order that fails cheapest first: identifier,
 * preimage, signature (constant time), third-party caveats, first-party caveats.
 *
 * @example
 * const { macaroon } = Token.mint({ rootKey, paymentHash, caveats: [Caveat.services([{ name: 'api', tier: 0 }])] });
 * Token.verify(macaroon, { rootKey, preimage, context: { service: 'api', now: Date.now() / 1000 } });
 */
import * as platform from '#platform';
import * as Caveat from './Caveat.js';
import { VerificationError } from './Errors.js';
import * as Identifier from './Identifier.js';
import { toHex } from './internal/bytes.js';
import * as Macaroon from './Macaroon.js';

export interface MintOptions {
  /** 32 random bytes, stored by the server under `sha256(identifier)` or derived from a master key. */
  readonly rootKey: Uint8Array;
  readonly paymentHash: Uint8Array;
  /** Defaults to 32 random bytes. */
  readonly tokenId?: Uint8Array;
  /** Defaults to `lsat`, as Aperture mints. */
  readonly location?: string;
  readonly caveats?: readonly string[];
}

export interface Minted {
  readonly macaroon: Macaroon.Macaroon;
  readonly identifier: Identifier.Identifier;
}

/** A new token for an invoice's payment hash. */
export function mint(options: MintOptions): Minted {
  const identifier = Identifier.create(options.paymentHash, options.tokenId);
  const macaroon = Macaroon.create({
    rootKey: options.rootKey,
    identifier: Identifier.encode(identifier),
    location: options.location ?? 'lsat',
    caveats: options.caveats ?? [],
  });
  return { macaroon, identifier };
}

/** Whether `sha256(preimage)` is the identifier's payment hash. */
export function preimageMatches(identifier: Identifier.Identifier, preimage: Uint8Array): boolean {
  return (
    preimage.length === 32 && platform.constantTimeEqual(platform.sha256(preimage), identifier.paymentHash)
  );
}

export interface VerifyOptions extends Caveat.VerifyOptions {
  readonly rootKey: Uint8Array;
  /** The payment preimage; omit only where payment is proven some other way. */
  readonly preimage?: Uint8Array | undefined;
  /** The request; `now` defaults to the current time. */
  readonly context?: Partial<Caveat.Context>;
}

export interface Verified {
  readonly identifier: Identifier.Identifier;
  /** First-party caveats in token order. */
  readonly caveats: readonly string[];
}

/**
 * Verifies a token for a request. Throws {@link VerificationError} (or {@link IdentifierError} for an
 * identifier that is not L402 v0); returns what the token is when it grants the request.
 */
export function verify(macaroon: Macaroon.Macaroon, options: VerifyOptions): Verified {
  const identifier = Identifier.decode(macaroon.identifier);
  if (options.preimage !== undefined && !preimageMatches(identifier, options.preimage)) {
    throw new VerificationError('L402_BAD_PREIMAGE', 'preimage does not match the payment hash of the token');
  }
  if (!Macaroon.verifySignature(macaroon, options.rootKey)) {
    throw new VerificationError('L402_BAD_SIGNATURE', 'token signature is not valid');
  }
  if (Macaroon.thirdPartyCaveats(macaroon).length > 0) {
    throw new VerificationError(
      'L402_UNDISCHARGED_CAVEAT',
      'token has a third-party caveat and no discharge for it',
    );
  }
  const caveats = Macaroon.firstPartyCaveats(macaroon);
  if (options.strict && caveats.length !== macaroon.caveats.length) {
    throw new VerificationError('L402_CAVEAT_UNKNOWN', 'token has a caveat that is not UTF-8 text');
  }
  const preimageHex = options.preimage === undefined ? undefined : toHex(options.preimage);
  Caveat.verify(
    caveats,
    {
      now: Date.now() / 1000,
      ...options.context,
      ...(preimageHex !== undefined ? { preimage: preimageHex } : {}),
    },
    options,
  );
  return { identifier, caveats };
}
