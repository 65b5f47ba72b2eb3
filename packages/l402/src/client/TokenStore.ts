/**
 * The tokens the client bought, by origin: each with its path scope and expiry (read from its caveats),
 * `pending` from before the wallet is asked to pay until the preimage is written. One JSON document per
 * origin in a {@link Space}: memory, `localStorage`, or files under `$L402_HOME` (`l402/client/node`).
 *
 * @example
 * const store = TokenStore.memory();
 * const token = await store.find('https://api.example', '/forecast'); // a paid, unexpired token or undefined
 * const json = await store.export(); await other.import(json);
 */
import * as Caveat from '../Caveat.js';
import { ClientError } from '../Errors.js';
import * as Space from './Space.js';

/**
 * A token as stored and as exported (JSON): the macaroon in base64, the preimage in hex once paid.
 *
 * @example
 * const t: StoredToken = { origin: 'https://api.example', path: '/', macaroon: 'AgEE…', paymentHash: 'ab…',
 *   tokenId: 'cd…', invoice: 'lnbcrt…', amountSats: 10, state: 'pending', createdAt: Date.now() };
 */
export interface StoredToken {
  /** `https://host[:port]` as `URL.origin` writes it. */
  origin: string;
  /** The path prefix the token is sent to: `/` for the whole origin. */
  path: string;
  /** `L402` or `LSAT` (the credential's scheme, as offered), or `Payment` for an MPP charge (used once). */
  scheme?: 'L402' | 'LSAT' | 'Payment';
  /** Base64 macaroon (L402/LSAT); for `Payment`, the base64url challenge echo. */
  macaroon: string;
  /** 64 hex digits, once paid. */
  preimage?: string;
  paymentHash: string;
  tokenId: string;
  invoice: string;
  amountSats: number;
  feeSats?: number;
  state: 'pending' | 'paid';
  /** Unix milliseconds. */
  createdAt: number;
  /** Unix milliseconds: the earliest `<service>_valid_until` caveat, if any. */
  expiresAt?: number;
  /** Service names from the `services` caveat. */
  services?: string[];
  /** The wallet (`kind`) that was asked to pay. */
  wallet?: string;
}

/**
 * Where tokens live. `withLock(origin, fn)` is the single flight: one payment per origin at a time,
 * across processes for the file store.
 */
export interface TokenStore {
  /** The paid, unexpired token with the longest path scope covering `path`. */
  find(origin: string, path: string, nowMs?: number): Promise<StoredToken | undefined>;
  get(origin: string, paymentHash: string): Promise<StoredToken | undefined>;
  /** Adds or replaces (same origin and payment hash). */
  put(token: StoredToken): Promise<void>;
  remove(origin: string, paymentHash: string): Promise<boolean>;
  list(origin?: string): Promise<StoredToken[]>;
  pending(origin?: string): Promise<StoredToken[]>;
  withLock<T>(origin: string, fn: () => Promise<T>): Promise<T>;
  /** Every token as a JSON array ({@link StoredToken}s). Holds preimages: keep it private. */
  export(): Promise<string>;
  /** Adds tokens from {@link export}'s JSON (text or parsed); returns how many. */
  import(json: string | unknown): Promise<number>;
}

const PREFIX = 'tokens/';
const HEX32 = /^[0-9a-f]{64}$/;

/** Throws unless `value` is a well-formed {@link StoredToken}; returns it normalised. */
export function check(value: unknown): StoredToken {
  const t = value as StoredToken;
  const bad = (why: string) => new ClientError('L402_CLIENT_STORE', `not a stored token: ${why}`);
  if (typeof t !== 'object' || t === null) throw bad('not an object');
  let origin: string;
  try {
    origin = new URL(t.origin).origin;
  } catch {
    throw bad('origin is not a URL');
  }
  if (origin === 'null' || origin !== t.origin)
    throw bad(`origin ${JSON.stringify(t.origin)} is not an origin`);
  if (typeof t.path !== 'string' || !t.path.startsWith('/')) throw bad('path must start with /');
  if (typeof t.macaroon !== 'string' || t.macaroon.length === 0) throw bad('no macaroon');
  if (typeof t.paymentHash !== 'string' || !HEX32.test(t.paymentHash))
    throw bad('paymentHash is not 32 hex bytes');
  if (t.preimage !== undefined && (typeof t.preimage !== 'string' || !HEX32.test(t.preimage)))
    throw bad('preimage is not 32 hex bytes');
  if (t.state !== 'pending' && t.state !== 'paid') throw bad('state is neither pending nor paid');
  if (t.state === 'paid' && t.preimage === undefined) throw bad('a paid token needs its preimage');
  if (!Number.isSafeInteger(t.amountSats) || t.amountSats < 0) throw bad('amountSats is not a whole number');
  if (typeof t.createdAt !== 'number') throw bad('no createdAt');
  if (t.expiresAt !== undefined && typeof t.expiresAt !== 'number') throw bad('expiresAt is not a number');
  return t;
}

