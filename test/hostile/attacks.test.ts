/**
 * The attack matrix against a running gateway (real listener on loopback, invoices from the devnet
 * merchant, paid by the devnet payer): forged, widened, cross-service, expired, revoked and
 * cross-instance tokens; request smuggling with conflicting `Content-Length` / `Transfer-Encoding`
 * written on a raw TCP socket; path tricks around `pathregexp` and the whitelist; Host header tricks.
 *
 * Beside each answer, one invariant is checked on the paid service's upstream: every request that
 * reached it either carried a token the test legitimately bought or asked for a whitelisted path.
 * An attack "works" if anything else gets there, whatever status the client saw.
 */
import { Devnet } from '@l402/devnet';
import { Config, Gateway, Log } from '@l402/gateway';
import { Challenge, Credential, Macaroon } from 'l402';
import { type Backend, connect } from 'l402/lightning';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buy, cleanup, raw, statuses, tempDir, type Upstream, upstream } from '../faults/harness.js';

let devnet: Devnet.Devnet;
let payer: Backend;
/** The paid services' upstream: what reaches it is what the invariant checks. */
let paidUp: Upstream;
/** The free services' upstream. */
let freeUp: Upstream;
let gateway: Gateway.Gateway;
/** A second gateway with the same config and a store of its own. */
let other: Gateway.Gateway;
let clock = Date.now();
const now = () => clock;
const port = () => Number(new URL(gateway.url).port);
/** Credentials bought honestly (in {@link normal} form): the only ones allowed to reach the paid upstream. */
const legit = new Set<string>();
const allow = (authorization: string) => legit.add(normal(authorization));

/** `<macaroon base64>:<preimage hex>`, whatever form the credential was written in. */
function normal(authorization: string): string {
  const { macaroon, preimage } = Credential.parse(authorization)!;
  return `${Macaroon.toBase64(macaroon)}:${Buffer.from(preimage).toString('hex')}`;
}

function yaml(dir: string): string {
  return `
listenaddr: "127.0.0.1:8081"
insecure: true
basedir: ${JSON.stringify(dir)}
debuglevel: error
authenticator:
  uri: ${JSON.stringify(devnet.document.nodes.merchant!.uris.lnd)}
services:
  - name: other
    hostregexp: '^other\\.example(:\\d+)?$'
    address: "${freeUp.address}"
    auth: off
  - name: api
    pathregexp: '^/api/'
    address: "${paidUp.address}"
    price: 2
    timeout: 3600
    capabilities: read,write
    constraints:
      max_items: "10"
    authwhitelistpaths: ['^/api/public/']
  - name: second
    pathregexp: '^/second/'
    address: "${paidUp.address}"
    price: 1
  - name: free
    pathregexp: '^/free/'
    address: "${freeUp.address}"
    auth: off
`;
}

async function startGateway(): Promise<Gateway.Gateway> {
  const { config } = Config.parse(yaml(tempDir()), 'attacks.yaml', { env: {} });
  return Gateway.start(config, { log: Log.silent, listen: { host: '127.0.0.1', port: 0 }, now });
}

beforeAll(async () => {
  devnet = await Devnet.start({ home: tempDir(), publish: false });
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
  paidUp = await upstream();
  freeUp = await upstream();
  gateway = await startGateway();
  other = await startGateway();
}, 120_000);

afterAll(async () => {
  await gateway?.close({ graceMs: 100 });
  await other?.close({ graceMs: 100 });
  await payer?.close();
  await devnet?.close();
  await paidUp?.close();
  await freeUp?.close();
  cleanup();
});

beforeEach(() => {
  clock = Date.now();
});

/** Every request the paid upstream saw carried an honest token or asked for a whitelisted path. */
function expectNoLeak() {
  const leaks = paidUp.seen.filter(
    (s) =>
      !s.url.startsWith('/api/public/') && (s.authorization === undefined || !legit.has(credentialOf(s))),
  );
  expect(leaks).toEqual([]);
}

