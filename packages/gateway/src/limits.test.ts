/**
 * Freebies, rate limits, the blocklist and trusted proxies end to end: real gateways on loopback
 * (clients on several loopback addresses, 127.0.0.0/8 being all local on Linux), the devnet for
 * payments, SQLite files, the PostgreSQL server (`L402_TEST_POSTGRES_URL`, a database per test) and
 * the Redis server at 127.0.0.1:6379 (keys under a prefix per test, removed afterwards).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import BetterSqlite3 from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import * as Log from './Log.js';
import * as Testing from './testing.js';

const backend = http.createServer((request, response) => {
  request.resume();
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ ok: true, url: request.url }));
});

/** A request from `from` (a loopback address), with `headers`. */
const send = (url: string, options: { headers?: http.OutgoingHttpHeaders; from?: string } = {}) =>
  Testing.send(url, { from: '127.0.0.1', ...options });

/** The statuses of `n` requests in a row. */
async function statuses(n: number, url: string, options: Parameters<typeof send>[1] = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await send(url, options)).status);
  return out;
}

const world = Testing.useWorld({ name: 'l402-limits-', backend });
const run = randomBytes(4).toString('hex');
const redis = new Redis({ host: '127.0.0.1', port: 6379 });
const prefixes: string[] = [];

afterAll(async () => {
  for (const prefix of prefixes) await Testing.dropKeys(redis, prefix);
  redis.disconnect();
});

/** A Redis key prefix of this test's own, removed after the run. */
function redisPrefix(): string {
  const prefix = `l402-test.${run}.${prefixes.length}:`;
  prefixes.push(prefix);
  return prefix;
}

/**
 * Services: `free` (freebie 2), `paid` (one request a minute per client, burst 2), `open` (burst 3 per
 * hour, and one more rule for `/open/strict`).
 */
function yaml(extra = '', basedir = world.basedir()): string {
  return world.config(
    `
  - name: free
    pathregexp: '^/free/'
    address: "${world.upstream}"
    auth: freebie 2
    price: 3
  - name: paid
    pathregexp: '^/paid/'
    address: "${world.upstream}"
    price: 5
    ratelimits:
      - requests: 1
        per: 1m
        burst: 2
  - name: open
    pathregexp: '^/open/'
    address: "${world.upstream}"
    auth: off
    ratelimits:
      - requests: 3
        per: 1h
      - pathregexp: '^/open/strict'
        requests: 1
        per: 1h
`,
    { extra, basedir },
  );
}

const start = world.start;

const pay = async (reply: Testing.Reply): Promise<string> =>
  (await world.pay(Testing.headerValues(reply.lines, 'www-authenticate'))).authorization;

/** A TCP relay to the real Redis server that the test can cut (closing it and every connection). */
function redisRelay() {
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const server = net.connect(6379, '127.0.0.1');
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(server).pipe(client);
  });
  const cut = () => {
    const closed = new Promise((r) => relay.close(r));
    for (const s of sockets) s.destroy();
    return closed;
  };
  return { relay, cut };
}

/** Asks `url` until it is not refused (the gateway's Redis client reconnects on its own, within 2 s of backoff); its status. */
async function freeAgain(url: string): Promise<number> {
  let status = 402;
  for (let i = 0; i < 50 && status === 402; i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await send(url)).status;
  }
  return status;
}

