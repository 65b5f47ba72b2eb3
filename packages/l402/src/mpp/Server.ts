/**
 * The server side of the Payment HTTP authentication scheme (MPP) with the Lightning method: it offers
 * `charge` (one invoice, one request) and `session` (a prepaid deposit spent per request, topped up,
 * and refunded on close) challenges, and judges `Authorization: Payment …` credentials. Framework
 * agnostic like the L402 {@link Authority}: it returns the same {@link Decision}s.
 *
 * Challenges are stateless: the `id` is an HMAC over the other parameters (the key is a secret shared by
 * every instance through the store), `expires` is inside it, and `opaque` binds the challenge to the
 * service it was issued for. What must be stateful is: a payment hash is consumed once and for all in
 * the store before its request is served (a replay on any instance is refused), and session balances
 * are debited in the store in one atomic step.
 *
 * Refusals are 402s with fresh challenges and an RFC 9457 problem body (`application/problem+json`);
 * a paid request passes with a `Payment-Receipt` header for the response.
 *
 * @example
 * const mpp = await Server.create({ backend, store, realm: 'api.example.com', network: 'regtest', sessions: { depositMultiplier: 20 } });
 * const decision = (await mpp.authorize(request, { service: 'api', price: 21 })) ?? (await mpp.challenge(request, { service: 'api', price: 21 }));
 */
import * as platform from '#platform';
import * as CredentialHeaders from '../Credential.js';
import { L402Error, StoreError } from '../Errors.js';
import * as Invoice from '../Invoice.js';
import { equalBytes, fromHex, toHex, utf8 } from '../internal/bytes.js';
import type { Backend } from '../lightning/Backend.js';
import {
  CORS_HEADERS,
  type Decision,
  type Header,
  plainText,
  type RequestView,
} from '../server/Authority.js';
import type { Session, SessionResult, Store } from '../server/Store.js';
import * as Base64url from './Base64url.js';
import * as Challenge from './Challenge.js';
import * as Credential from './Credential.js';
import * as Json from './Json.js';
import * as Problem from './Problem.js';
import * as Receipt from './Receipt.js';
import * as Request from './Request.js';

export interface Options {
  readonly backend: Backend;
  /** Consumed payments, sessions, and the HMAC secret shared by every instance. */
  readonly store: Store;
  /** The `realm` of every challenge (Aperture's `mpprealm`). */
  readonly realm: string;
  /** `methodDetails.network` of charge challenges: `mainnet`, `regtest`, `signet`, … */
  readonly network: Invoice.Network;
  /**
   * Offer the session intent too: `depositMultiplier` requests' worth per deposit (20 by default);
   * sessions idle for `idleTimeoutSeconds` (advertised in the offer) are closed and refunded by
   * {@link Server.closeIdle}, which the host calls periodically.
   */
  readonly sessions?:
    | { readonly depositMultiplier?: number; readonly idleTimeoutSeconds?: number }
    | undefined;
  /** Unix milliseconds. */
  readonly now?: () => number;
  /** Seconds a challenge may be answered in; 900 by default (Aperture's 15 minutes). */
  readonly challengeSeconds?: number;
  /** Seconds the invoices stay payable; 3600 by default, never less than `challengeSeconds`. */
  readonly invoiceExpirySeconds?: number;
  /** The HMAC key; read from (or made once in) the store under `mpp-hmac-v1` when not given. */
  readonly secret?: Uint8Array;
  /** Seconds clients are told to wait when Lightning or the store is down. */
  readonly retryAfterSeconds?: number;
  readonly onError?: (error: unknown, context: string) => void;
}

/** What one service charges. */
export interface Route {
  readonly service: string;
  /** Sats per request (per unit, for sessions). 0 lets the request through. */
  readonly price: number;
  readonly memo?: string;
}

/** A refusal: the problem the client is told about. */
interface Refusal {
  readonly problem: Problem.Type;
  readonly detail: string;
  readonly challengeId?: string;
}

const SECRET_NAME = 'mpp-hmac-v1';
const HEX32 = /^[0-9a-fA-F]{64}$/;

const refuse = (problem: Problem.Type, detail: string, challengeId?: string): Refusal => ({
  problem,
  detail,
  ...(challengeId === undefined ? {} : { challengeId }),
});

const pathOf = (url: string) => url.split('?')[0] ?? url;

