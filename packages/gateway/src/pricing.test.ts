import { once } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Challenge, Identifier, Invoice, Macaroon } from 'l402';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import * as Config from './Config.js';
import * as Gateway from './Gateway.js';
import { selfSignedAt } from './internal/secrets.js';
import * as Log from './Log.js';
import * as Pricing from './pricing.js';
import * as Testing from './testing.js';

// ——— the backend: echoes the path; `/m/…` answers like an inference stream with a usage object ———

const backendSaw: { url: string; acceptEncoding: string | undefined }[] = [];
const backend = http.createServer(async (request, response) => {
  let bytes = 0;
  for await (const chunk of request) bytes += (chunk as Buffer).length;
  backendSaw.push({ url: request.url!, acceptEncoding: request.headers['accept-encoding'] });
  const url = new URL(request.url!, 'http://x');
  if (url.pathname.startsWith('/m/')) {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write(`data: ${'x'.repeat(100)}\n\n`);
    response.end(`data: {"usage": ${url.searchParams.get('usage') ?? 0}}\n\n`);
    return;
  }
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ path: url.pathname, bytes }));
});

const echo = new WebSocketServer({ noServer: true });
echo.on('connection', (socket) => socket.on('message', (data) => socket.send(data)));
backend.on('upgrade', (request, socket, head) =>
  echo.handleUpgrade(request, socket, head, (ws) => echo.emit('connection', ws, request)),
);

// ——— a gRPC pricer implementing Aperture's Prices service, priced by path, with bundles ———

interface Call {
  readonly method: string;
  readonly request: Record<string, unknown>;
}
const calls: Call[] = [];
const callsOf = (method: string) => calls.filter((c) => c.method === method).map((c) => c.request);
/** Bundles by token id: units left (ChallengeMinted books `price_sats` units). */
const bundles = new Map<string, number>();
let slowTimer: NodeJS.Timeout | undefined;

type Callback = (error: Partial<grpc.StatusObject> | null, response?: object) => void;
type Handler = (call: { request: Record<string, unknown> }, callback: Callback) => void;
const record =
  (method: string, answer: (request: Record<string, unknown>, callback: Callback) => void): Handler =>
  (call, callback) => {
    calls.push({ method, request: call.request });
    answer(call.request, callback);
  };

const PRICES: Record<string, number> = { '/dyn/a': 21, '/dyn/bb': 34, '/tls/a': 21 };

const pricesImpl: Record<string, Handler> = {
  GetPrice: record('GetPrice', (request, callback) => {
    const path = String(request.path);
    if (path === '/dyn/slow') {
      slowTimer = setTimeout(() => callback(null, { price_sats: 1 }), 10_000);
      return;
    }
    if (path === '/dyn/broken') return callback({ code: grpc.status.INTERNAL, details: 'pricer bug' });
    if (path === '/dyn/negative') return callback(null, { price_sats: -5 });
    if (path.startsWith('/dyn/free')) return callback(null, { price_sats: 0 });
    if (path.startsWith('/m/')) return callback(null, { price_sats: 20 });
    // Priced by the path, so the test sees the price is the pricer's, not the service's 999.
    callback(null, { price_sats: PRICES[path] ?? 10 });
  }),
  ChallengeMinted: record('ChallengeMinted', (request, callback) => {
    if (String(request.path).includes('nobook')) return callback({ code: grpc.status.UNAVAILABLE });
    bundles.set(String(request.token_id), Number(request.price_sats));
    callback(null, {});
  }),
  AuthorizeRequest: record('AuthorizeRequest', (request, callback) => {
    const left = bundles.get(String(request.token_id)) ?? 0;
    if (left <= 0) return callback(null, { allowed: false, price_sats: 25, reason: 'bundle exhausted' });
    callback(null, { allowed: true, reserved_estimate: 3 });
  }),
  ReportUsage: record('ReportUsage', (request, callback) => {
    const tail = Buffer.from(request.response_tail as Uint8Array).toString();
    const used = Number(/"usage": (\d+)/.exec(tail)?.[1] ?? 0);
    const id = String(request.token_id);
    bundles.set(id, (bundles.get(id) ?? 0) - used);
    callback(null, { debited_sats: used, remaining_sats: bundles.get(id) });
  }),
};

