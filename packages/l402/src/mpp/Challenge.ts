/**
 * The challenge `id` of the Payment scheme: base64url HMAC-SHA256 over seven pipe-joined slots
 * (`realm|method|intent|request|expires|digest|opaque`, absent optional slots empty), so a server can
 * tell its own challenges from forged or edited ones without remembering any of them. `description`
 * is not covered, as in Aperture and the vectors.
 *
 * @example
 * const challenge = Challenge.create(secret, { realm: 'api.example.com', method: 'lightning', intent: 'charge', request });
 * Challenge.verify(secret, challenge); // true
 * const header = Challenge.format(challenge); // 'Payment id="…", realm="api.example.com", …'
 */
import * as platform from '#platform';
import { formatPayment, type PaymentChallenge } from '../Challenge.js';
import { utf8 } from '../internal/bytes.js';
import * as Base64url from './Base64url.js';

/** A Payment challenge's parameters, `id` aside. */
export interface Params {
  readonly realm: string;
  readonly method: string;
  readonly intent: string;
  readonly request: string;
  readonly expires?: string | undefined;
  readonly digest?: string | undefined;
  readonly description?: string | undefined;
  readonly opaque?: string | undefined;
}

/** A Payment challenge with its `id`. */
export interface Bound extends Params {
  readonly id: string;
}

/**
 * The HMAC input: the seven slots joined with `|`.
 *
 * @example
 * Challenge.hmacInput({ realm: 'r', method: 'lightning', intent: 'charge', request: 'cQ' }); // 'r|lightning|charge|cQ|||'
 */
export function hmacInput(p: Params): string {
  return [p.realm, p.method, p.intent, p.request, p.expires ?? '', p.digest ?? '', p.opaque ?? ''].join('|');
}

/** The `id` a server with `secret` gives a challenge with these parameters. */
export function id(secret: Uint8Array, p: Params): string {
  return Base64url.encode(platform.hmacSha256(secret, utf8(hmacInput(p))));
}

/** Whether `challenge.id` is the one `secret` gives its parameters; compared in constant time. */
export function verify(secret: Uint8Array, challenge: Bound): boolean {
  return platform.constantTimeEqual(utf8(id(secret, challenge)), utf8(challenge.id));
}

/** The parameters with their `id` (absent optional ones left out). */
export function create(secret: Uint8Array, p: Params): Bound {
  const bound: Record<string, string> = { id: id(secret, p) };
  for (const [name, value] of Object.entries(p)) if (value !== undefined) bound[name] = value;
  return bound as unknown as Bound;
}

/** The `WWW-Authenticate` line for a challenge, in Aperture's parameter order. */
export function format(challenge: Bound): string {
  return formatPayment(challenge as Omit<PaymentChallenge, 'scheme' | 'params'>);
}