/** The `Authorization` value when it uses the Payment scheme. */
function paymentAuthorization(request: RequestView): string | undefined {
  const value = CredentialHeaders.header(request.headers, 'authorization');
  const values = typeof value === 'string' ? [value] : (value ?? []);
  return values.find(Credential.isPayment);
}

export class Server {
  private constructor(
    private readonly options: Options,
    private readonly secret: Uint8Array,
  ) {}

  /** A server; reads (or makes) the shared HMAC secret when `options.secret` is not given. */
  static async create(options: Options): Promise<Server> {
    const challengeSeconds = options.challengeSeconds ?? 900;
    if ((options.invoiceExpirySeconds ?? 3600) < challengeSeconds) {
      throw new RangeError('invoiceExpirySeconds must not be less than challengeSeconds');
    }
    const secret = options.secret ?? (await options.store.secret(SECRET_NAME, platform.randomBytes(32)));
    if (secret.length < 32) throw new RangeError('the MPP HMAC secret must be at least 32 bytes');
    return new Server(options, secret);
  }

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  private opaque(service: string): string {
    return Base64url.encode(utf8(Json.canonicalize({ resource: service })));
  }

  /**
   * The `WWW-Authenticate` lines for a request: a charge challenge, then a session challenge when
   * sessions are offered, each with a fresh invoice.
   *
   * @throws {BackendError} when Lightning cannot make an invoice.
   */
  async challenges(request: RequestView, route: Route): Promise<string[]> {
    const now = this.now;
    const expiry = this.options.invoiceExpirySeconds ?? 3600;
    const expires = Receipt.timestamp(now + (this.options.challengeSeconds ?? 900) * 1000);
    const memo = (route.memo ?? `${route.service} ${request.method} ${pathOf(request.url)}`).slice(0, 200);
    const price = BigInt(route.price);
    const common = {
      realm: this.options.realm,
      method: 'lightning',
      expires,
      opaque: this.opaque(route.service),
    };
    const charge = await this.options.backend.createInvoice({
      amountMsat: price * 1000n,
      memo,
      expirySeconds: expiry,
    });
    const lines = [
      Challenge.format(
        Challenge.create(this.secret, {
          ...common,
          intent: 'charge',
          request: Request.encode({
            amount: price.toString(),
            currency: 'sat',
            methodDetails: {
              invoice: charge.paymentRequest,
              paymentHash: toHex(charge.paymentHash),
              network: this.options.network,
            },
          }),
        }),
      ),
    ];
    if (this.options.sessions !== undefined) {
      const deposit = price * BigInt(this.options.sessions.depositMultiplier ?? 20);
      const idle = this.options.sessions.idleTimeoutSeconds;
      const invoice = await this.options.backend.createInvoice({
        amountMsat: deposit * 1000n,
        memo: `${memo} (session deposit)`.slice(0, 200),
        expirySeconds: expiry,
      });
      lines.push(
        Challenge.format(
          Challenge.create(this.secret, {
            ...common,
            intent: 'session',
            request: Request.encode({
              amount: price.toString(),
              currency: 'sat',
              unitType: 'request',
              depositInvoice: invoice.paymentRequest,
              paymentHash: toHex(invoice.paymentHash),
              depositAmount: deposit.toString(),
              ...(idle === undefined ? {} : { idleTimeout: String(idle) }),
            }),
          }),
        ),
      );
    }
    return lines;
  }

  /**
   * A 402 offering fresh challenges (plus `l402Lines` first, for a service that also takes L402), with
   * the problem `refusal` describes, or `payment-required` when no credential was judged.
   */
  async challenge(
    request: RequestView,
    route: Route,
    refusal?: Refusal,
    l402Lines: readonly string[] = [],
  ): Promise<Decision> {
    let lines: string[];
    try {
      lines = await this.challenges(request, route);
    } catch (error) {
      if (error instanceof L402Error) return this.unavailable('the Lightning backend is unavailable', error);
      this.options.onError?.(error, 'mpp challenge');
      return plainText(500, 'challenge failure', 'internal');
    }
    const headers: Header[] = [
      ...[...l402Lines, ...lines].map((line) => ['www-authenticate', line] as const),
      ['cache-control', 'no-store'],
      ['content-type', Problem.CONTENT_TYPE],
      ...CORS_HEADERS,
    ];
    return {
      kind: 'respond',
      status: 402,
      headers,
      body:
        refusal === undefined
          ? Problem.PAYMENT_REQUIRED
          : Problem.body(refusal.problem, refusal.detail, refusal.challengeId),
      reason: refusal === undefined ? 'challenge' : `mpp-${refusal.problem.replace('lightning/', '')}`,
    };
  }

