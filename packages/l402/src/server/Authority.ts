/**
 * The L402 decision, framework-agnostic: given a request view and the route's terms, say "pass" (with
 * what the token is) or "respond" (a 402 challenge, a 401, a 503 …) with the exact status, headers and
 * body. The gateway and every middleware adapter call this one object; none of them decides anything
 * about tokens by itself.
 *
 * Minting: an invoice from the Lightning backend, a 66-byte identifier committing to its payment hash,
 * a fresh 32-byte root key (or one derived from a master key), Aperture's caveats for the route, and
 * the root key committed to the store BEFORE the 402 is returned.
 *
 * Verifying: cheap checks first (format, preimage), then the root key (an in-memory cache before the
 * store), the HMAC chain and the caveats. A credential already verified is remembered (bounded), so a
 * client reusing its token costs a map lookup and a caveat check; revocation evicts at once here and,
 * through the store's revocation feed, within a second on every other instance.
 *
 * @example
 * const authority = Authority.create({ backend, store: Memory.create() });
 * const decision = await authority.authorize(
 *   { method: 'GET', url: '/forecast', headers: req.headers },
 *   { service: 'weather', price: 21 },
 * );
 * if (decision.kind === 'respond') return send(decision.status, decision.headers, decision.body);
 * decision.token.tokenId; // hex, for the handler
 */
import * as platform from '#platform';
import * as Caveat from '../Caveat.js';
import * as Challenge from '../Challenge.js';
import * as Credential from '../Credential.js';
import { BackendError, L402Error, StoreError, VerificationError } from '../Errors.js';
import * as Identifier from '../Identifier.js';
import { toHex } from '../internal/bytes.js';
import { Lru } from '../internal/lru.js';
import type { Backend } from '../lightning/Backend.js';
import * as Macaroon from '../Macaroon.js';
import * as Token from '../Token.js';
import type { Store } from './Store.js';

/** What the authority needs to know about a request. */
export interface RequestView {
  readonly method: string;
  /** Path and query, as in the request line (`/api/x?y=1`). */
  readonly url: string;
  readonly headers: Credential.HeaderSource;
  readonly remoteAddress?: string | undefined;
}

/** The terms of one route (or one gateway service). */
export interface Route {
  /** The service name minted into `services=` and the `<service>_…` caveats. */
  readonly service: string;
  /** Minted tier (default 0). */
  readonly tier?: number;
  /** Satoshis; a function for dynamic pricing. 0 lets the request through without a token (as Aperture). */
  readonly price: number | ((request: RequestView) => number | Promise<number>);
  /** Capabilities minted into `<service>_capabilities` (empty: the caveat grants none, as Aperture). */
  readonly capabilities?: readonly string[];
  /** Raw `key=value` caveats minted for the service (Aperture's `constraints`). */
  readonly constraints?: Readonly<Record<string, string>>;
  /** Seconds the token is valid (`<service>_valid_until`); none when 0 or absent. */
  readonly timeout?: number;
  /** Bind the token to this path (`services=<name><path>:…`), as Aperture does for dynamic prices. */
  readonly pathBound?: boolean;
  /** What the request demands of a token beyond the service: a tier, capabilities, constraint values. */
  readonly requires?: {
    readonly tier?: number;
    readonly capabilities?: readonly string[];
    readonly values?: (request: RequestView) => Readonly<Record<string, number | string>>;
  };
  /** Answer 401 instead of minting (Aperture's `authskipinvoicecreationpaths`). */
  readonly skipInvoice?: boolean;
  /** Invoice description; defaults to `<service> <method> <path>`. */
  readonly memo?: string;
}

/** The verified token, as handlers see it. */
export interface TokenInfo {
  /** Hex of the 32-byte token id: the server's handle for revocation and accounting. */
  readonly tokenId: string;
  readonly paymentHash: string;
  readonly preimage: string;
  readonly service: string;
  /** First-party caveats in token order. */
  readonly caveats: readonly string[];
  /** The credential as presented, for forwarding upstream. */
  readonly credential: Credential.Credential;
  /** {@link forwardedAuthorization} of the credential, formatted once per verified token. */
  readonly forwardedAuthorization: readonly string[];
}

