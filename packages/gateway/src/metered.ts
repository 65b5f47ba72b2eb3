/**
 * How each service's requests are priced and, for metered services, drawn down: one Authority
 * {@link Authority.Route} per service (static price, or a pricer from `pricing.ts`), and a {@link Meter}
 * in front of the Authority for the two metered modes.
 *
 * - `prepaid.credit: N` (l402): a token costs N sats and is a balance in the gateway's store. Each
 *   request the token authorizes debits its own price (`price`, or the pricer's answer) with one atomic
 *   `Store.debit`, before the request is forwarded; exact under any concurrency, on any number of
 *   instances sharing PostgreSQL, and kept across restarts. A balance that cannot pay for the request
 *   gets a fresh 402 for a new credit. The balance left is sent back in `L402-Balance` (sats).
 * - `dynamicprice.metered: true` (Aperture): the pricer keeps the balances. The gateway tells it of
 *   every challenge before the 402 leaves (`ChallengeMinted`; if that fails the client gets `500
 *   challenge failure` rather than an invoice nobody would honour), asks it before forwarding each
 *   authorized request (`AuthorizeRequest`; refused: a fresh 402 at the price it names, or GetPrice's),
 *   strips `Accept-Encoding` so the response is plaintext, keeps the last `usagetailbytes` of the
 *   response and reports it when the response ends or is cut (`ReportUsage`, retried 4 times with
 *   backoff, off the request path).
 *
 * @example
 * const pricing = await Metered.create(config.services, { store, log });
 * const router = Router.create(config.services, pricing.routes);
 * const metered = await pricing.meters.get('api')!.authorize(authority, view, route);
 * await pricing.close();
 */
import { Challenge, Identifier, Invoice, Macaroon } from 'l402';
import type * as Authority from 'l402/server';
import type { Service } from './Config.js';
import type { Logger } from './Log.js';
import * as Pricers from './pricing.js';
import { failure, isGrpc, type Request, type Response } from './proxy.js';
import { routeOf } from './router.js';

/** What a {@link Meter} decided, and for an Aperture-metered pass, what to report once it is served. */
export interface Metered {
  readonly decision: Authority.Decision;
  readonly usage?: UsageObserver;
}

/** Watches the response of an admitted metered request and reports its usage to the pricer once. */
export interface UsageObserver {
  /** Before forwarding: strips `Accept-Encoding` from the request, captures the response tail. */
  attach(request: Request, response: Response): void;
  /** The request was admitted but no body will be observed (an upgrade): give the reservation back. */
  release(status: number): void;
}

/** Decides a request for a metered service, in place of `authority.authorize`. */
export interface Meter {
  authorize(
    authority: Authority.Authority,
    request: Authority.RequestView,
    route: Authority.Route,
  ): Promise<Metered>;
}

/** The routes and meters of every service, and the pricer connections to close. */
export interface Pricing {
  /** Routes for services whose price is not the plain static one (pricer or prepaid credit). */
  readonly routes: ReadonlyMap<string, Authority.Route>;
  /** For services with a gRPC pricer: the lazy body-prefix reader to put on the request's view. */
  view(service: string, request: Request): { readonly bodyPrefix: () => Promise<Uint8Array> } | undefined;
  readonly meters: ReadonlyMap<string, Meter>;
  close(): Promise<void>;
}

export interface Options {
  readonly store: Authority.Store;
  readonly log: Logger;
}

const CREDENTIAL_HEADERS = new Set(['authorization', 'macaroon', 'grpc-metadata-macaroon', 'token']);

/** The request with its credentials removed: what the Authority mints a fresh challenge for. */
function withoutCredentials(request: Authority.RequestView): Authority.RequestView {
  const headers: Record<string, string | readonly string[] | undefined> = {};
  for (const [name, value] of Object.entries(request.headers as Record<string, string | readonly string[]>)) {
    if (!CREDENTIAL_HEADERS.has(name.toLowerCase())) headers[name] = value;
  }
  return { ...request, headers };
}

const grpcOf = (request: Authority.RequestView) =>
  isGrpc(request.headers as Readonly<Record<string, string | string[] | undefined>>);

/** A gateway answer in the Authority's decision shape. */
function respond(
  request: Authority.RequestView,
  status: number,
  message: string,
  reason: string,
  headers: Record<string, string> = {},
): Authority.Decision {
  return { kind: 'respond', ...failure(status, message, grpcOf(request), headers), reason };
}

/** A fresh 402 (for a new credit or bundle) in place of a pass whose balance ran out. */
async function freshChallenge(
  authority: Authority.Authority,
  request: Authority.RequestView,
  route: Authority.Route,
  price: number,
  reason: string,
): Promise<Authority.Decision> {
  const decision = await authority.authorize(withoutCredentials(request), { ...route, price });
  return decision.kind === 'respond' && decision.reason === 'challenge' ? { ...decision, reason } : decision;
}

const hexBytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));

function prepaid(
  service: Service,
  credit: number,
  pricer: Pricers.Pricer | undefined,
  options: Options,
): Meter {
  const cost = (request: Authority.RequestView) =>
    pricer === undefined ? Promise.resolve(service.price) : pricer.price(request);
  return {
    async authorize(authority, request, route) {
      const decision = await authority.authorize(request, route);
      if (decision.kind !== 'pass' || decision.token === undefined) return { decision };
      let price: number;
      try {
        price = await cost(request);
      } catch (error) {
        options.log.warn('pricer failed', { service: service.name, error: (error as Error).message });
        return { decision: respond(request, 500, 'failure fetching resource price', 'price-error') };
      }
      let debit: Authority.Debit;
      try {
        debit = await options.store.debit(hexBytes(decision.token.tokenId), BigInt(price) * 1000n);
      } catch (error) {
        options.log.warn('debit failed', { service: service.name, error: (error as Error).message });
        const retry = { 'retry-after': '5' };
        return {
          decision: respond(
            request,
            503,
            'the token store is unavailable, retry later',
            'unavailable',
            retry,
          ),
        };
      }
      if (!debit.ok) {
        return { decision: await freshChallenge(authority, request, route, credit, 'balance-exhausted') };
      }
      const balance: Authority.Header = ['l402-balance', String(debit.remainingMsat / 1000n)];
      return { decision: { ...decision, headers: [...decision.headers, balance] } };
    },
  };
}

/** The token id and price (sats) of the L402 offer in a 402's `WWW-Authenticate` headers. */
function minted(decision: Authority.Decision): { tokenId: string; price: number } {
  const lines = decision.headers.filter(([name]) => name === 'www-authenticate').map(([, value]) => value);
  const offer = Challenge.l402(Challenge.parse(lines));
  if (offer === undefined) throw new Error('the challenge carries no L402 offer');
  const identifier = Identifier.decode(Macaroon.decode(offer.macaroon).identifier);
  const amount = Invoice.decode(offer.invoice).amountMsat ?? 0n;
  return { tokenId: Buffer.from(identifier.tokenId).toString('hex'), price: Number(amount / 1000n) };
}

const REPORT_ATTEMPTS = 4;
const REPORT_BACKOFF_MS = 500;

