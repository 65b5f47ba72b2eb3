/**
 * The middleware end to end, once per framework: a real server of each (node:http, Express 5, Fastify 5,
 * Hono 4 on @hono/node-server) on loopback with the same routes, invoices from the devnet merchant
 * (found as `backend: 'devnet'` finds it, through `devnet.json`), paid by the devnet payer's wallet.
 * Then the gateway and the Express middleware side by side on one request, the options refused when
 * given, and which modules importing one adapter loads.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve as serveHono } from '@hono/node-server';
import { Devnet } from '@l402/devnet';
import { Gateway, Config as GatewayConfig, Log as GatewayLog } from '@l402/gateway';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { Caveat, Challenge, Credential, Errors, Identifier, Invoice, Macaroon } from 'l402';
import * as ExpressL402 from 'l402/express';
import * as FastifyL402 from 'l402/fastify';
import * as HonoL402 from 'l402/hono';
import { type Backend, connect } from 'l402/lightning';
import * as NodeL402 from 'l402/node';
import type { Middleware } from 'l402/server';
import * as Sqlite from 'l402/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// ——— the devnet, published where `backend: 'devnet'` looks ———

const home = mkdtempSync(join(tmpdir(), 'l402-middleware-'));
const masterKey = 'a5'.repeat(32);
let devnet: Devnet.Devnet;
let payer: Backend;

beforeAll(async () => {
  devnet = await Devnet.start({ home, publish: false });
  // What `l402 devnet` writes; this process is the devnet's, so the document is live.
  writeFileSync(join(home, 'devnet.json'), JSON.stringify(devnet.document));
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
}, 60_000);

afterAll(async () => {
  await payer?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

// ——— a client that shows every header line ———

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Header lines as received, names lower-cased. */
  readonly lines: readonly (readonly [string, string])[];
  readonly body: string;
}

function send(url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders } = {}) {
  return new Promise<Reply>((resolve, reject) => {
    const request = http.request(
      url,
      { method: options.method ?? 'GET', headers: options.headers },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => {
          const lines: [string, string][] = [];
          for (let i = 0; i < response.rawHeaders.length; i += 2) {
            lines.push([response.rawHeaders[i]!.toLowerCase(), response.rawHeaders[i + 1]!]);
          }
          resolve({ status: response.statusCode!, headers: response.headers, lines, body });
        });
      },
    );
    request.on('error', reject);
    request.end();
  });
}

const lineValues = (reply: Reply, name: string) => reply.lines.filter(([n]) => n === name).map(([, v]) => v);

/** Pays the challenge in a 402 with the payer's wallet; what a client then holds. */
async function pay(reply: Reply) {
  expect(reply.status).toBe(402);
  const offer = Challenge.l402(Challenge.parse(lineValues(reply, 'www-authenticate')))!;
  const macaroon = Macaroon.decode(offer.macaroon);
  const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
  return { offer, macaroon, preimage, authorization: Credential.format({ macaroon, preimage }) };
}
type Bought = Awaited<ReturnType<typeof pay>>;

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const auth = (macaroon: Macaroon.Macaroon, preimage: Uint8Array) => ({
  authorization: Credential.format({ macaroon, preimage }),
});

// ——— the same routes in every framework ———

const ROUTES = {
  paid: { service: 'api', price: 21, timeout: 3600 },
  /**
   * Dynamic price: `?n=` satoshis (0 lets the request through without a token); `?peer` prices by the
   * client's address (4 sat from loopback), which every adapter must hand the function.
   */
  dynamic: {
    service: 'dyn',
    price: (r) => {
      const query = new URL(r.url, 'http://x').searchParams;
      if (query.has('peer')) return /^(::ffff:)?127\.0\.0\.1$|^::1$/.test(r.remoteAddress ?? '') ? 4 : 9;
      return Number(query.get('n') ?? 1);
    },
  },
  /** One service, two routes: reading needs `read`, writing `write`; a token is sold with both. */
  read: {
    service: 'notes',
    price: 10,
    capabilities: ['read', 'write'],
    requires: { capabilities: ['read'] },
  },
  write: {
    service: 'notes',
    price: 10,
    capabilities: ['read', 'write'],
    requires: { capabilities: ['write'] },
  },
  short: { service: 'short', price: 5, timeout: 60 },
} satisfies Record<string, Middleware.Route>;

/** What every handler answers: which route ran, and the token as the framework handed it over. */
const echo = (route: string, l402: Middleware.L402Info | undefined) => ({ route, l402: l402 ?? null });

interface Served {
  readonly url: string;
  readonly paywall: Omit<Middleware.Paywall, 'protect'>;
  close(): Promise<void>;
}

interface Framework {
  readonly name: string;
  /** Fetch `Headers` carry the two challenges as one field line. */
  readonly joinsChallenges: boolean;
  serve(options: Middleware.Options): Promise<Served>;
}