describe('freebies', () => {
  it('are counted in the SQLite file, so a restart does not hand out more', async () => {
    const basedir = world.basedir();
    const one = await start(yaml('', basedir));
    expect(await statuses(1, `${one.url}/free/a`)).toEqual([200]);
    // Another address of the same /24 shares the allowance.
    expect(await statuses(1, `${one.url}/free/a`, { from: '127.0.0.9' })).toEqual([200]);
    expect(await statuses(1, `${one.url}/free/a`)).toEqual([402]);
    await one.close();
    const two = await start(yaml('', basedir));
    expect(await statuses(2, `${two.url}/free/a`)).toEqual([402, 402]);
    // Another /24 has its own.
    expect(await statuses(3, `${two.url}/free/a`, { from: '127.0.1.1' })).toEqual([200, 200, 402]);
    const db = new BetterSqlite3(join(basedir, 'gateway.db'), { readonly: true });
    const rows = db.prepare('SELECT key, used FROM gateway_counters ORDER BY key').all();
    db.close();
    expect(rows).toEqual([
      { key: 'freebie:free:127.0.0.0/24', used: 2 },
      { key: 'freebie:free:127.0.1.0/24', used: 2 },
    ]);
  }, 30_000);

  it('are shared by two instances on one PostgreSQL database', async () => {
    const db = await Testing.database('l402_limits');
    try {
      const one = await start(yaml(db.yaml));
      const two = await start(yaml(db.yaml));
      expect(await statuses(1, `${one.url}/free/a`)).toEqual([200]);
      expect(await statuses(2, `${two.url}/free/a`)).toEqual([200, 402]);
      expect(await statuses(1, `${one.url}/free/a`)).toEqual([402]);
      await Promise.all([one.close(), two.close()]);
    } finally {
      await db.drop();
    }
  }, 30_000);
});

describe('rate limits', () => {
  it('answer 429 with Retry-After past the burst, per client network, and gRPC clients with grpc-status 8', async () => {
    const gateway = await start(yaml());
    expect(await statuses(3, `${gateway.url}/open/a`)).toEqual([200, 200, 200]);
    const refused = await send(`${gateway.url}/open/a`);
    expect(refused.status).toBe(429);
    expect(refused.body).toBe('rate limit exceeded\n');
    // Three an hour: the next token is twenty minutes away (less what refilled during the test).
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(1_100);
    expect(retryAfter).toBeLessThanOrEqual(1_200);
    // The same /24 shares the bucket; another /24 has its own.
    expect(await statuses(1, `${gateway.url}/open/a`, { from: '127.0.0.2' })).toEqual([429]);
    expect(await statuses(4, `${gateway.url}/open/a`, { from: '127.0.2.1' })).toEqual([200, 200, 200, 429]);
    const grpc = await send(`${gateway.url}/open/a`, { headers: { 'content-type': 'application/grpc' } });
    expect(grpc.status).toBe(200);
    expect(grpc.headers['grpc-status']).toBe('8');
    expect(grpc.headers['grpc-message']).toBe('rate limit exceeded');
    expect(Number(grpc.headers['retry-after'])).toBeGreaterThan(1_100);
  });

  it('apply every matching rule, and a refused request takes no token', async () => {
    const gateway = await start(yaml());
    expect(await statuses(3, `${gateway.url}/open/strict`, { from: '127.0.3.1' })).toEqual([200, 429, 429]);
    // The general rule lost one token only: two left.
    expect(await statuses(3, `${gateway.url}/open/other`, { from: '127.0.3.1' })).toEqual([200, 200, 429]);
  });

  it('key paid requests by token id: two tokens have separate buckets; challenges are not limited', async () => {
    const gateway = await start(yaml());
    const challenges = await Promise.all([send(`${gateway.url}/paid/x`), send(`${gateway.url}/paid/x`)]);
    expect(challenges.map((c) => c.status)).toEqual([402, 402]);
    // More unpaid requests than the burst still get challenges (Aperture limits after authentication).
    expect(await statuses(3, `${gateway.url}/paid/x`)).toEqual([402, 402, 402]);
    const [a, b] = await Promise.all(challenges.map(pay));
    expect(await statuses(3, `${gateway.url}/paid/x`, { headers: { authorization: a } })).toEqual([
      200, 200, 429,
    ]);
    expect(await statuses(3, `${gateway.url}/paid/x`, { headers: { authorization: b } })).toEqual([
      200, 200, 429,
    ]);
    // Token `a` is refused from any address: its bucket is the token's, not the network's.
    const elsewhere = await send(`${gateway.url}/paid/x`, {
      headers: { authorization: a },
      from: '127.0.4.1',
    });
    expect(elsewhere.status).toBe(429);
    expect(Number(elsewhere.headers['retry-after'])).toBeGreaterThan(50);
    expect(Number(elsewhere.headers['retry-after'])).toBeLessThanOrEqual(60);
  }, 30_000);
});