export type Header = readonly [name: string, value: string];

export type Decision =
  | { readonly kind: 'pass'; readonly token: TokenInfo | undefined; readonly headers: readonly Header[] }
  | {
      readonly kind: 'respond';
      readonly status: number;
      readonly headers: readonly Header[];
      readonly body: string;
      /** Why, for logs and metrics: `challenge`, `unauthorized`, `backend-unavailable`, … */
      readonly reason: string;
      readonly error?: L402Error;
    };

/** How root keys are made: stored random keys (Aperture), or derived from one master key (stateless). */
export type Keys = { readonly mode: 'random' } | { readonly mode: 'derived'; readonly masterKey: Uint8Array };

export interface Options {
  readonly backend: Backend;
  /** Root keys (random mode), transactions and revocations. */
  readonly store: Store;
  readonly keys?: Keys;
  /** Macaroon location; Aperture's `lsat` by default. */
  readonly location?: string;
  /** Unix milliseconds. */
  readonly now?: () => number;
  /** Seconds an invoice stays payable; 3600 by default. */
  readonly invoiceExpirySeconds?: number;
  /** Verified credentials and root keys remembered; 10 000 each by default. */
  readonly cacheSize?: number;
  /** How often to read other instances' revocations from the store; 500 ms by default, 0 to never. */
  readonly revocationPollMs?: number;
  /** Extra satisfiers, e.g. for constraint caveats. */
  readonly satisfiers?: readonly Caveat.Satisfier[];
  /** Refuse caveats nobody understands. */
  readonly strict?: boolean;
  /** Add the spec's `version="0", token="…"` to challenges. */
  readonly specChallenge?: boolean;
  /** Status for a credential that is present but invalid: Aperture's fresh 402 (default) or the spec's 401. */
  readonly invalidCredentialStatus?: 402 | 401;
  /** Seconds clients are told to wait when Lightning is down. */
  readonly retryAfterSeconds?: number;
  /** Most milliseconds to wait for the backend's invoice before answering 503; 10 000 by default. */
  readonly invoiceTimeoutMs?: number;
  readonly onError?: (error: unknown, context: string) => void;
}

/** CORS headers Aperture puts on every 402 (`proxy/proxy.go` addCorsHeaders). */
export const CORS_HEADERS: readonly Header[] = [
  ['access-control-allow-origin', '*'],
  ['access-control-allow-methods', 'GET, POST, OPTIONS'],
  ['access-control-expose-headers', 'WWW-Authenticate, Payment-Receipt'],
  [
    'access-control-allow-headers',
    'Content-Type, Authorization, Grpc-Metadata-macaroon, WWW-Authenticate, Payment-Receipt',
  ],
];

interface Verified {
  /** The credential headers it was verified from: its key in the cache (see {@link rawCredential}). */
  readonly raw: string;
  readonly idHash: string;
  readonly tokenId: string;
  readonly paymentHash: string;
  readonly caveats: readonly string[];
  readonly credential: Credential.Credential;
  /** Hex, for the preimage caveat check and the handler: made once, not per request. */
  readonly preimage: string;
  /** Formatted on first use and kept: proxies forward it on every request. */
  forwarded?: readonly string[];
  /** What the last request saw, kept: a token reused on one service gets the same object every time. */
  info?: TokenInfo;
  /**
   * The last caveat check that passed: for this route and service, the caveats hold until `until`
   * (unix seconds), so a token reused on the same route skips re-checking them. Not kept for routes
   * whose requirements read the request (`requires.values`).
   */
  verdict?: { readonly route: Route; readonly service: string; readonly until: number };
  /** The pass decision made from `info`, kept with it. */
  pass?: Decision;
}

/** No headers: one frozen list, so a hot path that has none allocates none. */
export const NO_HEADERS: readonly Header[] = Object.freeze([]);

/** Whether the token's last passed caveat check still answers for this route and service at `now`. */
const standing = (v: Verified, route: Route, service: string, now: number): boolean =>
  v.verdict !== undefined &&
  v.verdict.route === route &&
  v.verdict.service === service &&
  now < v.verdict.until;

