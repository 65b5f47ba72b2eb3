import { once } from 'node:events';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Challenge, Credential, Invoice, Macaroon } from 'l402';
import * as Sqlite from 'l402/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Config from './Config.js';
import * as Gateway from './Gateway.js';
import * as Log from './Log.js';
import * as Testing from './testing.js';

// ——— a backend that records what reached it ———

interface Seen {
  readonly method: string;
  readonly url: string;
  /** Header names lower-cased, in order, repeats kept. */
  readonly headers: readonly (readonly [string, string])[];
  readonly bodyBytes: number;
}

const seen: Seen[] = [];
const lastSeen = () => seen[seen.length - 1]!;
const values = (s: Seen, name: string) => s.headers.filter(([n]) => n === name).map(([, v]) => v);

let releaseStream: () => void = () => {};
let streamFinished = false;

const backend = http.createServer(async (request, response) => {
  let bodyBytes = 0;
  for await (const chunk of request) bodyBytes += (chunk as Buffer).length;
  const headers = Testing.headerLines(request.rawHeaders);
  seen.push({ method: request.method!, url: request.url!, headers, bodyBytes });
  const path = request.url!.split('?')[0]!;
  const delay = Number(new URL(request.url!, 'http://x').searchParams.get('ms') ?? 500);
  if (path.endsWith('/slow')) await new Promise((r) => setTimeout(r, delay));
  if (path.endsWith('/sse')) {
    streamFinished = false;
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write('event: first\ndata: 1\n\n');
    await new Promise<void>((resolve) => {
      releaseStream = resolve;
    });
    response.end('event: second\ndata: 2\n\n');
    streamFinished = true;
    return;
  }
  if (path.endsWith('/hop')) {
    response.setHeader('connection', 'x-private');
    response.setHeader('x-private', 'hop only');
    response.setHeader('access-control-allow-methods', 'PUT');
    response.setHeader('access-control-allow-origin', 'https://backend.example');
  }
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ ok: true, path, bodyBytes }));
});

type Reply = Testing.Reply;
const send = Testing.send;
const lineValues = (reply: Reply, name: string) => Testing.headerValues(reply.lines, name);

// ——— the network and the gateways under test ———

const world = Testing.useWorld({ name: 'l402-gateway-', backend });
// Before the gateways close (the last hooks registered run first): the open stream ends.
afterAll(() => releaseStream());

/** The base directory of the gateway `yaml()` made last. */
let lastBasedir = '';

/** YAML for a gateway on the devnet merchant with the usual test services, plus `extra` top-level keys. */
function yaml(extra = '', wallet = world.merchant): string {
  lastBasedir = world.basedir();
  return world.config(
    `
  - name: other
    hostregexp: '^other\\.example(:\\d+)?$'
    address: "${world.upstream}"
    auth: off
  - name: api
    pathregexp: '^/api/'
    address: "${world.upstream}"
    price: 21
    timeout: 3600
    capabilities: read,write
    constraints:
      max_items: "10"
    headers:
      X-Api-Key: upstream-secret
    rewrite:
      prefix: /v1
    authwhitelistpaths: ['^/api/public/']
    authskipinvoicecreationpaths: ['^/api/stream/']
  - name: free
    pathregexp: '^/free/'
    address: "${world.upstream}"
    auth: off
  - name: freebie
    pathregexp: '^/freebie/'
    address: "${world.upstream}"
    auth: freebie 2
    price: 5
  - name: down
    pathregexp: '^/down/'
    address: "127.0.0.1:${world.closedPort}"
    auth: off
`,
    { extra, wallet, basedir: lastBasedir },
  );
}

const start = world.start;

/** Pays the 402 in `reply` with the payer's wallet; returns the macaroon and preimage bought. */
const pay = (reply: Reply) => world.pay(lineValues(reply, 'www-authenticate'));