const listening = async (server: http.Server) => {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};
const closing = (server: http.Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/** A listening server and its paywall, as a test uses them; closing it closes both. */
async function served(server: http.Server, paywall: Served['paywall']): Promise<Served> {
  return {
    url: await listening(server),
    paywall,
    close: async () => {
      await closing(server);
      await paywall.close();
    },
  };
}

/** A Hono app on @hono/node-server, on a free loopback port. */
const servedHono = (app: Hono<HonoL402.L402Env>, paywall: HonoL402.HonoPaywall) =>
  served(serveHono({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as http.Server, paywall);

const frameworks: Framework[] = [
  {
    name: 'node:http',
    joinsChallenges: false,
    async serve(options) {
      const paywall = NodeL402.l402(options);
      const json = (res: http.ServerResponse, body: unknown) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      };
      const paid = paywall.protect(ROUTES.paid, (req, res) => json(res, echo('paid', req.l402)));
      const routes: Record<string, http.RequestListener> = {
        'GET /free': (_req, res) => json(res, echo('free', undefined)),
        'GET /api/data': paid,
        'OPTIONS /api/data': paid,
        'GET /dynamic': paywall.protect(ROUTES.dynamic, (req, res) => json(res, echo('dynamic', req.l402))),
        'GET /notes': paywall.protect(ROUTES.read, (req, res) => json(res, echo('read', req.l402))),
        'POST /notes': paywall.protect(ROUTES.write, (req, res) => json(res, echo('write', req.l402))),
        'GET /short': paywall.protect(ROUTES.short, (req, res) => json(res, echo('short', req.l402))),
      };
      const server = http
        .createServer((req, res) => {
          const listener = routes[`${req.method} ${req.url?.split('?')[0]}`];
          if (listener !== undefined) return listener(req, res);
          res.statusCode = 404;
          res.end();
        })
        .listen(0, '127.0.0.1');
      return served(server, paywall);
    },
  },
  {
    name: 'Express 5',
    joinsChallenges: false,
    async serve(options) {
      const paywall = ExpressL402.l402(options);
      const app = express();
      app.get('/free', (_req, res) => void res.json(echo('free', undefined)));
      // Mounted: every method under /api (preflight included) goes through the paywall, which must
      // judge the path the client asked for, not the router's remainder.
      app.use('/api', paywall.protect(ROUTES.paid));
      app.get('/api/data', (req, res) => void res.json(echo('paid', req.l402)));
      app.get(
        '/dynamic',
        paywall.protect(ROUTES.dynamic),
        (req, res) => void res.json(echo('dynamic', req.l402)),
      );
      app.get('/notes', paywall.protect(ROUTES.read), (req, res) => void res.json(echo('read', req.l402)));
      app.post('/notes', paywall.protect(ROUTES.write), (req, res) => void res.json(echo('write', req.l402)));
      app.get('/short', paywall.protect(ROUTES.short), (req, res) => void res.json(echo('short', req.l402)));
      const server = app.listen(0, '127.0.0.1');
      return served(server, paywall);
    },
  },
  {
    name: 'Fastify 5',
    joinsChallenges: false,
    async serve(options) {
      const paywall = FastifyL402.l402(options);
      const app = Fastify();
      await app.register(paywall.plugin);
      app.get('/free', async () => echo('free', undefined));
      app.route({
        method: ['GET', 'OPTIONS'],
        url: '/api/data',
        preHandler: paywall.protect(ROUTES.paid),
        handler: async (request) => echo('paid', request.l402),
      });
      app.get('/dynamic', { preHandler: paywall.protect(ROUTES.dynamic) }, async (request) =>
        echo('dynamic', request.l402),
      );
      app.get('/notes', { preHandler: paywall.protect(ROUTES.read) }, async (request) =>
        echo('read', request.l402),
      );
      app.post('/notes', { preHandler: paywall.protect(ROUTES.write) }, async (request) =>
        echo('write', request.l402),
      );
      app.get('/short', { preHandler: paywall.protect(ROUTES.short) }, async (request) =>
        echo('short', request.l402),
      );
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      // The plugin closes the paywall with the app.
      return { url, paywall, close: () => app.close() };
    },
  },
  {
    name: 'Hono 4',
    joinsChallenges: true,
    async serve(options) {
      const paywall = HonoL402.l402(options);
      const app = new Hono<HonoL402.L402Env>();
      app.get('/free', (c) => c.json(echo('free', undefined)));
      app.use('/api/*', paywall.protect(ROUTES.paid));
      app.get('/api/data', (c) => c.json(echo('paid', c.get('l402'))));
      app.get('/dynamic', paywall.protect(ROUTES.dynamic), (c) => c.json(echo('dynamic', c.get('l402'))));
      app.get('/notes', paywall.protect(ROUTES.read), (c) => c.json(echo('read', c.get('l402'))));
      app.post('/notes', paywall.protect(ROUTES.write), (c) => c.json(echo('write', c.get('l402'))));
      app.get('/short', paywall.protect(ROUTES.short), (c) => c.json(echo('short', c.get('l402'))));
      return servedHono(app, paywall);
    },
  },
  {
    // `protect(route, handler)`: one handler per route, which Hono calls without composing a chain.
    name: 'Hono 4, wrapped handlers',
    joinsChallenges: true,
    async serve(options) {
      const paywall = HonoL402.l402(options);
      const app = new Hono<HonoL402.L402Env>();
      app.get('/free', (c) => c.json(echo('free', undefined)));
      app.on(
        ['GET', 'OPTIONS'],
        '/api/data',
        paywall.protect(ROUTES.paid, (c) => c.json(echo('paid', c.get('l402')))),
      );
      app.get(
        '/dynamic',
        paywall.protect(ROUTES.dynamic, (c) => c.json(echo('dynamic', c.get('l402')))),
      );
      app.get(
        '/notes',
        paywall.protect(ROUTES.read, (c) => c.json(echo('read', c.get('l402')))),
      );
      // An async handler: its promise is what the wrapped handler returns.
      app.post(
        '/notes',
        paywall.protect(ROUTES.write, async (c) => c.json(echo('write', c.get('l402')))),
      );
      app.get(
        '/short',
        paywall.protect(ROUTES.short, (c) => c.json(echo('short', c.get('l402')))),
      );
      return servedHono(app, paywall);
    },
  },
];

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-expose-headers': 'WWW-Authenticate, Payment-Receipt',
  'access-control-allow-headers':
    'Content-Type, Authorization, Grpc-Metadata-macaroon, WWW-Authenticate, Payment-Receipt',
};
const PAIR = /^LSAT macaroon="([A-Za-z0-9+/]+={0,2})", invoice="(lnbcrt[a-z0-9]+)"$/;

describe.each(frameworks)('$name', (framework) => {
  let served: Served;
  let skewMs = 0;
  const refusals: { path: string; status: number; reason: string; code: string | undefined }[] = [];
  /** The code the middleware refused the last request with, as `onRefusal` saw it. */
  const lastCode = () => refusals[refusals.length - 1]?.code;
  let bought: Bought;

  beforeAll(async () => {
    served = await framework.serve({
      backend: 'devnet',
      home,
      masterKey,
      now: () => Date.now() + skewMs,
      onRefusal: (reply, request) =>
        refusals.push({
          path: request.url,
          status: reply.status,
          reason: reply.reason,
          code: reply.error?.code,
        }),
    });
  });
  afterAll(() => served?.close());

  it("answers an unpaid request with the gateway's 402: Aperture's challenge pair, no-store, CORS", async () => {
    const free = await send(`${served.url}/free`);
    expect([free.status, JSON.parse(free.body)]).toEqual([200, { route: 'free', l402: null }]);

    const unpaid = await send(`${served.url}/api/data?page=2`);
    expect(unpaid.status).toBe(402);
    expect(unpaid.body).toBe('payment required\n');
    expect(unpaid.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(unpaid.headers['x-content-type-options']).toBe('nosniff');
    expect(unpaid.headers['cache-control']).toBe('no-store');
    expect(unpaid.headers).toMatchObject(CORS);
    const lines = lineValues(unpaid, 'www-authenticate');
    if (framework.joinsChallenges) {
      // One field line holding both challenges: the same field value as two lines (RFC 9110 §5.3).
      expect(lines).toHaveLength(1);
      const [lsat, l402] = lines[0]!.split(/, (?=L402 )/);
      expect(lsat).toMatch(PAIR);
      expect(l402).toBe(`L402${lsat!.slice(4)}`);
    } else {
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(PAIR);
      expect(lines[1]).toBe(`L402${lines[0]!.slice(4)}`);
    }
    expect(refusals.at(-1)).toEqual({
      path: '/api/data?page=2',
      status: 402,
      reason: 'challenge',
      code: undefined,
    });

    const preflight = await send(`${served.url}/api/data`, { method: 'OPTIONS' });
    expect(preflight.status).toBe(200);
    expect(preflight.headers).toMatchObject(CORS);
    expect(preflight.headers['www-authenticate']).toBeUndefined();
  });

  it('lets the paid request through, with the verified token handed to the handler', async () => {
    const unpaid = await send(`${served.url}/api/data`);
    bought = await pay(unpaid);
    expect(Invoice.decode(bought.offer.invoice).amountMsat).toBe(21_000n);
    const paid = await send(`${served.url}/api/data`, { headers: { authorization: bought.authorization } });
    expect(paid.status).toBe(200);
    // No `Origin`, no browser: the answer carries no CORS header lines (default `cors: 'origin'`) …
    expect(paid.headers['access-control-allow-origin']).toBeUndefined();
    // … and a browser's cross-origin request gets Aperture's, so the page can read what it paid for.
    const fromPage = await send(`${served.url}/api/data`, {
      headers: { authorization: bought.authorization, origin: 'https://shop.example' },
    });
    expect(fromPage.status).toBe(200);
    expect(fromPage.headers).toMatchObject(CORS);
    const { route, l402 } = JSON.parse(paid.body);
    expect(route).toBe('paid');
    const identifier = Identifier.decode(bought.macaroon.identifier);
    expect(l402).toEqual({
      tokenId: hex(identifier.tokenId),
      paymentHash: hex(Invoice.decode(bought.offer.invoice).paymentHash),
      service: 'api',
      caveats: Macaroon.firstPartyCaveats(bought.macaroon),
      services: [{ name: 'api', tier: 0 }],
      capabilities: [],
      validUntil: expect.any(Number),
    });
    expect(l402.validUntil).toBeCloseTo(Date.now() / 1000 + 3600, -1);
    // Again: the verified-credential cache answers, with the same token info.
    const again = await send(`${served.url}/api/data`, { headers: { authorization: bought.authorization } });
    expect(JSON.parse(again.body).l402).toEqual(l402);
  }, 30_000);

  it('prices each request by the route function: the invoice follows the request, 0 is free', async () => {
    const three = await send(`${served.url}/dynamic?n=3`);
    const seven = await send(`${served.url}/dynamic?n=7`);
    const amount = (r: Reply) =>
      Invoice.decode(Challenge.l402(Challenge.parse(lineValues(r, 'www-authenticate')))!.invoice).amountMsat;
    const byPeer = await send(`${served.url}/dynamic?peer`);
    expect([amount(three), amount(seven), amount(byPeer)]).toEqual([3_000n, 7_000n, 4_000n]);
    const token = await pay(seven);
    const paid = await send(`${served.url}/dynamic?n=7`, { headers: { authorization: token.authorization } });
    expect(paid.status).toBe(200);
    expect(JSON.parse(paid.body).l402.services).toEqual([{ name: 'dyn', tier: 0 }]);
    const free = await send(`${served.url}/dynamic?n=0`);
    expect([free.status, JSON.parse(free.body)]).toEqual([200, { route: 'dynamic', l402: null }]);
  }, 30_000);

  it('refuses a token attenuated to drop the capability a route requires, and keeps serving what it still grants', async () => {
    const token = await pay(await send(`${served.url}/notes`, { method: 'POST' }));
    expect(
      (await send(`${served.url}/notes`, { method: 'POST', headers: { authorization: token.authorization } }))
        .status,
    ).toBe(200);
    const readOnly = auth(
      Macaroon.addFirstPartyCaveat(token.macaroon, Caveat.capabilities('notes', ['read'])),
      token.preimage,
    );
    const write = await send(`${served.url}/notes`, { method: 'POST', headers: readOnly });
    expect(write.status).toBe(402);
    expect(lineValues(write, 'www-authenticate').length).toBeGreaterThan(0);
    expect(lastCode()).toBe('L402_CAPABILITY_NOT_ALLOWED');
    const read = await send(`${served.url}/notes`, { headers: readOnly });
    expect(read.status).toBe(200);
    expect(JSON.parse(read.body).l402.capabilities).toEqual(['read']);
  }, 30_000);

  it('refuses a token once it expires (the clock injected through the options)', async () => {
    const token = await pay(await send(`${served.url}/short`));
    const headers = { authorization: token.authorization };
    expect((await send(`${served.url}/short`, { headers })).status).toBe(200);
    skewMs = 61_000;
    try {
      expect((await send(`${served.url}/short`, { headers })).status).toBe(402);
      expect(lastCode()).toBe('L402_TOKEN_EXPIRED');
    } finally {
      skewMs = 0;
    }
  }, 30_000);

  it('refuses a revoked token at once', async () => {
    const token = await pay(await send(`${served.url}/api/data`));
    const headers = { authorization: token.authorization };
    const paid = await send(`${served.url}/api/data`, { headers });
    expect(paid.status).toBe(200);
    expect(await served.paywall.revoke(JSON.parse(paid.body).l402.tokenId)).toBe(true);
    expect((await send(`${served.url}/api/data`, { headers })).status).toBe(402);
    expect(lastCode()).toBe('L402_BAD_SIGNATURE');
    expect(await served.paywall.revoke(new Uint8Array(32))).toBe(false);
  }, 30_000);

  it('refuses every forged or misused credential with a fresh challenge, never reaching the handler', async () => {
    const { macaroon, preimage } = bought;
    // A second token, unpaid: its preimage is unknown to the client.
    const other = Macaroon.decode(
      Challenge.l402(Challenge.parse(lineValues(await send(`${served.url}/api/data`), 'www-authenticate')))!
        .macaroon,
    );
    const flipped = macaroon.signature.slice();
    flipped[0]! ^= 1;
    // A third-party caveat appended with a valid chain (as its holder can), and no discharge for it.
    const hmac = (key: Uint8Array, data: Uint8Array) =>
      new Uint8Array(createHmac('sha256', key).update(data).digest());
    const vid = new Uint8Array(72).fill(3);
    const cid = new TextEncoder().encode('is-user');
    const thirdParty: Macaroon.Macaroon = {
      ...macaroon,
      caveats: [...macaroon.caveats, { id: cid, verificationId: vid, location: 'https://auth.example' }],
      signature: hmac(
        macaroon.signature,
        new Uint8Array([...hmac(macaroon.signature, vid), ...hmac(macaroon.signature, cid)]),
      ),
    };
    const padded = Macaroon.addFirstPartyCaveat(
      macaroon,
      ...Array.from({ length: 300 }, (_, i) => `pad${i}=${'x'.repeat(16)}`),
    );
    const attacks: [name: string, path: string, headers: Record<string, string>, code: Errors.Code][] = [
      [
        'tampered signature',
        '/api/data',
        auth({ ...macaroon, signature: flipped }, preimage),
        'L402_BAD_SIGNATURE',
      ],
      ...macaroon.caveats.map((_, i): [string, string, Record<string, string>, Errors.Code] => [
        `caveat ${i} removed`,
        '/api/data',
        auth({ ...macaroon, caveats: macaroon.caveats.filter((_, j) => j !== i) }, preimage),
        'L402_BAD_SIGNATURE',
      ]),
      [
        'caveats reordered',
        '/api/data',
        auth({ ...macaroon, caveats: [...macaroon.caveats].reverse() }, preimage),
        'L402_BAD_SIGNATURE',
      ],
      [
        'caveat widened',
        '/api/data',
        auth(Macaroon.addFirstPartyCaveat(macaroon, 'api_valid_until=4000000000'), preimage),
        'L402_CAVEAT_WIDENED',
      ],
      ['wrong preimage', '/api/data', auth(macaroon, new Uint8Array(32)), 'L402_BAD_PREIMAGE'],
      ["another token's preimage", '/api/data', auth(other, preimage), 'L402_BAD_PREIMAGE'],
      [
        'identifier swap',
        '/api/data',
        auth({ ...other, identifier: macaroon.identifier }, preimage),
        'L402_BAD_SIGNATURE',
      ],
      ['other service', '/notes', auth(macaroon, preimage), 'L402_SERVICE_NOT_ALLOWED'],
      [
        'other service claimed',
        '/notes',
        auth(Macaroon.addFirstPartyCaveat(macaroon, Caveat.services([{ name: 'notes', tier: 0 }])), preimage),
        'L402_CAVEAT_WIDENED',
      ],
      [
        'undischarged third-party caveat',
        '/api/data',
        auth(thirdParty, preimage),
        'L402_UNDISCHARGED_CAVEAT',
      ],
      ['oversized header', '/api/data', auth(padded, preimage), 'L402_HEADER_TOO_LARGE'],
    ];
    for (const [name, path, headers, code] of attacks) {
      const reply = await send(`${served.url}${path}`, { headers });
      expect([name, reply.status, lastCode()]).toEqual([name, 402, code]);
      expect(lineValues(reply, 'www-authenticate').join(', '), name).toMatch(/^LSAT macaroon=/);
    }
    expect(auth(padded, preimage).authorization.length).toBeGreaterThan(Credential.MAX_HEADER_LENGTH);
    // And the genuine token still works.
    expect(
      (await send(`${served.url}/api/data`, { headers: { authorization: bought.authorization } })).status,
    ).toBe(200);
  }, 30_000);
});

// ——— the gateway and the middleware, one request each ———

describe('the gateway and the Express middleware', () => {
  const upstream = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"upstream":true}');
  });
  let gateway: Gateway.Gateway;
  let middleware: string;
  let app: http.Server;
  let paywall: ExpressL402.ExpressPaywall;

  beforeAll(async () => {
    upstream.listen(0, '127.0.0.1');
    const target = new URL(await listening(upstream)).host;
    const basedir = join(home, 'gateway');
    const keyFile = join(home, 'master.key');
    writeFileSync(keyFile, Buffer.from(masterKey, 'hex'), { mode: 0o600 });
    const { config } = GatewayConfig.parse(
      `
listenaddr: "127.0.0.1:8080"
insecure: true
basedir: ${JSON.stringify(basedir)}
authenticator:
  uri: ${JSON.stringify(devnet.document.nodes.merchant!.uris.lnd)}
secrets:
  mode: derived
  masterkeypath: ${JSON.stringify(keyFile)}
services:
  - name: api
    pathregexp: '^/api/'
    address: "${target}"
    price: 21
    timeout: 3600
    capabilities: read,write
`,
      'parity.yaml',
      { env: {} },
    );
    gateway = await Gateway.start(config, { log: GatewayLog.silent, listen: { host: '127.0.0.1', port: 0 } });
    // The same terms, the same master key: a token either one sells, the other accepts.
    paywall = ExpressL402.l402({ backend: devnet.document.nodes.merchant!.uris.lnd, masterKey });
    const server = express();
    server.use(
      '/api',
      paywall.protect({ service: 'api', price: 21, timeout: 3600, capabilities: ['read', 'write'] }),
    );
    server.get('/api/items', (_req, res) => void res.json({ upstream: true }));
    app = server.listen(0, '127.0.0.1');
    middleware = await listening(app);
  }, 60_000);

  afterAll(async () => {
    await gateway?.close({ graceMs: 1_000 });
    if (app !== undefined) await closing(app);
    await paywall?.close();
    await closing(upstream);
  });

  /** What a client can tell apart in an answer, with the parts unique to each challenge blanked. */
  const shape = (reply: Reply) => ({
    status: reply.status,
    body: reply.status === 200 ? '' : reply.body,
    challenges: lineValues(reply, 'www-authenticate').map((line) =>
      line
        .replace(/macaroon="[^"]+"/, 'macaroon="…"')
        .replace(/invoice="lnbcrt(\d+[munp]?)1[a-z0-9]+"/, 'invoice="lnbcrt$1…"'),
    ),
    headers: Object.fromEntries(
      ['content-type', 'x-content-type-options', 'cache-control', 'retry-after', ...Object.keys(CORS)].map(
        (name) => [name, reply.status === 200 && name === 'content-type' ? '' : reply.headers[name]],
      ),
    ),
  });

  it('answer the same request with the same status, challenge format, Cache-Control and CORS headers', async () => {
    const [fromGateway, fromMiddleware] = await Promise.all([
      send(`${gateway.url}/api/items`),
      send(`${middleware}/api/items`),
    ]);
    expect(shape(fromMiddleware)).toEqual(shape(fromGateway));
    expect(shape(fromGateway).challenges).toEqual([
      'LSAT macaroon="…", invoice="lnbcrt210n…"',
      'L402 macaroon="…", invoice="lnbcrt210n…"',
    ]);
    const caveats = (reply: Reply) =>
      Macaroon.firstPartyCaveats(
        Macaroon.decode(Challenge.l402(Challenge.parse(lineValues(reply, 'www-authenticate')))!.macaroon),
      ).map((c) => c.replace(/=\d{10}$/, '=<unix time>'));
    expect(caveats(fromMiddleware)).toEqual(caveats(fromGateway));

    const wrong = {
      authorization: Credential.format({
        macaroon: Macaroon.decode(
          Challenge.l402(Challenge.parse(lineValues(fromGateway, 'www-authenticate')))!.macaroon,
        ),
        preimage: new Uint8Array(32),
      }),
    };
    const [badGateway, badMiddleware] = await Promise.all([
      send(`${gateway.url}/api/items`, { headers: wrong }),
      send(`${middleware}/api/items`, { headers: wrong }),
    ]);
    expect(shape(badMiddleware)).toEqual(shape(badGateway));

    const [preflightGateway, preflightMiddleware] = await Promise.all([
      send(`${gateway.url}/api/items`, { method: 'OPTIONS' }),
      send(`${middleware}/api/items`, { method: 'OPTIONS' }),
    ]);
    expect(shape(preflightMiddleware)).toEqual(shape(preflightGateway));
  });

  it("accept each other's tokens when they share the master key, and answer them alike", async () => {
    const fromGateway = await pay(await send(`${gateway.url}/api/items`));
    const fromMiddleware = await pay(await send(`${middleware}/api/items`));
    for (const { authorization } of [fromGateway, fromMiddleware]) {
      // As a browser sees them (an Origin header): the same CORS headers on both.
      const headers = { authorization, origin: 'https://shop.example' };
      const [a, b] = await Promise.all([
        send(`${gateway.url}/api/items`, { headers }),
        send(`${middleware}/api/items`, { headers }),
      ]);
      expect(shape(b)).toEqual(shape(a));
      expect(JSON.parse(b.body)).toEqual(JSON.parse(a.body));
      // Without Origin the gateway still sends them (as Aperture) and the middleware, by default, not.
      const [c, d] = await Promise.all([
        send(`${gateway.url}/api/items`, { headers: { authorization } }),
        send(`${middleware}/api/items`, { headers: { authorization } }),
      ]);
      expect([c.status, d.status]).toEqual([200, 200]);
      expect(c.headers).toMatchObject(CORS);
      expect(d.headers['access-control-allow-origin']).toBeUndefined();
    }
  }, 30_000);
});

