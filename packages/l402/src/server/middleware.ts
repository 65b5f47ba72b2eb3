/**
 * What every framework adapter (`l402/node`, `l402/express`, `l402/fastify`, `l402/hono`) shares: the
 * options, checked once when they are given; one {@link Authority.Authority}, made on first use and
 * shared by every route; and per route a guard that turns a request view into an {@link Outcome}. An
 * adapter only reads its framework's request into a view and writes the outcome back in its idiom, so
 * all four answer exactly as the gateway does (same statuses, same headers, same challenge), because
 * the Authority decides for all of them.
 *
 * Root keys: derived from one master key by default (`masterKey`, or `L402_MASTER_KEY` in hex): no
 * database, any number of instances. The store (in memory unless one is given) then holds only the
 * transactions and revocations; give a SQLite or PostgreSQL store for revocations that outlive the
 * process or reach other instances. `keys: 'random'` keeps a random root key per token in the store,
 * as Aperture does.
 *
 * Nothing here loads a framework, a Node built-in or a Lightning client until it is needed: a wallet
 * URI is connected (and `'devnet'` looked up) on first use, so the core also runs where only `fetch`
 * exists, given a `Backend`.
 *
 * @example
 * import { Middleware } from 'l402/server';
 * const paywall = Middleware.create({ backend: 'devnet', masterKey: process.env.L402_MASTER_KEY });
 * const guard = paywall.protect({ service: 'api', price: 21 });
 * const outcome = await guard({ method: 'GET', url: '/api/x', headers: request.headers });
 * if (outcome.kind === 'respond') return reply(outcome.status, outcome.headers, outcome.body);
 * outcome.l402?.tokenId; // the verified token, for the handler
 */
import * as Caveat from '../Caveat.js';
import { MiddlewareError } from '../Errors.js';
import { fromHex } from '../internal/bytes.js';
import type { Backend } from '../lightning/Backend.js';
import { walletKind } from '../lightning/schemes.js';
import * as Authority from './Authority.js';
import type { Store } from './Store.js';
import * as Memory from './stores/memory.js';

/**
 * A route's terms: the Authority's {@link Authority.Route}, checked by {@link Paywall.protect}.
 *
 * @example
 * const write: Middleware.Route = { service: 'notes', price: 10, capabilities: ['read', 'write'], requires: { capabilities: ['write'] } };
 */
export type Route = Authority.Route;

/**
 * The middleware's options: the Authority's (`now`, `location`, `invoiceExpirySeconds`, `cacheSize`,
 * `revocationPollMs`, `satisfiers`, `strict`, `specChallenge`, `invalidCredentialStatus`,
 * `retryAfterSeconds`) and how the backend, root keys and store are chosen.
 *
 * @example
 * const options: Middleware.Options = { backend: 'devnet', masterKey: process.env.L402_MASTER_KEY, onRefusal: (r) => log(r.reason) };
 */
export interface Options extends Omit<Authority.Options, 'backend' | 'store' | 'keys'> {
  /**
   * Where invoices come from: a {@link Backend}; a wallet URI (`lnd://…`, `cln://…`, `phoenixd://…`,
   * `lnbits://…`, `nostr+walletconnect://…`), connected on first use; or `'devnet'`, the merchant node of
   * the devnet running under `home` (`npx l402 devnet` or `npm start`).
   */
  readonly backend: Backend | string;
  /** `'derived'` (default: no database, one master key) or `'random'` (a stored key per token). */
  readonly keys?: 'derived' | 'random';
  /** At least 32 bytes, as bytes or hex; `L402_MASTER_KEY` (hex) when absent. Derived keys only. */
  readonly masterKey?: string | Uint8Array;
  /** Transactions and revocations (and root keys in random mode); in memory by default. */
  readonly store?: Store;
  /** Where `devnet.json` is for `backend: 'devnet'`; `$L402_HOME`, else `~/.l402`. */
  readonly home?: string;
  /**
   * Aperture's CORS headers on the handler's answers. `'origin'` (default): on the answers to requests
   * that carry an `Origin` header — every cross-origin request a browser makes — so a page on another
   * origin can read what it paid for, while server-to-server calls (no `Origin`) carry no header lines
   * they would never read; `true`: on every answer, as the gateway (Aperture) does; `false`: never,
   * for an app with CORS of its own. Unless `false`, a preflight `OPTIONS` that reaches the middleware
   * is answered 200 with them. Challenges and other refusals carry them in every mode, as the gateway's.
   */
  readonly cors?: boolean | 'origin';
  /** Failures that cannot be the client's: the backend, the store, a price function, a handler. */
  readonly onError?: (error: unknown, context: string) => void;
  /** Every request answered instead of passed (402, 401, 503 …), with why: for logs and metrics. */
  readonly onRefusal?: (reply: Reply, request: Authority.RequestView) => void;
}

