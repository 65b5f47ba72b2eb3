/**
 * Which offer of a 402 the client pays, and the checks an invoice must pass first.
 *
 * Policy: offers are ranked by `prefer` (default `['l402', 'lsat', 'payment']`: L402 first, then the
 * legacy LSAT name, then an MPP `Payment` offer with `method="lightning", intent="charge"`), cheapest
 * first among equals; Aperture's LSAT + L402 pair counts as one L402 offer. The first offer that passes
 * every check is paid; when none does, the first offer's refusal is thrown.
 *
 * Checks, before anything is paid: the invoice decodes; it states an amount (zero-amount invoices let
 * the payee take anything: refused); its network is the wallet's; its payment hash is the one in the
 * macaroon's identifier (L402) or the one the MPP request names; it has not expired; the amount is
 * within `maxCostSats`.
 *
 * @example
 * const offer = Offers.choose(Challenge.parse(res.headers.get('www-authenticate')), { network: 'regtest' });
 */
import * as Challenge from '../Challenge.js';
import { BudgetError, ClientError, InvoiceRefusedError, L402Error } from '../Errors.js';
import * as Identifier from '../Identifier.js';
import * as Invoice from '../Invoice.js';
import { equalBytes, fromBase64, fromUtf8, toHex } from '../internal/bytes.js';
import type { Network } from '../lightning/Backend.js';
import * as Macaroon from '../Macaroon.js';
import { scopeOf } from './TokenStore.js';

export type Scheme = 'l402' | 'lsat' | 'payment';

/** An offer the client can pay. */
export interface Offer {
  readonly scheme: 'L402' | 'LSAT' | 'Payment';
  readonly invoice: Invoice.Invoice;
  readonly amountSats: number;
  readonly paymentHash: string;
  /** L402/LSAT: the base64 macaroon as sent. Payment: the challenge echoed in the credential. */
  readonly macaroon: string;
  readonly tokenId: string;
  /** From the macaroon's caveats. */
  readonly expiresAt?: number;
  readonly services?: string[];
  readonly path?: string;
  readonly challenge: Challenge.Challenge;
  readonly description?: string;
}

export interface ChooseOptions {
  /** The wallet's network; `undefined` skips the network check. */
  readonly network?: Network | undefined;
  readonly prefer?: readonly Scheme[];
  readonly maxCostSats?: number;
  readonly nowMs?: number;
}

const rank = (c: Challenge.Challenge, prefer: readonly Scheme[]) => {
  const i = prefer.indexOf(c.scheme.toLowerCase() as Scheme);
  return i < 0 ? Number.POSITIVE_INFINITY : i;
};

/** The MPP `request` of a Lightning charge: `{amount, currency, methodDetails: {invoice, paymentHash, network}}`. */
interface ChargeRequest {
  amount?: string | number;
  currency?: string;
  description?: string;
  methodDetails?: { invoice?: string; paymentHash?: string; network?: string };
}

function decodeCharge(c: Challenge.PaymentChallenge): ChargeRequest {
  const text = fromUtf8(fromBase64(c.request, 'Payment request'));
  if (text === undefined) throw new InvoiceRefusedError('malformed', 'Payment request is not UTF-8');
  const json = JSON.parse(text) as ChargeRequest;
  if (typeof json !== 'object' || json === null)
    throw new InvoiceRefusedError('malformed', 'Payment request is not a JSON object');
  return json;
}