/** The last `max` bytes written. */
class Tail {
  private buffer = Buffer.alloc(0);
  constructor(private readonly max: number) {}
  push(chunk: unknown, encoding?: unknown): void {
    if (this.max === 0 || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.from(chunk as Uint8Array);
    const joined = this.buffer.length === 0 ? bytes : Buffer.concat([this.buffer, bytes]);
    this.buffer = joined.length > this.max ? Buffer.from(joined.subarray(joined.length - this.max)) : joined;
  }
  bytes(): Uint8Array {
    return this.buffer;
  }
}

function aperture(
  service: Service,
  pricer: Pricers.Pricer,
  calls: Pricers.MeteredCalls,
  options: Options,
): Meter {
  const tailBytes = service.dynamicprice.enabled ? service.dynamicprice.usagetailbytes : 16_384;
  const { log } = options;

  /** ChallengeMinted before the 402 leaves; a pricer that cannot book it gets no invoice sold. */
  async function booked(
    request: Authority.RequestView,
    decision: Authority.Decision,
  ): Promise<Authority.Decision> {
    if (
      decision.kind !== 'respond' ||
      (decision.reason !== 'challenge' && decision.reason !== 'balance-exhausted')
    )
      return decision;
    try {
      const { tokenId, price } = minted(decision);
      await calls.challengeMinted(request, tokenId, price, service.name);
      return decision;
    } catch (error) {
      log.warn('pricer failed ChallengeMinted', { service: service.name, error: (error as Error).message });
      return respond(request, 500, 'challenge failure', 'pricer-error');
    }
  }

  function report(usage: Pricers.Usage): void {
    void (async () => {
      let backoff = REPORT_BACKOFF_MS;
      for (let attempt = 1; attempt <= REPORT_ATTEMPTS; attempt++) {
        try {
          await calls.reportUsage(usage);
          return;
        } catch (error) {
          log.warn('usage report failed', {
            service: service.name,
            attempt,
            error: (error as Error).message,
          });
        }
        if (attempt < REPORT_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, backoff).unref());
          backoff *= 2;
        }
      }
      log.error('giving up reporting usage: this debit is lost', { service: service.name });
    })();
  }

  function observer(tokenId: string, path: string, reservedEstimate: string): UsageObserver {
    const base = { tokenId, path, serviceName: service.name, reservedEstimate };
    return {
      attach(request, response) {
        // Plaintext from the backend, so the tail is something the pricer can read (as Aperture).
        delete request.headers['accept-encoding'];
        const raw = request.rawHeaders;
        for (let i = raw.length - 2; i >= 0; i -= 2) {
          if (raw[i]?.toLowerCase() === 'accept-encoding') raw.splice(i, 2);
        }
        const tail = new Tail(tailBytes);
        const sink = response as unknown as {
          write: (...args: unknown[]) => boolean;
          end: (...args: unknown[]) => unknown;
        };
        const write = sink.write;
        const end = sink.end;
        sink.write = function (this: unknown, ...args: unknown[]) {
          tail.push(args[0], args[1]);
          return write.apply(this, args);
        };
        sink.end = function (this: unknown, ...args: unknown[]) {
          tail.push(args[0], args[1]);
          return end.apply(this, args);
        };
        let reported = false;
        const done = (complete: boolean) => {
          if (reported) return;
          reported = true;
          const header = (name: string) => {
            const value = response.getHeader(name);
            return value === undefined ? '' : String(value);
          };
          report({
            ...base,
            httpStatus: response.statusCode,
            contentType: header('content-type'),
            contentEncoding: header('content-encoding'),
            complete,
            responseTail: tail.bytes(),
          });
        };
        response.once('finish', () => done(true));
        response.once('close', () => done(false));
      },
      release(status) {
        if (reservedEstimate === '0') return;
        report({
          ...base,
          httpStatus: status,
          contentType: '',
          contentEncoding: '',
          complete: false,
          responseTail: new Uint8Array(0),
        });
      },
    };
  }

  return {
    async authorize(authority, request, route) {
      const decision = await authority.authorize(request, route);
      if (decision.kind === 'respond') return { decision: await booked(request, decision) };
      if (decision.token === undefined) return { decision };
      const tokenId = decision.token.tokenId;
      let answer: Pricers.Authorization;
      try {
        answer = await calls.authorize(request, tokenId, service.name);
      } catch (error) {
        log.warn('pricer failed AuthorizeRequest', {
          service: service.name,
          error: (error as Error).message,
        });
        return { decision: respond(request, 500, 'failure authorizing metered request', 'pricer-error') };
      }
      if (!answer.allowed) {
        let price = answer.priceSats;
        if (price === 0) {
          try {
            price = await pricer.price(request);
          } catch (error) {
            log.warn('pricer failed', { service: service.name, error: (error as Error).message });
            return { decision: respond(request, 500, 'failure fetching resource price', 'price-error') };
          }
        }
        const fresh = await freshChallenge(authority, request, route, price, 'balance-exhausted');
        return { decision: await booked(request, fresh) };
      }
      const path = request.url.split('?')[0] ?? request.url;
      return { decision, usage: observer(tokenId, path, answer.reservedEstimate) };
    },
  };
}

/**
 * Pricers, routes and meters for `services` (gRPC channels connect on their first call).
 *
 * @example
 * const pricing = await Metered.create(config.services, { store, log });
 * pricing.routes.get('api')?.pathBound; // true for a dynamicprice service
 */
export async function create(services: readonly Service[], options: Options): Promise<Pricing> {
  const routes = new Map<string, Authority.Route>();
  const meters = new Map<string, Meter>();
  const pricers: Pricers.Pricer[] = [];
  /** gRPC pricers get the body's head (Aperture's shape); the timeout bounds waiting for it. */
  const bodyTimeouts = new Map<string, number>();
  const close = async () => {
    await Promise.all(pricers.map((p) => p.close()));
  };
  for (const service of services) {
    const dynamic = service.dynamicprice;
    let pricer: Pricers.Pricer | undefined;
    try {
      pricer = dynamic.enabled ? await Pricers.connect(dynamic, service.name) : undefined;
    } catch (error) {
      await close();
      throw error;
    }
    if (pricer !== undefined) pricers.push(pricer);
    if (dynamic.enabled && dynamic.grpcaddress !== undefined) bodyTimeouts.set(service.name, dynamic.timeout);
    const base = routeOf(service);
    if (service.prepaid !== undefined) {
      // The credit is a fixed price, so the token spans the service (each request is still priced by the pricer).
      routes.set(service.name, { ...base, price: service.prepaid.credit });
      meters.set(service.name, prepaid(service, service.prepaid.credit, pricer, options));
    } else if (pricer !== undefined) {
      routes.set(service.name, { ...base, price: (request) => pricer.price(request), pathBound: true });
      if (pricer.metered !== undefined)
        meters.set(service.name, aperture(service, pricer, pricer.metered, options));
    }
  }
  return {
    routes,
    meters,
    view(service, request) {
      const timeout = bodyTimeouts.get(service);
      if (timeout === undefined) return undefined;
      return { bodyPrefix: Pricers.bodyPrefix(request, timeout) };
    },
    close,
  };
}