/**
 * The verified token, as a handler sees it (`req.l402`, `request.l402`, `c.get('l402')`); one frozen
 * object per cached credential.
 *
 * @example
 * const canWrite = req.l402?.capabilities?.includes('write') ?? true;
 * log({ token: req.l402?.tokenId, services: req.l402?.services });
 */
export interface L402Info {
  /** Hex of the 32-byte token id: what {@link Paywall.revoke} takes and accounting keys on. */
  readonly tokenId: string;
  /** Hex; the invoice that was paid for the token. */
  readonly paymentHash: string;
  /** The service the token was checked against (with the path, for `pathBound` routes). */
  readonly service: string;
  /** First-party caveats in token order, as the client presented them. */
  readonly caveats: readonly string[];
  /** The services the token grants, from its last (narrowest) `services` caveat. */
  readonly services: readonly Caveat.ServiceTier[];
  /** The capabilities it grants for `service`; `undefined` when no caveat limits them. */
  readonly capabilities: readonly string[] | undefined;
  /** Unix seconds after which it is refused for `service`; `undefined` when it does not expire. */
  readonly validUntil: number | undefined;
}

/**
 * An answer the adapter writes instead of calling the handler: a 402 challenge, a 401, a 503, a
 * preflight's 200. `reason` and `error.code` say why, for logs.
 *
 * @example
 * onRefusal: (reply) => metrics.count(`l402.${reply.reason}`, { code: reply.error?.code })
 */
export type Reply = Extract<Authority.Decision, { readonly kind: 'respond' }>;

/**
 * What a guard says about one request: pass (with the token for the handler) or the reply to write.
 *
 * @example
 * const outcome = await guard(view);
 * if (outcome.kind === 'respond') return write(outcome.status, outcome.headers, outcome.body);
 */
export type Outcome =
  | {
      readonly kind: 'pass';
      /** `undefined` when the request cost nothing (a price of 0). */
      readonly l402: L402Info | undefined;
      /** To set on the handler's response (Aperture's CORS headers), before the handler runs. */
      readonly headers: readonly Authority.Header[];
    }
  | Reply;

/**
 * One route's check. Never throws or rejects: every failure is a {@link Reply}. The outcome comes at
 * once (no promise) when nothing needs I/O: a token already verified and checked for this route, or a
 * preflight; adapters handle a plain outcome inline and await only a promise.
 *
 * @example
 * const guard: Middleware.Guard = paywall.protect({ service: 'api', price: 21 });
 */
export type Guard = (request: Authority.RequestView) => Outcome | Promise<Outcome>;

/**
 * The shared part of every adapter's middleware object; adapters replace `protect` with their idiom.
 *
 * @example
 * const paywall = Middleware.create(options);
 * const guard = paywall.protect({ service: 'api', price: 21 });
 * await paywall.revoke(info.tokenId);
 */
export interface Paywall {
  /** The guard for one route; the route is checked now (throws {@link MiddlewareError}), not per request. */
  protect(route: Route): Guard;
  /** Revokes a token by id (hex or bytes): refused from now on here, and via the store elsewhere. */
  revoke(tokenId: string | Uint8Array): Promise<boolean>;
  /** Connects the backend and makes the Authority now rather than on the first request; rejects when that fails. */
  ready(): Promise<void>;
  /** Stops the Authority, and closes the backend and store this middleware opened (never ones it was given). */
  close(): Promise<void>;
}

const SWEEP_MS = 60_000;