/** How long a passed caveat check stands: at most a second, and never past an expiry in the caveats. */
function verdictUntil(caveats: readonly string[], now: number): number {
  let until = now + 1;
  for (const caveat of caveats) {
    const eq = caveat.indexOf('=');
    const value = caveat.slice(eq + 1).trim();
    if (!/^\d{1,15}$/.test(value)) continue;
    const n = Number(value);
    // A number later than now may be an expiry (valid_until, an `earlier` constraint): stop there.
    if (n > now && n < until) until = n;
  }
  return until;
}

const isGrpc = (headers: Credential.HeaderSource): boolean => {
  const type = readHeader(headers, 'content-type');
  return type?.toLowerCase().startsWith('application/grpc') === true;
};

function readHeader(headers: Credential.HeaderSource, name: string): string | undefined {
  const value = Credential.header(headers, name);
  return typeof value === 'string' ? value : value?.join(', ');
}

/**
 * Whether `value` starts with `L402 ` or `LSAT ` (any case): four character codes, folded to lower
 * case with `| 0x20`, and a space, where a case-insensitive regular expression costs more per request.
 */
function l402Scheme(value: string): boolean {
  if (value.length < 5 || value.charCodeAt(4) !== 0x20) return false;
  const a = value.charCodeAt(0) | 0x20;
  const b = value.charCodeAt(1) | 0x20;
  const c = value.charCodeAt(2) | 0x20;
  const d = value.charCodeAt(3) | 0x20;
  // l402 (0x34 and 0x32 are unchanged by | 0x20), or lsat.
  return (
    (a === 0x6c && b === 0x34 && c === 0x30 && d === 0x32) ||
    (a === 0x6c && b === 0x73 && c === 0x61 && d === 0x74)
  );
}

const CREDENTIAL_HEADERS = ['authorization', 'grpc-metadata-macaroon', 'macaroon', 'token'] as const;

/**
 * Every header a credential can come in, as one string: the key of the verified-credential cache.
 * All of them, because `Authorization` may carry some other scheme while the token rides in `Macaroon`.
 */
function rawCredential(headers: Credential.HeaderSource): string | undefined {
  // Fast path: an `Authorization: L402 …` (or LSAT) header is the credential whatever else is sent
  // (it takes precedence in Credential.fromHeaders), so it alone is the key.
  const auth =
    typeof headers.get === 'function'
      ? (headers.get as (n: string) => string | null)('authorization')
      : (headers as Readonly<Record<string, unknown>>).authorization;
  if (typeof auth === 'string' && l402Scheme(auth)) return auth;
  const values = CREDENTIAL_HEADERS.map((name) => readHeader(headers, name) ?? '');
  return values.some((v) => v.length > 0) ? values.join('\n') : undefined;
}

const pathOf = (url: string) => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

/**
 * Keys of the front map: the last characters of a credential (of an L402 header's preimage hex, 64
 * random bits): enough to tell tokens apart, few enough to hash quickly.
 */
const TAIL = 16;

export class Authority {
  private readonly verified: Lru<string, Verified>;
  /**
   * The same entries keyed by the credential's last {@link TAIL} characters, for {@link cached}: a
   * header of several hundred characters arrives as a new string every request, and hashing a few of
   * them rather than all is most of what a lookup costs. A hit counts only when the whole credential
   * is equal; otherwise (two tokens attenuated from one payment share a preimage) the full map answers.
   */
  private readonly front = new Map<string, Verified>();
  private readonly rootKeys: Lru<string, Uint8Array>;
  /** Identifier hashes revoked (this instance, or learned from the store's feed). */
  private readonly revoked = new Set<string>();
  private revocationSeq = 0;
  private readonly poller: ReturnType<typeof setInterval> | undefined;
  private readonly now: () => number;
  private readonly keys: Keys;
  private readonly satisfiers: readonly Caveat.Satisfier[];
  /** Per route: the satisfiers plus one for each of its constraint keys nobody else understands. */
  private readonly routeSatisfiers = new WeakMap<Route, readonly Caveat.Satisfier[]>();

