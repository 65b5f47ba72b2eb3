/**
 * Attenuation of a cached token for someone else (a sub-agent, another process): more first-party
 * caveats, never a wider one. A caveat whose key the token already has must narrow it by that key's
 * rule (services and capabilities subsets, numbers and expiries no higher, anything else equal); a new
 * key only adds a restriction. A path scope must lie inside the token's own scope.
 *
 * @example
 * const { credential, token } = Delegate.attenuate(stored, ['api_capabilities=read', 'path=/api/v1']);
 */
import * as Caveat from '../Caveat.js';
import { CaveatFormatError, VerificationError } from '../Errors.js';
import * as Macaroon from '../Macaroon.js';
import * as TokenStore from './TokenStore.js';

/**
 * The caveats to add, checked against the token's `existing` ones in order; throws
 * {@link VerificationError} `L402_CAVEAT_WIDENED` for one that would widen, {@link CaveatFormatError}
 * for one that is not `key=value`.
 *
 * @example
 * Delegate.narrowing(['api_capabilities=read,write'], ['api_capabilities=read']); // ok
 */
export function narrowing(existing: readonly string[], added: readonly string[]): string[] {
  const last = new Map<string, string>();
  for (const text of existing) {
    const c = Caveat.tryParse(text);
    if (c !== undefined) last.set(c.key, c.value);
  }
  for (const text of added) {
    const c = Caveat.parse(text);
    const before = last.get(c.key);
    if (before !== undefined) {
      const satisfier = Caveat.defaultSatisfiers.find((s) => s.matches(c.key));
      const ok = satisfier !== undefined ? satisfier.narrows(before, c.value, c.key) : before === c.value;
      if (!ok) {
        throw new VerificationError(
          'L402_CAVEAT_WIDENED',
          `${text} would widen the token's ${c.key}=${before}: attenuation can only narrow`,
          c.key,
        );
      }
    }
    last.set(c.key, c.value);
  }
  return [...added];
}

/** A narrowed copy of a paid token: the stored form (scope and expiry re-read) and its credential. */
export interface Delegated {
  readonly token: TokenStore.StoredToken;
  /** The `Authorization` value: `L402 <macaroon>:<preimage>`. */
  readonly credential: string;
  /** Every first-party caveat of the narrowed token, in order. */
  readonly caveats: readonly string[];
}

/**
 * Attenuates a paid L402/LSAT token with `caveats` (see {@link narrowing}).
 *
 * @example
 * const { credential } = Delegate.attenuate(token, [`weather_valid_until=${now + 600}`]);
 */
export function attenuate(
  token: TokenStore.StoredToken,
  caveats: readonly string[],
  nowMs = Date.now(),
): Delegated {
  if (token.state !== 'paid' || token.preimage === undefined) {
    throw new VerificationError('L402_CAVEAT_UNSATISFIED', 'only a paid token can be delegated');
  }
  if (token.scheme === 'Payment') {
    throw new VerificationError(
      'L402_CAVEAT_UNSATISFIED',
      'an MPP charge credential is single use: it cannot be delegated',
    );
  }
  if (caveats.length === 0) throw new CaveatFormatError('delegating needs at least one caveat to add');
  const macaroon = Macaroon.decode(token.macaroon);
  const existing = Macaroon.firstPartyCaveats(macaroon);
  const added = narrowing(existing, caveats);
  const all = [...existing, ...added];
  const scope = TokenStore.scopeOf(all);
  if (scope.path !== undefined && !TokenStore.covers(token.path, scope.path)) {
    throw new VerificationError(
      'L402_CAVEAT_WIDENED',
      `path ${scope.path} is outside the token's scope ${token.path}: attenuation can only narrow`,
      'path',
    );
  }
  const narrowed = Macaroon.toBase64(Macaroon.addFirstPartyCaveat(macaroon, ...added));
  const delegated: TokenStore.StoredToken = {
    ...token,
    macaroon: narrowed,
    path: scope.path ?? token.path,
    createdAt: nowMs,
    ...(scope.expiresAt !== undefined ? { expiresAt: scope.expiresAt } : {}),
    ...(scope.services !== undefined ? { services: scope.services } : {}),
  };
  return {
    token: delegated,
    credential: `${token.scheme === 'LSAT' ? 'LSAT' : 'L402'} ${narrowed}:${token.preimage}`,
    caveats: all,
  };
}