/** The gateway forwards `LSAT <mac>:<pre>` and `L402 <mac>:<pre>`: the L402 one, normalised. */
function credentialOf(seen: { authorization: string | undefined }): string {
  const l402 = /L402 ([^,\s]+)/.exec(seen.authorization ?? '');
  return l402 ? normal(`L402 ${l402[1]}`) : '';
}

async function buyFrom(g: Gateway.Gateway, path = '/api/items') {
  const reply = await fetch(`${g.url}${path}`);
  expect(reply.status).toBe(402);
  await reply.arrayBuffer();
  const token = await buy(reply, payer);
  allow(token.authorization);
  return token;
}

async function get(path: string, headers: Record<string, string> = {}, g = gateway) {
  const reply = await fetch(`${g.url}${path}`, { headers });
  return { status: reply.status, body: await reply.text() };
}

describe('tokens that must not open the door', () => {
  let token: Awaited<ReturnType<typeof buyFrom>>;
  beforeAll(async () => {
    token = await buyFrom(gateway);
  }, 30_000);

  it('accepts the honest token (the baseline the refusals are measured against)', async () => {
    expect((await get('/api/items', { authorization: token.authorization })).status).toBe(200);
    expectNoLeak();
  });

  it('refuses a forged signature, a foreign root key, a wrong preimage and a missing preimage', async () => {
    const { macaroon, preimage } = Credential.parse(token.authorization)!;
    const flipped = new Uint8Array(macaroon.signature);
    flipped[0]! ^= 1;
    const forged = { ...macaroon, signature: flipped };
    const foreign = Macaroon.create({
      rootKey: new Uint8Array(32).fill(7),
      identifier: macaroon.identifier,
      location: macaroon.location,
    });
    const wrong = new Uint8Array(preimage);
    wrong[31]! ^= 1;
    const attempts = [
      Credential.format({ macaroon: forged, preimage }),
      Credential.format({ macaroon: foreign, preimage }),
      Credential.format({ macaroon, preimage: wrong }),
      `L402 ${Macaroon.toBase64(macaroon)}`,
      `L402 ${Macaroon.toBase64(macaroon)}:`,
      `L402 :${Buffer.from(preimage).toString('hex')}`,
      'L402 not-base64!!:zz',
    ];
    for (const authorization of attempts) {
      const reply = await get('/api/items', { authorization });
      expect([401, 402]).toContain(reply.status);
    }
    expectNoLeak();
  });

  it('refuses widened tokens: a larger constraint, more capabilities, another service added', async () => {
    const { macaroon, preimage } = Credential.parse(token.authorization)!;
    const widen = (...caveats: string[]) =>
      Credential.format({ macaroon: Macaroon.addFirstPartyCaveat(macaroon, ...caveats), preimage });
    const attempts = [
      widen('max_items=100'),
      widen('api_capabilities=read,write,admin'),
      widen('services=api:0,second:0'),
      widen('services=second:0'),
    ];
    for (const authorization of attempts) {
      const reply = await get('/api/items?max_items=50', { authorization });
      expect([401, 402]).toContain(reply.status);
    }
    // Narrowing is the holder's right: a smaller limit and fewer capabilities still work.
    const narrowed = widen('max_items=5', 'api_capabilities=read');
    allow(narrowed);
    expect((await get('/api/items', { authorization: narrowed })).status).toBe(200);
    expectNoLeak();
  });

  it("refuses a token for one service on another service's path", async () => {
    const reply = await get('/second/items', { authorization: token.authorization });
    expect([401, 402]).toContain(reply.status);
    expectNoLeak();
  });

  it('refuses the token once its validity has passed', async () => {
    const fresh = await buyFrom(gateway);
    expect((await get('/api/items', { authorization: fresh.authorization })).status).toBe(200);
    clock = Date.now() + 3_601_000;
    const reply = await get('/api/items', { authorization: fresh.authorization });
    expect([401, 402]).toContain(reply.status);
    expectNoLeak();
  }, 30_000);

  it('refuses a revoked token at once, including after it was cached as verified', async () => {
    const doomed = await buyFrom(gateway);
    expect((await get('/api/items', { authorization: doomed.authorization })).status).toBe(200);
    expect(await gateway.revoke(Buffer.from(doomed.tokenId, 'hex'))).toBe(true);
    const before = paidUp.seen.length;
    expect([401, 402]).toContain((await get('/api/items', { authorization: doomed.authorization })).status);
    expect(paidUp.seen.slice(before)).toEqual([]);
    expectNoLeak();
  }, 30_000);

  it('refuses a token minted by another instance with its own store', async () => {
    const foreign = await buyFrom(other);
    // It works where it was bought …
    expect((await get('/api/items', { authorization: foreign.authorization }, other)).status).toBe(200);
    // … and nowhere else.
    const before = paidUp.seen.length;
    const reply = await get('/api/items', { authorization: foreign.authorization });
    expect([401, 402]).toContain(reply.status);
    expect(paidUp.seen.slice(before)).toEqual([]);
  }, 30_000);

  it('refuses an identifier swapped into an honest macaroon and a token whose preimage belongs to another', async () => {
    const a = Credential.parse(token.authorization)!;
    const second = await buyFrom(gateway);
    const b = Credential.parse(second.authorization)!;
    const swapped = Macaroon.create({ rootKey: new Uint8Array(32), identifier: b.macaroon.identifier });
    for (const authorization of [
      Credential.format({ macaroon: a.macaroon, preimage: b.preimage }),
      Credential.format({ macaroon: { ...swapped, signature: a.macaroon.signature }, preimage: b.preimage }),
    ]) {
      expect([401, 402]).toContain((await get('/api/items', { authorization })).status);
    }
    expectNoLeak();
  }, 30_000);
});