  private constructor(private readonly options: Options) {
    this.now = options.now ?? Date.now;
    this.keys = options.keys ?? { mode: 'random' };
    if (this.keys.mode === 'derived' && this.keys.masterKey.length < 32) {
      throw new L402Error('L402_BACKEND_CONFIG', 'the derived-key master key must be at least 32 bytes');
    }
    const size = options.cacheSize ?? 10_000;
    this.verified = new Lru(size);
    this.rootKeys = new Lru(size);
    this.satisfiers = [...Caveat.defaultSatisfiers, ...(options.satisfiers ?? [])];
    const pollMs = options.revocationPollMs ?? 500;
    if (pollMs > 0) {
      this.poller = setInterval(() => void this.syncRevocations(), pollMs);
      this.poller.unref();
    }
  }

  /** An authority; it reads the store's revocations once before answering anything. */
  static async create(options: Options): Promise<Authority> {
    const authority = new Authority(options);
    await authority.syncRevocations();
    return authority;
  }

  /** Decides one request. Never throws: every failure is a `respond` decision with the right status. */
  async authorize(request: RequestView, route: Route): Promise<Decision> {
    const grpc = isGrpc(request.headers);
    const service = route.pathBound ? `${route.service}${pathOf(request.url)}` : route.service;
    let invalid: L402Error | undefined;
    try {
      const verified = await this.verify(request, route, service);
      if (verified !== undefined) return this.pass(verified, service);
    } catch (error) {
      if (!(error instanceof L402Error)) {
        this.options.onError?.(error, 'verify');
        return this.fail(500, 'internal error', 'internal', grpc);
      }
      if (error instanceof StoreError) return this.unavailable('the token store is unavailable', grpc, error);
      invalid = error;
    }
    if (invalid !== undefined && this.options.invalidCredentialStatus === 401) {
      return this.fail(401, 'unauthorized', 'invalid-credential', grpc, invalid);
    }
    if (route.skipInvoice) return this.fail(401, 'unauthorized', 'unauthorized', grpc, invalid);
    return this.challenge(request, route, service, grpc, invalid);
  }

  /**
   * The decision for a credential this authority already verified, still unrevoked, whose caveats were
   * checked for this route less than a second ago (and not past any expiry): synchronous, no I/O, no
   * caveat parsing. `undefined` when deciding needs more; then call {@link authorize}.
   *
   * @example
   * const decision = authority.cached(view, route) ?? (await authority.authorize(view, route));
   */
  cached(request: RequestView, route: Route): Decision | undefined {
    const raw = rawCredential(request.headers);
    if (raw === undefined) return undefined;
    const verified = this.lookup(raw);
    if (verified === undefined || this.revoked.has(verified.idHash)) return undefined;
    if (verified.verdict?.route !== route) return undefined;
    const service = route.pathBound ? `${route.service}${pathOf(request.url)}` : route.service;
    return standing(verified, route, service, this.now() / 1000) ? this.pass(verified, service) : undefined;
  }

  /** The verified entry for exactly `raw`, through the front map when it knows it. */
  private lookup(raw: string): Verified | undefined {
    const tail = raw.length > 2 * TAIL ? raw.slice(-TAIL) : raw;
    const front = this.front.get(tail);
    if (front !== undefined && front.raw === raw) return front;
    const verified = this.verified.get(raw);
    if (verified !== undefined) {
      if (this.front.size >= this.verified.capacity) this.front.clear();
      this.front.set(tail, verified);
    }
    return verified;
  }

  /** Revokes a token on this instance at once, and on others through the store. */
  async revoke(token: { idHash: Uint8Array } | { tokenId: Uint8Array }): Promise<boolean> {
    const done = await this.options.store.revoke(token);
    if ('idHash' in token) this.forget(toHex(token.idHash));
    else {
      const id = toHex(token.tokenId);
      this.front.clear();
      this.verified.deleteWhere((_, v) => {
        if (v.tokenId !== id) return false;
        this.revoked.add(v.idHash);
        this.rootKeys.delete(v.idHash);
        return true;
      });
    }
    await this.syncRevocations();
    return done;
  }

  /** Stops the revocation poller. The store and backend belong to the caller. */
  close(): void {
    if (this.poller !== undefined) clearInterval(this.poller);
  }