  /**
   * Judges the request's Payment credential: `undefined` when there is none; otherwise a pass (with a
   * `Payment-Receipt` for the response), a 200 the server answers itself (a session top-up or close),
   * or a 402 refusal with fresh challenges (`l402Lines` first). Never throws.
   */
  async authorize(
    request: RequestView,
    route: Route,
    l402Lines: readonly string[] = [],
  ): Promise<Decision | undefined> {
    const value = paymentAuthorization(request);
    if (value === undefined) return undefined;
    try {
      const outcome = await this.judge(value, route);
      if ('kind' in outcome) return outcome;
      return this.challenge(request, route, outcome, l402Lines);
    } catch (error) {
      if (error instanceof StoreError) return this.unavailable('the payment store is unavailable', error);
      this.options.onError?.(error, 'mpp verify');
      return plainText(500, 'internal error', 'internal');
    }
  }

  private async judge(value: string, route: Route): Promise<Decision | Refusal> {
    let credential: Credential.Credential;
    try {
      credential = Credential.parse(value);
    } catch (error) {
      return refuse('malformed-credential', (error as Error).message);
    }
    const { challenge, payload } = credential;
    if (challenge.method !== 'lightning') {
      return refuse(
        'method-unsupported',
        `method ${JSON.stringify(challenge.method.slice(0, 32))} is not offered`,
      );
    }
    if (!Challenge.verify(this.secret, challenge) || challenge.realm !== this.options.realm) {
      return refuse('invalid-challenge', 'the challenge was not issued by this server, or was altered');
    }
    if (challenge.opaque !== this.opaque(route.service)) {
      return refuse(
        'invalid-challenge',
        `the challenge was not issued for service ${route.service}`,
        challenge.id,
      );
    }
    if (challenge.intent === 'charge') return this.charge(challenge, payload, route);
    if (challenge.intent === 'session' && this.options.sessions !== undefined) {
      return this.session(challenge, payload, route);
    }
    return refuse(
      'method-unsupported',
      `intent ${JSON.stringify(challenge.intent.slice(0, 32))} is not offered`,
    );
  }

  /** The challenge's expiry in unix seconds, or the refusal when it has none or it has passed. */
  private expiry(challenge: Challenge.Bound, expired: Problem.Type): number | Refusal {
    const at = challenge.expires === undefined ? Number.NaN : Date.parse(challenge.expires);
    if (
      !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/.test(challenge.expires ?? '') ||
      Number.isNaN(at)
    ) {
      return refuse('invalid-challenge', 'the challenge has no valid expiry', challenge.id);
    }
    if (this.now >= at) return refuse(expired, `the challenge expired at ${challenge.expires}`, challenge.id);
    return Math.floor(at / 1000);
  }

  private async charge(
    challenge: Challenge.Bound,
    payload: Json.JsonObject,
    route: Route,
  ): Promise<Decision | Refusal> {
    const expiresAt = this.expiry(challenge, 'payment-expired');
    if (typeof expiresAt !== 'number') return expiresAt;
    let request: Request.ChargeRequest;
    try {
      request = Request.charge(challenge.request);
    } catch (error) {
      return refuse('invalid-challenge', (error as Error).message, challenge.id);
    }
    const hash = request.methodDetails.paymentHash;
    if (hash === undefined)
      return refuse('invalid-challenge', 'the challenge names no payment hash', challenge.id);
    if (BigInt(request.amount) < BigInt(route.price)) {
      return refuse(
        'payment-insufficient',
        `the challenge charges ${request.amount} sat; the price is now ${route.price} sat`,
        challenge.id,
      );
    }
    const preimage = this.preimage(payload.preimage, hash);
    if (preimage !== undefined) return refuse('verification-failed', preimage, challenge.id);
    const paymentHash = fromHex(hash);
    if (!(await this.options.store.consume({ paymentHash, challengeId: challenge.id, expiresAt }))) {
      return refuse(
        'invalid-challenge',
        'this payment was already used: a charge buys one request',
        challenge.id,
      );
    }
    return this.pass(
      Receipt.charge({ timestamp: Receipt.timestamp(this.now), reference: hash, challengeId: challenge.id }),
    );
  }