describe('request smuggling on a raw socket', () => {
  // Each request is a free one whose body hides a request for the paid service; if the gateway and
  // its upstream disagree on where the first request ends, the hidden one reaches the paid upstream.
  const hidden = 'GET /api/secret HTTP/1.1\r\nHost: x\r\n\r\n';
  const cases: Record<string, string> = {
    'Content-Length and Transfer-Encoding together': `POST /free/a HTTP/1.1\r\nHost: x\r\nContent-Length: ${
      5 + hidden.length
    }\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
    'two different Content-Lengths': `POST /free/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
    'Transfer-Encoding with a trailing token': `POST /free/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
    'obfuscated Transfer-Encoding': `POST /free/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${hidden}`,
    'Transfer-Encoding with a space before the colon': `POST /free/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: ${
      5 + hidden.length
    }\r\n\r\n0\r\n\r\n${hidden}`,
    'a bare LF line ending': `POST /free/a HTTP/1.1\nHost: x\nContent-Length: ${hidden.length}\n\n${hidden}`,
    'a chunk size with a bogus extension and overflow': `POST /free/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n${hidden}\r\n0\r\n\r\n`,
  };
  for (const [name, bytes] of Object.entries(cases)) {
    it(`never lets the hidden request through: ${name}`, async () => {
      const before = paidUp.seen.length;
      const { text } = await raw(port(), bytes, 1_500);
      // Whatever the gateway answered, no second 200 for the hidden request, and nothing new upstream.
      const codes = statuses(text);
      expect(codes.filter((c) => c === 200).length).toBeLessThanOrEqual(1);
      expect(paidUp.seen.slice(before)).toEqual([]);
      expect(freeUp.seen.some((s) => s.url === '/api/secret')).toBe(false);
    });
  }

  it('a pipelined paid request after a free one is judged on its own (402)', async () => {
    const before = paidUp.seen.length;
    const { text } = await raw(
      port(),
      'GET /free/a HTTP/1.1\r\nHost: x\r\n\r\nGET /api/secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      3_000,
    );
    expect(statuses(text)).toEqual([200, 402]);
    expect(paidUp.seen.slice(before)).toEqual([]);
  }, 10_000);
});

describe('path tricks around pathregexp and the whitelist', () => {
  // Raw request targets, as an attacker writes them (fetch would normalise them first).
  const targets = [
    '/api/public/../secret',
    '/api/public/%2e%2e/secret',
    '/api/public/%2E%2E/secret',
    '/api/public/.%2e/secret',
    '/api/public%2f..%2fsecret',
    '/api/public/..%2fsecret',
    '/api/public/..;/secret',
    '/api/public;/../secret',
    '/api/public\\..\\secret',
    '/api/public/%252e%252e/secret',
    '//api/secret',
    '/./api/secret',
    '/free/../api/secret',
    '/free/%2e%2e/api/secret',
    '/free%2f..%2fapi/secret',
    '/free/..%2fapi/secret',
    '/free/..\\api/secret',
    '/free/;/../api/secret',
    '/API/secret',
    '/Api/public/../secret',
    '/api%2fsecret',
    '/%61pi/secret',
    '/api/secret#/api/public/',
    '/api/secret?/api/public/',
    '/api/public/%00/../secret',
    '/api/public/%c0%ae%c0%ae/secret',
    'http://x/api/secret',
    'http://other.example/../api/secret',
    '*',
    'api/secret',
  ];
  for (const target of targets) {
    it(`"${target}": paid, refused or free, never the paid upstream without a token`, async () => {
      const before = paidUp.seen.length;
      const { text } = await raw(port(), `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const [code] = statuses(text);
      expect(code).toBeDefined();
      const reached = paidUp.seen.slice(before);
      // A 200 from the paid upstream is only for a path the whitelist lets through.
      for (const s of reached) expect(s.url.startsWith('/api/public/')).toBe(true);
      expectNoLeak();
    });
  }
});

