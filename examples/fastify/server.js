/**
 * L402 on Fastify 5, against the devnet. In one terminal `npm start` (or `npx l402 devnet`), in another
 * `node examples/fastify/server.js`, then buy a request: `node examples/pay.js http://127.0.0.1:3002/paid`.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { l402 } from 'l402/fastify';

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

const app = Fastify();
// Declares `request.l402`, and closes the paywall when the app closes.
await app.register(paywall.plugin);
app.get('/free', async () => ({ hello: 'free world' }));
app.get(
  '/paid',
  { preHandler: paywall.protect({ service: 'paid', price: 21, timeout: 3600 }) },
  async (request) => ({
    hello: 'paid world',
    token: request.l402,
  }),
);
// Dynamic price: this year's report costs more; `pathBound` ties each token to the report it paid for.
app.get(
  '/reports/:year',
  {
    preHandler: paywall.protect({
      service: 'reports',
      pathBound: true,
      price: (r) => (r.url.endsWith(`/${new Date().getFullYear()}`) ? 50 : 10),
    }),
  },
  async (request) => ({ report: request.params.year, token: request.l402?.tokenId }),
);
app.get(
  '/notes',
  { preHandler: paywall.protect({ ...notes, requires: { capabilities: ['read'] } }) },
  async () => ({
    notes: ['buy milk'],
  }),
);
app.post(
  '/notes',
  { preHandler: paywall.protect({ ...notes, requires: { capabilities: ['write'] } }) },
  async (request, reply) => reply.code(201).send({ saved: true, by: request.l402?.tokenId }),
);

const port = Number(process.env.PORT ?? 3002);
const url = await app.listen({ port, host: '127.0.0.1' });
console.log(`Fastify + l402 on ${url}: /free, /paid (21 sat), /reports/:year, GET|POST /notes`);
process.once('SIGINT', () => app.close());