  /** Why `value` is not the hex preimage of `hash`, or undefined when it is. */
  private preimage(value: Json.Json | undefined, hash: string, name = 'preimage'): string | undefined {
    if (typeof value !== 'string' || !HEX32.test(value)) return `payload.${name} is not 64 hex digits`;
    return equalBytes(platform.sha256(fromHex(value)), fromHex(hash))
      ? undefined
      : `payload.${name} does not match the payment hash`;
  }

  private async session(
    challenge: Challenge.Bound,
    payload: Json.JsonObject,
    route: Route,
  ): Promise<Decision | Refusal> {
    const action = payload.action;
    const now = Math.floor(this.now / 1000);
    const price = BigInt(route.price);
    const id = challenge.id;
    const sessionId = payload.sessionId;
    if (action !== 'open' && (typeof sessionId !== 'string' || !HEX32.test(sessionId))) {
      return refuse('lightning/malformed-credential', 'payload.sessionId is not 64 hex digits', id);
    }
    const session = typeof sessionId === 'string' && HEX32.test(sessionId) ? sessionId.toLowerCase() : '';
    const refused = (result: Extract<SessionResult, { ok: false }>): Refusal => {
      if (result.reason === 'not-found') return refuse('lightning/session-not-found', 'no such session', id);
      if (result.reason === 'closed') return refuse('lightning/session-closed', 'the session is closed', id);
      if (result.reason === 'consumed')
        return refuse('lightning/unknown-challenge', 'this payment was already used', id);
      const left = result.session === undefined ? 0n : result.session.depositSats - result.session.spentSats;
      return refuse(
        'lightning/insufficient-balance',
        `the session has ${left} sat left; a request costs ${price} sat: top up`,
        id,
      );
    };
    const receipt = (reference: string) =>
      Receipt.charge({ timestamp: Receipt.timestamp(this.now), reference, challengeId: id });

    if (action === 'open' || action === 'topUp') {
      const expiresAt = this.expiry(challenge, 'lightning/challenge-expired');
      if (typeof expiresAt !== 'number') return expiresAt;
      let request: Request.SessionRequest;
      try {
        request = Request.session(challenge.request);
      } catch (error) {
        return refuse('invalid-challenge', (error as Error).message, id);
      }
      if (request.depositAmount === undefined || BigInt(request.depositAmount) < BigInt(request.amount)) {
        return refuse('invalid-challenge', 'the challenge offers no deposit', id);
      }
      const deposit = BigInt(request.depositAmount);
      const paymentHash = fromHex(request.paymentHash);
      if (action === 'topUp') {
        const bad = this.preimage(payload.topUpPreimage, request.paymentHash, 'topUpPreimage');
        if (bad !== undefined) return refuse('lightning/invalid-preimage', bad, id);
        const result = await this.options.store.topUpSession(fromHex(session), {
          paymentHash,
          challengeId: id,
          expiresAt,
          sats: deposit,
          now,
        });
        // A retried top-up (this very credential, already credited to this session) gets the original
        // answer again, as the session draft's idempotency rule asks; nothing is credited twice. A
        // payment spent on anything else stays refused.
        if (!result.ok && result.reason !== 'already-credited') return refused(result);
        return answer(200, { status: 'ok' }, receipt(session));
      }
      const bad = this.preimage(payload.preimage, request.paymentHash);
      if (bad !== undefined) return refuse('lightning/invalid-preimage', bad, id);
      const returnInvoice = this.returnInvoice(payload.returnInvoice);
      if (returnInvoice !== undefined) return refuse('lightning/invalid-return-invoice', returnInvoice, id);
      const opened = await this.options.store.openSession({
        paymentHash,
        challengeId: id,
        expiresAt,
        depositSats: deposit,
        returnInvoice: payload.returnInvoice as string,
        now,
      });
      if (!opened) return refuse('lightning/unknown-challenge', 'this deposit already opened a session', id);
      // The request that opens the session is the first one it pays for.
      const debited = await this.options.store.debitSession(paymentHash, price, now);
      if (!debited.ok) return refused(debited);
      return this.pass(receipt(request.paymentHash));
    }

    if (action === 'bearer' || action === 'close') {
      const bad = this.preimage(payload.preimage, session);
      if (bad !== undefined) return refuse('lightning/invalid-preimage', bad, id);
      if (action === 'bearer') {
        const debited = await this.options.store.debitSession(fromHex(session), price, now);
        return debited.ok ? this.pass(receipt(session)) : refused(debited);
      }
      const closed = await this.options.store.closeSession(fromHex(session), now);
      const closing = closed.session;
      if (closing === undefined || (!closed.ok && closing.refundStatus === undefined)) {
        return refused(closed as Extract<SessionResult, { ok: false }>);
      }
      const refundSats = closing.depositSats - closing.spentSats;
      // A retried close (the owner's preimage, the session already closed and refunded) gets the
      // original answer again, as the session draft's idempotency rule asks; nothing is paid twice.
      const refundStatus = closed.ok
        ? await this.settle(closing, session)
        : (closing.refundStatus as Receipt.RefundStatus);
      return answer(
        200,
        { status: 'closed', refundSats, refundStatus },
        Receipt.close({
          timestamp: Receipt.timestamp(this.now),
          reference: session,
          refundSats,
          refundStatus,
        }),
      );
    }
    return refuse('lightning/malformed-credential', 'payload.action is not open, bearer, topUp or close', id);
  }

