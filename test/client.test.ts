/**
 * The client SDK (`l402/client`, `l402/client/node`) end to end on the devnet: against the gateway and
 * the node:http middleware, paying with the devnet payer's wallets. Payments are counted twice: in the
 * client's ledger and at the paying node itself. Hand-made loopback servers answer with the challenges
 * a real server would not (zero-amount, over-priced, wrong network, mismatched hash, expired), with the
 * spec's `token=`/`version="0"` form only, and with MPP `Payment` charges; a second origin records what
 * a redirect sends it. Child processes share one file store (one payment) and one is killed between
 * paying and retrying (no second payment on restart).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Devnet } from '@l402/devnet';
import { Config, Gateway, Log } from '@l402/gateway';
import * as esbuild from 'esbuild';
import { Credential, Invoice, Macaroon, Token } from 'l402';
import {
  BudgetError,
  createFetch,
  InsecureTransportError,
  InvoiceRefusedError,
  Ledger,
  ReplayError,
  TokenStore,
  type Wallet,
} from 'l402/client';
import { decodeApertureToken, FileLedger, FileTokenStore, openWallet } from 'l402/client/node';
import { type Backend, connect, unknownPayment } from 'l402/lightning';
import * as NodeL402 from 'l402/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'l402-client-'));
const masterKey = 'c7'.repeat(32);
let devnet: Devnet.Devnet;
let merchant: Backend;
let payer: Backend;
const closers: (() => Promise<void>)[] = [];

/** Payments the devnet payer node made that succeeded: the wallet's own count. */
const nodePayments = () =>
  devnet.network
    .node('payer')
    .listPayments()
    .filter((p) => p.state === 'succeeded').length;

const listening = async (server: http.Server) => {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};
async function serve(listener: http.RequestListener): Promise<string> {
  const server = http.createServer(listener).listen(0, '127.0.0.1');
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return listening(server);
}

const readBody = async (req: http.IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
};

let gatewayUrl: string;
let gateway: Gateway.Gateway;
let mwUrl: string;
/** Requests the second origin saw (for the redirect test). */
const seenByOther: http.IncomingHttpHeaders[] = [];
let otherUrl: string;

beforeAll(async () => {
  devnet = await Devnet.start({ home, publish: false });
  writeFileSync(join(home, 'devnet.json'), JSON.stringify(devnet.document), { mode: 0o600 });
  merchant = await connect(devnet.document.nodes.merchant!.uris.lnd);
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);

  // An upstream for the gateway: echoes the path.
  const upstream = await serve(async (req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`upstream ${req.method} ${req.url} ${await readBody(req)}`);
  });
  const { config } = Config.parse(
    `
listenaddr: "127.0.0.1:8080"
insecure: true
basedir: ${JSON.stringify(join(home, 'gw'))}
authenticator:
  uri: ${JSON.stringify(devnet.document.nodes.merchant!.uris.lnd)}
services:
  - name: api
    pathregexp: '^/api/'
    address: "${upstream.slice('http://'.length)}"
    price: 21
    timeout: 3600
  - name: short
    pathregexp: '^/short/'
    address: "${upstream.slice('http://'.length)}"
    price: 3
    timeout: 60
`,
    'test.yaml',
    { env: {} },
  );
  gateway = await Gateway.start(config, { log: Log.silent, listen: { host: '127.0.0.1', port: 0 } });
  gatewayUrl = gateway.url;
  closers.push(() => gateway.close({ graceMs: 500 }));

  otherUrl = await serve((req, res) => {
    seenByOther.push(req.headers);
    res.end('other origin');
  });

  // The node:http middleware: a paid GET, a paid POST echoing its body, and redirects.
  const paywall = NodeL402.l402({ backend: devnet.document.nodes.merchant!.uris.lnd, masterKey });
  closers.push(() => paywall.close());
  const route = { service: 'mw', price: 10 };
  const data = paywall.protect(route, (_req, res) => res.end('paid data'));
  const echo = paywall.protect(route, async (req, res) => res.end(`echo ${await readBody(req)}`));
  mwUrl = await serve((req, res) => {
    const path = req.url?.split('?')[0];
    if (path === '/api/data') return data(req, res);
    if (path === '/api/echo') return echo(req, res);
    if (path === '/redirect/other') {
      res.writeHead(302, { location: `${otherUrl}/landing` });
      return res.end();
    }
    if (path === '/redirect/same') {
      res.writeHead(307, { location: '/api/echo' });
      return res.end();
    }
    res.statusCode = 404;
    res.end();
  });
}, 60_000);

afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await payer?.close();
  await merchant?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
  rmSync(join(root, `test/.client-child-${process.pid}`), { recursive: true, force: true });
});

const client = (options: Partial<Parameters<typeof createFetch>[0]> = {}) =>
  createFetch({ wallet: payer, store: TokenStore.memory(), ledger: Ledger.memory(), ...options });

describe('the gateway', () => {
  it('pays once, then reuses the token; the ledger and the paying node agree', async () => {
    const fetch402 = client();
    const before = nodePayments();
    const res = await fetch402(`${gatewayUrl}/api/forecast`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('upstream GET /api/forecast ');
    const paid = createFetch.payment(res)!;
    expect(paid).toMatchObject({ paid: true, reused: false, amountSats: 21, scheme: 'L402' });

    const again = await fetch402(`${gatewayUrl}/api/other?x=1`);
    expect(again.status).toBe(200);
    expect(createFetch.payment(again)).toMatchObject({
      paid: false,
      reused: true,
      paymentHash: paid.paymentHash,
    });

    expect(nodePayments() - before).toBe(1);
    const records = await fetch402.ledger.payments();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      origin: gatewayUrl,
      path: '/api/forecast',
      amountSats: 21,
      state: 'paid',
      paymentHash: paid.paymentHash,
    });
    const [token] = await fetch402.store.list(gatewayUrl);
    expect(token).toMatchObject({ state: 'paid', path: '/', services: ['api'], amountSats: 21 });
    // The api service's timeout (3600 s) is the token's expiry, read from its valid_until caveat.
    expect(token!.expiresAt! - Date.now()).toBeGreaterThan(3500_000);
  });

  it('20 parallel requests share one payment (counted in the ledger and at the node)', async () => {
    const fetch402 = client();
    const before = nodePayments();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch402(`${gatewayUrl}/api/p${i}`)),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(responses.filter((r) => createFetch.payment(r)?.paid)).toHaveLength(1);
    expect(await fetch402.ledger.payments({ state: 'paid' })).toHaveLength(1);
    expect(nodePayments() - before).toBe(1);
  });

  it('an expired token is not sent: the client buys a new one', async () => {
    let clock = Date.now();
    const fetch402 = client({ now: () => clock });
    expect((await fetch402(`${gatewayUrl}/short/a`)).status).toBe(200);
    expect(createFetch.payment(await fetch402(`${gatewayUrl}/short/a`))?.reused).toBe(true);
    clock += 120_000; // past the token's short_valid_until (60 s), well before the invoice expiry
    const res = await fetch402(`${gatewayUrl}/short/a`);
    expect(res.status).toBe(200);
    expect(createFetch.payment(res)?.paid).toBe(true);
    expect(await fetch402.ledger.payments()).toHaveLength(2);
    // The expired one is still listed, never found.
    expect(await fetch402.store.list(gatewayUrl)).toHaveLength(2);
    expect((await fetch402.store.list(gatewayUrl)).map((t) => t.services)).toEqual([['short'], ['short']]);
  });

  it('a token the server refuses (revoked) is dropped and paid for again, once', async () => {
    const events: string[] = [];
    const fetch402 = client({ onEvent: (e) => events.push(e.type) });
    const first = await fetch402(`${gatewayUrl}/api/r`);
    const old = createFetch.payment(first)!;
    expect(await gateway.revoke(Buffer.from(old.tokenId, 'hex'))).toBe(true);
    const before = nodePayments();
    const res = await fetch402(`${gatewayUrl}/api/r`);
    expect(res.status).toBe(200);
    expect(createFetch.payment(res)).toMatchObject({ paid: true });
    expect(createFetch.payment(res)!.paymentHash).not.toBe(old.paymentHash);
    expect(events).toContain('repay');
    expect(nodePayments() - before).toBe(1);
    expect((await fetch402.store.list(gatewayUrl)).map((t) => t.paymentHash)).not.toContain(old.paymentHash);
  });

  it('two services behind one gateway: each token keeps its scope, neither evicts the other', async () => {
    const fetch402 = client();
    const before = nodePayments();
    expect((await fetch402(`${gatewayUrl}/api/one`)).status).toBe(200);
    expect((await fetch402(`${gatewayUrl}/short/one`)).status).toBe(200);
    for (const path of ['/api/two', '/short/two', '/api/three', '/short/three']) {
      const res = await fetch402(`${gatewayUrl}${path}`);
      expect(createFetch.payment(res), path).toMatchObject({ reused: true });
    }
    expect(nodePayments() - before).toBe(2);
    const tokens = await fetch402.store.list(gatewayUrl);
    expect(tokens.map((t) => [t.path, t.services]).sort()).toEqual([
      ['/', ['api']],
      ['/short/', ['short']],
    ]);
  });

  it('quote reports the price without paying', async () => {
    const fetch402 = client();
    const before = nodePayments();
    const q = await fetch402.quote(`${gatewayUrl}/api/q`);
    expect(q).toMatchObject({ status: 402, cachedToken: false, price: { sats: 21, scheme: 'L402' } });
    expect(nodePayments()).toBe(before);
  });
});