describe('rate limits for a gRPC client', () => {
  it('end a call past the burst with RESOURCE_EXHAUSTED and retry-after in the metadata', async () => {
    const definition = protoLoader.loadSync(
      fileURLToPath(new URL('./fixtures/hello.proto', import.meta.url)),
    );
    const Greeter = (grpc.loadPackageDefinition(definition).hello as grpc.GrpcObject)
      .Greeter as grpc.ServiceClientConstructor;
    const server = new grpc.Server();
    server.addService(Greeter.service, {
      SayHello: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, done: grpc.sendUnaryData<unknown>) =>
        done(null, { message: `hello ${call.request.name}` }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const gateway = await start(`
listenaddr: "127.0.0.1:8080"
insecure: true
basedir: ${JSON.stringify(world.basedir())}
authenticator:
  disable: true
services:
  - name: greeter
    pathregexp: '^/hello\\.Greeter/'
    address: "127.0.0.1:${port}"
    auth: off
    ratelimits: [{ requests: 1, per: 1h }]
`);
    const client = new Greeter(
      gateway.url.replace('http://', ''),
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & {
      SayHello(
        r: { name: string },
        cb: (e: grpc.ServiceError | null, reply?: { message: string }) => void,
      ): void;
    };
    const call = () =>
      new Promise<{ error: grpc.ServiceError | null; reply?: { message: string } }>((resolve) =>
        client.SayHello({ name: 'x' }, (error, reply) => resolve({ error, reply })),
      );
    expect((await call()).reply).toEqual({ message: 'hello x' });
    const { error } = await call();
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toBe('rate limit exceeded');
    expect(Number(error?.metadata.get('retry-after')[0])).toBeGreaterThan(3_500);
    client.close();
    server.forceShutdown();
  });
});

describe('through Redis', () => {
  it('two instances share the freebies and the rate limit buckets', async () => {
    const prefix = redisPrefix();
    const config = `redis:\n  url: "redis://127.0.0.1:6379"\n  prefix: "${prefix}"`;
    const one = await start(yaml(config));
    const two = await start(yaml(config));
    expect(await statuses(1, `${one.url}/free/a`)).toEqual([200]);
    expect(await statuses(2, `${two.url}/free/a`)).toEqual([200, 402]);
    expect(await statuses(1, `${one.url}/free/a`)).toEqual([402]);
    expect(await redis.get(`${prefix}count:freebie:free:127.0.0.0/24`)).toBe('2');

    expect(await statuses(2, `${one.url}/open/a`)).toEqual([200, 200]);
    expect(await statuses(2, `${two.url}/open/a`)).toEqual([200, 429]);
    const refused = await send(`${one.url}/open/a`);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(1_100);
    expect(await redis.exists(`${prefix}rate:{open|ip:127.0.0.0/24}:0`)).toBe(1);
  });

  it('while Redis is unreachable: starts, no request is free, limits hold per instance, paid access works', async () => {
    const lines: string[] = [];
    const log = Log.create({ level: 'warn', write: (line) => lines.push(line) });
    const gateway = await start(yaml(`redis:\n  url: "redis://127.0.0.1:${world.closedPort}"`), { log });
    expect(await statuses(2, `${gateway.url}/free/a`)).toEqual([402, 402]);
    expect(await statuses(4, `${gateway.url}/open/a`)).toEqual([200, 200, 200, 429]);
    const token = await pay(await send(`${gateway.url}/free/a`));
    expect(await statuses(1, `${gateway.url}/free/a`, { headers: { authorization: token } })).toEqual([200]);
    const messages = lines.map((line) => JSON.parse(line).msg as string);
    expect(messages).toContain(
      'redis unreachable: no request is free and rate limits are per instance until it answers',
    );
    expect(messages).toContain('freebies unavailable: no request is free until the store answers');
  }, 30_000);

  it('when Redis goes away and comes back, freebies stop and resume without a restart', async () => {
    const { relay, cut } = redisRelay();
    const port = await Testing.listen(relay);
    const prefix = redisPrefix();
    const gateway = await start(yaml(`redis:\n  url: "redis://127.0.0.1:${port}"\n  prefix: "${prefix}"`));
    expect(await statuses(1, `${gateway.url}/free/a`)).toEqual([200]);
    await cut();
    expect(await statuses(1, `${gateway.url}/free/a`)).toEqual([402]);
    relay.listen(port, '127.0.0.1');
    await once(relay, 'listening');
    expect(await freeAgain(`${gateway.url}/free/a`)).toBe(200);
    expect(await statuses(1, `${gateway.url}/free/a`)).toEqual([402]);
    await gateway.close({ graceMs: 1_000 });
    await cut();
  }, 30_000);
});

describe('through Redis, started while it is down', () => {
  it('serves from the start and picks Redis up once it answers', async () => {
    const { relay, cut } = redisRelay();
    // A port of its own (the one other tests use has a gateway of theirs still trying it).
    const port = await Testing.deadPort();
    const prefix = redisPrefix();
    const gateway = await start(yaml(`redis:\n  url: "redis://127.0.0.1:${port}"\n  prefix: "${prefix}"`));
    expect(await statuses(1, `${gateway.url}/free/a`)).toEqual([402]);
    relay.listen(port, '127.0.0.1');
    await once(relay, 'listening');
    expect(await freeAgain(`${gateway.url}/free/a`)).toBe(200);
    expect(await redis.get(`${prefix}count:freebie:free:127.0.0.0/24`)).toBe('1');
    await gateway.close({ graceMs: 1_000 });
    await cut();
  }, 30_000);
});

describe('client address', () => {
  it('ignores X-Forwarded-For from an untrusted peer', async () => {
    const gateway = await start(yaml());
    const forwarded = (n: number) => ({ headers: { 'x-forwarded-for': `198.51.${n}.7` }, from: '127.0.5.1' });
    expect((await send(`${gateway.url}/free/a`, forwarded(1))).status).toBe(200);
    expect((await send(`${gateway.url}/free/a`, forwarded(2))).status).toBe(200);
    expect((await send(`${gateway.url}/free/a`, forwarded(3))).status).toBe(402);
  });

  it('honours X-Forwarded-For from a trusted proxy, for freebies, rate limits and the blocklist', async () => {
    const gateway = await start(
      yaml('trustedproxies: ["127.0.6.1"]\nblocklist: ["203.0.113.0/24", "127.0.7.7"]'),
    );
    const via = (client: string, from = '127.0.6.1') => ({ headers: { 'x-forwarded-for': client }, from });
    expect(await statuses(3, `${gateway.url}/free/a`, via('198.51.100.7'))).toEqual([200, 200, 402]);
    expect(await statuses(3, `${gateway.url}/free/a`, via('198.51.101.7'))).toEqual([200, 200, 402]);
    // A client cannot prepend its own entries: the rightmost untrusted hop counts.
    expect(await statuses(1, `${gateway.url}/free/a`, via('10.9.9.9, 198.51.101.8'))).toEqual([402]);
    expect(await statuses(4, `${gateway.url}/open/a`, via('198.51.102.1'))).toEqual([200, 200, 200, 429]);
    expect(await statuses(1, `${gateway.url}/open/a`, via('198.51.103.1'))).toEqual([200]);
    const blocked = await send(`${gateway.url}/open/a`, via('203.0.113.50'));
    expect(blocked.status).toBe(403);
    expect(blocked.body).toBe('access denied\n');
    // The same header from a peer that is not trusted proves nothing.
    expect((await send(`${gateway.url}/open/a`, via('203.0.113.50', '127.0.8.1'))).status).toBe(200);
    expect((await send(`${gateway.url}/open/a`, { from: '127.0.7.7' })).status).toBe(403);
    expect((await send(`${gateway.url}/open/a`, { from: '127.0.7.8' })).status).toBe(200);
  });
});