describe('Host header tricks', () => {
  const heads = [
    'Host: other.example.evil.com',
    'Host: evil.com.other.example',
    'Host: OTHER.EXAMPLE',
    'Host: other.example.',
    'Host: other.example:80@evil',
    'Host: other.example\r\nHost: x',
    'Host: x\r\nHost: other.example',
    'Host: other.example\r\nX-Forwarded-Host: x',
    'Host: x\r\nX-Forwarded-Host: other.example',
    'Host: x\r\nForwarded: host=other.example',
    'Host: other.example%2f',
    'Host: other.example\tx',
    'Host:',
  ];
  for (const head of heads) {
    it(`${JSON.stringify(head)}: a paid path stays paid unless the host is the free service's`, async () => {
      const before = paidUp.seen.length;
      const { text } = await raw(port(), `GET /api/secret HTTP/1.1\r\n${head}\r\nConnection: close\r\n\r\n`);
      const [code] = statuses(text);
      expect(code === undefined || code >= 400 || code === 200).toBe(true);
      expect(paidUp.seen.slice(before)).toEqual([]);
      expectNoLeak();
    });
  }

  it('a Host the free service matches goes to the free upstream only', async () => {
    const beforeFree = freeUp.seen.length;
    const { text } = await raw(
      port(),
      'GET /api/secret HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n',
    );
    expect(statuses(text)).toEqual([200]);
    expect(freeUp.seen.slice(beforeFree).map((s) => s.url)).toEqual(['/api/secret']);
    expectNoLeak();
  });
});

describe('the challenge itself', () => {
  it('answers 402 with a parseable challenge to every unpaid paid-path request', async () => {
    const reply = await fetch(`${gateway.url}/api/items`);
    expect(reply.status).toBe(402);
    expect(Challenge.l402(Challenge.parse(reply.headers.get('www-authenticate')))).toBeDefined();
    await reply.arrayBuffer();
  });
});