  /**
   * Closes the sessions idle for longer than `sessions.idleTimeoutSeconds` (up to 100 per call) and
   * refunds each one's balance, as the session draft's server-initiated close; returns how many closed.
   * Every instance may run it: the store hands each idle session to exactly one caller.
   */
  async closeIdle(): Promise<number> {
    const idle = this.options.sessions?.idleTimeoutSeconds;
    if (idle === undefined) return 0;
    const now = Math.floor(this.now / 1000);
    const closed = await this.options.store.closeIdleSessions(now - idle, now, 100);
    for (const session of closed) await this.settle(session, toHex(session.sessionId));
    return closed.length;
  }

  /** Refunds a session just closed and records the outcome durably. */
  private async settle(session: Session, id: string): Promise<Receipt.RefundStatus> {
    const status = await this.refund(session.returnInvoice, session.depositSats - session.spentSats, id);
    await this.options.store.recordRefund(session.sessionId, status);
    return status;
  }

  /** Why `value` cannot receive a refund, or undefined when it can. */
  private returnInvoice(value: Json.Json | undefined): string | undefined {
    if (typeof value !== 'string') return 'payload.returnInvoice is missing';
    let invoice: Invoice.Invoice;
    try {
      invoice = Invoice.decode(value, { network: this.options.network });
    } catch (error) {
      return `payload.returnInvoice: ${(error as Error).message}`;
    }
    if (invoice.amountMsat !== undefined && invoice.amountMsat !== 0n) {
      return 'payload.returnInvoice must not name an amount: the refund is decided at close';
    }
    if (Invoice.isExpired(invoice, this.now / 1000)) return 'payload.returnInvoice has expired';
    return undefined;
  }

  /** One best-effort refund (never retried, as the session draft requires). */
  private async refund(returnInvoice: string, sats: bigint, session: string): Promise<Receipt.RefundStatus> {
    if (sats === 0n) return 'skipped';
    const amountMsat = sats * 1000n;
    try {
      await this.options.backend.pay(returnInvoice, {
        amountMsat,
        // The server pays the routing fee: at most 1% of the refund, and at least 10 sat of room.
        maxFeeMsat: amountMsat / 100n > 10_000n ? amountMsat / 100n : 10_000n,
        timeoutMs: 60_000,
      });
      return 'succeeded';
    } catch (error) {
      this.options.onError?.(error, `mpp refund of ${sats} sat for session ${session}`);
      return 'failed';
    }
  }

  private pass(receipt: Receipt.Receipt): Decision {
    return {
      kind: 'pass',
      token: undefined,
      headers: [
        [Receipt.HEADER, Receipt.format(receipt)],
        ['cache-control', 'private'],
      ],
    };
  }

  private unavailable(message: string, error: L402Error): Decision {
    this.options.onError?.(error, 'unavailable');
    const decision = plainText(503, `${message}, retry later`, 'unavailable');
    return {
      ...decision,
      headers: [...decision.headers, ['retry-after', String(this.options.retryAfterSeconds ?? 5)]],
      error,
    } as Decision;
  }
}

/** Shorthand for {@link Server.create}. */
export const create: (options: Options) => Promise<Server> = Server.create;

/** A 200 the server answers itself (session top-up and close), with its receipt. */
function answer(status: number, body: Json.JsonObject, receipt: Receipt.Receipt): Decision {
  return {
    kind: 'respond',
    status,
    headers: [
      ['content-type', 'application/json'],
      [Receipt.HEADER, Receipt.format(receipt)],
      ['cache-control', 'no-store'],
      ...CORS_HEADERS,
    ],
    body: Json.stringify(body),
    reason: 'mpp-session',
  };
}