describe('the gateway on the devnet', () => {
  let gateway: Gateway.Gateway;
  let token: Awaited<ReturnType<typeof pay>>;
  beforeAll(async () => {
    gateway = await start(yaml());
  });

  it("answers unpaid requests with Aperture's exact pair, and proxies paid ones with the forwarded credential", async () => {
    const unpaid = await send(`${gateway.url}/api/items?page=2`);
    expect(unpaid.status).toBe(402);
    expect(unpaid.body).toBe('payment required\n');
    expect(unpaid.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(unpaid.headers['cache-control']).toBe('no-store');
    expect(unpaid.headers['access-control-allow-origin']).toBe('*');
    const lines = lineValues(unpaid, 'www-authenticate');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^LSAT macaroon="[A-Za-z0-9+/]+={0,2}", invoice="lnbcrt210n1[a-z0-9]+"$/);
    expect(lines[1]).toBe(`L402${lines[0]!.slice(4)}`);

    token = await pay(unpaid);
    const now = Date.now() / 1000;
    const caveats = Macaroon.firstPartyCaveats(token.macaroon);
    expect(caveats.slice(0, 3)).toEqual(['services=api:0', 'api_capabilities=read,write', 'max_items=10']);
    expect(Number(caveats[3]!.replace('api_valid_until=', ''))).toBeCloseTo(now + 3600, -1);
    expect(Invoice.decode(token.offer.invoice).amountMsat).toBe(21_000n);

    const paid = await send(`${gateway.url}/api/items?page=2`, {
      headers: { authorization: token.authorization },
    });
    expect(paid.status).toBe(200);
    expect(JSON.parse(paid.body)).toMatchObject({ ok: true, path: '/v1/api/items' });
    const reached = lastSeen();
    expect(reached.url).toBe('/v1/api/items?page=2');
    expect(values(reached, 'authorization')).toEqual([
      token.authorization.replace(/^L402/, 'LSAT'),
      token.authorization,
    ]);
    expect(values(reached, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(values(reached, 'x-forwarded-proto')).toEqual(['http']);
    expect(values(reached, 'x-forwarded-host')).toEqual([new URL(gateway.url).host]);
    expect(values(reached, 'x-api-key')).toEqual(['upstream-secret']);
    expect(values(reached, 'host')).toEqual([world.upstream]);
  }, 30_000);

  it('accepts the token in every credential form and forwards it as the LSAT + L402 pair', async () => {
    const { macaroon, preimage, authorization } = token;
    const forms: Record<string, string>[] = [
      { authorization: authorization.replace(/^L402/, 'LSAT') },
      { authorization: authorization.replace(/^L402 /, 'l402 ') },
      { macaroon: Credential.formatMacaroonHeader({ macaroon, preimage }) },
      { 'grpc-metadata-macaroon': Credential.formatMacaroonHeader({ macaroon, preimage }) },
    ];
    for (const headers of forms) {
      const reply = await send(`${gateway.url}/api/items`, { headers });
      expect(reply.status, JSON.stringify(Object.keys(headers))).toBe(200);
      // As Aperture: the macaroon as presented (the hex forms carry their preimage caveat), as LSAT then L402.
      const presented = Credential.fromHeaders(headers)!;
      expect(values(lastSeen(), 'authorization')).toEqual([
        Credential.format(presented, { scheme: 'LSAT' }),
        Credential.format(presented, { scheme: 'L402' }),
      ]);
    }
    const wrong = Credential.format({ macaroon, preimage: new Uint8Array(32) });
    expect((await send(`${gateway.url}/api/items`, { headers: { authorization: wrong } })).status).toBe(402);
  });

  it('keeps HTTP/1.1 connections alive between requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const reused: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const request = http.get(`${gateway.url}/free/keepalive`, { agent }, (response) => {
          reused.push(request.reusedSocket);
          response.resume().on('end', resolve);
        });
        request.on('error', reject);
      });
    }
    agent.destroy();
    expect(reused).toEqual([false, true, true]);
  });

  it('lets whitelisted paths through unpaid and answers skip-invoice paths with 401', async () => {
    const open = await send(`${gateway.url}/api/public/doc`);
    expect(open.status).toBe(200);
    expect(lastSeen().url).toBe('/v1/api/public/doc');
    const skip = await send(`${gateway.url}/api/stream/x`);
    expect(skip.status).toBe(401);
    expect(skip.body).toBe('unauthorized\n');
    expect(skip.headers['www-authenticate']).toBeUndefined();
  });

  it('answers OPTIONS itself with the CORS headers, never proxying it', async () => {
    const before = seen.length;
    const reply = await send(`${gateway.url}/api/items`, { method: 'OPTIONS' });
    expect(reply.status).toBe(200);
    expect(reply.headers['access-control-allow-origin']).toBe('*');
    expect(reply.headers['access-control-allow-methods']).toBe('GET, POST, OPTIONS');
    expect(reply.headers['access-control-allow-headers']).toContain('Authorization');
    const star = await new Promise<number>((resolve, reject) =>
      http
        .request(gateway.url, { method: 'OPTIONS', path: '*', agent: false }, (r) =>
          resolve(r.resume().statusCode!),
        )
        .on('error', reject)
        .end(),
    );
    expect(star).toBe(200);
    expect(seen.length).toBe(before);
  });

  it('routes by host, serves free services, and answers 404 when no service matches', async () => {
    const other = await send(`${gateway.url}/api/items`, { headers: { host: 'other.example' } });
    expect(other.status).toBe(200);
    expect(lastSeen().url).toBe('/api/items');
    expect(values(lastSeen(), 'x-forwarded-host')).toEqual(['other.example']);
    expect((await send(`${gateway.url}/free/thing`)).status).toBe(200);
    const none = await send(`${gateway.url}/nothing/here`);
    expect(none.status).toBe(404);
  });

  it('judges and forwards the resolved path, refusing dot segments hidden behind encoded slashes', async () => {
    const before = seen.length;
    expect((await send(`${gateway.url}/free/../api/items`)).status).toBe(402);
    expect((await send(`${gateway.url}/free/..%2Fapi%2Fitems`)).status).toBe(400);
    expect(seen.length).toBe(before);
    expect((await send(`${gateway.url}/free/a%2Fb`)).status).toBe(200);
    expect(lastSeen().url).toBe('/free/a%2Fb');
  });

  it('gives each client network its freebies, then asks for payment', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await send(`${gateway.url}/freebie/x`)).status);
    expect(statuses).toEqual([200, 200, 402]);
  });

  it('answers gRPC clients the gRPC way: 200 with grpc-status 13 and the challenge', async () => {
    const reply = await send(`${gateway.url}/api/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/grpc' },
      body: '',
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['grpc-status']).toBe('13');
    expect(reply.headers['grpc-message']).toBe('payment required');
    expect(lineValues(reply, 'www-authenticate')).toHaveLength(2);
  });

  it('answers 502 when the backend is down', async () => {
    const reply = await send(`${gateway.url}/down/x`);
    expect(reply.status).toBe(502);
  });

  it('drops hop-by-hop headers both ways and merges its CORS headers into the response', async () => {
    const reply = await send(`${gateway.url}/free/hop`, {
      headers: {
        connection: 'keep-alive, x-secret-hop',
        'x-secret-hop': 'for the gateway only',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        te: 'gzip',
        'keep-alive': 'timeout=5',
        'x-end-to-end': 'kept',
      },
    });
    expect(reply.status).toBe(200);
    const names = lastSeen().headers.map(([n]) => n);
    for (const name of ['x-secret-hop', 'proxy-authorization', 'te', 'keep-alive']) {
      expect(names).not.toContain(name);
    }
    // The backend connection's own `Connection` header is the pool's, not the client's.
    expect(values(lastSeen(), 'connection')).toEqual(['keep-alive']);
    expect(values(lastSeen(), 'x-end-to-end')).toEqual(['kept']);
    expect(reply.headers['x-private']).toBeUndefined();
    expect(reply.headers['access-control-allow-origin']).toBe('*');
    expect(reply.headers['access-control-allow-methods']).toBe('PUT, GET, POST, OPTIONS');
  });

  it('replaces X-Forwarded-For from untrusted peers', async () => {
    await send(`${gateway.url}/free/x`, { headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(values(lastSeen(), 'x-forwarded-for')).toEqual(['127.0.0.1']);
  });

  it('streams server-sent events as they come', async () => {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${gateway.url}/free/sse`, { agent: false }, resolve).on('error', reject),
    );
    expect(response.headers['content-type']).toBe('text/event-stream');
    const [first] = (await once(response, 'data')) as [Buffer];
    expect(first.toString()).toBe('event: first\ndata: 1\n\n');
    expect(streamFinished).toBe(false);
    releaseStream();
    let rest = '';
    for await (const chunk of response) rest += chunk;
    expect(rest).toBe('event: second\ndata: 2\n\n');
  });

  it('speaks h2c (HTTP/2 with prior knowledge) on the same port, 402 pair included', async () => {
    const session = http2.connect(gateway.url);
    try {
      const ask = (path: string) =>
        new Promise<{ headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader; body: string }>(
          (resolve, reject) => {
            const stream = session.request({ ':path': path });
            let body = '';
            let headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader = {};
            stream.on('response', (h) => {
              headers = h;
            });
            stream.on('data', (d) => {
              body += d;
            });
            stream.on('end', () => resolve({ headers, body }));
            stream.on('error', reject);
          },
        );
      const free = await ask('/free/h2c');
      expect(free.headers[':status']).toBe(200);
      expect(JSON.parse(free.body)).toMatchObject({ path: '/free/h2c' });
      const unpaid = await ask('/api/items');
      expect(unpaid.headers[':status']).toBe(402);
      // Node's HTTP/2 client joins repeated fields with ", "; the two challenges are both there.
      const offers = Challenge.parse(unpaid.headers['www-authenticate'] as string);
      expect(offers.map((o) => o.scheme)).toEqual(['LSAT', 'L402']);
    } finally {
      session.close();
    }
  });
});

