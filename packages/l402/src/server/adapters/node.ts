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
export const view = (req: IncomingMessage, url = req.url ?? '/'): RequestView => new NodeView(req, url);

/**
 * A class, not an object literal with a getter (which costs a closure and a map per request): the peer
 * address, a call into the socket, is read only when asked (by a price function, say).
 */
class NodeView implements RequestView {
  readonly method: string;
  readonly headers: IncomingMessage['headers'];
  constructor(
    private readonly req: IncomingMessage,
    readonly url: string,
  ) {
    this.method = req.method ?? 'GET';
    this.headers = req.headers;
  }
  get remoteAddress(): string | undefined {
    return this.req.socket.remoteAddress;
  }
}

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
      // Made once per route, not per request: the hot path allocates no closure.
      const fail = (res: ServerResponse, error: unknown) => {
        // What Express does with a failing handler: report it, answer 500 if nothing was sent yet.
        if (options.onError !== undefined) options.onError(error, 'handler');
        else console.error(error);
        if (res.headersSent) res.destroy();
        else {
          res.statusCode = 500;
          res.setHeader('content-type', 'text/plain; charset=utf-8');
          res.end('internal error\n');
        }
      };
      const run = (req: IncomingMessage, res: ServerResponse, outcome: Middleware.Outcome): unknown => {
        if (outcome.kind === 'respond') return send(res, outcome);
        for (const [name, value] of outcome.headers) res.setHeader(name, value);
        const request = req as L402Request<typeof req>;
        request.l402 = outcome.l402;
        return handler(request as never, res as never);
      };
      return (req, res) => {
        const decided = guard(view(req));
        if (decided instanceof Promise) {
          decided.then((outcome) => run(req, res, outcome)).catch((error: unknown) => fail(res, error));
          return;
        }
        try {
          const result = run(req, res, decided);
          if (result instanceof Promise) result.catch((error: unknown) => fail(res, error));
        } catch (error) {
          fail(res, error);
        }
      };
    },
  };
}