/** Aperture answers preflight requests itself, so a browser can go on to read the 402 challenge. */
const PREFLIGHT: Reply = {
  kind: 'respond',
  status: 200,
  headers: Authority.CORS_HEADERS,
  body: '',
  reason: 'preflight',
};

const fail = (message: string, cause?: unknown): MiddlewareError =>
  new MiddlewareError(`l402 middleware: ${message}`, cause === undefined ? undefined : { cause });

/** `process.env[name]` where there is a `process` (not in browsers and some edge runtimes). */
const env = (name: string): string | undefined => globalThis.process?.env?.[name];

const isWhole = (n: unknown, min = 0): n is number => Number.isSafeInteger(n) && (n as number) >= min;

/** The backend option, checked; what {@link open} later turns into a {@link Backend}. */
type BackendSource = { readonly backend: Backend } | { readonly uri: string } | { readonly devnet: true };

function backendSource(backend: unknown): BackendSource {
  if (backend === 'devnet') return { devnet: true };
  if (typeof backend === 'string') {
    try {
      walletKind(backend);
    } catch (error) {
      throw fail(`backend: ${(error as Error).message}, or 'devnet'`, error);
    }
    return { uri: backend };
  }
  const candidate = backend as Partial<Backend> | null | undefined;
  if (typeof candidate?.createInvoice !== 'function' || typeof candidate.close !== 'function') {
    throw fail(
      "backend is required: a wallet URI (lnd://, cln://, phoenixd://, lnbits://, nostr+walletconnect://), a Backend from 'l402/lightning', or 'devnet'",
    );
  }
  return { backend: candidate as Backend };
}

function authorityKeys(options: Options): Authority.Keys {
  const mode = options.keys ?? 'derived';
  if (mode === 'random') {
    if (options.masterKey !== undefined) throw fail("masterKey is for keys: 'derived', not 'random'");
    return { mode };
  }
  if (mode !== 'derived') throw fail(`keys must be 'derived' or 'random', not ${JSON.stringify(mode)}`);
  const given = options.masterKey ?? env('L402_MASTER_KEY');
  if (given === undefined || given === '') {
    throw fail(
      "no master key: pass masterKey (32+ bytes, or their hex) or set L402_MASTER_KEY (make one with `openssl rand -hex 32`); or use keys: 'random' with a store",
    );
  }
  let masterKey: Uint8Array;
  if (typeof given === 'string') {
    try {
      masterKey = fromHex(given.trim(), 'master key');
    } catch (error) {
      throw fail('the master key is not hex (make one with `openssl rand -hex 32`)', error);
    }
  } else if (given instanceof Uint8Array) masterKey = given.slice();
  else throw fail('masterKey must be a Uint8Array or a hex string');
  if (masterKey.length < 32) {
    throw fail(`the master key is ${masterKey.length} bytes; it must be at least 32 (64 hex digits)`);
  }
  return { mode, masterKey };
}

function checkOptions(options: Options): void {
  if (typeof options !== 'object' || options === null) throw fail('options are required');
  const counts: [string, unknown, number][] = [
    ['invoiceExpirySeconds', options.invoiceExpirySeconds, 1],
    ['cacheSize', options.cacheSize, 0],
    ['revocationPollMs', options.revocationPollMs, 0],
    ['retryAfterSeconds', options.retryAfterSeconds, 0],
  ];
  for (const [name, value, min] of counts) {
    if (value !== undefined && !isWhole(value, min)) throw fail(`${name} must be a whole number ≥ ${min}`);
  }
  const status = options.invalidCredentialStatus;
  if (status !== undefined && status !== 401 && status !== 402) {
    throw fail('invalidCredentialStatus must be 402 (Aperture) or 401');
  }
  const store = options.store as Partial<Store> | undefined;
  if (store !== undefined && (typeof store.mint !== 'function' || typeof store.revoke !== 'function')) {
    throw fail("store must be a Store (from 'l402/stores/memory', '…/sqlite' or '…/postgres')");
  }
}

