/**
 * `WWW-Authenticate` for payments: read every form a server sends (Aperture's `LSAT` + `L402` pair, the
 * L402 spec's `version`/`token` form, MPP `Payment` offers; any case, any parameter order, several header
 * lines or one string joined with ", ") and write the exact form Aperture sends.
 *
 * @example
 * const offers = Challenge.parse(response.headers.get('www-authenticate'));
 * const offer = Challenge.l402(offers); // pay offer.invoice, then present offer.macaroon with the preimage
 */
import { HeaderError } from './Errors.js';
import { type AuthChallenge, formatChallenge, parseChallenges } from './internal/authParams.js';

/**
 * An L402 (or legacy LSAT) offer: a macaroon that becomes valid once `invoice` is paid.
 *
 * @example
 * const c: L402Challenge = { scheme: 'L402', macaroon: 'AgEE…', invoice: 'lnbc10n1…', params: {} };
 */
export interface L402Challenge {
  /** Normalized to upper case whatever case the server used. */
  scheme: 'L402' | 'LSAT';
  /** The base64 text exactly as sent (from `macaroon=` or the spec's `token=`), not decoded here. */
  macaroon: string;
  invoice: string;
  version?: string;
  /** Every parameter, names lower-cased, including ones this library does not know. */
  params: Record<string, string>;
}

/**
 * An MPP offer (`Payment` HTTP authentication scheme): `request` is base64url JCS JSON whose meaning
 * depends on `method` and `intent`.
 *
 * @example
 * const c: PaymentChallenge = {
 *   scheme: 'Payment', id: 'x7Tg', realm: 'api.example.com', method: 'lightning', intent: 'charge',
 *   request: 'eyJhbW91bnQiOiIxMDAifQ', params: {},
 * };
 */
export interface PaymentChallenge {
  scheme: 'Payment';
  id: string;
  realm: string;
  method: string;
  intent: string;
  request: string;
  expires?: string;
  digest?: string;
  description?: string;
  opaque?: string;
  /** Every parameter, names lower-cased, including ones this library does not know. */
  params: Record<string, string>;
}

/**
 * Any offer {@link parse} returns; `scheme` tells them apart.
 *
 * @example
 * for (const c of Challenge.parse(header)) if (c.scheme === 'Payment') console.log(c.intent);
 */
export type Challenge = L402Challenge | PaymentChallenge;

// Aperture's pair with a large attenuated macaroon plus two MPP offers stays well under this; the bound
// exists so a hostile server cannot make a client chew through megabytes of header.
const DEFAULT_MAX_LENGTH = 16384;

// The MPP vectors' order, which is also the order Aperture writes.
const PAYMENT_PARAMS = [
  'id',
  'realm',
  'method',
  'intent',
  'request',
  'expires',
  'digest',
  'description',
  'opaque',
] as const;
const PAYMENT_REQUIRED = PAYMENT_PARAMS.slice(0, 5);
const PAYMENT_OPTIONAL = PAYMENT_PARAMS.slice(5);

function toL402(c: AuthChallenge, scheme: 'L402' | 'LSAT'): L402Challenge | string {
  if (c.token68 !== undefined) return 'a token68 instead of parameters';
  const { macaroon: mac, token, invoice, version } = c.params;
  // Two different tokens in one offer cannot both match the invoice; guessing would pay for a dud.
  if (mac && token && mac !== token) return 'macaroon and token differ';
  const macaroon = mac || token;
  if (!macaroon) return 'no macaroon or token';
  if (!invoice) return 'no invoice';
  // A later version may change what the token or the payment means, so its offer is not ours to take.
  if (version !== undefined && version !== '0') return 'an unsupported version';
  return version === undefined
    ? { scheme, macaroon, invoice, params: c.params }
    : { scheme, macaroon, invoice, version, params: c.params };
}

function toPayment(c: AuthChallenge): PaymentChallenge | string {
  const p = c.params;
  const missing = PAYMENT_REQUIRED.filter((name) => !p[name]);
  if (missing.length > 0) return `no ${missing.join(', ')}`;
  const challenge: PaymentChallenge = {
    scheme: 'Payment',
    id: p.id!,
    realm: p.realm!,
    method: p.method!,
    intent: p.intent!,
    request: p.request!,
    params: p,
  };
  for (const name of PAYMENT_OPTIONAL) if (p[name] !== undefined) challenge[name] = p[name];
  return challenge;
}

function describe(seen: string[]): string {
  const shown = seen.slice(0, 5).join('; ');
  return seen.length > 5 ? `${shown}; and ${seen.length - 5} more` : shown;
}

/**
 * Every L402, LSAT and Payment offer in a `WWW-Authenticate` header, in the order sent. Takes one value,
 * the array of header lines, or the lines joined with ", " (what Fetch's `headers.get` returns). Offers
 * of other schemes (Basic, Bearer, …), incomplete offers and malformed challenges are skipped; duplicates
 * such as Aperture's LSAT + L402 pair stay as separate entries.
 *
 * @throws {HeaderError} `L402_HEADER_TOO_LARGE` when the text (lines joined with ", ") exceeds `maxLength`
 * (default 16384); `L402_HEADER_FORMAT` when no usable offer is left, saying what was seen instead.
 * @example
 * Challenge.parse('LSAT macaroon="AgE=", invoice="lnbc1", L402 macaroon="AgE=", invoice="lnbc1"')
 * // [{ scheme: 'LSAT', macaroon: 'AgE=', invoice: 'lnbc1', … }, { scheme: 'L402', … }]
 */