// ——— CORS ———

describe("CORS: 'origin' (default), true (Aperture's, on every answer), false", () => {
  const page = { origin: 'https://shop.example' };
  /** A node:http app with one 21-sat route behind a paywall made with `cors`, for every method. */
  async function serveWith(cors: Middleware.Options['cors']) {
    const paywall = NodeL402.l402({ backend: devnet.document.nodes.merchant!.uris.lnd, masterKey, cors });
    const paid = paywall.protect({ service: 'cors', price: 21 }, (_req, res) => res.end('paid'));
    const server = http
      .createServer((req, res) => {
        // The route, as an app registers it: every method goes through the paywall.
        if (req.url === '/paid') return paid(req, res);
        res.statusCode = 404;
        res.end();
      })
      .listen(0, '127.0.0.1');
    const url = `${await listening(server)}/paid`;
    return {
      url,
      close: async () => {
        await closing(server);
        await paywall.close();
      },
    };
  }

  it('adds the headers to passed answers as each mode says; challenges carry them in every mode', async () => {
    const modes = {
      origin: await serveWith(undefined),
      always: await serveWith(true),
      never: await serveWith(false),
    };
    try {
      // Derived keys from one master key: a token bought from one is good on all three.
      const unpaid = await send(modes.never.url);
      expect(unpaid.headers).toMatchObject(CORS); // even with cors: false
      const { authorization } = await pay(unpaid);
      const acao = async (url: string, headers: http.OutgoingHttpHeaders) => {
        const reply = await send(url, { headers: { authorization, ...headers } });
        expect(reply.status).toBe(200);
        if (reply.headers['access-control-allow-origin'] !== undefined)
          expect(reply.headers).toMatchObject(CORS);
        return reply.headers['access-control-allow-origin'] ?? null;
      };
      expect([await acao(modes.origin.url, {}), await acao(modes.origin.url, page)]).toEqual([null, '*']);
      expect([await acao(modes.always.url, {}), await acao(modes.always.url, page)]).toEqual(['*', '*']);
      expect([await acao(modes.never.url, {}), await acao(modes.never.url, page)]).toEqual([null, null]);
      // Preflights: answered by the middleware unless cors: false, which leaves them to the app.
      const preflight = (url: string) =>
        send(url, {
          method: 'OPTIONS',
          headers: { ...page, 'access-control-request-headers': 'authorization' },
        });
      for (const mode of [modes.origin, modes.always]) {
        const reply = await preflight(mode.url);
        expect(reply.status).toBe(200);
        expect(reply.headers).toMatchObject(CORS);
      }
      // With cors: false an OPTIONS is one more request for the route (priced like any other): an app
      // with CORS of its own answers preflights before the paywall sees them.
      expect((await preflight(modes.never.url)).status).toBe(402);
    } finally {
      for (const mode of Object.values(modes)) await mode.close();
    }
  }, 30_000);

  it('refuses an unknown mode when the middleware is made', () => {
    expect(() => NodeL402.l402({ backend: 'devnet', masterKey, cors: 'yes' as unknown as boolean })).toThrow(
      /cors must be 'origin', true or false, not "yes"/,
    );
  });
});

