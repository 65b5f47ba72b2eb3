/**
 * `l402/fastify`: L402 for Fastify 5. `protect(route)` is a `preHandler` hook: an unpaid request gets
 * the gateway's 402 challenge, a paid one reaches the handler with the verified token in
 * `request.l402`. Register `paywall.plugin` once to declare that request property (Fastify keeps
 * request objects one shape) and to close the paywall with the app.
 *
 * @example
 * import Fastify from 'fastify';
 * import { l402 } from 'l402/fastify';
 * const paywall = l402({ backend: 'devnet', masterKey: process.env.L402_MASTER_KEY });
 * const app = Fastify();
 * await app.register(paywall.plugin);
 * app.get('/forecast', { preHandler: paywall.protect({ service: 'weather', price: 21 }) }, async (request) => ({
 *   sunny: true,
 *   token: request.l402?.tokenId,
 * }));
 */
import type { FastifyPluginCallback, preHandlerHookHandler } from 'fastify';
import type { RequestView } from '../Authority.js';
import * as Middleware from '../middleware.js';

export type { L402Info, Options, Route } from '../middleware.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified L402 token, set by `protect` (`undefined` on other routes, or when it cost nothing). */
    l402: Middleware.L402Info | undefined;
  }
}

/** The request view of a Fastify request; `ip` (Fastify works out the peer and any proxy) only when asked. */
class FastifyView implements RequestView {
  readonly method: string;
  readonly url: string;
  readonly headers: Parameters<preHandlerHookHandler>[0]['headers'];
  constructor(private readonly request: Parameters<preHandlerHookHandler>[0]) {
    this.method = request.method;
    this.url = request.url;
    this.headers = request.headers;
  }
  get remoteAddress(): string {
    return this.request.ip;
  }
}

/**
 * The `l402/fastify` middleware: `protect` is a `preHandler` hook, `plugin` declares `request.l402`.
 *
 * @example
 * app.get('/x', { preHandler: paywall.protect({ service: 'api', price: 21 }) }, handler);
 */
export interface FastifyPaywall extends Omit<Middleware.Paywall, 'protect'> {
  /** A `preHandler` hook that lets only paid requests (for `route`) reach the handler. */
  protect(route: Middleware.Route): preHandlerHookHandler;
  /** Decorates requests with `l402` and closes the paywall when the app closes; not encapsulated. */
  readonly plugin: FastifyPluginCallback;
}

/**
 * An L402 middleware for Fastify 5: options checked now (throws `Errors.MiddlewareError`), the backend
 * connected on the first paid request (or `await paywall.ready()`).
 *
 * @example
 * const paywall = l402({ backend: process.env.L402_WALLET!, masterKey: process.env.L402_MASTER_KEY });
 * app.post('/notes', { preHandler: paywall.protect({ service: 'notes', price: 5 }) }, save);
 */
export function l402(options: Middleware.Options): FastifyPaywall {
  const core = Middleware.create(options);
  const plugin: FastifyPluginCallback = (app, _options, done) => {
    if (!app.hasRequestDecorator('l402')) app.decorateRequest('l402', undefined);
    app.addHook('onClose', () => core.close());
    done();
  };
  // What `fastify-plugin` sets: the decoration belongs to the app registering it, not a child scope.
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'l402',
  });
  return {
    ...core,
    plugin,
    protect(route) {
      const guard = core.protect(route);
      const run = (
        request: Parameters<preHandlerHookHandler>[0],
        reply: Parameters<preHandlerHookHandler>[1],
        done: Parameters<preHandlerHookHandler>[2],
        outcome: Middleware.Outcome,
      ) => {
        if (outcome.kind === 'respond') {
          reply.code(outcome.status).headers(Middleware.grouped(outcome.headers)).send(outcome.body);
          return;
        }
        for (const [name, value] of outcome.headers) reply.header(name, value);
        request.l402 = outcome.l402;
        done();
      };
      const failed = (done: Parameters<preHandlerHookHandler>[2], error: unknown) =>
        done(error instanceof Error ? error : new Error(String(error)));
      // A callback hook, not an async one: a token already checked is decided without a promise, and
      // the hot path allocates no closure.
      return (request, reply, done) => {
        const decided = guard(new FastifyView(request));
        if (decided instanceof Promise) {
          decided
            .then((outcome) => run(request, reply, done, outcome))
            .catch((error: unknown) => failed(done, error));
          return;
        }
        try {
          run(request, reply, done, decided);
        } catch (error) {
          failed(done, error);
        }
      };
    },
  };
}
