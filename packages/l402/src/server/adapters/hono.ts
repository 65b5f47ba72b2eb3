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
import type { Context, MiddlewareHandler } from 'hono';
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
}

/** Path and query of an absolute URL (`https://host/a?b` → `/a?b`), as the request line had them. */
function target(url: string): string {
  const path = url.indexOf('/', url.indexOf('//') + 2);
  return path < 0 ? '/' : url.slice(path);
}

/** The request view of a Hono context; the peer address only when asked. */
class HonoView implements RequestView {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
  constructor(private readonly c: Context) {
    this.method = c.req.method;
    this.url = target(c.req.url);
    this.headers = c.req.raw.headers;
  }
  /** On @hono/node-server the Node request is in the environment; other runtimes have no peer here. */
  get remoteAddress(): string | undefined {
    return (this.c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming
      ?.socket?.remoteAddress;
  }
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
    protect(route) {
      const guard = core.protect(route);
      return async (c, next) => {
        const decided = guard(new HonoView(c));
        const outcome = decided instanceof Promise ? await decided : decided;
        if (outcome.kind === 'respond') {
          // Through the context, so headers other middleware prepared (hono/cors, …) are kept.
          return c.body(
            outcome.body,
            outcome.status as ContentfulStatusCode,
            Middleware.grouped(outcome.headers),
          );
        }
        for (const [name, value] of outcome.headers) c.header(name, value);
        c.set('l402', outcome.l402);
        await next();
      };
    },
  };
}