/** The path scope and expiry a token's first-party caveats state (Aperture: `services`, `<s>_valid_until`). */
export function scopeOf(caveats: readonly string[]): {
  expiresAt?: number;
  services?: string[];
  path?: string;
} {
  let expiresAt: number | undefined;
  let services: string[] | undefined;
  let path: string | undefined;
  for (const text of caveats) {
    const c = Caveat.tryParse(text);
    if (c === undefined) continue;
    if (c.key === 'services') {
      try {
        services = Caveat.parseServices(c.value).map((s) => s.name);
      } catch {
        // A caveat we cannot read does not widen anything; the server decides.
      }
    } else if (c.key.endsWith('_valid_until') && /^\d+$/.test(c.value)) {
      const ms = Number(c.value) * 1000;
      expiresAt = expiresAt === undefined ? ms : Math.min(expiresAt, ms);
    } else if ((c.key === 'path' || c.key === 'path_prefix') && c.value.startsWith('/')) {
      // Attenuations only narrow: the last (most attenuated) scope wins.
      path = c.value;
    }
  }
  return {
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(services !== undefined ? { services } : {}),
    ...(path !== undefined ? { path } : {}),
  };
}

/** Whether a token scoped to `scope` is sent with a request for `path`. */
export function covers(scope: string, path: string): boolean {
  if (scope === '/' || scope === path) return true;
  const dir = scope.endsWith('/') ? scope : `${scope}/`;
  return path.startsWith(dir);
}

/**
 * A token store over any {@link Space}.
 *
 * @example
 * const store = TokenStore.over(Space.memory());
 */
export function over(space: Space.Space): TokenStore {
  const key = (origin: string) => PREFIX + encodeURIComponent(origin);
  /** The stored tokens, shared with the space's cache: copy any that leave this module. */
  const load = async (origin: string): Promise<readonly StoredToken[]> => {
    const doc = await space.read(key(origin));
    return Array.isArray(doc) ? (doc as StoredToken[]) : [];
  };
  const copy = (t: StoredToken): StoredToken =>
    t.services === undefined ? { ...t } : { ...t, services: [...t.services] };
  const origins = async () =>
    (await space.keys(PREFIX)).map((k) => decodeURIComponent(k.slice(PREFIX.length)));
  const mutate = (origin: string, fn: (tokens: readonly StoredToken[]) => StoredToken[]) =>
    space.lock(`write:${key(origin)}`, async () => {
      const next = fn(await load(origin));
      await space.write(key(origin), next.length === 0 ? undefined : next);
    });
  const store: TokenStore = {
    async find(origin, path, nowMs = Date.now()) {
      let best: StoredToken | undefined;
      for (const t of await load(origin)) {
        if (t.state !== 'paid' || (t.expiresAt !== undefined && t.expiresAt <= nowMs)) continue;
        if (!covers(t.path, path)) continue;
        if (
          best === undefined ||
          t.path.length > best.path.length ||
          (t.path.length === best.path.length && t.createdAt > best.createdAt)
        )
          best = t;
      }
      return best && copy(best);
    },
    async get(origin, paymentHash) {
      const t = (await load(origin)).find((x) => x.paymentHash === paymentHash);
      return t && copy(t);
    },
    async put(token) {
      const t = check(token);
      const now = Date.now();
      // Tokens past their expiry go as new ones come: nobody can use them any more.
      await mutate(t.origin, (tokens) => [
        ...tokens.filter(
          (x) =>
            x.paymentHash !== t.paymentHash &&
            !(x.state === 'paid' && x.expiresAt !== undefined && x.expiresAt <= now),
        ),
        t,
      ]);
    },
    async remove(origin, paymentHash) {
      let removed = false;
      await mutate(origin, (tokens) =>
        tokens.filter((t) => {
          const hit = t.paymentHash === paymentHash;
          removed ||= hit;
          return !hit;
        }),
      );
      return removed;
    },
    async list(origin) {
      const all: StoredToken[] = [];
      for (const o of origin === undefined ? await origins() : [origin])
        for (const t of await load(o)) all.push(copy(t));
      return all;
    },
    async pending(origin) {
      return (await store.list(origin)).filter((t) => t.state === 'pending');
    },
    withLock: (origin, fn) => space.lock(`flight:${key(origin)}`, fn),
    async export() {
      return JSON.stringify(await store.list(), null, 2);
    },
    async import(json) {
      const value = typeof json === 'string' ? (JSON.parse(json) as unknown) : json;
      const list = Array.isArray(value) ? value : [value];
      const tokens = list.map(check);
      for (const t of tokens) await store.put(t);
      return tokens.length;
    },
  };
  return store;
}

/**
 * Tokens in memory, gone with the process.
 *
 * @example
 * const fetch402 = createFetch({ wallet, store: TokenStore.memory() });
 */
export function memory(): TokenStore {
  return over(Space.memory());
}

/**
 * Tokens in `localStorage` (browsers): shared by the tabs of one origin, which share one payment where
 * the Web Locks API exists.
 *
 * @example
 * const fetch402 = createFetch({ wallet: Wallet.webln(window.webln), store: TokenStore.localStorage() });
 */
export function localStorage(storage?: Space.WebStorage): TokenStore {
  return over(Space.localStorage(storage));
}
