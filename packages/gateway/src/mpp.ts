/**
 * The Payment HTTP authentication scheme (MPP) in the gateway: for services whose `authscheme` is `mpp`
 * or `l402+mpp` (with `authenticator.enablempp`), the request's fate is decided here instead of by the
 * L402 Authority alone.
 *
 * - `Authorization: Payment …`: the MPP server judges it (charge, or session open/bearer/topUp/close);
 *   a refusal is a 402 with fresh challenges (L402 first for `l402+mpp`) and a problem+json body.
 * - no Payment credential, `mpp`: a 402 with Payment challenges only (an L402 token does not count).
 * - no Payment credential, `l402+mpp`: the Authority decides; its 402 gets the Payment challenges
 *   appended, as Aperture's merged challenge, and the problem+json body Aperture sends with them.
 *
 * The HMAC secret lives in the store, so every instance on one PostgreSQL database verifies the others'
 * challenges, and consumed payments are refused on all of them. A job prunes consumption records an
 * hour after their challenge expired (a challenge past its expiry is refused before the store is
 * asked) and closes sessions idle for `sessionidletimeout` seconds, refunding what is left.
 *
 * @example
 * const payments = await Mpp.create({ config, store, backend, authority, now, log });
 * const decision = await payments.authorize(view, target);
 */
import type { Backend } from 'l402/lightning';
import * as MppServer from 'l402/mpp/server';
import type { Authority, Decision, Header, RequestView, Store } from 'l402/server';
import type { Config } from './Config.js';
import type { Logger } from './Log.js';
import type { Target } from './router.js';

/** What a service paid through MPP is decided by (see the module comment). */
export interface Payments {
  authorize(request: RequestView, target: Target): Promise<Decision>;
  /** Stops the pruning job. */
  close(): Promise<void>;
}

export interface Options {
  readonly config: Config;
  readonly store: Store;
  readonly backend: Backend;
  /** The L402 Authority, for `l402+mpp` services. */
  readonly authority: Authority;
  readonly now: () => number;
  readonly log: Logger;
  /** How often consumed payments are pruned and idle sessions closed; every minute by default. */
  readonly sweepIntervalMs?: number | undefined;
}

const RETENTION_SECONDS = 3600;
const CREDENTIAL_HEADERS = new Set(['authorization', 'grpc-metadata-macaroon', 'macaroon', 'token']);

/** The request without any credential: what the Authority sees to mint a fresh L402 challenge. */
function bare(request: RequestView): RequestView {
  const headers: Record<string, string | readonly string[] | undefined> = {};
  const source = request.headers as Record<string, string | readonly string[] | undefined>;
  for (const name of Object.keys(source))
    if (!CREDENTIAL_HEADERS.has(name.toLowerCase())) headers[name] = source[name];
  return { ...request, headers };
}

const challenges = (decision: Decision): Header[] =>
  decision.kind === 'respond' ? decision.headers.filter(([name]) => name === 'www-authenticate') : [];

/**
 * The MPP decision-maker for a gateway, or undefined when `authenticator.enablempp` is off.
 *
 * @example
 * const payments = await Mpp.create(options); // undefined without enablempp
 */
export async function create(options: Options): Promise<Payments | undefined> {
  const { config, store, backend, authority, now, log } = options;
  const a = config.authenticator;
  if (!a.enablempp) return undefined;
  const network = a.network ?? (await backend.info()).network;
  const server = await MppServer.create({
    backend,
    store,
    realm: a.mpprealm,
    network,
    now,
    ...(a.enablesessions
      ? {
          sessions: {
            depositMultiplier: a.sessiondepositmultiplier,
            ...(a.sessionidletimeout > 0 ? { idleTimeoutSeconds: a.sessionidletimeout } : {}),
          },
        }
      : {}),
    onError: (error, context) =>
      log.warn('mpp', {
        context,
        code: (error as { code?: unknown }).code,
        error: error instanceof Error ? error.message : String(error),
      }),
  });

  // One pass at a time: pruning consumed payments, and closing (and refunding) idle sessions.
  let running: Promise<void> | undefined;
  const sweep = () => {
    running ??= (async () => {
      try {
        await store.removeExpiredConsumptions(Math.floor(now() / 1000) - RETENTION_SECONDS);
        const closed = await server.closeIdle();
        if (closed > 0) log.info('closed idle MPP sessions', { count: closed });
      } catch (error) {
        log.warn('MPP sweep failed', { error: error instanceof Error ? error.message : String(error) });
      } finally {
        running = undefined;
      }
    })();
  };
  const timer = setInterval(sweep, options.sweepIntervalMs ?? 60_000);
  timer.unref();

  return {
    async authorize(request, target) {
      const { route, service } = target;
      const both = service.authscheme === 'l402+mpp';
      // Answering 401 instead of minting (authskipinvoicecreationpaths) is the Authority's call.
      if (route.skipInvoice) return authority.authorize(request, route);
      let price: number;
      try {
        price = typeof route.price === 'function' ? await route.price(request) : route.price;
      } catch {
        return authority.authorize(request, route);
      }
      const mppRoute = {
        service: route.service,
        price,
        ...(route.memo === undefined ? {} : { memo: route.memo }),
      };
      if (price === 0) return { kind: 'pass', token: undefined, headers: [] };

      const judged = await server.authorize(request, mppRoute);
      if (judged !== undefined) {
        if (!both || judged.kind !== 'respond' || judged.status !== 402) return judged;
        const l402 = await authority.authorize(bare(request), route);
        return { ...judged, headers: [...challenges(l402), ...judged.headers] };
      }
      if (!both) return server.challenge(request, mppRoute);
      const decision = await authority.authorize(request, route);
      // gRPC clients read only L402 (and a 503 or a pass needs nothing added).
      if (decision.kind !== 'respond' || decision.reason !== 'challenge' || decision.status !== 402)
        return decision;
      const offered = await server.challenge(
        request,
        mppRoute,
        undefined,
        challenges(decision).map(([, v]) => v),
      );
      return offered.kind === 'respond' && offered.status === 402 ? offered : decision;
    },
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