async function servePricer(
  credentials: grpc.ServerCredentials,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService((await Pricing.pricesService()).service, pricesImpl as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, port) => (error ? reject(error) : resolve(port))),
  );
  return { server, port };
}

// ——— a plain HTTP pricer ———

const httpPricerSaw: Record<string, unknown>[] = [];
const httpPricer = http.createServer(async (request, response) => {
  let body = '';
  for await (const chunk of request) body += chunk;
  const summary = JSON.parse(body) as { path: string; query: string };
  httpPricerSaw.push(summary);
  if (summary.path.startsWith('/hslow/')) await new Promise((r) => setTimeout(r, 5_000));
  if (summary.path === '/h/garbage') {
    response.end('not json');
    return;
  }
  response.setHeader('content-type', 'application/json');
  const n = Number(new URLSearchParams(summary.query).get('n') ?? 1);
  response.end(JSON.stringify({ price: 7 * n }));
});

// ——— the network and the gateways ———

const world = Testing.useWorld({ name: 'l402-pricing-', backend });
const home = world.home;
let pricer: { server: grpc.Server; port: number };
let tlsPricer: { server: grpc.Server; port: number };
let tlsCert: string;
let httpPricerUrl: string;
const listen = Testing.listen;

beforeAll(async () => {
  httpPricerUrl = `http://127.0.0.1:${await listen(httpPricer)}/price`;
  pricer = await servePricer(grpc.ServerCredentials.createInsecure());
  tlsCert = join(home, 'pricer.cert');
  const pair = selfSignedAt(tlsCert, join(home, 'pricer.key'), ['localhost', '127.0.0.1']);
  tlsPricer = await servePricer(
    grpc.ServerCredentials.createSsl(null, [{ cert_chain: pair.cert, private_key: pair.key }]),
  );
}, 60_000);

afterAll(async () => {
  clearTimeout(slowTimer);
  echo.close();
  pricer?.server.forceShutdown();
  tlsPricer?.server.forceShutdown();
  await Testing.closeServer(httpPricer);
});

type Reply = Testing.Reply;

const send = (
  url: string,
  headers: http.OutgoingHttpHeaders = {},
  body?: { readonly data: Buffer; readonly chunked?: boolean },
) =>
  Testing.send(url, {
    headers,
    method: body === undefined ? 'GET' : 'POST',
    body: body?.data,
    chunk: body?.chunked ? 8_192 : undefined,
  });

const offerOf = (reply: Reply) => {
  const header = reply.headers['www-authenticate'];
  return Challenge.l402(Challenge.parse(header === undefined ? [] : header))!;
};
const satsOf = (reply: Reply) => Number(Invoice.decode(offerOf(reply).invoice).amountMsat! / 1000n);

/** Pays the 402; returns the `Authorization` value and the token id. */
async function pay(reply: Reply) {
  expect(reply.status).toBe(402);
  return world.pay(Testing.headerValues(reply.lines, 'www-authenticate'));
}

let dirs = 0;

const yaml = (services: string, extra = '', basedir?: string) => world.config(services, { extra, basedir });

const dynamic = (name: string, path: string, pricerYaml: string, more = '') => `
  - name: ${name}
    pathregexp: '^/${path}/'
    address: "${world.upstream}"
    price: 999
    dynamicprice:
      enabled: true
${pricerYaml}${more}`;

const start = (text: string) => world.start(text);