// ——— Hono where there is no Node request ———

describe('Hono on the Fetch request alone (app.request, as on edge runtimes)', () => {
  it('charges by the Fetch URL, passes a paid request and refuses a forged one, in both forms', async () => {
    const paywall = HonoL402.l402({ backend: devnet.document.nodes.merchant!.uris.lnd, masterKey });
    const app = new Hono<HonoL402.L402Env>();
    const route: Middleware.Route = {
      service: 'edge',
      // The view's url is path and query, as on Node: 2 sat with ?cheap, else 3.
      price: (r) => (r.url === '/wrapped?cheap' ? 2 : 3),
    };
    app.get('/middleware', paywall.protect(route), (c) => c.text(c.get('l402')!.tokenId));
    app.get(
      '/wrapped',
      paywall.protect(route, (c) => c.text(c.get('l402')!.tokenId)),
    );
    try {
      const amount = (reply: Response) =>
        Invoice.decode(Challenge.l402(Challenge.parse(reply.headers.get('www-authenticate')!))!.invoice)
          .amountMsat;
      const cheap = await app.request('http://edge.example/wrapped?cheap');
      expect([cheap.status, amount(cheap)]).toEqual([402, 2_000n]);
      const unpaid = await app.request('/middleware');
      expect([unpaid.status, amount(unpaid)]).toEqual([402, 3_000n]);
      const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')!))!;
      const macaroon = Macaroon.decode(offer.macaroon);
      const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
      const tokenId = hex(Identifier.decode(macaroon.identifier).tokenId);
      for (const path of ['/middleware', '/wrapped']) {
        const paid = await app.request(path, { headers: auth(macaroon, preimage) });
        expect([paid.status, await paid.text()]).toEqual([200, tokenId]);
        const forged = await app.request(path, { headers: auth(macaroon, new Uint8Array(32)) });
        expect(forged.status).toBe(402);
      }
    } finally {
      await paywall.close();
    }
  }, 30_000);
});