/** The route, checked against everything a token minted for it must satisfy, and frozen. */
function checkRoute(route: Route): Route {
  if (typeof route !== 'object' || route === null) throw fail('a route needs at least { service, price }');
  const name = typeof route.service === 'string' ? route.service : '';
  const at = `route ${JSON.stringify(name)}`;
  try {
    Caveat.services([{ name, tier: route.tier ?? 0 }]);
  } catch (error) {
    throw fail(
      `${at}: the service must be a name without spaces, ",", ":" or "=", and the tier a whole number ≥ 0`,
      error,
    );
  }
  const { price, timeout, capabilities = [], constraints = {}, requires = {} } = route;
  if (typeof price !== 'function' && !isWhole(price)) {
    throw fail(
      `${at}: price ${String(price)} must be a whole number of satoshis ≥ 0, or a function of the request`,
    );
  }
  if (timeout !== undefined && !isWhole(timeout)) throw fail(`${at}: timeout must be whole seconds ≥ 0`);
  if (
    !Array.isArray(capabilities) ||
    !capabilities.every((c) => typeof c === 'string' && /^[^\s,]+$/.test(c))
  ) {
    throw fail(`${at}: capabilities must be names without spaces or ","`);
  }
  for (const [key, value] of Object.entries(constraints)) {
    if (typeof value !== 'string') throw fail(`${at}: constraint ${key} must be a string`);
    try {
      Caveat.format(key, value);
    } catch (error) {
      throw fail(`${at}: ${(error as Error).message}`, error);
    }
  }
  const missing = (requires.capabilities ?? []).filter((c) => !capabilities.includes(c));
  if (missing.length > 0) {
    throw fail(
      `${at}: requires capability ${missing.join(', ')}, which its tokens are never given (add it to capabilities)`,
    );
  }
  if (requires.tier !== undefined && !(isWhole(requires.tier) && requires.tier <= (route.tier ?? 0))) {
    throw fail(
      `${at}: requires tier ${requires.tier}, above the tier ${route.tier ?? 0} its tokens are minted with`,
    );
  }
  if (requires.values !== undefined && typeof requires.values !== 'function') {
    throw fail(`${at}: requires.values must be a function of the request`);
  }
  return Object.freeze({
    ...route,
    capabilities: Object.freeze([...capabilities]),
    constraints: { ...constraints },
  });
}

/**
 * Whether the request carries an `Origin` header: a browser's cross-origin request (or a same-origin
 * one other than GET/HEAD). Node lower-cases header names; a hand-made record may not.
 */
function hasOrigin(headers: Authority.RequestView['headers']): boolean {
  if (typeof headers.get === 'function') return (headers.get as (name: string) => unknown)('origin') != null;
  const record = headers as Readonly<Record<string, unknown>>;
  return record.origin !== undefined || record.Origin !== undefined;
}

/** Keyed by the Authority's token info, the same object for every request with one cached credential. */
const infos = new WeakMap<Authority.TokenInfo, L402Info>();

/** The handler's view of a verified token; the same frozen object for every request with that token. */
function infoOf(token: Authority.TokenInfo): L402Info {
  const known = infos.get(token);
  if (known !== undefined) return known;
  let services: readonly Caveat.ServiceTier[] = [];
  let capabilities: readonly string[] | undefined;
  let validUntil: number | undefined;
  for (const text of token.caveats) {
    const caveat = Caveat.tryParse(text);
    if (caveat === undefined) continue;
    // The last caveat of a key is the one in force: verification already made sure each one narrows.
    if (caveat.key === 'services') services = Caveat.parseServices(caveat.value).map((s) => Object.freeze(s));
    else if (caveat.key === `${token.service}_capabilities`)
      capabilities = caveat.value === '' ? [] : caveat.value.split(',');
    else if (caveat.key === `${token.service}_valid_until` || caveat.key === 'valid_until') {
      const at = Number(caveat.value);
      validUntil = validUntil === undefined ? at : Math.min(validUntil, at);
    }
  }
  const info: L402Info = Object.freeze({
    tokenId: token.tokenId,
    paymentHash: token.paymentHash,
    service: token.service,
    caveats: Object.freeze([...token.caveats]),
    services: Object.freeze(services),
    capabilities: capabilities && Object.freeze(capabilities),
    validUntil,
  });
  infos.set(token, info);
  return info;
}

