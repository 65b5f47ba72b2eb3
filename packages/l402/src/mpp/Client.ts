/**
 * The client side of the Payment scheme's Lightning method: pick the offers out of a 402, read what
 * they ask for, and build the `Authorization` value once the invoice is paid. Pure functions over the
 * wire format; paying is the caller's (any {@link Backend}'s `pay`).
 *
 * @example
 * const offers = Client.offers(response.headers.get('www-authenticate'));
 * const charge = offers.find((o) => o.intent === 'charge')!;
 * const { preimage } = await wallet.pay(Client.chargeRequest(charge).methodDetails.invoice);
 * await fetch(url, { headers: { authorization: Client.charge(charge, preimage) } });
 */
import * as Challenges from '../Challenge.js';
import { toHex } from '../internal/bytes.js';
import type * as Challenge from './Challenge.js';
import * as Credential from './Credential.js';
import type * as Json from './Json.js';
import * as Receipt from './Receipt.js';
import * as Request from './Request.js';

/** A Payment offer as the server sent it (what a credential must echo). */
export type Offer = Challenge.Bound;

type Preimage = Uint8Array | string;
const hex = (p: Preimage) => (typeof p === 'string' ? p.toLowerCase() : toHex(p));

/** The echo of a challenge: exactly the parameters the server sent (unknown ones dropped). */
function echo(offer: Offer): Challenge.Bound {
  const { id, realm, method, intent, request, expires, description, opaque, digest } = offer;
  return Object.fromEntries(
    Object.entries({ id, realm, method, intent, request, expires, description, opaque, digest }).filter(
      ([, v]) => v !== undefined,
    ),
  ) as unknown as Challenge.Bound;
}

function credential(offer: Offer, payload: Json.JsonObject, source?: string): string {
  return Credential.format({ challenge: echo(offer), ...(source === undefined ? {} : { source }), payload });
}

/**
 * The Lightning Payment offers of a `WWW-Authenticate` header (one value, the lines, or the lines
 * joined with ", "), in order; L402 and other offers are skipped.
 *
 * @example
 * Client.offers(lines).map((o) => o.intent); // ['charge', 'session']
 */
export function offers(header: string | readonly string[] | null | undefined): Offer[] {
  let parsed: Challenges.Challenge[];
  try {
    parsed = Challenges.parse(header);
  } catch {
    return [];
  }
  return Challenges.payment(parsed)
    .filter((c) => c.method === 'lightning')
    .map(({ scheme: _, params: __, ...offer }) => offer);
}

/** What a charge offer asks: amount, invoice, payment hash (check the invoice against them before paying). */
export function chargeRequest(offer: Offer): Request.ChargeRequest {
  return Request.charge(offer.request);
}

/** What a session offer asks: unit price, deposit invoice and amount, payment hash. */
export function sessionRequest(offer: Offer): Request.SessionRequest {
  return Request.session(offer.request);
}

/**
 * `Authorization` for a paid charge offer.
 *
 * @example
 * Client.charge(offer, preimage); // 'Payment eyJjaGFsbGVuZ2Ui…'
 */
export function charge(offer: Offer, preimage: Preimage, options: { source?: string } = {}): string {
  return credential(offer, { preimage: hex(preimage) }, options.source);
}

/**
 * `Authorization` opening a session: the deposit's preimage, and an invoice without an amount (with an
 * expiry comfortably past the session's life) for the refund at close.
 */
export function open(offer: Offer, deposit: { preimage: Preimage; returnInvoice: string }): string {
  return credential(offer, {
    action: 'open',
    preimage: hex(deposit.preimage),
    returnInvoice: deposit.returnInvoice,
  });
}

/** `Authorization` spending from an open session (any session offer of the service may be echoed). */
export function bearer(offer: Offer, session: { sessionId: string; preimage: Preimage }): string {
  return credential(offer, {
    action: 'bearer',
    sessionId: session.sessionId,
    preimage: hex(session.preimage),
  });
}

/** `Authorization` crediting a session with a new offer's paid deposit invoice. */
export function topUp(offer: Offer, session: { sessionId: string; topUpPreimage: Preimage }): string {
  return credential(offer, {
    action: 'topUp',
    sessionId: session.sessionId,
    topUpPreimage: hex(session.topUpPreimage),
  });
}

/** `Authorization` closing a session; the server refunds what is left to the return invoice. */
export function close(offer: Offer, session: { sessionId: string; preimage: Preimage }): string {
  return credential(offer, {
    action: 'close',
    sessionId: session.sessionId,
    preimage: hex(session.preimage),
  });
}

/** The decoded `Payment-Receipt` of a response, or undefined when it has none. */
export function receipt(header: string | null | undefined): Receipt.Receipt | undefined {
  return header ? Receipt.parse(header) : undefined;
}