  private forget(idHash: string): void {
    this.front.clear();
    this.revoked.add(idHash);
    this.rootKeys.delete(idHash);
    this.verified.deleteWhere((_, v) => v.idHash === idHash);
  }

  private async syncRevocations(): Promise<void> {
    try {
      for (const r of await this.options.store.revocationsSince(this.revocationSeq)) {
        this.forget(toHex(r.idHash));
        this.revocationSeq = Math.max(this.revocationSeq, r.seq);
      }
    } catch (error) {
      this.options.onError?.(error, 'revocations');
    }
  }

  private context(
    request: RequestView,
    route: Route,
    service: string,
    preimage: string | undefined,
  ): Caveat.Context {
    return {
      service,
      tier: route.requires?.tier,
      capabilities: route.requires?.capabilities,
      now: this.now() / 1000,
      values: route.requires?.values?.(request),
      preimage,
    };
  }

  /** The verified credential, `undefined` when none was presented; throws L402Error when it is invalid. */
  private async verify(request: RequestView, route: Route, service: string): Promise<Verified | undefined> {
    const raw = rawCredential(request.headers);
    if (raw === undefined) return undefined;
    const cached = this.verified.get(raw);
    if (cached !== undefined && !this.revoked.has(cached.idHash)) {
      const now = this.now() / 1000;
      if (standing(cached, route, service, now)) return cached;
      Caveat.verify(
        cached.caveats,
        this.context(request, route, service, cached.preimage),
        this.caveatOptions(route),
      );
      this.remember(cached, route, service, now);
      return cached;
    }
    const credential = Credential.fromHeaders(request.headers);
    if (credential === undefined) return undefined;
    const { macaroon, preimage } = credential;
    const identifier = Identifier.decode(macaroon.identifier);
    if (!Token.preimageMatches(identifier, preimage)) {
      throw new VerificationError(
        'L402_BAD_PREIMAGE',
        'preimage does not match the payment hash of the token',
      );
    }
    const idHash = toHex(platform.sha256(macaroon.identifier));
    const rootKey = await this.rootKey(idHash, identifier);
    const result = Token.verify(macaroon, {
      rootKey,
      preimage,
      context: this.context(request, route, service, toHex(preimage)),
      ...this.caveatOptions(route),
    });
    const verified: Verified = {
      raw,
      idHash,
      tokenId: toHex(identifier.tokenId),
      paymentHash: toHex(identifier.paymentHash),
      caveats: result.caveats,
      credential,
      preimage: toHex(preimage),
    };
    this.remember(verified, route, service, this.now() / 1000);
    this.verified.set(raw, verified);
    // First sight of a paid token: record the settlement (idempotent), off the request's path.
    this.options.store
      .settle(identifier.paymentHash, Math.floor(this.now() / 1000))
      .catch((e) => this.options.onError?.(e, 'settle'));
    return verified;
  }

  private remember(verified: Verified, route: Route, service: string, now: number): void {
    if (route.requires?.values !== undefined) return;
    verified.verdict = { route, service, until: verdictUntil(verified.caveats, now) };
  }

  /**
   * Constraint caveats are enforced, not just minted: a numeric constraint may only decrease (and
   * bounds the request's value for that key, when the route supplies one); any other must stay equal.
   */
  private caveatOptions(route: Route): Caveat.VerifyOptions {
    let satisfiers = this.routeSatisfiers.get(route);
    if (satisfiers === undefined) {
      const extra = Object.entries(route.constraints ?? {})
        .filter(([key]) => !this.satisfiers.some((s) => s.matches(key)))
        .map(([key, value]) =>
          Caveat.constraint(key, /^-?\d+(\.\d+)?$/.test(value) ? 'decreasing' : 'equal'),
        );
      satisfiers = extra.length === 0 ? this.satisfiers : [...this.satisfiers, ...extra];
      this.routeSatisfiers.set(route, satisfiers);
    }
    return { satisfiers, strict: this.options.strict ?? false };
  }