describe('budgets', () => {
  const refusal = async (fetch402: ReturnType<typeof client>, url = `${gatewayUrl}/api/b`) => {
    const before = nodePayments();
    const error = await fetch402(url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(nodePayments()).toBe(before);
    return error as BudgetError;
  };
  const old = (ageMs: number, origin = 'https://elsewhere.example', amountSats = 90) => ({
    time: Date.now() - ageMs,
    origin,
    path: '/',
    amountSats,
    feeSats: 0,
    paymentHash: randomBytes(32).toString('hex'),
    tokenId: '',
  });

  it('refuses, before paying, what a limit does not allow, naming the limit', async () => {
    const maxCost = await refusal(client({ maxCostSats: 20 }));
    expect(maxCost).toBeInstanceOf(BudgetError);
    expect(maxCost).toMatchObject({
      code: 'L402_BUDGET',
      limit: 'maxCost',
      priceSats: 21,
      remainingSats: 20,
    });

    expect(await refusal(client({ budget: { perRequestSats: 20 } }))).toMatchObject({ limit: 'perRequest' });

    const perOrigin = Ledger.memory({ perOriginSats: 100 });
    await perOrigin.record(old(60_000, gatewayUrl));
    expect(await refusal(client({ ledger: perOrigin }))).toMatchObject({
      limit: 'perOrigin',
      remainingSats: 10,
    });

    const perHour = Ledger.memory({ perHourSats: 100 });
    await perHour.record(old(10 * 60_000));
    await perHour.record(old(2 * 3600_000)); // outside the hour
    expect(await refusal(client({ ledger: perHour }))).toMatchObject({ limit: 'perHour' });

    const perDay = client({ budget: { perHourSats: 100, perDaySats: 100 } });
    await perDay.ledger.record(old(5 * 3600_000));
    expect(await refusal(perDay)).toMatchObject({ limit: 'perDay' });

    const total = client({ budget: { perDaySats: 100, totalSats: 100 } });
    await total.ledger.record(old(3 * 24 * 3600_000));
    expect(await refusal(total)).toMatchObject({ limit: 'total', priceSats: 21, remainingSats: 10 });

    // Within every limit, the same request pays, and the ledger reads what it spent.
    const ok = client({
      budget: { perRequestSats: 21, perOriginSats: 21, perHourSats: 21, perDaySats: 21, totalSats: 21 },
    });
    expect((await ok(`${gatewayUrl}/api/b`)).status).toBe(200);
    expect(await ok.ledger.spent()).toBe(21);
    expect(await refusal(ok, `${mwUrl}/api/data`)).toMatchObject({ limit: 'perHour', remainingSats: 0 });
  });
});

// ——— hand-made servers ———

const rootKey = randomBytes(32);

/** A real invoice for `fields`, signed by a throwaway key (never paid: the client must refuse it first). */
function fakeInvoice(fields: Partial<Invoice.EncodeFields> & { paymentHash: Uint8Array }): string {
  return Invoice.encode(
    {
      network: 'regtest',
      amountMsat: 10_000n,
      timestamp: Math.floor(Date.now() / 1000),
      paymentSecret: randomBytes(32),
      description: 'test',
      ...fields,
    },
    randomBytes(32),
  );
}
const macaroonFor = (paymentHash: Uint8Array) =>
  Macaroon.toBase64(Token.mint({ rootKey, paymentHash }).macaroon);

describe('invoices the client refuses', () => {
  let url: string;
  beforeAll(async () => {
    url = await serve((req, res) => {
      const hash = randomBytes(32);
      const kind = req.url?.slice(1);
      if (kind === 'basic') {
        res.writeHead(402, { 'www-authenticate': 'Basic realm="not for sale"' });
        return res.end('pay some other way');
      }
      const invoice =
        kind === 'zero'
          ? fakeInvoice({ paymentHash: hash, amountMsat: undefined })
          : kind === 'pricey'
            ? fakeInvoice({ paymentHash: hash, amountMsat: 5_000_000n })
            : kind === 'mainnet'
              ? fakeInvoice({ paymentHash: hash, network: 'mainnet' })
              : kind === 'expired'
                ? fakeInvoice({ paymentHash: hash, timestamp: Math.floor(Date.now() / 1000) - 7200 })
                : fakeInvoice({ paymentHash: hash });
      const macaroon = macaroonFor(kind === 'mismatch' ? randomBytes(32) : hash);
      res.writeHead(402, { 'www-authenticate': `L402 macaroon="${macaroon}", invoice="${invoice}"` });
      res.end();
    });
  });

  it.each([
    ['zero', 'zero-amount'],
    ['mainnet', 'network'],
    ['mismatch', 'hash-mismatch'],
    ['expired', 'expired'],
  ])('/%s: refused as %s, nothing paid, nothing recorded', async (path, reason) => {
    const fetch402 = client();
    const before = nodePayments();
    const error = await fetch402(`${url}/${path}`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvoiceRefusedError);
    expect(error).toMatchObject({ code: 'L402_INVOICE_REFUSED', reason });
    expect(nodePayments()).toBe(before);
    expect(await fetch402.ledger.payments()).toEqual([]);
    expect(await fetch402.store.list()).toEqual([]);
  });

  it("a wallet's preimage that does not match the payment hash is not used; the payment stays pending", async () => {
    const liar: Wallet.Wallet = {
      kind: 'liar',
      network: 'regtest',
      pay: async (invoice) => ({
        paymentHash: Invoice.decode(invoice).paymentHash,
        preimage: randomBytes(32),
        amountMsat: 10_000n,
        feeMsat: 0n,
      }),
      lookupPayment: async (paymentHash) => ({
        paymentHash,
        state: 'in-flight',
        preimage: undefined,
        amountMsat: undefined,
        feeMsat: undefined,
        failure: undefined,
      }),
    };
    const fetch402 = client({ wallet: liar });
    const error = await fetch402(`${url}/ok`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'L402_PAYMENT_FAILED', inFlight: true });
    expect(await fetch402.store.pending()).toHaveLength(1);
    expect(await fetch402.ledger.payments({ state: 'pending' })).toHaveLength(1);
  });

  it('a 402 offering nothing payable comes back as it is', async () => {
    const res = await client()(`${url}/basic`);
    expect(res.status).toBe(402);
    expect(await res.text()).toBe('pay some other way');
    expect(createFetch.payment(res)).toBeUndefined();
  });

  it('an over-priced invoice is refused by maxCostSats', async () => {
    const error = await client({ maxCostSats: 1000 })(`${url}/pricey`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'L402_BUDGET', limit: 'maxCost', priceSats: 5000 });
  });
});

