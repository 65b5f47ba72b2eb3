/**
 * `l402/node`: L402 for a plain `node:http` server. `protect(route, handler)` wraps a request listener:
 * an unpaid request gets the gateway's 402 challenge, a paid one reaches `handler` with the verified
 * token in `req.l402`.
 *
 * @example
 * import { createServer } from 'node:http';
 * import { l402 } from 'l402/node';
 * const paywall = l402({ backend: 'devnet', masterKey: process.env.L402_MASTER_KEY });
 * createServer(
 *   paywall.protect({ service: 'api', price: 21 }, (req, res) => res.end(`paid by ${req.l402?.tokenId}`)),
 * ).listen(3000);
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestView } from '../Authority.js';
import * as Middleware from '../middleware.js';

export type { L402Info, Options, Route } from '../middleware.js';

/**
 * A request that went through `protect`: `l402` is the verified token (`undefined` when it cost nothing).
 *
 * @example
 * const handler = (req: L402Request, res: ServerResponse) => res.end(req.l402?.tokenId);
 */
export type L402Request<Req extends IncomingMessage = IncomingMessage> = Req & {
  l402: Middleware.L402Info | undefined;
};

/**
 * The `l402/node` middleware: `protect` wraps a request listener.
 *
 * @example
 * createServer(paywall.protect({ service: 'api', price: 21 }, handler));
 */
export interface NodePaywall extends Omit<Middleware.Paywall, 'protect'> {
  /** A request listener that lets only paid requests (for `route`) reach `handler`. */
  protect<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
    route: Middleware.Route,
    handler: (req: L402Request<Req>, res: Res) => unknown,
  ): (req: Req, res: Res) => void;
}

/**
 * The request view of a Node request: its method, request target, headers and peer address.
 *
 * @example
 * const outcome = await guard(view(req));
 */
export const view = (req: IncomingMessage, url = req.url ?? '/'): RequestView => ({
  method: req.method ?? 'GET',
  url,
  headers: req.headers,
  // Read only when asked (a price function, say): the peer address is a call into the socket.
  get remoteAddress() {
    return req.socket.remoteAddress;
  },
});

/**
 * Writes a refusal (402 challenge, 401, 503, preflight) as the gateway does: every header line
 * (two `WWW-Authenticate`), a content length, the plain-text body.
 *
 * @example
 * if (outcome.kind === 'respond') return send(res, outcome);
 */
export function send(res: ServerResponse, reply: Middleware.Reply): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = reply.status;
  for (const [name, value] of Object.entries(Middleware.grouped(reply.headers))) res.setHeader(name, value);
  res.setHeader('content-length', Buffer.byteLength(reply.body));
  res.end(reply.body);
}

/**
 * An L402 middleware for `node:http`: options checked now (throws `Errors.MiddlewareError`), the
 * backend connected on the first paid request (or `await paywall.ready()`).
 *
 * @example
 * const paywall = l402({ backend: process.env.L402_WALLET!, masterKey: process.env.L402_MASTER_KEY });
 * const listener = paywall.protect({ service: 'api', price: 21 }, (req, res) => res.end('ok'));
 */
export function l402(options: Middleware.Options): NodePaywall {
  const core = Middleware.create(options);
  return {
    ...core,
    protect(route, handler) {
      const guard = core.protect(route);
      return (req, res) => {
        Middleware.settle(
          guard(view(req)),
          (outcome) => {
            if (outcome.kind === 'respond') return send(res, outcome);
            for (const [name, value] of outcome.headers) res.setHeader(name, value);
            const request = req as L402Request<typeof req>;
            request.l402 = outcome.l402;
            return handler(request, res);
          },
          (error) => {
            // What Express does with a failing handler: report it, answer 500 if nothing was sent yet.
            if (options.onError !== undefined) options.onError(error, 'handler');
            else console.error(error);
            if (res.headersSent) res.destroy();
            else {
              res.statusCode = 500;
              res.setHeader('content-type', 'text/plain; charset=utf-8');
              res.end('internal error\n');
            }
          },
        );
      };
    },
  };
}