// ——— root keys and stores ———

describe('root keys and stores', () => {
  /** A node:http server behind a paywall made with `options`, one 21-sat route. */
  async function serveNode(options: Middleware.Options) {
    const paywall = NodeL402.l402(options);
    const server = http
      .createServer(paywall.protect({ service: 'api', price: 21 }, (req, res) => res.end(req.l402?.tokenId)))
      .listen(0, '127.0.0.1');
    const url = await listening(server);
    return {
      url,
      paywall,
      close: async () => {
        await closing(server);
        await paywall.close();
      },
    };
  }
  const backend = () => devnet.document.nodes.merchant!.uris.lnd;

  it("random keys in a SQLite store: tokens verify, revocation holds, and the store stays the caller's", async () => {
    const store = await Sqlite.open({ path: join(home, 'random.db') });
    const one = await serveNode({ backend: backend(), keys: 'random', store });
    const token = await pay(await send(one.url));
    const headers = { authorization: token.authorization };
    const paid = await send(one.url, { headers });
    expect(paid.status).toBe(200);
    expect(await store.transactions()).toHaveLength(1);
    expect(await one.paywall.revoke(paid.body)).toBe(true);
    expect((await send(one.url, { headers })).status).toBe(402);
    await one.close();
    // Closing the middleware left the store open: it was given, not made.
    expect(await store.rootKey(new Uint8Array(32))).toBeUndefined();
    await store.close();
  }, 30_000);

  it('derived keys: a revocation in a SQLite store outlives a restart', async () => {
    const path = join(home, 'derived.db');
    const first = await serveNode({ backend: backend(), masterKey, store: await Sqlite.open({ path }) });
    const token = await pay(await send(first.url));
    const headers = { authorization: token.authorization };
    const paid = await send(first.url, { headers });
    expect(await first.paywall.revoke(paid.body)).toBe(true);
    await first.close();
    const store = await Sqlite.open({ path });
    const restarted = await serveNode({ backend: backend(), masterKey, store });
    expect((await send(restarted.url, { headers })).status).toBe(402);
    // Without the store, the derived key alone still verifies it: revocation is what the store is for.
    const stateless = await serveNode({ backend: backend(), masterKey });
    expect((await send(stateless.url, { headers })).status).toBe(200);
    await Promise.all([restarted.close(), stateless.close()]);
    await store.close();
  }, 30_000);
});