/** A server that sells with the merchant's real invoices, in a challenge form of its choosing. */
async function handMade(
  challenge: (macaroon: string, invoice: string, hash: string) => string,
  verify: (authorization: string) => Promise<boolean>,
) {
  return serve(async (req, res) => {
    const auth = req.headers.authorization;
    if (auth !== undefined && (await verify(auth).catch(() => false))) return res.end('sold');
    const { paymentRequest, paymentHash } = await merchant.createInvoice({
      amountMsat: 7_000n,
      memo: 'hand made',
    });
    res.writeHead(402, {
      'www-authenticate': challenge(
        macaroonFor(paymentHash),
        paymentRequest,
        Buffer.from(paymentHash).toString('hex'),
      ),
    });
    res.end();
  });
}

describe('other challenge forms', () => {
  it('pays a server that speaks only the spec form: L402 version="0", token="…", invoice="…"', async () => {
    const url = await handMade(
      (mac, inv) => `L402 version="0", token="${mac}", invoice="${inv}"`,
      async (auth) => {
        const c = Credential.parse(auth)!;
        Token.verify(c.macaroon, { rootKey, preimage: c.preimage });
        return true;
      },
    );
    const fetch402 = client();
    const res = await fetch402(`${url}/x`);
    expect(await res.text()).toBe('sold');
    expect(createFetch.payment(res)).toMatchObject({ paid: true, amountSats: 7 });
    expect((await fetch402(`${url}/y`)).status).toBe(200);
    expect(await fetch402.ledger.payments()).toHaveLength(1);
  });

  it('pays an MPP Payment lightning charge, sending the credential the MPP vectors describe, once per charge', async () => {
    const b64url = (s: string) => Buffer.from(s).toString('base64url');
    const url = await handMade(
      (_mac, inv, hash) =>
        `Payment id="${randomBytes(8).toString('hex')}", realm="test", method="lightning", intent="charge", request="${b64url(
          JSON.stringify({
            amount: '7',
            currency: 'sat',
            methodDetails: { invoice: inv, paymentHash: hash, network: 'regtest' },
          }),
        )}"`,
      async (auth) => {
        const m = /^Payment ([A-Za-z0-9_-]+)$/.exec(auth);
        const cred = JSON.parse(Buffer.from(m![1]!, 'base64url').toString());
        const request = JSON.parse(Buffer.from(cred.challenge.request, 'base64url').toString());
        const preimage = Buffer.from(cred.payload.preimage, 'hex');
        const hash = (await import('node:crypto')).createHash('sha256').update(preimage).digest('hex');
        return (
          cred.challenge.method === 'lightning' &&
          cred.challenge.intent === 'charge' &&
          hash === request.methodDetails.paymentHash
        );
      },
    );
    const fetch402 = client({ prefer: ['payment', 'l402'] });
    const res = await fetch402(`${url}/m`);
    expect(await res.text()).toBe('sold');
    expect(createFetch.payment(res)).toMatchObject({ paid: true, scheme: 'Payment', amountSats: 7 });
    // A charge credential is single use: the next request pays a new charge.
    expect((await fetch402(`${url}/m`)).status).toBe(200);
    expect(await fetch402.ledger.payments({ state: 'paid' })).toHaveLength(2);
    expect(await fetch402.store.list()).toEqual([]);
  });
});