describe('dynamicprice with a gRPC pricer (Aperture pricesrpc.Prices)', () => {
  let gateway: Gateway.Gateway;
  beforeAll(async () => {
    const grpcYaml = `      grpcaddress: "127.0.0.1:${pricer.port}"\n      insecure: true\n      timeout: 300ms\n`;
    gateway = await start(
      yaml(
        dynamic('dyn', 'dyn', grpcYaml) +
          dynamic(
            'tls',
            'tls',
            `      grpcaddress: "127.0.0.1:${tlsPricer.port}"\n      tlscertpath: ${JSON.stringify(tlsCert)}\n`,
          ) +
          dynamic(
            'gone',
            'gone',
            `      grpcaddress: "127.0.0.1:${world.closedPort}"\n      insecure: true\n`,
          ),
      ),
    );
  });

  it('charges the price the pricer names for the path', async () => {
    const a = await send(`${gateway.url}/dyn/a?x=1`, {
      authorization: 'Bearer not-for-the-pricer',
      accept: 'text/plain',
    });
    expect(a.status).toBe(402);
    expect(satsOf(a)).toBe(21);
    const bb = await send(`${gateway.url}/dyn/bb`);
    expect(satsOf(bb)).toBe(34);
    const asked = callsOf('GetPrice').find((r) => r.path === '/dyn/a')!;
    expect(String(asked.http_request_text)).toMatch(
      /^GET \/dyn\/a\?x=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/,
    );
    expect(String(asked.http_request_text)).toContain('\r\nAccept: text/plain\r\n');
    expect(String(asked.http_request_text).endsWith('\r\n\r\n')).toBe(true);
    // Credentials never reach the pricer.
    expect(String(asked.http_request_text)).not.toMatch(/authorization|Bearer/i);
  }, 30_000);

  it('binds the token to the path: a token bought for /dyn/a is refused on /dyn/bb with a fresh 402', async () => {
    const token = await pay(await send(`${gateway.url}/dyn/a`));
    expect(Macaroon.firstPartyCaveats(token.macaroon)[0]).toBe('services=dyn/dyn/a:0');
    const paid = await send(`${gateway.url}/dyn/a`, { authorization: token.authorization });
    expect(paid.status).toBe(200);
    expect(JSON.parse(paid.body)).toEqual({ path: '/dyn/a', bytes: 0 });
    const elsewhere = await send(`${gateway.url}/dyn/bb`, { authorization: token.authorization });
    expect(elsewhere.status).toBe(402);
    expect(satsOf(elsewhere)).toBe(34);
  }, 30_000);

  it('lets a request the pricer prices at 0 through without a token', async () => {
    const free = await send(`${gateway.url}/dyn/free/x`);
    expect(free.status).toBe(200);
    expect(JSON.parse(free.body)).toEqual({ path: '/dyn/free/x', bytes: 0 });
  });

  it("sends the pricer the body's first 64 KiB, as Aperture, and the backend still gets every byte", async () => {
    const json = JSON.stringify({ model: 'big-model', prompt: 'x'.repeat(100_000) });
    const data = Buffer.from(json);
    const reply = await send(
      `${gateway.url}/dyn/free/post`,
      { 'content-type': 'application/json' },
      { data },
    );
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ path: '/dyn/free/post', bytes: data.length });
    const text = String(callsOf('GetPrice').at(-1)!.http_request_text);
    expect(text).toMatch(/^POST \/dyn\/free\/post HTTP\/1\.1\r\n/);
    expect(text.endsWith(`\r\n\r\n${json.slice(0, 65_536)}`)).toBe(true);

    // A chunked body (no Content-Length) is not read ahead: the pricer gets the head only.
    const chunked = await send(`${gateway.url}/dyn/free/post`, {}, { data, chunked: true });
    expect(JSON.parse(chunked.body)).toEqual({ path: '/dyn/free/post', bytes: data.length });
    expect(String(callsOf('GetPrice').at(-1)!.http_request_text).endsWith('\r\n\r\n')).toBe(true);

    // Unpaid: priced with the body's head, answered 402 without reading the rest.
    const small = Buffer.from('{"model":"m"}');
    const unpaid = await send(
      `${gateway.url}/dyn/a`,
      { 'content-type': 'application/json' },
      { data: small },
    );
    expect(unpaid.status).toBe(402);
    expect(String(callsOf('GetPrice').at(-1)!.http_request_text).endsWith('\r\n\r\n{"model":"m"}')).toBe(
      true,
    );
  }, 20_000);

  it('answers 500 when the pricer is down, slow (past dynamicprice.timeout), failing, or answers a negative price', async () => {
    for (const [url, why] of [
      [`${gateway.url}/gone/x`, 'down'],
      [`${gateway.url}/dyn/slow`, 'slow'],
      [`${gateway.url}/dyn/broken`, 'failing'],
      [`${gateway.url}/dyn/negative`, 'negative'],
    ] as const) {
      const reply = await send(url);
      expect([why, reply.status, reply.body]).toEqual([why, 500, 'failure fetching resource price\n']);
      expect(reply.headers['www-authenticate']).toBeUndefined();
    }
  }, 20_000);

  it('talks TLS to a pricer whose certificate is at tlscertpath', async () => {
    const reply = await send(`${gateway.url}/tls/a`);
    expect(reply.status).toBe(402);
    expect(satsOf(reply)).toBe(21);
  }, 15_000);
});

