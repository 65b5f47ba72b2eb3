/**
 * `l402/hono`: L402 for Hono 4. `protect(route)` is a middleware: an unpaid request gets the gateway's
 * 402 challenge, a paid one goes on with the verified token in `c.get('l402')`, typed through the
 * middleware's `L402Env`. It uses only Fetch API objects and loads no Node module until a wallet URI
 * or `'devnet'` must be connected, so with a `Backend` it also runs where Hono runs without Node.
 *
 * Fetch `Headers` hold one value per name, so runtimes send the two challenges as one
 * `WWW-Authenticate` line, `LSAT macaroon="…", invoice="…", L402 macaroon="…", invoice="…"`:
 * the same field value as the gateway's two lines (RFC 9110 §5.3), read alike by `Challenge.parse`.
 *
 * @example
 * import { Hono } from 'hono';
 * import { l402 } from 'l402/hono';
 * const paywall = l402({ backend: 'devnet', masterKey: process.env.L402_MASTER_KEY });
 * const app = new Hono();
 * app.get('/forecast', paywall.protect({ service: 'weather', price: 21 }), (c) =>
 *   c.json({ sunny: true, token: c.get('l402')?.tokenId }),
 * );
 */
import type { Context, Handler, MiddlewareHandler, Next } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { RequestView } from '../Authority.js';
import * as Middleware from '../middleware.js';

export type { L402Info, Options, Route } from '../middleware.js';

/**
 * The context variables `protect` sets: `c.get('l402')` (`undefined` when the request cost nothing).
 *
 * @example
 * const app = new Hono<L402Env>();
 * app.use('/api/*', paywall.protect({ service: 'api', price: 21 }));
 * app.get('/api/x', (c) => c.text(c.get('l402')?.tokenId ?? 'free'));
 */
export interface L402Env {
  Variables: { l402: Middleware.L402Info | undefined };
}

/**
 * The `l402/hono` middleware: `protect` is a Hono middleware that sets `c.get('l402')`.
 *
 * @example
 * app.get('/x', paywall.protect({ service: 'api', price: 21 }), (c) => c.json(c.get('l402')));
 */
export interface HonoPaywall extends Omit<Middleware.Paywall, 'protect'> {
  /** A middleware that lets only paid requests (for `route`) go on to the next handler. */
  protect(route: Middleware.Route): MiddlewareHandler<L402Env>;
  /**
   * `handler`, run only for paid requests (for `route`): one handler where the middleware form makes
   * two, so Hono calls it directly instead of composing a middleware chain (a promise or two less per
   * request; see `npm run bench -- middleware`).
   *
   * @example
   * app.get('/forecast', paywall.protect({ service: 'weather', price: 21 }, (c) => c.json({ token: c.get('l402')?.tokenId })));
   */
  protect(route: Middleware.Route, handler: Handler<L402Env>): Handler<L402Env>;
}

/** Path and query of an absolute URL (`https://host/a?b` → `/a?b`), as the request line had them. */
function target(url: string): string {
  const path = url.indexOf('/', url.indexOf('//') + 2);
  return path < 0 ? '/' : url.slice(path);
}

/** What @hono/node-server puts in `c.env.incoming`: the Node request (HTTP/1.1 or HTTP/2). */
interface Incoming {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly socket?: { readonly remoteAddress?: string };
}

function incomingOf(c: Context): Incoming | undefined {
  const incoming = (c.env as { incoming?: Partial<Incoming> } | undefined)?.incoming;
  return typeof incoming?.url === 'string' &&
    typeof incoming.method === 'string' &&
    typeof incoming.headers === 'object'
    ? (incoming as Incoming)
    : undefined;
}

/**
 * The request view of a Hono context. On @hono/node-server it reads the Node request the Fetch one
 * was made from (its header record and request target, as the `l402/node` view does), which spares
 * building the URL and searching the Fetch headers; elsewhere the Fetch request. So on Node, headers
 * an earlier middleware sets on `c.req.raw` are not seen here (the credential is what the client
 * sent). The peer address only when asked (and only on Node: other runtimes have no peer here).
 */
class HonoView implements RequestView {
  readonly method: string;
  readonly url: string;
  readonly headers: Incoming['headers'] | Headers;
  private readonly incoming: Incoming | undefined;
  constructor(c: Context) {
    const incoming = incomingOf(c);
    this.incoming = incoming;
    if (incoming !== undefined) {
      this.method = incoming.method;
      this.url = incoming.url;
      this.headers = incoming.headers;
    } else {
      this.method = c.req.method;
      this.url = target(c.req.url);
      this.headers = c.req.raw.headers;
    }
  }
  get remoteAddress(): string | undefined {
    return this.incoming?.socket?.remoteAddress;
  }
}

/** Writes a refusal through the context, so headers other middleware prepared (hono/cors, …) are kept. */
const refuse = (c: Context, reply: Middleware.Reply): Response =>
  c.body(reply.body, reply.status as ContentfulStatusCode, Middleware.grouped(reply.headers));

/** A passed request: the outcome's headers on the answer-to-be, the token in `c.get('l402')`. */
function admit(c: Context<L402Env>, outcome: Extract<Middleware.Outcome, { kind: 'pass' }>): void {
  for (const [name, value] of outcome.headers) c.header(name, value);
  c.set('l402', outcome.l402);
}

/**
 * An L402 middleware for Hono 4: options checked now (throws `Errors.MiddlewareError`), the backend
 * connected on the first paid request (or `await paywall.ready()`).
 *
 * @example
 * const paywall = l402({ backend, masterKey: env.L402_MASTER_KEY });
 * app.post('/notes', paywall.protect({ service: 'notes', price: 5 }), (c) => c.text(c.get('l402')!.tokenId));
 */
export function l402(options: Middleware.Options): HonoPaywall {
  const core = Middleware.create(options);
  return {
    ...core,
    protect: ((route: Middleware.Route, handler?: Handler<L402Env>) => {
      const guard = core.protect(route);
      if (handler !== undefined) {
        // Made once per route: the hot path (a plain outcome) calls the handler with no closure or promise.
        const run = (c: Context<L402Env>, next: Next, outcome: Middleware.Outcome) => {
          if (outcome.kind === 'respond') return refuse(c, outcome);
          admit(c, outcome);
          return handler(c, next);
        };
        return ((c, next) => {
          const decided = guard(new HonoView(c));
          return decided instanceof Promise
            ? decided.then((outcome) => run(c, next, outcome))
            : run(c, next, decided);
        }) satisfies Handler<L402Env>;
      }
      return (async (c, next) => {
        const decided = guard(new HonoView(c));
        const outcome = decided instanceof Promise ? await decided : decided;
        if (outcome.kind === 'respond') return refuse(c, outcome);
        admit(c, outcome);
        await next();
      }) satisfies MiddlewareHandler<L402Env>;
    }) as HonoPaywall['protect'],
  };
}
