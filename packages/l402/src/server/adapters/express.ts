/**
 * `l402/express`: L402 for Express 5. `protect(route)` is a middleware: an unpaid request gets the
 * gateway's 402 challenge, a paid one goes on with the verified token in `req.l402` (typed on every
 * `express.Request` once this module is imported).
 *
 * @example
 * import express from 'express';
 * import { l402 } from 'l402/express';
 * const paywall = l402({ backend: 'devnet', masterKey: process.env.L402_MASTER_KEY });
 * const app = express();
 * app.get('/forecast', paywall.protect({ service: 'weather', price: 21 }), (req, res) => {
 *   res.json({ sunny: true, token: req.l402?.tokenId });
 * });
 */
import type { RequestHandler } from 'express';
import * as Middleware from '../middleware.js';
import { send, view } from './node.js';

export type { L402Info, Options, Route } from '../middleware.js';

declare global {
  namespace Express {
    interface Request {
      /** The verified L402 token, set by `protect` (`undefined` on other routes, or when it cost nothing). */
      l402?: Middleware.L402Info | undefined;
    }
  }
}

/**
 * The `l402/express` middleware: `protect` is an Express middleware.
 *
 * @example
 * app.get('/x', paywall.protect({ service: 'api', price: 21 }), handler);
 */
export interface ExpressPaywall extends Omit<Middleware.Paywall, 'protect'> {
  /** A middleware that lets only paid requests (for `route`) go on to the next handler. */
  protect(route: Middleware.Route): RequestHandler;
}

/**
 * An L402 middleware for Express 5: options checked now (throws `Errors.MiddlewareError`), the backend
 * connected on the first paid request (or `await paywall.ready()`).
 *
 * @example
 * const paywall = l402({ backend: process.env.L402_WALLET!, masterKey: process.env.L402_MASTER_KEY });
 * router.post('/notes', paywall.protect({ service: 'notes', price: 5, capabilities: ['write'], requires: { capabilities: ['write'] } }), save);
 */
export function l402(options: Middleware.Options): ExpressPaywall {
  const core = Middleware.create(options);
  return {
    ...core,
    protect(route) {
      const guard = core.protect(route);
      // `originalUrl`: inside a mounted router `url` has lost the mount path, and prices and path-bound
      // tokens must see the path the client asked for.
      type Args = Parameters<RequestHandler>;
      const run = (req: Args[0], res: Args[1], next: Args[2], outcome: Middleware.Outcome) => {
        if (outcome.kind === 'respond') return send(res, outcome);
        for (const [name, value] of outcome.headers) res.setHeader(name, value);
        req.l402 = outcome.l402;
        next();
      };
      return (req, res, next) => {
        const decided = guard(view(req, req.originalUrl));
        if (decided instanceof Promise) {
          decided.then((outcome) => run(req, res, next, outcome)).catch(next);
          return;
        }
        try {
          run(req, res, next, decided);
        } catch (error) {
          next(error);
        }
      };
    },
  };
}