/** Decodes and checks one offer; throws {@link InvoiceRefusedError} or {@link BudgetError}. */
export function check(c: Challenge.Challenge, options: ChooseOptions = {}): Offer {
  const nowMs = options.nowMs ?? Date.now();
  let bolt11: string;
  let charge: ChargeRequest | undefined;
  let macaroon: Macaroon.Macaroon | undefined;
  try {
    if (c.scheme === 'Payment') {
      charge = decodeCharge(c);
      bolt11 = charge.methodDetails?.invoice ?? '';
      if (!bolt11) throw new InvoiceRefusedError('malformed', 'Payment request names no invoice');
    } else {
      bolt11 = c.invoice;
      macaroon = Macaroon.decode(c.macaroon);
    }
  } catch (error) {
    if (error instanceof InvoiceRefusedError) throw error;
    throw new InvoiceRefusedError(
      'malformed',
      `the ${c.scheme} offer cannot be read: ${(error as Error).message}`,
      { cause: error },
    );
  }
  let invoice: Invoice.Invoice;
  try {
    invoice = Invoice.decode(bolt11);
  } catch (error) {
    throw new InvoiceRefusedError('malformed', `the invoice cannot be read: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (invoice.amountMsat === undefined || invoice.amountMsat === 0n) {
    throw new InvoiceRefusedError(
      'zero-amount',
      'the invoice has no amount: a zero-amount invoice lets the payee take any sum, so it is refused',
    );
  }
  if (options.network !== undefined && invoice.network !== options.network) {
    throw new InvoiceRefusedError(
      'network',
      `the invoice is for ${invoice.network}, the wallet pays on ${options.network}`,
    );
  }
  if (Invoice.isExpired(invoice, nowMs / 1000)) {
    throw new InvoiceRefusedError(
      'expired',
      `the invoice expired at ${new Date(Invoice.expiresAt(invoice) * 1000).toISOString()}`,
    );
  }
  const amountSats = Number((invoice.amountMsat + 999n) / 1000n);
  let tokenId = '';
  let scope: ReturnType<typeof scopeOf> = {};
  if (macaroon !== undefined) {
    let id: Identifier.Identifier;
    try {
      id = Identifier.decode(macaroon.identifier);
    } catch (error) {
      throw new InvoiceRefusedError(
        'hash-mismatch',
        `the macaroon has no L402 identifier: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (!equalBytes(id.paymentHash, invoice.paymentHash)) {
      throw new InvoiceRefusedError(
        'hash-mismatch',
        "the invoice's payment hash is not the one in the macaroon's identifier: paying would buy nothing",
      );
    }
    tokenId = toHex(id.tokenId);
    scope = scopeOf(Macaroon.firstPartyCaveats(macaroon));
  } else if (charge !== undefined) {
    const named = charge.methodDetails?.paymentHash;
    if (named !== undefined && named.toLowerCase() !== toHex(invoice.paymentHash)) {
      throw new InvoiceRefusedError(
        'hash-mismatch',
        "the invoice's payment hash is not the one the Payment request names",
      );
    }
    if (
      charge.amount !== undefined &&
      (charge.currency ?? 'sat') === 'sat' &&
      Number(charge.amount) !== amountSats
    ) {
      throw new InvoiceRefusedError(
        'amount-mismatch',
        `the Payment request asks ${charge.amount} sat but its invoice is for ${amountSats} sat`,
      );
    }
  }
  if (options.maxCostSats !== undefined && amountSats > options.maxCostSats) {
    throw new BudgetError(
      'maxCost',
      amountSats,
      options.maxCostSats,
      `the invoice asks ${amountSats} sat, over maxCostSats ${options.maxCostSats}`,
    );
  }
  const description = invoice.description ?? (c.scheme === 'Payment' ? c.description : undefined);
  return {
    scheme: c.scheme,
    invoice,
    amountSats,
    paymentHash: toHex(invoice.paymentHash),
    macaroon: c.scheme === 'Payment' ? echo(c) : c.macaroon,
    tokenId,
    challenge: c,
    ...scope,
    ...(description !== undefined ? { description } : {}),
  };
}

/**
 * The challenge as the MPP credential echoes it (base64url JSON of its parameters, in the vectors' order).
 *
 * @example
 * Offers.paymentCredential(Offers.echo(challenge), preimageHex);
 */
export function echo(c: Challenge.PaymentChallenge): string {
  const out: Record<string, string> = {
    id: c.id,
    realm: c.realm,
    method: c.method,
    intent: c.intent,
    request: c.request,
  };
  for (const k of ['expires', 'description', 'opaque', 'digest'] as const)
    if (c[k] !== undefined) out[k] = c[k] as string;
  return base64Url(JSON.stringify(out));
}

function base64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * The `Authorization` value for an MPP Lightning charge: `Payment <base64url JSON {challenge, payload: {preimage}}>`.
 *
 * @example
 * headers.set('authorization', Offers.paymentCredential(offer.macaroon, preimageHex));
 */
export function paymentCredential(challengeEcho: string, preimageHex: string): string {
  const challenge = JSON.parse(new TextDecoder().decode(fromBase64(challengeEcho, 'Payment challenge')));
  return `Payment ${base64Url(JSON.stringify({ challenge, payload: { preimage: preimageHex } }))}`;
}

/** Whether the client knows how to pay this offer at all. */
function payable(c: Challenge.Challenge): boolean {
  return (
    c.scheme !== 'Payment' || (c.method.toLowerCase() === 'lightning' && c.intent.toLowerCase() === 'charge')
  );
}

/**
 * The offers of a 402 in the order the policy tries them (see the module comment), unpayable ones dropped.
 *
 * @example
 * const ordered = Offers.rankAll(challenges, ['payment', 'l402']);
 */
export function rankAll(
  challenges: readonly Challenge.Challenge[],
  prefer: readonly Scheme[] = ['l402', 'lsat', 'payment'],
): Challenge.Challenge[] {
  // Aperture's LSAT + L402 pair is one offer: keep the L402 twin.
  const l402 = Challenge.l402(challenges);
  const list = challenges.filter(
    (c) =>
      payable(c) &&
      rank(c, prefer) !== Number.POSITIVE_INFINITY &&
      !(
        c.scheme === 'LSAT' &&
        l402 !== undefined &&
        l402.scheme === 'L402' &&
        c.macaroon === l402.macaroon &&
        c.invoice === l402.invoice
      ),
  );
  const price = (c: Challenge.Challenge) => {
    try {
      const bolt11 = c.scheme === 'Payment' ? decodeCharge(c).methodDetails?.invoice : c.invoice;
      return Number(Invoice.decode(bolt11 ?? '').amountMsat ?? 0n);
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  };
  return list
    .map((c, i) => ({ c, i, r: rank(c, prefer), p: price(c) }))
    .sort((a, b) => a.r - b.r || a.p - b.p || a.i - b.i)
    .map((x) => x.c);
}

/**
 * The offer to pay: the first, by policy, that passes every check.
 *
 * @throws {ClientError} `L402_NO_CHALLENGE` when the 402 offers nothing payable; else the first offer's
 * {@link InvoiceRefusedError} or {@link BudgetError}.
 */
export function choose(challenges: readonly Challenge.Challenge[], options: ChooseOptions = {}): Offer {
  const ordered = rankAll(challenges, options.prefer);
  if (ordered.length === 0) {
    throw new ClientError(
      'L402_NO_CHALLENGE',
      `the 402 offers no payable challenge (schemes: ${[...new Set(challenges.map((c) => c.scheme))].join(', ') || 'none'})`,
    );
  }
  let first: unknown;
  for (const c of ordered) {
    try {
      return check(c, options);
    } catch (error) {
      if (!(error instanceof L402Error)) throw error;
      first ??= error;
    }
  }
  throw first;
}