export function parse(
  header: string | readonly string[] | null | undefined,
  options: { maxLength?: number } = {},
): Challenge[] {
  const lines = header == null ? [] : typeof header === 'string' ? [header] : header;
  const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
  const length = lines.reduce((n, line, i) => n + line.length + (i > 0 ? 2 : 0), 0);
  if (length > maxLength) {
    throw new HeaderError(
      'L402_HEADER_TOO_LARGE',
      `WWW-Authenticate is ${length} characters, over the limit of ${maxLength}; raise maxLength only for a server you trust`,
    );
  }
  const challenges: Challenge[] = [];
  const seen: string[] = [];
  // Line by line, so that a broken line (an unterminated quote, say) cannot swallow the lines after it.
  for (const line of lines) {
    let parsed: AuthChallenge[] = [];
    try {
      parsed = parseChallenges(line, (offset, reason) =>
        seen.push(`a malformed challenge (${reason} at character ${offset})`),
      );
    } catch (e) {
      // Thrown only when nothing in the line parsed, and each failure already reached `seen` above.
      if (!(e instanceof HeaderError)) throw e;
    }
    for (const c of parsed) {
      const scheme = c.scheme.toUpperCase();
      const result =
        scheme === 'L402' || scheme === 'LSAT'
          ? toL402(c, scheme)
          : scheme === 'PAYMENT'
            ? toPayment(c)
            : 'not a payment scheme';
      if (typeof result !== 'string') challenges.push(result);
      // Scheme names are tokens, safe to echo; the cut keeps a hostile one from bloating the message.
      else seen.push(`${c.scheme.length > 32 ? `${c.scheme.slice(0, 32)}…` : c.scheme} (${result})`);
    }
  }
  if (challenges.length > 0) return challenges;
  throw new HeaderError(
    'L402_HEADER_FORMAT',
    seen.length === 0
      ? 'no WWW-Authenticate challenge: the response offers no way to pay'
      : `no usable L402, LSAT or Payment challenge in WWW-Authenticate; saw ${describe(seen)}`,
  );
}

/**
 * The L402 offer to pay: the first L402/LSAT one, except that when an L402 offer with the same macaroon
 * and invoice follows an LSAT one (Aperture's pair) the L402 one is returned, so the credential goes out
 * under the current scheme name. `undefined` when there is none.
 *
 * @example
 * Challenge.l402(Challenge.parse(headers.get('www-authenticate')))?.invoice
 */
export function l402(challenges: readonly Challenge[]): L402Challenge | undefined {
  const offers = challenges.filter((c): c is L402Challenge => c.scheme !== 'Payment');
  const first = offers[0];
  if (first === undefined || first.scheme === 'L402') return first;
  const twin = offers.find(
    (c) => c.scheme === 'L402' && c.macaroon === first.macaroon && c.invoice === first.invoice,
  );
  return twin ?? first;
}

/**
 * The MPP `Payment` offers, in order.
 *
 * @example
 * const charge = Challenge.payment(offers).find((c) => c.method === 'lightning' && c.intent === 'charge');
 */
export function payment(challenges: readonly Challenge[]): PaymentChallenge[] {
  return challenges.filter((c): c is PaymentChallenge => c.scheme === 'Payment');
}

/**
 * `WWW-Authenticate` lines (one array entry per header line) offering `macaroon` for `invoice`. The
 * default is byte-for-byte Aperture's pair, LSAT first because old Loop clients read only the first line.
 * `spec: true` appends the L402 spec's `version="0", token="…"` to each line, after `macaroon` and
 * `invoice` so that Aperture's own client regex `(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"` still
 * matches.
 *
 * @throws {HeaderError} `L402_HEADER_FORMAT` when the macaroon or invoice is empty or holds a control
 * character.
 * @example
 * Challenge.format({ macaroon: 'AgE=', invoice: 'lnbc1' })
 * // ['LSAT macaroon="AgE=", invoice="lnbc1"', 'L402 macaroon="AgE=", invoice="lnbc1"']
 */
export function format(
  input: { macaroon: string; invoice: string },
  options: { schemes?: readonly ('LSAT' | 'L402')[]; spec?: boolean } = {},
): string[] {
  const { macaroon, invoice } = input;
  if (!macaroon || !invoice)
    throw new HeaderError('L402_HEADER_FORMAT', 'an L402 challenge needs a macaroon and an invoice');
  const params: [string, string][] = [
    ['macaroon', macaroon],
    ['invoice', invoice],
  ];
  if (options.spec) params.push(['version', '0'], ['token', macaroon]);
  return (options.schemes ?? ['LSAT', 'L402']).map((scheme) => formatChallenge(scheme, params));
}

/**
 * The `Payment …` header line for an MPP offer, parameters in the order of Aperture's MPP vectors (id,
 * realm, method, intent, request, expires, digest, description, opaque), absent optional ones left out.
 *
 * @throws {HeaderError} `L402_HEADER_FORMAT` when a required parameter is empty or a value holds a
 * control character.
 * @example
 * Challenge.formatPayment({ id: 'x7Tg', realm: 'api.example.com', method: 'lightning', intent: 'charge', request: 'eyJ9' })
 * // 'Payment id="x7Tg", realm="api.example.com", method="lightning", intent="charge", request="eyJ9"'
 */
export function formatPayment(params: Omit<PaymentChallenge, 'scheme' | 'params'>): string {
  const missing = PAYMENT_REQUIRED.filter((name) => !params[name]);
  if (missing.length > 0)
    throw new HeaderError('L402_HEADER_FORMAT', `a Payment challenge needs ${missing.join(', ')}`);
  const pairs = PAYMENT_PARAMS.flatMap((name) => {
    const value = params[name];
    return value === undefined ? [] : [[name, value] as const];
  });
  return formatChallenge('Payment', pairs);
}
