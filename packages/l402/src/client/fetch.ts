/**
 * `createFetch`: a drop-in `fetch` that pays L402 (and MPP Lightning charge) challenges.
 *
 * One request: send it (with the stored token for its origin and path, if any); on a 402 take the
 * origin's lock (single flight: parallel requests, and other processes on a file store, share one
 * payment), resolve any payment a crash left pending, look again for a token another caller just bought,
 * else choose an offer (see `offers.ts`), check it, reserve it in the ledger (the budget check and the
 * reservation are one atomic step), write the pending token, pay, write the preimage, and retry once with
 * the credential. A stored token answered by a 402 is dropped and paid for again once. Bodies are
 * buffered up to `maxReplayBytes` so they can be replayed; responses stream. Redirects are followed by
 * hand: the credential goes only to its own origin.
 *
 * @example
 * const fetch402 = createFetch({ wallet, maxCostSats: 100, budget: { perDaySats: 1000 } });
 * const res = await fetch402('https://api.example/forecast');
 * createFetch.payment(res); // { paid: true, amountSats: 10, … }
 */
import * as platform from '#platform';
import * as Challenge from '../Challenge.js';
import * as Credential from '../Credential.js';
import {
  BudgetError,
  ClientError,
  InsecureTransportError,
  L402Error,
  PaymentFailedError,
  ReplayError,
} from '../Errors.js';
import { fromHex, toHex } from '../internal/bytes.js';
import type { Network } from '../lightning/Backend.js';
import * as Macaroon from '../Macaroon.js';
import * as Ledger from './Ledger.js';
import * as Offers from './offers.js';
import * as TokenStore from './TokenStore.js';
import * as Wallet from './Wallet.js';

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What happened, for logs and tests; never carries a preimage or a credential. */
export type ClientEvent =
  | { type: 'challenge'; url: string; offers: number }
  | { type: 'reuse'; url: string; paymentHash: string }
  | { type: 'pay'; url: string; origin: string; amountSats: number; paymentHash: string; scheme: string }
  | { type: 'paid'; url: string; origin: string; amountSats: number; feeSats: number; paymentHash: string }
  | { type: 'refused'; url: string; code: string; message: string }
  | { type: 'repay'; url: string; paymentHash: string }
  | {
      type: 'recovered';
      origin: string;
      paymentHash: string;
      state: 'paid' | 'failed' | 'never-sent' | 'unknown';
    }
  | { type: 'redirect'; from: string; to: string; crossOrigin: boolean };

export interface CreateFetchOptions {
  /** One wallet, or a fallback list (the next is tried when one fails to pay). */
  readonly wallet: Wallet.Wallet | readonly Wallet.Wallet[];
  readonly store?: TokenStore.TokenStore;
  readonly ledger?: Ledger.Ledger;
  /** Most one invoice may ask, in sats (default 1000). */
  readonly maxCostSats?: number;
  /** Most routing fee per payment, in sats (default 10). */
  readonly maxFeeSats?: number;
  /** Limits applied on top of the ledger's own. */
  readonly budget?: Ledger.Budget;
  /** Plain `http:` to a host that is not loopback is refused unless true. */
  readonly allowInsecureHttp?: boolean;
  /** Largest request body buffered for the retry (default 1 MiB); larger ones fail with {@link ReplayError}. */
  readonly maxReplayBytes?: number;
  /** Offer preference, most preferred first (default `['l402', 'lsat', 'payment']`). */
  readonly prefer?: readonly Offers.Scheme[];
  /** The wallet's network, when the wallet cannot say; checked against every invoice. */
  readonly network?: Network;
  /**
   * `manual` (default where the runtime lets a script read a redirect: Node, Deno, Bun, workers): this
   * client follows redirects, the credential only to its own origin. `native` (default in a page, where
   * `redirect: 'manual'` answers an opaque response): the runtime follows them, and the Fetch standard
   * strips `Authorization` on a cross-origin hop.
   */
  readonly redirects?: 'manual' | 'native';
  /** Most redirects followed (default 20). */
  readonly maxRedirects?: number;
  /** How long one payment may take (default 60 s). */
  readonly paymentTimeoutMs?: number;
  readonly fetch?: FetchLike;
  readonly onEvent?: (event: ClientEvent) => void;
  /** Clock, unix milliseconds (tests). */
  readonly now?: () => number;
}