interface DevnetDocument {
  readonly pid?: number;
  readonly nodes?: Readonly<Record<string, { readonly uris?: { readonly lnd?: string } }>>;
}

/** The LND URI of the merchant node of the devnet published in `<home>/devnet.json`. */
async function devnetWallet(home: string | undefined): Promise<string> {
  const [{ readFile }, { homedir }, { join }] = await Promise.all([
    import('node:fs/promises'),
    import('node:os'),
    import('node:path'),
  ]);
  const dir = home ?? env('L402_HOME') ?? join(homedir(), '.l402');
  const file = join(dir, 'devnet.json');
  const start = 'start one with `npx l402 devnet` (or `npm start`), or set L402_HOME to the home it runs in';
  let document: DevnetDocument;
  try {
    document = JSON.parse(await readFile(file, 'utf8')) as DevnetDocument;
  } catch (error) {
    throw fail(`backend 'devnet': no devnet is running under ${dir} (no readable ${file}): ${start}`, error);
  }
  try {
    // Signal 0 only asks whether the process is there; a devnet that died leaves its document behind.
    if (typeof document.pid === 'number') process.kill(document.pid, 0);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EPERM') {
      throw fail(
        `backend 'devnet': the devnet in ${file} (process ${document.pid}) is not running: ${start}`,
        error,
      );
    }
  }
  const uri = document.nodes?.merchant?.uris?.lnd;
  if (typeof uri !== 'string') {
    throw fail(`backend 'devnet': the devnet in ${file} has no merchant node with an LND API`);
  }
  return uri;
}

/** The answer while the backend cannot be reached (or `'devnet'` found): the Authority's 503 shape. */
function unavailable(retryAfterSeconds: number): Reply {
  return {
    kind: 'respond',
    status: 503,
    headers: [
      ['content-type', 'text/plain; charset=utf-8'],
      ['x-content-type-options', 'nosniff'],
      ['retry-after', String(retryAfterSeconds)],
    ],
    body: 'the Lightning backend is unavailable, retry later\n',
    reason: 'unavailable',
  };
}

/**
 * The shared middleware: options checked now (throws {@link MiddlewareError}), the backend and the
 * Authority made on first use (or {@link Paywall.ready}) and shared by every route it protects.
 *
 * @example
 * const paywall = Middleware.create({ backend: 'lnd://127.0.0.1:10009?macaroon=…&cert=…' });
 * const guard = paywall.protect({ service: 'api', price: 21, capabilities: ['read'] });
 * await paywall.close();
 */