describe('the middleware (l402/node)', () => {
  it('replays a POST body after paying; refuses a body over maxReplayBytes before sending it', async () => {
    const fetch402 = client();
    const res = await fetch402(`${mwUrl}/api/echo`, { method: 'POST', body: 'hello paid world' });
    expect(await res.text()).toBe('echo hello paid world');
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('streamed '));
        c.enqueue(new TextEncoder().encode('body'));
        c.close();
      },
    });
    const streamed = await fetch402(`${mwUrl}/api/echo`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await streamed.text()).toBe('echo streamed body');
    const small = client({ maxReplayBytes: 8 });
    await expect(
      small(`${mwUrl}/api/echo`, { method: 'POST', body: 'more than eight bytes' }),
    ).rejects.toBeInstanceOf(ReplayError);
  });

  it('follows a same-origin redirect with the credential and a cross-origin one without it', async () => {
    const fetch402 = client();
    const same = await fetch402(`${mwUrl}/redirect/same`, { method: 'POST', body: 'kept' });
    expect(await same.text()).toBe('echo kept');
    expect(createFetch.payment(same)?.paid).toBe(true);
    seenByOther.length = 0;
    const other = await fetch402(`${mwUrl}/redirect/other`, {
      headers: { authorization: 'Bearer user-secret' },
    });
    expect(await other.text()).toBe('other origin');
    expect(seenByOther).toHaveLength(1);
    expect(seenByOther[0]!.authorization).toBeUndefined();
    expect(JSON.stringify(seenByOther[0])).not.toMatch(/L402|user-secret/);
  });

  it('refuses plain http to a host that is not loopback', async () => {
    await expect(client()('http://api.example/x')).rejects.toBeInstanceOf(InsecureTransportError);
  });

  it.each(['lnd', 'cln', 'phoenixd', 'lnbits', 'nwc'])(
    'pays with the %s wallet found through devnet.json',
    async (kind) => {
      const wallet = await openWallet(`devnet:payer:${kind}`, { home });
      try {
        const fetch402 = client({ wallet });
        const res = await fetch402(`${mwUrl}/api/data`);
        expect(await res.text()).toBe('paid data');
        expect(createFetch.payment(res)).toMatchObject({ paid: true, amountSats: 10 });
      } finally {
        await wallet.close?.();
      }
    },
  );

  it('falls back to the next wallet when one cannot pay', async () => {
    const broken: Wallet.Wallet = {
      kind: 'broken',
      network: 'regtest',
      pay: async () => {
        throw Object.assign(new Error('no route'), { code: 'L402_PAYMENT_NO_ROUTE' });
      },
      lookupPayment: async (paymentHash) => unknownPayment(paymentHash),
    };
    // A wallet that is down (nothing listens there) is skipped before anything is sent through it.
    const probe = http.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const closed = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const down = await connect(`lnbits+http://127.0.0.1:${closed}?key=${'0'.repeat(32)}&network=regtest`);
    const before = nodePayments();
    const res = await client({ wallet: [down, broken, payer] })(`${mwUrl}/api/data`);
    expect(res.status).toBe(200);
    expect(nodePayments() - before).toBe(1);
    await down.close();
  });
});