describe('dynamicprice with an HTTP pricer (httpurl)', () => {
  it('POSTs a request summary without credentials and charges the answer; a pricer down or talking nonsense gets a 500', async () => {
    const gateway = await start(
      yaml(
        dynamic('h', 'h', `      httpurl: "${httpPricerUrl}"\n      timeout: 2s\n`) +
          dynamic('hgone', 'hgone', `      httpurl: "http://127.0.0.1:${world.closedPort}/price"\n`) +
          dynamic('hslow', 'hslow', `      httpurl: "${httpPricerUrl}"\n      timeout: 200ms\n`),
      ),
    );
    const reply = await send(`${gateway.url}/h/items?n=3`, {
      authorization: 'L402 AGIAJEemVQUTEyNCR0exk7ek90Cg==:00',
      cookie: 'session=secret',
      'user-agent': 'test-agent',
    });
    expect(reply.status).toBe(402);
    expect(satsOf(reply)).toBe(21);
    expect(httpPricerSaw.at(-1)).toEqual({
      method: 'GET',
      path: '/h/items',
      query: 'n=3',
      headers: { host: new URL(gateway.url).host, 'user-agent': 'test-agent' },
      service: 'h',
    });
    const token = await pay(await send(`${gateway.url}/h/items?n=1`));
    expect((await send(`${gateway.url}/h/items?n=1`, { authorization: token.authorization })).status).toBe(
      200,
    );
    expect((await send(`${gateway.url}/h/other`, { authorization: token.authorization })).status).toBe(402);

    const garbage = await send(`${gateway.url}/h/garbage`);
    expect([garbage.status, garbage.body]).toEqual([500, 'failure fetching resource price\n']);
    const down = await send(`${gateway.url}/hgone/x`);
    expect([down.status, down.body]).toEqual([500, 'failure fetching resource price\n']);
    const slow = await send(`${gateway.url}/hslow/x`);
    expect([slow.status, slow.body]).toEqual([500, 'failure fetching resource price\n']);
  }, 30_000);
});

describe('a pricer certificate that cannot be read', () => {
  it('stops the gateway at start with L402_GATEWAY_UPSTREAM', async () => {
    const missing = join(home, 'no-such.cert');
    const { config } = Config.parse(
      yaml(
        dynamic(
          'x',
          'x',
          `      grpcaddress: "127.0.0.1:1"\n      tlscertpath: ${JSON.stringify(missing)}\n`,
        ),
      ),
      'test.yaml',
      { env: {} },
    );
    const started = Gateway.start(config, { log: Log.silent, listen: { host: '127.0.0.1', port: 0 } });
    await expect(started).rejects.toMatchObject({
      name: 'StartError',
      code: 'L402_GATEWAY_UPSTREAM',
      message: expect.stringContaining(`dynamicprice.tlscertpath ${missing} cannot be read`),
    });
  });
});