  private async rootKey(idHash: string, identifier: Identifier.Identifier): Promise<Uint8Array> {
    const unknown = () => new VerificationError('L402_BAD_SIGNATURE', 'token is unknown or revoked');
    if (this.revoked.has(idHash)) throw unknown();
    if (this.keys.mode === 'derived') return platform.hmacSha256(this.keys.masterKey, identifier.tokenId);
    const cached = this.rootKeys.get(idHash);
    if (cached !== undefined) return cached;
    const key = await this.options.store.rootKey(platform.sha256(Identifier.encode(identifier)));
    if (key === undefined) throw unknown();
    this.rootKeys.set(idHash, key);
    return key;
  }

  private pass(v: Verified, service: string): Decision {
    const token = this.info(v, service);
    if (v.pass?.kind === 'pass' && v.pass.token === token) return v.pass;
    v.pass = { kind: 'pass', token, headers: NO_HEADERS };
    return v.pass;
  }

  private info(v: Verified, service: string): TokenInfo {
    if (v.info?.service === service) return v.info;
    v.forwarded ??= forwardedAuthorization(v.credential);
    v.info = {
      forwardedAuthorization: v.forwarded,
      tokenId: v.tokenId,
      paymentHash: v.paymentHash,
      preimage: v.preimage,
      service,
      caveats: v.caveats,
      credential: v.credential,
    };
    return v.info;
  }

  private async challenge(
    request: RequestView,
    route: Route,
    service: string,
    grpc: boolean,
    invalid: L402Error | undefined,
  ): Promise<Decision> {
    let price: number;
    try {
      price = typeof route.price === 'function' ? await route.price(request) : route.price;
    } catch (error) {
      this.options.onError?.(error, 'price');
      return this.fail(500, 'failure fetching resource price', 'price-error', grpc);
    }
    if (!Number.isSafeInteger(price) || price < 0) {
      this.options.onError?.(new Error(`price ${price} is not a whole number of sats`), 'price');
      return this.fail(500, 'failure fetching resource price', 'price-error', grpc);
    }
    if (price === 0) return { kind: 'pass', token: undefined, headers: [] };

    // Never sell a token that could not work: the caveats a fresh token would carry must grant this very
    // request (a constraint already expired, say, is a configuration error, not something to charge for).
    const mintedAt = Math.floor(this.now() / 1000);
    const caveats = [Caveat.services([{ name: service, tier: route.tier ?? 0 }])];
    caveats.push(Caveat.capabilities(service, route.capabilities ?? []));
    try {
      for (const [k, v] of Object.entries(route.constraints ?? {})) caveats.push(Caveat.format(k, v));
      if (route.timeout !== undefined && route.timeout > 0) {
        caveats.push(Caveat.validUntil(service, mintedAt + route.timeout));
      }
      Caveat.verify(caveats, this.context(request, route, service, undefined), this.caveatOptions(route));
    } catch (error) {
      this.options.onError?.(error, 'misconfigured');
      const why = error instanceof L402Error ? `: ${error.message}` : '';
      return this.fail(500, `service ${route.service} is misconfigured${why}`, 'misconfigured', grpc);
    }

    const expiry = this.options.invoiceExpirySeconds ?? 3600;
    let invoice: { paymentRequest: string; paymentHash: Uint8Array };
    try {
      invoice = await this.invoiceWithin(this.options.invoiceTimeoutMs ?? 10_000, {
        amountMsat: BigInt(price) * 1000n,
        memo: route.memo ?? `${route.service} ${request.method} ${pathOf(request.url)}`.slice(0, 200),
        expirySeconds: expiry,
      });
    } catch (error) {
      if (error instanceof BackendError)
        return this.unavailable('the Lightning backend is unavailable', grpc, error);
      this.options.onError?.(error, 'invoice');
      return this.fail(500, 'challenge failure', 'internal', grpc);
    }

    const now = Math.floor(this.now() / 1000);
    const tokenId = platform.randomBytes(32);
    const rootKey =
      this.keys.mode === 'derived'
        ? platform.hmacSha256(this.keys.masterKey, tokenId)
        : platform.randomBytes(32);
    const { macaroon, identifier } = Token.mint({
      rootKey,
      paymentHash: invoice.paymentHash,
      tokenId,
      location: this.options.location ?? 'lsat',
      caveats,
    });
    try {
      await this.options.store.mint({
        idHash: platform.sha256(Identifier.encode(identifier)),
        // Derived keys are recomputed from the master key, never stored: the row keeps zeros.
        rootKey: this.keys.mode === 'derived' ? new Uint8Array(32) : rootKey,
        tokenId,
        paymentHash: invoice.paymentHash,
        service,
        priceMsat: BigInt(price) * 1000n,
        createdAt: now,
        invoiceExpiresAt: now + expiry,
      });
    } catch (error) {
      if (error instanceof L402Error) return this.unavailable('the token store is unavailable', grpc, error);
      throw error;
    }
    const lines = Challenge.format(
      { macaroon: Macaroon.toBase64(macaroon), invoice: invoice.paymentRequest },
      { spec: this.options.specChallenge ?? false },
    );
    const headers: Header[] = [
      ...lines.map((l) => ['www-authenticate', l] as const),
      ['cache-control', 'no-store'],
      ...CORS_HEADERS,
    ];
    return this.respond(402, 'payment required', 'challenge', grpc, headers, invalid);
  }