describe('limits', () => {
  it('refuses bodies over maxbodybytes with 413, declared or chunked, and heads over maxheaderbytes with 431', async () => {
    const gateway = await start(yaml('limits:\n  maxbodybytes: 1000\n  maxheaderbytes: 2048'));
    const big = 'x'.repeat(3000);
    const declared = await send(`${gateway.url}/free/upload`, { method: 'POST', body: big });
    expect(declared.status).toBe(413);
    const chunked = await send(`${gateway.url}/free/upload`, { method: 'POST', body: big, chunk: 256 });
    expect(chunked.status).toBe(413);
    const small = await send(`${gateway.url}/free/upload`, {
      method: 'POST',
      body: 'x'.repeat(900),
      chunk: 256,
    });
    expect(small.status).toBe(200);
    expect(JSON.parse(small.body)).toMatchObject({ bodyBytes: 900 });
    const head = await send(`${gateway.url}/free/x`, { headers: { 'x-big': 'y'.repeat(4000) } });
    expect(head.status).toBe(431);
  });

  it('answers 504 when the backend takes longer than responsetimeout to answer', async () => {
    const gateway = await start(yaml('limits:\n  responsetimeout: 100ms'));
    const started = Date.now();
    // undici checks its timeouts on a coarse clock (about every half second), so the gap is wide.
    expect((await send(`${gateway.url}/free/slow?ms=3000`)).status).toBe(504);
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('fails to start on a port already taken, saying so', async () => {
    const taken = Number(world.upstream.split(':')[1]);
    const { config } = Config.parse(yaml(), 'test.yaml', { env: {} });
    await expect(
      Gateway.start(config, { log: Log.silent, listen: { host: '127.0.0.1', port: taken } }),
    ).rejects.toMatchObject({ name: 'StartError', code: 'L402_GATEWAY_LISTEN' });
  });
});

describe('Lightning down', () => {
  it('answers paid routes with 503 and Retry-After while tokens already paid keep working', async () => {
    const healthy = await start(yaml());
    const bought = await pay(await send(`${healthy.url}/api/items`));
    const dbfile = join(lastBasedir, 'gateway.db');
    const text = yaml(`sqlite:\n  dbfile: ${JSON.stringify(dbfile)}`, 'lnd://127.0.0.1:1?macaroon=00');
    const gateway = await start(text);
    const unpaid = await send(`${gateway.url}/api/items`);
    expect(unpaid.status).toBe(503);
    expect(unpaid.headers['retry-after']).toBe('5');
    const paid = await send(`${gateway.url}/api/items`, { headers: { authorization: bought.authorization } });
    expect(paid.status).toBe(200);
    expect((await send(`${gateway.url}/free/x`)).status).toBe(200);
  }, 30_000);
});

describe("LND configured Aperture's way", () => {
  it('mints with lndhost, tlspath and macdir (invoice.macaroon)', async () => {
    const lnd = world.devnet.document.nodes.merchant!.lnd;
    const macdir = join(world.home, 'macdir');
    mkdirSync(macdir, { recursive: true });
    writeFileSync(join(macdir, 'invoice.macaroon'), Buffer.from(lnd.invoiceMacaroon, 'hex'));
    const authenticator = `authenticator:
  lndhost: "${new URL(lnd.url).host}"
  tlspath: ${JSON.stringify(lnd.certPath)}
  macdir: ${JSON.stringify(macdir)}`;
    const text = yaml().replace(/authenticator:\n {2}uri: .*\n/, `${authenticator}\n`);
    const gateway = await start(text);
    expect(gateway.lightning).toBe(`lnd ${lnd.url.replace(/\/$/, '')}`);
    const bought = await pay(await send(`${gateway.url}/api/items`));
    const paid = await send(`${gateway.url}/api/items`, { headers: { authorization: bought.authorization } });
    expect(paid.status).toBe(200);
  }, 30_000);
});

describe('trusted proxies', () => {
  it('appends to X-Forwarded-For and keeps X-Forwarded-Proto/-Host from a trusted peer', async () => {
    const gateway = await start(yaml('trustedproxies: ["127.0.0.0/8"]'));
    await send(`${gateway.url}/free/x`, {
      headers: {
        'x-forwarded-for': '198.51.100.7',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'api.example',
      },
    });
    expect(values(lastSeen(), 'x-forwarded-for')).toEqual(['198.51.100.7, 127.0.0.1']);
    expect(values(lastSeen(), 'x-forwarded-proto')).toEqual(['https']);
    expect(values(lastSeen(), 'x-forwarded-host')).toEqual(['api.example']);
  });
});

describe('TLS', () => {
  it('serves HTTP/2 and HTTP/1.1 on one port with a self-signed certificate it makes', async () => {
    const text = yaml().replace('insecure: true', 'insecure: false');
    const gateway = await start(text);
    expect(gateway.url).toMatch(/^https:/);
    expect(gateway.protocols).toBe('HTTP/1.1, h2 (TLS)');
    const basedir = Config.parse(text, 'test.yaml', { env: {} }).config.basedir;
    const ca = readFileSync(join(basedir, 'tls.cert'));
    expect(statSync(join(basedir, 'tls.key')).mode & 0o777).toBe(0o600);

    const session = http2.connect(gateway.url, { ca });
    const h2 = await new Promise<{ status: number; alpn: string; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': '/free/tls' });
      let status = 0;
      let body = '';
      stream.on('response', (h) => {
        status = h[':status']!;
      });
      stream.on('data', (d) => {
        body += d;
      });
      stream.on('end', () => resolve({ status, alpn: session.alpnProtocol!, body }));
      stream.on('error', reject);
    });
    session.close();
    expect(h2).toMatchObject({ status: 200, alpn: 'h2' });
    expect(values(lastSeen(), 'x-forwarded-proto')).toEqual(['https']);

    const h1 = await new Promise<{ status: number; alpn: string }>((resolve, reject) => {
      https
        .get(
          `${gateway.url}/free/tls`,
          { agent: new https.Agent({ ca, ALPNProtocols: ['http/1.1'] }) },
          (response) => {
            response.resume();
            resolve({
              status: response.statusCode!,
              alpn: (response.socket as TLSSocket).alpnProtocol as string,
            });
          },
        )
        .on('error', reject);
    });
    expect(h1).toEqual({ status: 200, alpn: 'http/1.1' });
  });
});

describe('secrets and storage', () => {
  it('derives root keys from a master key it creates 0600, and the tokens work', async () => {
    const gateway = await start(yaml('secrets: derived'));
    const basedir = lastBasedir;
    const key = join(basedir, 'master.key');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key)).toHaveLength(32);
    const bought = await pay(await send(`${gateway.url}/api/items`));
    const paid = await send(`${gateway.url}/api/items`, { headers: { authorization: bought.authorization } });
    expect(paid.status).toBe(200);
  }, 30_000);

  it('shares tokens between two instances on one PostgreSQL database', async () => {
    // The server the l402 store tests use; each run gets a database of its own, dropped after.
    const db = await Testing.database('l402_gateway');
    try {
      const one = await start(yaml(db.yaml));
      const two = await start(yaml(db.yaml));
      expect(one.store).toBe(`postgres ${db.address}/${db.name}`);
      const bought = await pay(await send(`${one.url}/api/items`));
      const headers = { authorization: bought.authorization };
      const paid = await send(`${two.url}/api/items`, { headers });
      expect(paid.status).toBe(200);
      expect((await send(`${one.url}/api/items`, { headers })).status).toBe(200);
      // A revocation on one instance holds on both: at once on `two`, within a second on `one`.
      const { Credential, Identifier } = await import('l402');
      const { macaroon } = Credential.parse(bought.authorization)!;
      expect(await two.revoke(Identifier.decode(macaroon.identifier).tokenId)).toBe(true);
      expect((await send(`${two.url}/api/items`, { headers })).status).toBe(402);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect((await send(`${one.url}/api/items`, { headers })).status).toBe(402);
      await Promise.all([one.close(), two.close()]);
    } finally {
      await db.drop();
    }
  }, 30_000);

  it('removes unpaid tokens once their invoice has expired', async () => {
    let now = Date.now();
    const gateway = await start(yaml(), { now: () => now, sweepIntervalMs: 50 });
    expect((await send(`${gateway.url}/api/items`)).status).toBe(402);
    const store = await Sqlite.open({ path: join(lastBasedir, 'gateway.db') });
    try {
      expect(await store.transactions()).toHaveLength(1);
      now += 2 * 3600 * 1000;
      await expect.poll(() => store.transactions(), { timeout: 2_000 }).toHaveLength(0);
    } finally {
      await store.close();
    }
  });
});