describe('an HTTPS pricer, and prepaid credit priced per request by a pricer', () => {
  it('verifies the pricer against tlscertpath, and debits each request the price the pricer names', async () => {
    const cert = join(home, 'http-pricer.cert');
    const pair = selfSignedAt(cert, join(home, 'http-pricer.key'), ['localhost', '127.0.0.1']);
    const secure = https.createServer({ cert: pair.cert, key: pair.key }, (request, response) =>
      httpPricer.emit('request', request, response),
    );
    const port = await listen(secure as unknown as http.Server);
    try {
      const gateway = await start(
        yaml(`
  - name: metered
    pathregexp: '^/p/'
    address: "${world.upstream}"
    prepaid:
      credit: 100
    dynamicprice:
      enabled: true
      httpurl: "https://127.0.0.1:${port}/price"
      tlscertpath: ${JSON.stringify(cert)}
`),
      );
      // The credit is what the token costs; the pricer prices each request drawn from it.
      const offer = await send(`${gateway.url}/p/a?n=9`);
      expect(satsOf(offer)).toBe(100);
      const token = await pay(offer);
      const auth = { authorization: token.authorization };
      const balances: unknown[] = [];
      for (const [path, n] of [
        ['/p/a', 2],
        ['/p/other', 5],
        ['/p/a', 0],
      ] as const) {
        const reply = await send(`${gateway.url}${path}?n=${n}`, auth);
        expect(reply.status).toBe(200);
        balances.push(reply.headers['l402-balance']);
      }
      // 14, 35 and 0 sats: a prepaid token spans the service's paths.
      expect(balances).toEqual(['86', '51', '51']);
      const tooDear = await send(`${gateway.url}/p/a?n=8`, auth);
      expect(tooDear.status).toBe(402);
      expect(satsOf(tooDear)).toBe(100);
      expect((await send(`${gateway.url}/p/a?n=7`, auth)).headers['l402-balance']).toBe('2');
    } finally {
      secure.closeAllConnections();
      await new Promise((r) => secure.close(r));
    }
  }, 30_000);
});