// ——— files, processes, crashes ———

let childScript: string | undefined;
async function bundleChild(): Promise<string> {
  if (childScript) return childScript;
  const out = join(root, `test/.client-child-${process.pid}`, 'child.mjs');
  await esbuild.build({
    entryPoints: [join(root, 'test/client/child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: out,
    packages: 'external',
    alias: { '#platform': join(root, 'packages/l402/src/internal/platform.node.ts') },
    logLevel: 'silent',
  });
  childScript = out;
  return out;
}

function runChild(env: Record<string, string>): {
  child: ChildProcess;
  lines: Promise<string[]>;
  output: () => string;
} {
  const child = spawn(process.execPath, [childScript as string], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const lines = once(child, 'exit').then(() => out.split('\n').filter((l) => l.length > 0));
  return { child, lines, output: () => `${out}\n${err}` };
}

describe('the file store', () => {
  beforeAll(bundleChild, 30_000);

  it('keeps tokens in 0600 files across clients; exports and imports them; reads lnget token files', async () => {
    const dir = join(home, 'files');
    const one = createFetch({ wallet: payer, store: FileTokenStore.open(dir), ledger: FileLedger.open(dir) });
    expect((await one(`${mwUrl}/api/data`)).status).toBe(200);
    const two = createFetch({ wallet: payer, store: FileTokenStore.open(dir), ledger: FileLedger.open(dir) });
    const res = await two(`${mwUrl}/api/data`);
    expect(createFetch.payment(res)).toMatchObject({ reused: true });
    for (const name of readdirSync(join(dir, 'client'))) {
      if (name.endsWith('.json')) expect(statSync(join(dir, 'client', name)).mode & 0o777).toBe(0o600);
    }
    expect(await two.ledger.payments()).toHaveLength(1);

    const exported = await two.store.export();
    const mem = TokenStore.memory();
    expect(await mem.import(exported)).toBe(1);
    expect(await mem.find(mwUrl, '/api/data')).toMatchObject({ state: 'paid' });
    await expect(mem.import('[{"origin":"nope"}]')).rejects.toMatchObject({ code: 'L402_CLIENT_STORE' });

    // An lnget token directory: <host>_<port>/l402.token in Aperture's binary format.
    const [token] = await mem.list();
    const mac = Macaroon.encode(Macaroon.decode(token!.macaroon));
    const bin = Buffer.alloc(4 + mac.length + 32 + 32 + 8 + 8 + 8);
    bin.writeUInt32BE(mac.length, 0);
    Buffer.from(mac).copy(bin, 4);
    Buffer.from(token!.paymentHash, 'hex').copy(bin, 4 + mac.length);
    Buffer.from(token!.preimage!, 'hex').copy(bin, 36 + mac.length);
    bin.writeBigUInt64BE(10_000n, 68 + mac.length);
    bin.writeBigUInt64BE(0n, 76 + mac.length);
    bin.writeBigInt64BE(BigInt(Date.now()) * 1_000_000n, 84 + mac.length);
    const host = new URL(mwUrl).host;
    const lnget = join(home, 'lnget', host.replace(':', '_'));
    mkdirSync(lnget, { recursive: true });
    writeFileSync(join(lnget, 'l402.token'), bin);
    expect(decodeApertureToken(bin).amountPaidMsat).toBe(10_000n);
    const imported = await FileTokenStore.importLnget(join(home, 'lnget'));
    expect(imported).toHaveLength(1);
    expect(imported[0]).toMatchObject({
      origin: `https://${host}`,
      state: 'paid',
      amountSats: 10,
      preimage: token!.preimage,
      paymentHash: token!.paymentHash,
    });
  });

  it('two processes on one store pay once', async () => {
    const dir = join(home, 'two');
    const before = nodePayments();
    const env = {
      L402_HOME: dir,
      URL: `${gatewayUrl}/api/shared`,
      WALLET: devnet.document.nodes.payer!.uris.lnd,
      N: '5',
    };
    const a = runChild(env);
    const b = runChild(env);
    const results = [...(await a.lines), ...(await b.lines)].map((l) => JSON.parse(l));
    expect(results, a.output() + b.output()).toHaveLength(10);
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(results.filter((r) => r.payment?.paid)).toHaveLength(1);
    expect(nodePayments() - before).toBe(1);
    expect(await FileLedger.open(dir).payments({ state: 'paid' })).toHaveLength(1);
  }, 30_000);

  it('a client killed between paying and retrying neither pays twice nor loses the token', async () => {
    const dir = join(home, 'crash');
    const before = nodePayments();
    const env = {
      L402_HOME: dir,
      URL: `${gatewayUrl}/api/crash`,
      WALLET: devnet.document.nodes.payer!.uris.lnd,
      MODE: 'crash',
    };
    const first = runChild(env);
    await new Promise<void>((resolve, reject) => {
      first.child.stdout!.on('data', (d) => String(d).includes('PAID') && resolve());
      first.child.once('exit', () => reject(new Error(`child exited before paying: ${first.output()}`)));
    });
    first.child.kill('SIGKILL');
    await first.lines;
    expect(nodePayments() - before).toBe(1);
    // What the crash left: the token pending (no preimage), the payment reserved.
    const pending = await FileTokenStore.open(dir).pending();
    expect(pending).toHaveLength(1);
    expect(pending[0]!.preimage).toBeUndefined();

    const second = runChild({ ...env, MODE: 'fetch' });
    const [line] = await second.lines;
    const result = JSON.parse(line ?? 'null');
    expect(result, second.output()).toMatchObject({ status: 200, payment: { paid: false, reused: true } });
    expect(nodePayments() - before).toBe(1);
    const ledger = await FileLedger.open(dir).payments();
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ state: 'paid', amountSats: 21 });
    expect(await FileTokenStore.open(dir).pending()).toEqual([]);
  }, 30_000);
});

describe('a crash before the payment reached the wallet', () => {
  beforeAll(bundleChild, 30_000);

  it('leaves a pending token the wallet never saw: recover() drops it and releases its reservation', async () => {
    const dir = join(home, 'crash-before');
    const before = nodePayments();
    const env = {
      L402_HOME: dir,
      URL: `${gatewayUrl}/api/early`,
      WALLET: devnet.document.nodes.payer!.uris.lnd,
      MODE: 'crash-before',
    };
    const child = runChild(env);
    await new Promise<void>((resolve, reject) => {
      child.child.stdout!.on('data', (d) => String(d).includes('PAYING') && resolve());
      child.child.once('exit', () => reject(new Error(`child exited before paying: ${child.output()}`)));
    });
    child.child.kill('SIGKILL');
    await child.lines;
    expect(await FileTokenStore.open(dir).pending()).toHaveLength(1);
    expect(await FileLedger.open(dir).payments({ state: 'pending' })).toHaveLength(1);

    const fetch402 = createFetch({
      wallet: payer,
      store: FileTokenStore.open(dir),
      ledger: FileLedger.open(dir),
    });
    expect(await fetch402.recover()).toBe(1);
    expect(await fetch402.store.pending()).toEqual([]);
    expect(await fetch402.ledger.payments({ state: 'failed' })).toHaveLength(1);
    expect(await fetch402.ledger.spent()).toBe(0);
    expect(nodePayments() - before).toBe(0);
    expect((await fetch402(`${gatewayUrl}/api/early`)).status).toBe(200);
    expect(nodePayments() - before).toBe(1);
  }, 30_000);
});

describe('the lock file', () => {
  it('takes over a lock whose process is gone', async () => {
    const { withFileLock } = await import('l402/client/node');
    const path = join(home, 'stale.lock');
    // A pid that cannot be alive: the largest pid Linux hands out is below 2^22.
    writeFileSync(path, `${2 ** 22 + 7} ${hostname()} ${Date.now()}\n`);
    expect(await withFileLock(path, async () => 'taken', { timeoutMs: 2_000 })).toBe('taken');
    expect(existsSync(path)).toBe(false);
    // A live pid (this process) holding it for longer than maxAgeMs: stale too (a reused pid, say).
    writeFileSync(path, `${process.pid} ${hostname()} ${Date.now() - 60_000}\n`);
    expect(await withFileLock(path, async () => 'old', { timeoutMs: 2_000, maxAgeMs: 30_000 })).toBe('old');
    // A live, fresh holder from this very process is waited for, up to the timeout.
    writeFileSync(path, `${process.pid} ${hostname()} ${Date.now()}\n`);
    await expect(withFileLock(path, async () => 'never', { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'L402_CLIENT_STORE',
    });
  });

  it('waits for a live holder', async () => {
    const { withFileLock } = await import('l402/client/node');
    const path = join(home, 'live.lock');
    const order: string[] = [];
    let release!: () => void;
    const held = withFileLock(
      path,
      () =>
        new Promise<void>((r) => {
          order.push('first in');
          release = () => {
            order.push('first out');
            r();
          };
        }),
    );
    await new Promise((r) => setTimeout(r, 20));
    const second = withFileLock(path, async () => order.push('second in'));
    await new Promise((r) => setTimeout(r, 50));
    release();
    await Promise.all([held, second]);
    expect(order).toEqual(['first in', 'first out', 'second in']);
  });
});
