/**
 * L402 on Hono 4 (served by @hono/node-server), against the devnet. In one terminal `npm start` (or
 * `npx l402 devnet`), in another `node examples/hono/server.js`, then buy a request:
 * `node examples/pay.js http://127.0.0.1:3003/paid`.
 */
import { randomBytes } from 'node:crypto';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { l402 } from 'l402/hono';

const paywall = l402({
  // The devnet's merchant node, found through $L402_HOME/devnet.json (default ~/.l402).
  backend: 'devnet',
  // Every token's root key is derived from this one secret, so nothing is stored per token. Set
  // L402_MASTER_KEY (`openssl rand -hex 32`) for tokens that outlive a restart.
  masterKey: process.env.L402_MASTER_KEY ?? randomBytes(32),
});
// Connect now, so a missing devnet is a clear error at start rather than a 503 on the first request.
await paywall.ready().catch((error) => {
  console.error(error.message);
  process.exit(1);
});

// One service, two routes: a token is sold with both capabilities; a holder can narrow it to `read`.
const notes = { service: 'notes', price: 10, capabilities: ['read', 'write'] };

const app = new Hono();
app.get('/free', (c) => c.json({ hello: 'free world' }));
// The handler wrapped: one handler for the route, which Hono calls directly (the lighter form for a
// hot route); the routes below use the middleware form, `protect(route)` before the handler.
app.get(
  '/paid',
  paywall.protect({ service: 'paid', price: 21, timeout: 3600 }, (c) =>
    c.json({ hello: 'paid world', token: c.get('l402') }),
  ),
);
// Dynamic price: this year's report costs more; `pathBound` ties each token to the report it paid for.
app.get(
  '/reports/:year',
  paywall.protect({
    service: 'reports',
    pathBound: true,
    price: (r) => (r.url.endsWith(`/${new Date().getFullYear()}`) ? 50 : 10),
  }),
  (c) => c.json({ report: c.req.param('year'), token: c.get('l402')?.tokenId }),
);
app.get('/notes', paywall.protect({ ...notes, requires: { capabilities: ['read'] } }), (c) =>
  c.json({ notes: ['buy milk'] }),
);
app.post('/notes', paywall.protect({ ...notes, requires: { capabilities: ['write'] } }), (c) =>
  c.json({ saved: true, by: c.get('l402')?.tokenId }, 201),
);

const port = Number(process.env.PORT ?? 3003);
const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
  console.log(
    `Hono + l402 on http://127.0.0.1:${info.port}: /free, /paid (21 sat), /reports/:year, GET|POST /notes`,
  );
});
process.once('SIGINT', () => server.close(() => paywall.close()));
