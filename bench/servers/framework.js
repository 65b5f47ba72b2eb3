/**
 * A hello-world server of one framework (node:http, Express 5, Fastify 5 or Hono 4 on
 * @hono/node-server), with or without the L402 middleware from packages/l402/dist in front of its one
 * route, `GET /hello`. With it, the route costs 1 sat and its tokens are checked with keys derived from
 * the master key the bench gives every server, so one token bought from any of them is valid on all;
 * `cors` is the middleware's option (its default when absent). `form: 'wrap'` (Hono) protects the
 * handler itself rather than adding a middleware before it, `form: 'noop'` (Hono, unpaid) puts a
 * middleware that does nothing before it; `form: 'cors'` (node:http, unpaid) sets
 * the four CORS headers by hand.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { serve, settings } from './child.js';

const { framework, paid, wallet, masterKey, cors, form } = await settings();
const route = { service: 'bench', price: 1 };
const options = { backend: wallet, masterKey, cors };
const body = 'hello world';

/** Each framework's app, listening on a free loopback port; resolves with the http.Server and a closer. */
const apps = {
  async node() {
    const hello = (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(body);
    };
    if (!paid && form === 'cors') {
      // The bare app sending the same four CORS header lines itself, as any CORS middleware would.
      const { CORS_HEADERS } = await import('l402/server');
      return {
        server: createServer((req, res) => {
          for (const [name, value] of CORS_HEADERS) res.setHeader(name, value);
          hello(req, res);
        }),
      };
    }
    if (!paid) return { server: createServer(hello) };
    const { l402 } = await import('l402/node');
    const paywall = l402(options);
    await paywall.ready();
    return { server: createServer(paywall.protect(route, hello)), close: () => paywall.close() };
  },
  async express() {
    const { default: express } = await import('express');
    const app = express();
    const hello = (_req, res) => void res.type('text').send(body);
    if (!paid) {
      app.get('/hello', hello);
      return { server: createServer(app) };
    }
    const { l402 } = await import('l402/express');
    const paywall = l402(options);
    await paywall.ready();
    app.get('/hello', paywall.protect(route), hello);
    return { server: createServer(app), close: () => paywall.close() };
  },
  async fastify() {
    const { default: Fastify } = await import('fastify');
    let handlers;
    const app = Fastify({
      serverFactory: (handler) => {
        handlers = createServer(handler);
        return handlers;
      },
    });
    if (!paid) app.get('/hello', async (_request, reply) => reply.type('text/plain').send(body));
    else {
      const { l402 } = await import('l402/fastify');
      const paywall = l402(options);
      await paywall.ready();
      await app.register(paywall.plugin);
      app.get('/hello', { preHandler: paywall.protect(route) }, async (_request, reply) =>
        reply.type('text/plain').send(body),
      );
    }
    await app.ready();
    return { server: handlers, close: () => app.close() };
  },
  async hono() {
    const [{ Hono }, { getRequestListener }] = await Promise.all([
      import('hono'),
      import('@hono/node-server'),
    ]);
    const app = new Hono();
    const hello = (c) => c.text(body);
    if (!paid) {
      // 'noop': what any middleware costs in Hono, one that only awaits the next handler.
      if (form === 'noop') app.get('/hello', async (_c, next) => void (await next()), hello);
      else app.get('/hello', hello);
      return { server: createServer(getRequestListener(app.fetch)) };
    }
    const { l402 } = await import('l402/hono');
    const paywall = l402(options);
    await paywall.ready();
    if (form === 'wrap') app.get('/hello', paywall.protect(route, hello));
    else app.get('/hello', paywall.protect(route), hello);
    return { server: createServer(getRequestListener(app.fetch)), close: () => paywall.close() };
  },
};

const { server, close } = await apps[framework]();
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1');
await once(server, 'listening');
serve({ port: server.address().port }, async () => {
  server.closeAllConnections();
  server.close();
  await close?.();
});