/** What a response cost; see {@link createFetch.payment}. */
export interface PaymentInfo {
  readonly paid: boolean;
  readonly reused: boolean;
  readonly amountSats: number;
  readonly feeSats: number;
  readonly tokenId: string;
  readonly paymentHash: string;
  readonly scheme: string;
}

/** A 402's price, as {@link PayingFetch.quote} reports it (nothing is paid). */
export interface Quote {
  readonly status: number;
  readonly price?: {
    readonly sats: number;
    readonly scheme: string;
    readonly invoice: string;
    readonly expiresAt: number;
    readonly description?: string;
  };
  /** Why the offer would be refused, when it would be. */
  readonly refusal?: { readonly code: string; readonly message: string };
  readonly challenges: readonly Challenge.Challenge[];
  readonly cachedToken: boolean;
}

export interface PayingFetch extends FetchLike {
  /** Sends the request without paying and reports the price a 402 asks (and whether a token is cached). */
  quote(input: string | URL | Request, init?: RequestInit): Promise<Quote>;
  /** Resolves every pending payment of the store (all origins) by asking the wallet; returns how many. */
  recover(): Promise<number>;
  readonly store: TokenStore.TokenStore;
  readonly ledger: Ledger.Ledger;
}

const infos = new WeakMap<Response, PaymentInfo>();

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|.+\.localhost)$/i;

/** Throws {@link InsecureTransportError} for plain http to a host that is not loopback. */
export function checkTransport(url: URL, allowInsecureHttp = false): void {
  if (url.protocol === 'https:') return;
  if (url.protocol !== 'http:') throw new InsecureTransportError(`${url.protocol} URLs are not supported`);
  if (allowInsecureHttp || LOOPBACK.test(url.hostname)) return;
  throw new InsecureTransportError(
    `refusing plain http to ${url.host}: a credential or invoice could be read or changed on the way; use https or set allowInsecureHttp`,
  );
}

interface Prepared {
  url: URL;
  redirect: NonNullable<RequestInit['redirect']>;
  method: string;
  headers: Headers;
  body: Uint8Array | undefined;
  init: RequestInit;
}

async function readLimited(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new ReplayError(
        `the request body is over maxReplayBytes (${limit}): it could not be sent again after paying; raise maxReplayBytes or pay first with a small request`,
      );
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

async function prepare(
  input: string | URL | Request,
  init: RequestInit | undefined,
  limit: number,
): Promise<Prepared> {
  if (!(input instanceof Request) && (init?.body === undefined || init.body === null)) {
    // The common case, without building a Request: a URL, headers, no body.
    const { body: _b, headers, method, redirect, ...rest } = init ?? {};
    return {
      url: new URL(input),
      redirect: redirect ?? 'follow',
      // Fetch upper-cases only these names; any other method is sent as written.
      method: /^(delete|get|head|options|post|put)$/i.test(method ?? 'GET')
        ? (method ?? 'GET').toUpperCase()
        : (method as string),
      headers: new Headers(headers),
      body: undefined,
      init: rest,
    };
  }
  // A Request normalises every body type (string, bytes, Blob, FormData, URLSearchParams, stream) and
  // sets its content type; its body is then read once, bounded, and replayed from memory.
  const request = new Request(
    input,
    init?.body instanceof ReadableStream ? ({ ...init, duplex: 'half' } as RequestInit) : init,
  );
  const body = request.body === null ? undefined : await readLimited(request.body, limit);
  const { body: _b, headers: _h, method: _m, redirect: _r, ...rest } = init ?? {};
  if (input instanceof Request) {
    // Keep what the Request carried that RequestInit can say.
    rest.signal ??= input.signal;
  }
  return {
    url: new URL(request.url),
    redirect: request.redirect,
    method: request.method,
    headers: new Headers(request.headers),
    body,
    init: rest,
  };
}

/** Whether a 402 offers anything this client could pay; one that does not is handed back as it is. */
function payable(res: Response, prefer?: readonly Offers.Scheme[]): boolean {
  try {
    return Offers.rankAll(Challenge.parse(res.headers.get('www-authenticate')), prefer).length > 0;
  } catch {
    return false;
  }
}

/** `/api/` for `/api/x/y`; the path itself when it has no second segment (`/x`, `/`). */
function firstSegment(pathname: string): string {
  const i = pathname.indexOf('/', 1);
  return i < 0 ? pathname : pathname.slice(0, i + 1);
}

const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x) => b.includes(x));

