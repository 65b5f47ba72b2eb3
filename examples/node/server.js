/**
 * L402 on a plain `node:http` server, against the devnet. In one terminal `npm start` (or
 * `npx l402 devnet`), in another `node examples/node/server.js`, then buy a request:
 * `node examples/pay.js http://127.0.0.1:3000/paid`.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { l402 } from 'l402/node';

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

const json = (res, body, status = 200) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
// One service, two routes: a token is sold with both capabilities; a holder can narrow it to `read`.
const notes = { service: 'notes', price: 10, capabilities: ['read', 'write'] };

const routes = {
  'GET /free': (_req, res) => json(res, { hello: 'free world' }),
  'GET /paid': paywall.protect({ service: 'paid', price: 21, timeout: 3600 }, (req, res) =>
    json(res, { hello: 'paid world', token: req.l402 }),
  ),
  // Dynamic price: this year's report costs more; `pathBound` ties each token to the report it paid for.
  'GET /reports': paywall.protect(
    {
      service: 'reports',
      pathBound: true,
      price: (r) => (r.url.endsWith(`/${new Date().getFullYear()}`) ? 50 : 10),
    },
    (req, res) => json(res, { report: req.url.split('/')[2], token: req.l402?.tokenId }),
  ),
  'GET /notes': paywall.protect({ ...notes, requires: { capabilities: ['read'] } }, (_req, res) =>
    json(res, { notes: ['buy milk'] }),
  ),
  'POST /notes': paywall.protect({ ...notes, requires: { capabilities: ['write'] } }, (req, res) =>
    json(res, { saved: true, by: req.l402?.tokenId }, 201),
  ),
};

const server = createServer((req, res) => {
  const first = `/${(req.url ?? '/').split(/[/?]/)[1]}`;
  const route = routes[`${req.method} ${first}`];
  if (route === undefined) return json(res, { error: 'not found' }, 404);
  route(req, res);
});
const port = Number(process.env.PORT ?? 3000);
server.listen(port, '127.0.0.1', () => {
  console.log(
    `node:http + l402 on http://127.0.0.1:${server.address().port}: /free, /paid (21 sat), /reports/:year, GET|POST /notes`,
  );
});
process.once('SIGINT', () => server.close(() => paywall.close()));