  /**
   * The backend's invoice, or {@link BackendError} `L402_BACKEND_TIMEOUT` after `ms`: a Lightning node
   * that hangs costs a client a prompt 503, not its own timeout. (An invoice made after that is simply
   * never sold: nothing was minted for it.)
   */
  private invoiceWithin(
    ms: number,
    request: Parameters<Backend['createInvoice']>[0],
  ): ReturnType<Backend['createInvoice']> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new BackendError('L402_BACKEND_TIMEOUT', this.options.backend.kind, `no invoice within ${ms} ms`),
          ),
        ms,
      );
    });
    return Promise.race([this.options.backend.createInvoice(request), timeout]).finally(() =>
      clearTimeout(timer),
    );
  }

  private unavailable(message: string, grpc: boolean, error: L402Error): Decision {
    this.options.onError?.(error, 'unavailable');
    const retry = String(this.options.retryAfterSeconds ?? 5);
    return this.respond(503, `${message}, retry later`, 'unavailable', grpc, [['retry-after', retry]], error);
  }

  private fail(status: number, message: string, reason: string, grpc: boolean, error?: L402Error): Decision {
    return this.respond(status, message, reason, grpc, [], error);
  }

  /** Plain text for HTTP; for gRPC, HTTP 200 with grpc-status 13 and the message, as Aperture answers. */
  private respond(
    status: number,
    message: string,
    reason: string,
    grpc: boolean,
    extra: readonly Header[],
    error: L402Error | undefined,
  ): Decision {
    if (grpc) {
      return {
        kind: 'respond',
        status: 200,
        headers: [
          ['content-type', 'application/grpc'],
          ['grpc-status', status === 429 ? '8' : '13'],
          ['grpc-message', message],
          ...extra,
        ],
        body: '',
        reason,
        ...(error !== undefined ? { error } : {}),
      };
    }
    return plainText(status, message, reason, extra, error);
  }
}

/**
 * A `respond` decision with a plain-text body (`message` and a newline): how a refusal that is not a
 * challenge is answered.
 *
 * @example
 * return plainText(503, 'payment backend unavailable, retry later', 'unavailable', [['retry-after', '5']]);
 */
export function plainText(
  status: number,
  message: string,
  reason: string,
  extra: readonly Header[] = [],
  error?: L402Error,
): Decision {
  return {
    kind: 'respond',
    status,
    headers: [['content-type', 'text/plain; charset=utf-8'], ['x-content-type-options', 'nosniff'], ...extra],
    body: `${message}\n`,
    reason,
    ...(error !== undefined ? { error } : {}),
  };
}

/** Shorthand for {@link Authority.create}. */
export const create: (options: Options) => Promise<Authority> = Authority.create;

/** The `Authorization` values to forward upstream, as Aperture does: `LSAT …` then `L402 …`. */
export function forwardedAuthorization(credential: Credential.Credential): string[] {
  return [
    Credential.format({ macaroon: credential.macaroon, preimage: credential.preimage }, { scheme: 'LSAT' }),
    Credential.format({ macaroon: credential.macaroon, preimage: credential.preimage }, { scheme: 'L402' }),
  ];
}