describe('shutdown', () => {
  it('stops accepting, lets a slow request in flight finish, then closes', async () => {
    const gateway = await start(yaml());
    // An idle keep-alive connection (HTTP/1.1) and an idle HTTP/2 session must not hold the shutdown up.
    const agent = new http.Agent({ keepAlive: true });
    await new Promise((resolve) =>
      http.get(`${gateway.url}/free/idle`, { agent }, (r) => r.resume().on('end', resolve)),
    );
    const session = http2.connect(gateway.url);
    await once(session, 'connect');
    const before = seen.length;
    const slow = send(`${gateway.url}/free/slow`);
    await expect.poll(() => seen.slice(before).some((s) => s.url === '/free/slow')).toBe(true);
    const closing = Date.now();
    const closed = gateway.close({ graceMs: 5_000 });
    await expect(send(`${gateway.url}/free/x`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect((await slow).status).toBe(200);
    await closed;
    expect(Date.now() - closing).toBeLessThan(2_000);
    agent.destroy();
    session.destroy();
  });

  it('cuts requests still in flight when the grace period is over', async () => {
    const gateway = await start(yaml());
    const before = seen.length;
    const slow = send(`${gateway.url}/free/slow?ms=3000`).catch((error: unknown) => error);
    await expect.poll(() => seen.slice(before).some((s) => s.url.startsWith('/free/slow'))).toBe(true);
    await gateway.close({ graceMs: 200 });
    expect(await slow).toMatchObject({ code: 'ECONNRESET' });
  });
});