export function create(options: Options): Paywall {
  checkOptions(options);
  const source = backendSource(options.backend);
  const keys = authorityKeys(options);
  const {
    backend: _backend,
    keys: _keys,
    masterKey: _masterKey,
    store: givenStore,
    home,
    cors = 'origin',
    onRefusal,
    ...authorityOptions
  } = options;
  if (cors !== true && cors !== false && cors !== 'origin') {
    throw fail(`cors must be 'origin', true or false, not ${JSON.stringify(cors)}`);
  }
  const store = givenStore ?? Memory.create();
  /** Whether a passed answer to `request` gets the CORS headers. */
  const corsFor =
    cors === 'origin'
      ? (request: Authority.RequestView) => hasOrigin(request.headers)
      : (_request: Authority.RequestView) => cors;
  /** Per verified token, the pass outcomes without and with CORS: the hot path returns the same object every time. */
  const passes = new WeakMap<Authority.TokenInfo, Outcome>();
  const corsPasses = new WeakMap<Authority.TokenInfo, Outcome>();
  const now = options.now ?? Date.now;
  /** What this middleware opened, closed last first. */
  const closers: (() => Promise<void> | void)[] = givenStore === undefined ? [() => store.close()] : [];
  let authority: Authority.Authority | undefined;
  let opening: Promise<Authority.Authority> | undefined;
  let closed = false;

  async function open(): Promise<Authority.Authority> {
    let backend: Backend;
    if ('backend' in source) backend = source.backend;
    else {
      const uri = 'uri' in source ? source.uri : await devnetWallet(home);
      const { connect } = await import('../lightning/connect.js');
      backend = await connect(uri);
      closers.push(() => backend.close());
    }
    const made = await Authority.create({ ...authorityOptions, backend, store, keys });
    closers.push(() => made.close());
    // Every 402 records an unpaid transaction; dropping those whose invoice expired keeps unpaid
    // requests from growing the store without bound.
    let sweeping = false;
    const sweeper = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      store
        .removeExpiredUnpaid(Math.floor(now() / 1000))
        .catch((error: unknown) => options.onError?.(error, 'sweep'))
        .finally(() => {
          sweeping = false;
        });
    }, SWEEP_MS);
    (sweeper as { unref?: () => void }).unref?.();
    closers.push(() => clearInterval(sweeper));
    return made;
  }

  function ready(): Promise<Authority.Authority> {
    if (closed) return Promise.reject(fail('this middleware was closed'));
    opening ??= open().then(
      (made) => {
        authority = made;
        return made;
      },
      (error: unknown) => {
        // Try again on the next request: the devnet may start, the node come back.
        opening = undefined;
        throw error;
      },
    );
    return opening;
  }

  return {
    protect(route) {
      const terms = checkRoute(route);
      const outcome = (decision: Authority.Decision, request: Authority.RequestView): Outcome => {
        if (decision.kind === 'respond') {
          onRefusal?.(decision, request);
          return decision;
        }
        const withCors = corsFor(request);
        const passHeaders = withCors ? Authority.CORS_HEADERS : Authority.NO_HEADERS;
        if (decision.token !== undefined && decision.headers.length === 0) {
          const known = withCors ? corsPasses : passes;
          let pass = known.get(decision.token);
          if (pass === undefined) {
            pass = { kind: 'pass', l402: infoOf(decision.token), headers: passHeaders };
            known.set(decision.token, pass);
          }
          return pass;
        }
        return {
          kind: 'pass',
          l402: decision.token === undefined ? undefined : infoOf(decision.token),
          headers: decision.headers.length === 0 ? passHeaders : [...decision.headers, ...passHeaders],
        };
      };
      const opened = async (request: Authority.RequestView): Promise<Outcome> => {
        let current: Authority.Authority;
        try {
          current = await ready();
        } catch (error) {
          options.onError?.(error, 'backend');
          return outcome(unavailable(options.retryAfterSeconds ?? 5), request);
        }
        return outcome(await current.authorize(request, terms), request);
      };
      // Not an async function: on the hot path (Authority made, credential cached) this adds one
      // promise to the Authority's, no more.
      return (request) => {
        if (cors !== false && request.method === 'OPTIONS') return PREFLIGHT;
        if (authority === undefined) return opened(request);
        // The hot path: a token already verified and checked for this route, decided without a promise.
        const hit = authority.cached(request, terms);
        if (hit !== undefined) return outcome(hit, request);
        return authority.authorize(request, terms).then((decision) => outcome(decision, request));
      };
    },

    async revoke(tokenId) {
      const bytes =
        typeof tokenId === 'string' && /^[0-9a-fA-F]{64}$/.test(tokenId) ? fromHex(tokenId) : tokenId;
      if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
        throw new RangeError('a token id is 32 bytes, or 64 hex digits (L402Info.tokenId)');
      }
      return (await ready()).revoke({ tokenId: bytes });
    },

    async ready() {
      await ready();
    },

    async close() {
      if (closed) return;
      closed = true;
      await opening?.catch(() => undefined);
      for (const closer of closers.reverse()) {
        try {
          await closer();
        } catch (error) {
          options.onError?.(error, 'close');
        }
      }
    },
  };
}

/**
 * The headers of a {@link Reply} for APIs that take one value or a list per name (Node's `setHeader`,
 * Fastify's `reply.headers`): the two `WWW-Authenticate` challenges stay two header lines.
 *
 * @example
 * grouped([['www-authenticate', 'LSAT …'], ['www-authenticate', 'L402 …']]);
 * // { 'www-authenticate': ['LSAT …', 'L402 …'] }
 */
export function grouped(headers: readonly Authority.Header[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const existing = out[name];
    out[name] = existing === undefined ? value : [existing, value].flat();
  }
  return out;
}