describe("dynamicprice.metered (Aperture's draw-down: the pricer keeps the balance)", () => {
  /** A gateway whose service `meter` (`/m/`) is priced and metered by the gRPC pricer. */
  const startMetered = (more = '') =>
    start(
      yaml(
        dynamic(
          'meter',
          'm',
          `      grpcaddress: "127.0.0.1:${pricer.port}"\n      insecure: true\n      metered: true\n${more}`,
        ),
      ),
    );

  it('books each challenge, asks before each request, reports usage after it, and sells a new bundle when refused', async () => {
    const gateway = await startMetered('      usagetailbytes: 64\n');
    const first = await send(`${gateway.url}/m/chat`);
    expect(satsOf(first)).toBe(20);
    const token = await pay(first);
    expect(callsOf('ChallengeMinted').at(-1)).toMatchObject({
      path: '/m/chat',
      token_id: token.tokenId,
      price_sats: '20',
      service_name: 'meter',
    });
    expect(bundles.get(token.tokenId)).toBe(20);

    const reports = () => callsOf('ReportUsage').filter((r) => r.token_id === token.tokenId);
    for (let i = 1; i <= 3; i++) {
      const reply = await send(`${gateway.url}/m/chat?usage=8`, {
        authorization: token.authorization,
        'accept-encoding': 'gzip, br',
      });
      expect(reply.status).toBe(200);
      expect(reply.body.endsWith('data: {"usage": 8}\n\n')).toBe(true);
      await expect.poll(() => reports().length).toBe(i);
    }
    // Stripped, so the tail the pricer reads is plaintext.
    expect(backendSaw.at(-1)).toEqual({ url: '/m/chat?usage=8', acceptEncoding: undefined });
    const report = reports().at(-1)!;
    expect(report).toMatchObject({
      path: '/m/chat',
      service_name: 'meter',
      http_status: 200,
      content_type: 'text/event-stream',
      complete: true,
      content_encoding: '',
      reserved_estimate: '3',
    });
    // The last usagetailbytes (64) of the body, ending with the usage object.
    const tail = Buffer.from(report.response_tail as Uint8Array).toString();
    expect(tail).toHaveLength(64);
    expect(tail.endsWith('data: {"usage": 8}\n\n')).toBe(true);
    expect(callsOf('AuthorizeRequest').filter((r) => r.token_id === token.tokenId)).toHaveLength(3);
    expect(bundles.get(token.tokenId)).toBe(-4);

    const refused = await send(`${gateway.url}/m/chat?usage=8`, { authorization: token.authorization });
    expect(refused.status).toBe(402);
    expect(satsOf(refused)).toBe(25);
    const next = Identifier.decode(Macaroon.decode(offerOf(refused).macaroon).identifier).tokenId;
    expect(callsOf('ChallengeMinted').at(-1)).toMatchObject({
      token_id: Buffer.from(next).toString('hex'),
      price_sats: '25',
    });
  }, 40_000);

  it('gives the reservation of a WebSocket upgrade back: an empty, incomplete usage report', async () => {
    const gateway = await startMetered();
    const token = await pay(await send(`${gateway.url}/m/ws`));
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/m/ws`, {
      headers: { authorization: token.authorization },
    });
    await once(socket, 'open');
    socket.send('hello');
    const [echoed] = await once(socket, 'message');
    expect(String(echoed)).toBe('hello');
    socket.close();
    await expect
      .poll(() => callsOf('ReportUsage').filter((r) => r.token_id === token.tokenId))
      .toEqual([
        expect.objectContaining({
          http_status: 101,
          complete: false,
          reserved_estimate: '3',
          service_name: 'meter',
          path: '/m/ws',
        }),
      ]);
    const report = callsOf('ReportUsage').find((r) => r.token_id === token.tokenId)!;
    expect(Buffer.from(report.response_tail as Uint8Array)).toHaveLength(0);
  }, 30_000);

  it('sells no invoice the pricer could not book: 500 challenge failure', async () => {
    const gateway = await startMetered();
    const reply = await send(`${gateway.url}/m/nobook`);
    expect([reply.status, reply.body]).toEqual([500, 'challenge failure\n']);
    expect(reply.headers['www-authenticate']).toBeUndefined();
  }, 15_000);
});

const prepaid = (credit: number, price: number) => `
  - name: credit
    pathregexp: '^/c/'
    address: "${world.upstream}"
    price: ${price}
    prepaid:
      credit: ${credit}
`;

/** Runs the prepaid scenario on one store (`extra` selects it). */
async function prepaidOn(extra: string) {
  const basedir = join(home, `prepaid${++dirs}`);
  const text = yaml(prepaid(100, 10), extra, basedir);
  let gateway = await start(text);
  const offer = await send(`${gateway.url}/c/x`);
  expect(satsOf(offer)).toBe(100);
  const token = await pay(offer);
  const auth = { authorization: token.authorization };
  const balances: string[] = [];
  for (let i = 0; i < 4; i++) {
    const reply = await send(`${gateway.url}/c/x`, auth);
    expect(reply.status).toBe(200);
    balances.push(String(reply.headers['l402-balance']));
  }
  expect(balances).toEqual(['90', '80', '70', '60']);

  // A restart keeps the balance.
  await gateway.close({ graceMs: 1_000 });
  gateway = await start(text);
  const after = await send(`${gateway.url}/c/y`, auth);
  expect([after.status, after.headers['l402-balance']]).toEqual([200, '50']);
  for (let i = 0; i < 5; i++) expect((await send(`${gateway.url}/c/x`, auth)).status).toBe(200);

  // Empty: a fresh 402 for a new credit, and the balance stays at zero.
  const empty = await send(`${gateway.url}/c/x`, auth);
  expect(empty.status).toBe(402);
  expect(satsOf(empty)).toBe(100);
  expect(offerOf(empty).macaroon).not.toBe(offerOf(offer).macaroon);

  // 50 at once, over two instances on the same store, on a credit worth 10 requests: exactly 10 pass.
  const fresh = await pay(empty);
  const second = await start(text);
  const replies = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      send(`${(i % 2 === 0 ? gateway : second).url}/c/x`, { authorization: fresh.authorization }),
    ),
  );
  const passed = replies.filter((r) => r.status === 200);
  expect(passed).toHaveLength(10);
  expect(replies.filter((r) => r.status === 402)).toHaveLength(40);
  expect(new Set(passed.map((r) => r.headers['l402-balance']))).toEqual(
    new Set(['90', '80', '70', '60', '50', '40', '30', '20', '10', '0']),
  );
  await Promise.all([gateway.close({ graceMs: 1_000 }), second.close({ graceMs: 1_000 })]);
}

describe('prepaid credit (prepaid.credit: the gateway keeps the balance)', () => {
  it('sells a credit, debits each request exactly, refuses when empty, survives a restart, and 50 concurrent requests on two instances never overdraw (SQLite)', async () => {
    await prepaidOn('');
  }, 60_000);

  it('does the same on PostgreSQL', async () => {
    const db = await Testing.database('l402_pricing');
    try {
      await prepaidOn(db.yaml);
    } finally {
      await db.drop();
    }
  }, 60_000);
});