// ——— options ———

describe('options', () => {
  const refused = (make: () => unknown) => {
    try {
      make();
    } catch (error) {
      expect(error).toBeInstanceOf(Errors.MiddlewareError);
      expect((error as Errors.MiddlewareError).code).toBe('L402_MIDDLEWARE_CONFIG');
      return (error as Error).message;
    }
    throw new Error('accepted');
  };
  const backend = 'lnd://127.0.0.1:1?macaroon=00';

  it('are refused when given, each with what is wrong and what to do', () => {
    const saved = process.env.L402_MASTER_KEY;
    delete process.env.L402_MASTER_KEY;
    try {
      expect(refused(() => ExpressL402.l402({ backend }))).toMatch(
        /no master key: .*L402_MASTER_KEY.*openssl rand -hex 32/,
      );
      process.env.L402_MASTER_KEY = masterKey;
      expect(ExpressL402.l402({ backend })).toBeDefined();
    } finally {
      if (saved === undefined) delete process.env.L402_MASTER_KEY;
      else process.env.L402_MASTER_KEY = saved;
    }
    expect(refused(() => NodeL402.l402({ backend, masterKey: 'ab'.repeat(16) }))).toMatch(
      /16 bytes; it must be at least 32/,
    );
    expect(refused(() => NodeL402.l402({ backend, masterKey: 'not hex' }))).toMatch(/master key is not hex/);
    expect(refused(() => NodeL402.l402({ backend, keys: 'random', masterKey }))).toMatch(
      /masterKey is for keys: 'derived'/,
    );
    expect(refused(() => HonoL402.l402({ backend: 'http://127.0.0.1:8080', masterKey }))).toMatch(
      /backend: wallet: unknown wallet URI scheme "http": use lnd:\/\/.*, or 'devnet'/,
    );
    expect(refused(() => HonoL402.l402({ backend: undefined as unknown as string, masterKey }))).toMatch(
      /backend is required/,
    );
    expect(refused(() => FastifyL402.l402({ backend, masterKey, invoiceExpirySeconds: 0 }))).toMatch(
      /invoiceExpirySeconds/,
    );

    const paywall = FastifyL402.l402({ backend, masterKey });
    expect(refused(() => paywall.protect({ service: 'api', price: -1 }))).toMatch(
      /route "api": price -1 must be a whole number of satoshis/,
    );
    expect(refused(() => paywall.protect({ service: 'api', price: 1.5 }))).toMatch(/price 1.5/);
    expect(refused(() => paywall.protect({ service: 'my api', price: 1 }))).toMatch(/service must be a name/);
    expect(
      refused(() =>
        paywall.protect({
          service: 'api',
          price: 1,
          capabilities: ['read'],
          requires: { capabilities: ['write'] },
        }),
      ),
    ).toMatch(/requires capability write, which its tokens are never given/);
    expect(refused(() => paywall.protect({ service: 'api', price: 1, requires: { tier: 2 } }))).toMatch(
      /requires tier 2/,
    );
    expect(refused(() => paywall.protect({ service: 'api', price: 1, timeout: -5 }))).toMatch(/timeout/);
    expect(() => paywall.protect({ service: 'api', price: () => 1, capabilities: ['read'] })).not.toThrow();
  });

  it("'devnet' with no devnet running: a clear error from ready(), and 503 with Retry-After meanwhile", async () => {
    const empty = mkdtempSync(join(tmpdir(), 'l402-no-devnet-'));
    const errors: unknown[] = [];
    const paywall = NodeL402.l402({
      backend: 'devnet',
      home: empty,
      masterKey,
      onError: (e) => errors.push(e),
    });
    const server = http
      .createServer(paywall.protect({ service: 'api', price: 1 }, (_req, res) => res.end()))
      .listen(0, '127.0.0.1');
    try {
      await expect(paywall.ready()).rejects.toThrow(
        /no devnet is running under .*l402-no-devnet-.*npx l402 devnet/,
      );
      const reply = await send(await listening(server));
      expect([reply.status, reply.headers['retry-after'], reply.body]).toEqual([
        503,
        '5',
        'the Lightning backend is unavailable, retry later\n',
      ]);
      expect(errors.at(-1)).toBeInstanceOf(Errors.MiddlewareError);
      await expect(paywall.revoke('zz')).rejects.toThrow(RangeError);
    } finally {
      await closing(server);
      await paywall.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

// ——— the published files: the examples and what importing an adapter loads ———

const root = fileURLToPath(new URL('../', import.meta.url));

/** Newest modification time of the files under `dir` whose name ends with `ext` (tests aside). */
function newest(dir: string, ext: string): number {
  let time = 0;
  for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (file.endsWith(ext) && !file.endsWith(`.test${ext}`))
      time = Math.max(time, statSync(join(dir, file)).mtimeMs);
  }
  return time;
}

/** Builds the packages (`tsc -b`) if a source is newer than the build: users import `dist/`. */
function built(): void {
  const dist = join(root, 'packages/l402/dist');
  if (!existsSync(dist) || newest(dist, '.js') < newest(join(root, 'packages/l402/src'), '.ts')) {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], {
      cwd: root,
      stdio: 'pipe',
    });
  }
}

describe('the examples', () => {
  beforeAll(built, 120_000);

  it.each(['node', 'express', 'fastify', 'hono'])(
    'examples/%s/server.js runs with one command against the devnet: free, paid, dynamic and capability routes',
    async (name) => {
      const child = spawn(process.execPath, [join(root, 'examples', name, 'server.js')], {
        cwd: root,
        env: { ...process.env, L402_HOME: home, L402_MASTER_KEY: masterKey, PORT: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        const read = (chunk: Buffer) => {
          output += chunk;
          const found = / on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (found !== null) resolve(found[1]!);
        };
        child.stdout.on('data', read);
        child.stderr.on('data', read);
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
      });
      try {
        const free = await send(`${url}/free`);
        expect([free.status, JSON.parse(free.body)]).toEqual([200, { hello: 'free world' }]);
        const token = await pay(await send(`${url}/paid`));
        const paid = await send(`${url}/paid`, { headers: { authorization: token.authorization } });
        expect(paid.status).toBe(200);
        expect(JSON.parse(paid.body).token.tokenId).toBe(
          hex(Identifier.decode(token.macaroon.identifier).tokenId),
        );
        const price = async (path: string) =>
          Invoice.decode(
            Challenge.l402(Challenge.parse(lineValues(await send(`${url}${path}`), 'www-authenticate')))!
              .invoice,
          ).amountMsat;
        expect([await price(`/reports/${new Date().getFullYear()}`), await price('/reports/2020')]).toEqual([
          50_000n,
          10_000n,
        ]);
        const notes = await pay(await send(`${url}/notes`, { method: 'POST' }));
        const readOnly = auth(
          Macaroon.addFirstPartyCaveat(notes.macaroon, 'notes_capabilities=read'),
          notes.preimage,
        );
        expect((await send(`${url}/notes`, { method: 'POST', headers: readOnly })).status).toBe(402);
        expect((await send(`${url}/notes`, { headers: readOnly })).status).toBe(200);
      } finally {
        child.kill('SIGINT');
      }
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    },
    30_000,
  );
});

describe('importing one adapter', () => {
  beforeAll(built, 120_000);

  /**
   * Imports `l402/<adapter>` in a fresh Node process, then the package `after`, and returns every module
   * URL resolved by each step: a resolve hook records them to a file before each import proceeds.
   */
  function loaded(adapter: string, after: string): { adapter: string[]; after: string[] } {
    const log = join(home, `loaded-${adapter}.txt`);
    const hooks = `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, result.url + '\\n');
  return result;
}`;
    const script = `import { register } from 'node:module';
import { appendFileSync } from 'node:fs';
const [log, adapter, after] = process.argv.slice(1);
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}), { data: { log } });
await import('l402/' + adapter);
appendFileSync(log, '--\\n');
await import(after);`;
    execFileSync(process.execPath, ['--input-type=module', '-e', script, log, adapter, after], {
      cwd: root,
    });
    const [first = '', second = ''] = readFileSync(log, 'utf8').split('--\n');
    const urls = (text: string) => text.split('\n').filter((line) => line.length > 0);
    return { adapter: urls(first), after: urls(second) };
  }

  const FRAMEWORKS = /\/node_modules\/(express|fastify|hono|@hono\/node-server|undici)\//;

  it.each([
    ['node', 'express'],
    ['express', 'fastify'],
    ['fastify', 'hono'],
    ['hono', 'express'],
  ])(
    'l402/%s loads no framework and no Lightning client (while importing %s after it is seen)',
    (adapter, other) => {
      const seen = loaded(adapter, other);
      expect(
        seen.adapter.some((url) => url.endsWith(`/packages/l402/dist/server/adapters/${adapter}.js`)),
      ).toBe(true);
      expect(seen.adapter.filter((url) => FRAMEWORKS.test(url))).toEqual([]);
      // The detector works: the framework imported afterwards shows up.
      expect(seen.after.some((url) => url.includes(`/node_modules/${other}/`))).toBe(true);
    },
    30_000,
  );
});