/** Wallet error codes that mean nothing was (or will be) paid. */
const DEFINITE = new Set([
  'L402_PAYMENT_FAILED',
  'L402_PAYMENT_NO_ROUTE',
  'L402_PAYMENT_INSUFFICIENT_BALANCE',
  'L402_PAYMENT_EXPIRED',
  'L402_BACKEND_AUTH',
  'L402_BACKEND_CONFIG',
]);

/**
 * A `fetch` that pays. See the module comment for the flow and `offers.ts` for the choice policy.
 *
 * @example
 * const fetch402 = createFetch({ wallet: await connect(uri), store: TokenStore.memory(), maxCostSats: 50 });
 * const res = await fetch402('http://127.0.0.1:8080/api/forecast');
 */
export function createFetch(options: CreateFetchOptions): PayingFetch {
  const wallet = Array.isArray(options.wallet)
    ? Wallet.fallback(options.wallet as readonly Wallet.Wallet[])
    : (options.wallet as Wallet.Wallet);
  if (wallet === undefined) throw new ClientError('L402_CLIENT_CONFIG', 'createFetch needs a wallet');
  const store = options.store ?? TokenStore.memory();
  const ledger = options.ledger ?? Ledger.memory();
  const maxCostSats = options.maxCostSats ?? 1000;
  const maxFeeSats = options.maxFeeSats ?? 10;
  const maxReplayBytes = options.maxReplayBytes ?? 1 << 20;
  const maxRedirects = options.maxRedirects ?? 20;
  const paymentTimeoutMs = options.paymentTimeoutMs ?? 60_000;
  const budget: Ledger.Budget = { ...options.budget };
  const baseFetch: FetchLike = options.fetch ?? ((i, n) => globalThis.fetch(i, n));
  const now = options.now ?? Date.now;
  const emit = (e: ClientEvent) => options.onEvent?.(e);
  for (const [k, v] of Object.entries({ maxCostSats, maxFeeSats, maxReplayBytes })) {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new ClientError('L402_CLIENT_CONFIG', `${k} must be a whole number ≥ 0, got ${v}`);
  }
  let network: Promise<Network | undefined> | undefined;
  const walletNetwork = () => {
    network ??=
      options.network !== undefined
        ? Promise.resolve(options.network)
        : Wallet.networkOf(wallet).catch(() => undefined);
    return network;
  };
  /** The offer this client would pay among `challenges` (wallet network, price cap, preference). */
  const choose = async (challenges: readonly Challenge.Challenge[]): Promise<Offers.Offer> =>
    Offers.choose(challenges, {
      network: await walletNetwork(),
      maxCostSats,
      nowMs: now(),
      ...(options.prefer !== undefined ? { prefer: options.prefer } : {}),
    });
  /** Origins whose pending payments this process already resolved. */
  const resolved = new Set<string>();
  /** Authorization values by payment hash, so a reused token is not re-encoded per request. */
  const headerCache = new Map<string, string>();

  const authorization = (t: TokenStore.StoredToken): string => {
    let h = headerCache.get(t.paymentHash);
    if (h === undefined) {
      h =
        t.scheme === 'Payment'
          ? Offers.paymentCredential(t.macaroon, t.preimage as string)
          : Credential.format(
              { macaroon: Macaroon.decode(t.macaroon), preimage: fromHex(t.preimage as string) },
              { scheme: t.scheme === 'LSAT' ? 'LSAT' : 'L402' },
            );
      if (headerCache.size > 1000) headerCache.clear();
      headerCache.set(t.paymentHash, h);
    }
    return h;
  };

  /** Asks the wallet about every pending payment of `origin`; call holding the origin's lock. */
  const resolvePending = async (origin: string): Promise<void> => {
    for (const t of await store.pending(origin)) {
      const hash = fromHex(t.paymentHash);
      let status = await wallet.lookupPayment(hash);
      // Real time, not the injectable clock: this waits on the wallet.
      const deadline = Date.now() + paymentTimeoutMs;
      while (status.state === 'in-flight' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        status = await wallet.lookupPayment(hash);
      }
      if (
        status.state === 'succeeded' &&
        status.preimage !== undefined &&
        toHex(platform.sha256(status.preimage)) === t.paymentHash
      ) {
        const feeSats = Number(((status.feeMsat ?? 0n) + 999n) / 1000n);
        await store.put({ ...t, state: 'paid', preimage: toHex(status.preimage), feeSats });
        await ledger.settle(t.paymentHash, { amountSats: t.amountSats, feeSats });
        emit({ type: 'recovered', origin, paymentHash: t.paymentHash, state: 'paid' });
      } else if (status.state === 'unknown' && wallet.forgets) {
        // This wallet cannot know what an earlier session paid: the token is unusable without its
        // preimage, but the reservation stays counted, so a budget is never under-counted.
        await store.remove(origin, t.paymentHash);
        emit({ type: 'recovered', origin, paymentHash: t.paymentHash, state: 'unknown' });
      } else if (status.state === 'failed' || status.state === 'unknown') {
        // Unknown to the wallet: the crash came before the payment reached it, so nothing was paid.
        await store.remove(origin, t.paymentHash);
        await ledger.release(t.paymentHash);
        emit({
          type: 'recovered',
          origin,
          paymentHash: t.paymentHash,
          state: status.state === 'failed' ? 'failed' : 'never-sent',
        });
      } else if (status.state === 'in-flight') {
        throw new PaymentFailedError(
          `a payment to ${origin} (hash ${t.paymentHash}) is still in flight; it will be resolved on a later request, never paid twice`,
          { inFlight: true },
        );
      }
      // Succeeded without a preimage that matches: the wallet cannot give back what it paid for. The
      // token stays pending and its reservation counted; nothing here pays that invoice again.
    }
    resolved.add(origin);
  };

  const native =
    (options.redirects ??
      (typeof (globalThis as { document?: unknown }).document === 'object' ? 'native' : 'manual')) ===
    'native';
  const send = (p: Prepared, url: URL, method: string, body: Uint8Array | undefined, headers: Headers) =>
    baseFetch(url, {
      ...p.init,
      method,
      headers,
      ...(body !== undefined ? { body: body as unknown as NonNullable<RequestInit['body']> } : {}),
      redirect: native ? p.redirect : 'manual',
    });

  /** Pays for `url` (holding the origin's lock) unless a usable token appeared meanwhile; returns the token. */
  const buy = async (
    url: URL,
    challenged: Response,
    rejected: TokenStore.StoredToken | undefined,
    signal: AbortSignal | null | undefined,
  ): Promise<{ token: TokenStore.StoredToken; paid: boolean }> => {
    const origin = url.origin;
    return store.withLock(origin, async () => {
      await resolvePending(origin);
      const fresh = await store.find(origin, url.pathname, now());
      if (fresh !== undefined && fresh.paymentHash !== rejected?.paymentHash)
        return { token: fresh, paid: false };
      const drop = async () => {
        if (rejected === undefined) return;
        await store.remove(origin, rejected.paymentHash);
        headerCache.delete(rejected.paymentHash);
      };

      let offer: Offers.Offer;
      try {
        const challenges = Challenge.parse(challenged.headers.get('www-authenticate'));
        emit({ type: 'challenge', url: url.href, offers: challenges.length });
        offer = await choose(challenges);
      } catch (error) {
        await drop();
        throw error;
      }
      // Scope: what the caveats say, else the whole origin. But when the token refused here was sold
      // for other services (one gateway, several services), it is still good where it was bought: keep
      // it, and scope the new one to this path's first segment, so neither evicts the other.
      let path = offer.path ?? '/';
      const segment = firstSegment(url.pathname);
      if (
        offer.path === undefined &&
        rejected?.services !== undefined &&
        offer.services !== undefined &&
        !sameSet(rejected.services, offer.services) &&
        segment !== rejected.path
      ) {
        path = segment;
      } else await drop();
      // Check the budget and reserve the amount in one step, then make the payment durable as pending.
      // The caller gave up while waiting for the lock: nothing is paid for a request nobody awaits.
      signal?.throwIfAborted();
      await ledger.reserve(
        {
          time: now(),
          origin,
          path: url.pathname,
          amountSats: offer.amountSats,
          paymentHash: offer.paymentHash,
          tokenId: offer.tokenId,
          wallet: wallet.kind,
        },
        budget,
        now(),
      );
      const pending: TokenStore.StoredToken = {
        origin,
        path,
        scheme: offer.scheme,
        macaroon: offer.macaroon,
        paymentHash: offer.paymentHash,
        tokenId: offer.tokenId,
        invoice: offer.invoice.paymentRequest,
        amountSats: offer.amountSats,
        state: 'pending',
        createdAt: now(),
        wallet: wallet.kind,
        ...(offer.expiresAt !== undefined ? { expiresAt: offer.expiresAt } : {}),
        ...(offer.services !== undefined ? { services: offer.services } : {}),
      };
      try {
        await store.put(pending);
      } catch (error) {
        await ledger.release(offer.paymentHash).catch(() => {});
        throw error;
      }
      emit({
        type: 'pay',
        url: url.href,
        origin,
        amountSats: offer.amountSats,
        paymentHash: offer.paymentHash,
        scheme: offer.scheme,
      });
      let result: Wallet.PaymentResult;
      try {
        result = await wallet.pay(offer.invoice.paymentRequest, {
          maxFeeMsat: BigInt(maxFeeSats) * 1000n,
          timeoutMs: paymentTimeoutMs,
        });
      } catch (error) {
        // Ask the wallet what became of it rather than guess from the error: a payment that went
        // through anyway is kept, one that may still be in flight stays pending (resolved on a later
        // request), and only a definite failure releases the budget.
        const code = (error as { code?: string }).code ?? '';
        const status = await wallet.lookupPayment(fromHex(offer.paymentHash)).catch(() => undefined);
        if (status?.state === 'succeeded' && status.preimage !== undefined) {
          result = {
            paymentHash: status.paymentHash,
            preimage: status.preimage,
            amountMsat: status.amountMsat ?? 0n,
            feeMsat: status.feeMsat ?? 0n,
          };
        } else {
          const failed =
            status?.state === 'failed' ||
            (status?.state === 'unknown' && (!wallet.forgets || DEFINITE.has(code)));
          if (failed) {
            await store.remove(origin, offer.paymentHash);
            await ledger.release(offer.paymentHash);
          }
          throw new PaymentFailedError(
            `paying ${offer.amountSats} sat to ${origin} failed: ${(error as Error).message}`,
            { cause: error, inFlight: !failed },
          );
        }
      }
      if (toHex(platform.sha256(result.preimage)) !== offer.paymentHash) {
        // A wallet that answers with a preimage that is not this payment's: the token stays pending, so
        // the next request asks the wallet again by payment hash instead of paying twice.
        throw new PaymentFailedError(
          `the ${wallet.kind} wallet returned a preimage that does not match the invoice's payment hash`,
          { inFlight: true },
        );
      }
      const feeSats = Number((result.feeMsat + 999n) / 1000n);
      emit({
        type: 'paid',
        url: url.href,
        origin,
        amountSats: offer.amountSats,
        feeSats,
        paymentHash: offer.paymentHash,
      });
      const token: TokenStore.StoredToken = {
        ...pending,
        state: 'paid',
        preimage: toHex(result.preimage),
        feeSats,
      };
      await store.put(token);
      await ledger.settle(offer.paymentHash, { amountSats: offer.amountSats, feeSats });
      return { token, paid: true };
    });
  };

  /** One origin's hop: send, pay on a 402, retry once. */
  const hop = async (
    p: Prepared,
    url: URL,
    method: string,
    body: Uint8Array | undefined,
    headers: Headers,
  ) => {
    const origin = url.origin;
    if (!resolved.has(origin) && (await store.pending(origin)).length > 0) {
      await store.withLock(origin, () => resolvePending(origin));
    }
    resolved.add(origin);
    let token = await store.find(origin, url.pathname, now());
    const withToken = (t: TokenStore.StoredToken | undefined) => {
      const h = new Headers(headers);
      if (t !== undefined) h.set('authorization', authorization(t));
      return h;
    };
    let res = await send(p, url, method, body, withToken(token));
    if (token !== undefined) emit({ type: 'reuse', url: url.href, paymentHash: token.paymentHash });
    let info: PaymentInfo | undefined =
      token === undefined
        ? undefined
        : {
            paid: false,
            reused: true,
            amountSats: token.amountSats,
            feeSats: token.feeSats ?? 0,
            tokenId: token.tokenId,
            paymentHash: token.paymentHash,
            scheme: token.scheme ?? 'L402',
          };
    if (token?.scheme === 'Payment') await store.remove(origin, token.paymentHash); // single use
    if (res.status !== 402 || !payable(res, options.prefer)) return { res, info };
    if (token !== undefined) emit({ type: 'repay', url: url.href, paymentHash: token.paymentHash });
    let bought: { token: TokenStore.StoredToken; paid: boolean };
    try {
      bought = await buy(url, res, token, p.init.signal);
    } catch (error) {
      if (error instanceof L402Error)
        emit({ type: 'refused', url: url.href, code: error.code, message: error.message });
      await res.body?.cancel().catch(() => {});
      throw error;
    }
    await res.body?.cancel().catch(() => {});
    token = bought.token;
    res = await send(p, url, method, body, withToken(token));
    if (token.scheme === 'Payment') await store.remove(origin, token.paymentHash);
    else if (res.status === 402) {
      // The token we just bought does not work here: never send it again.
      await store.remove(origin, token.paymentHash);
      headerCache.delete(token.paymentHash);
    }
    info = {
      paid: bought.paid,
      reused: !bought.paid,
      amountSats: token.amountSats,
      feeSats: token.feeSats ?? 0,
      tokenId: token.tokenId,
      paymentHash: token.paymentHash,
      scheme: token.scheme ?? 'L402',
    };
    return { res, info };
  };

  const fetch402 = (async (input: string | URL | Request, init?: RequestInit) => {
    const p = await prepare(input, init, maxReplayBytes);
    let url = p.url;
    let method = p.method;
    let body = p.body;
    let headers = p.headers;
    const first = url.origin;
    let paidInfo: PaymentInfo | undefined;
    for (let redirects = 0; ; redirects++) {
      checkTransport(url, options.allowInsecureHttp);
      const { res, info } = await hop(p, url, method, body, headers);
      if (info?.paid || paidInfo === undefined) paidInfo = info ?? paidInfo;
      const location = res.headers.get('location');
      const follow = !native && p.redirect === 'follow';
      if (!follow || location === null || ![301, 302, 303, 307, 308].includes(res.status)) {
        if (paidInfo !== undefined) infos.set(res, paidInfo);
        return res;
      }
      if (redirects >= maxRedirects) {
        await res.body?.cancel().catch(() => {});
        throw new ClientError('L402_CLIENT_CONFIG', `more than ${maxRedirects} redirects from ${p.url.href}`);
      }
      await res.body?.cancel().catch(() => {});
      const next = new URL(location, url);
      const crossOrigin = next.origin !== url.origin;
      emit({ type: 'redirect', from: url.href, to: next.href, crossOrigin });
      if (
        res.status === 303
          ? method !== 'HEAD'
          : (res.status === 301 || res.status === 302) && method === 'POST'
      ) {
        method = 'GET';
        body = undefined;
        headers = new Headers(headers);
        for (const h of [
          'content-type',
          'content-length',
          'content-encoding',
          'content-language',
          'content-location',
        ])
          headers.delete(h);
      }
      if (next.origin !== first || crossOrigin) {
        // Whatever authenticated the request to one origin is not for another (Fetch does the same).
        headers = new Headers(headers);
        headers.delete('authorization');
        headers.delete('cookie');
        headers.delete('proxy-authorization');
      }
      url = next;
    }
  }) as PayingFetch;

  fetch402.quote = async (input, init) => {
    const p = await prepare(input, init, maxReplayBytes);
    checkTransport(p.url, options.allowInsecureHttp);
    const cachedToken = (await store.find(p.url.origin, p.url.pathname, now())) !== undefined;
    const res = await send(p, p.url, p.method, p.body, p.headers);
    await res.body?.cancel().catch(() => {});
    if (res.status !== 402) return { status: res.status, challenges: [], cachedToken };
    const challenges = Challenge.parse(res.headers.get('www-authenticate'));
    const ordered = Offers.rankAll(challenges, options.prefer);
    const c = ordered[0];
    if (c === undefined)
      return {
        status: 402,
        challenges,
        cachedToken,
        refusal: { code: 'L402_NO_CHALLENGE', message: 'no payable challenge' },
      };
    let refusal: Quote['refusal'];
    let offer: Offers.Offer | undefined;
    try {
      offer = await choose(challenges);
    } catch (error) {
      if (!(error instanceof L402Error)) throw error;
      refusal = { code: error.code, message: error.message };
      if (error instanceof BudgetError) offer = Offers.check(c, { nowMs: now() });
    }
    const price =
      offer === undefined
        ? undefined
        : {
            sats: offer.amountSats,
            scheme: offer.scheme,
            invoice: offer.invoice.paymentRequest,
            expiresAt: (offer.invoice.timestamp + offer.invoice.expiry) * 1000,
            ...(offer.description !== undefined ? { description: offer.description } : {}),
          };
    return {
      status: 402,
      challenges,
      cachedToken,
      ...(price ? { price } : {}),
      ...(refusal ? { refusal } : {}),
    };
  };

  fetch402.recover = async () => {
    const origins = [...new Set((await store.pending()).map((t) => t.origin))];
    let n = 0;
    for (const origin of origins) {
      n += (await store.pending(origin)).length;
      await store.withLock(origin, () => resolvePending(origin));
    }
    return n;
  };
  Object.defineProperty(fetch402, 'store', { value: store });
  Object.defineProperty(fetch402, 'ledger', { value: ledger });
  return fetch402;
}

/**
 * What `res` cost: `undefined` when no token was involved, else whether this request paid or reused one.
 *
 * @example
 * createFetch.payment(await fetch402(url))?.amountSats;
 */
createFetch.payment = (res: Response): PaymentInfo | undefined => infos.get(res);
