/**
 * The server authority end to end: a real devnet, the merchant's invoices made through its LND facade,
 * payments made by the payer's NWC wallet, tokens checked in every credential form.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { Caveat, Challenge, Credential, Macaroon } from 'l402';
import { type Backend, connect } from 'l402/lightning';
import * as Authority from 'l402/server';
import * as Memory from 'l402/stores/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let devnet: Devnet.Devnet;
let merchant: Backend;
let payer: Backend;
const home = mkdtempSync(join(tmpdir(), 'l402-authority-'));

beforeAll(async () => {
  devnet = await Devnet.start({ home, publish: false });
  merchant = await connect(devnet.document.nodes.merchant!.uris.lnd);
  payer = await connect(devnet.document.nodes.payer!.uris.nwc);
}, 60_000);
afterAll(async () => {
  await merchant?.close();
  await payer?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

const header = (d: Authority.Decision, name: string) =>
  d.kind === 'respond' ? d.headers.filter(([n]) => n === name).map(([, v]) => v) : [];

/** Requests a route unpaid, pays the challenge's invoice, and returns what a client then holds. */
async function buy(authority: Authority.Authority, route: Authority.Route, url = '/api/x') {
  const first = await authority.authorize({ method: 'GET', url, headers: {} }, route);
  expect(first.kind).toBe('respond');
  const offer = Challenge.l402(Challenge.parse(header(first, 'www-authenticate')));
  const macaroon = Macaroon.decode(offer!.macaroon);
  const { preimage } = await payer.pay(offer!.invoice, { maxFeeMsat: 1_000n });
  return { first, macaroon, preimage, authorization: Credential.format({ macaroon, preimage }) };
}

describe('Authority', () => {
  const route: Authority.Route = { service: 'weather', price: 21, capabilities: ['read'], timeout: 3600 };

  it("answers an unpaid request with Aperture's 402 after committing the root key", async () => {
    const store = Memory.create();
    const authority = await Authority.create({ backend: merchant, store });
    const d = await authority.authorize({ method: 'GET', url: '/forecast', headers: {} }, route);
    expect(d.kind).toBe('respond');
    if (d.kind !== 'respond') return;
    expect(d.status).toBe(402);
    expect(d.body).toBe('payment required\n');
    const lines = header(d, 'www-authenticate');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^LSAT macaroon="AgEEbHNhdAJC[A-Za-z0-9+/=]+", invoice="lnbcrt210n1[a-z0-9]+"$/);
    expect(lines[1]?.slice(4)).toBe(lines[0]?.slice(4));
    expect(header(d, 'cache-control')).toEqual(['no-store']);
    expect(header(d, 'access-control-allow-origin')).toEqual(['*']);
    const offer = Challenge.l402(Challenge.parse(lines))!;
    const caveats = Macaroon.firstPartyCaveats(Macaroon.decode(offer.macaroon));
    expect(caveats.slice(0, 2)).toEqual(['services=weather:0', 'weather_capabilities=read']);
    expect(caveats[2]).toMatch(/^weather_valid_until=\d+$/);
    const [tx] = await store.transactions();
    expect(tx?.state).toBe('pending');
    authority.close();
  });

  it('lets a paid token through in every credential form, and records the settlement', async () => {
    const store = Memory.create();
    const authority = await Authority.create({ backend: merchant, store });
    const { macaroon, preimage, authorization } = await buy(authority, route);
    const forms: Record<string, string>[] = [
      { authorization },
      { authorization: authorization.replace(/^L402/, 'LSAT') },
      { Authorization: authorization.replace(/^L402/, 'l402  ') },
      { macaroon: Credential.formatMacaroonHeader({ macaroon, preimage }) },
      { 'grpc-metadata-macaroon': Credential.formatMacaroonHeader({ macaroon, preimage }) },
      // lnget: the paid macaroon (with its preimage caveat) in Authorization
      {
        authorization: Credential.format({
          macaroon: Macaroon.addFirstPartyCaveat(
            macaroon,
            Caveat.preimage(Buffer.from(preimage).toString('hex')),
          ),
          preimage,
        }),
      },
    ];
    for (const headers of forms) {
      const d = await authority.authorize({ method: 'GET', url: '/forecast', headers }, route);
      expect(d.kind, JSON.stringify(headers)).toBe('pass');
      if (d.kind === 'pass') expect(d.token?.service).toBe('weather');
    }
    await new Promise((r) => setTimeout(r, 20));
    expect((await store.transactions())[0]?.state).toBe('settled');
    authority.close();
  }, 30_000);

  it('refuses wrong preimages, other services, missing capabilities and expired tokens with a fresh 402', async () => {
    let now = Date.now();
    const store = Memory.create();
    const authority = await Authority.create({ backend: merchant, store, now: () => now });
    const { macaroon, authorization } = await buy(authority, { ...route, timeout: 60 });
    const ask = async (headers: Record<string, string>, r: Authority.Route = route) => {
      const d = await authority.authorize({ method: 'GET', url: '/forecast', headers }, r);
      return d.kind === 'pass' ? 'pass' : `${d.status} ${d.error?.code ?? ''}`.trim();
    };
    expect(await ask({ authorization })).toBe('pass');
    expect(await ask({ authorization: authorization.replace(/:[0-9a-f]{64}$/, `:${'00'.repeat(32)}`) })).toBe(
      '402 L402_BAD_PREIMAGE',
    );
    expect(await ask({ authorization }, { ...route, service: 'maps' })).toBe('402 L402_SERVICE_NOT_ALLOWED');
    expect(
      await ask(
        { authorization },
        { ...route, capabilities: ['read', 'write'], requires: { capabilities: ['write'] } },
      ),
    ).toBe('402 L402_CAPABILITY_NOT_ALLOWED');
    const { preimage } = Credential.parse(authorization)!;
    const narrowed = Credential.format({
      macaroon: Macaroon.addFirstPartyCaveat(macaroon, 'weather_capabilities='),
      preimage,
    });
    expect(await ask({ authorization: narrowed }, { ...route, requires: { capabilities: ['read'] } })).toBe(
      '402 L402_CAPABILITY_NOT_ALLOWED',
    );
    now += 61_000;
    expect(await ask({ authorization })).toBe('402 L402_TOKEN_EXPIRED');
    authority.close();
  }, 30_000);

  it('revokes at once here and within a second on another instance sharing the store', async () => {
    const store = Memory.create();
    const a = await Authority.create({ backend: merchant, store, revocationPollMs: 200 });
    const b = await Authority.create({ backend: merchant, store, revocationPollMs: 200 });
    const { macaroon, authorization } = await buy(a, route);
    const ask = async (x: Authority.Authority) =>
      (await x.authorize({ method: 'GET', url: '/', headers: { authorization } }, route)).kind;
    expect(await ask(a)).toBe('pass');
    expect(await ask(b)).toBe('pass');
    const { Identifier } = await import('l402');
    expect(await a.revoke({ tokenId: Identifier.decode(macaroon.identifier).tokenId })).toBe(true);
    expect(await ask(a)).toBe('respond');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await ask(b)).toBe('respond');
    a.close();
    b.close();
  }, 30_000);

  it('serves a token already seen from memory, without a store round trip', async () => {
    const store = Memory.create();
    let reads = 0;
    const counted = {
      ...store,
      rootKey: (h: Uint8Array) => {
        reads++;
        return store.rootKey(h);
      },
    } as typeof store;
    const authority = await Authority.create({ backend: merchant, store: counted });
    const { authorization } = await buy(authority, route);
    for (let i = 0; i < 5; i++) {
      expect(
        (await authority.authorize({ method: 'GET', url: '/', headers: { authorization } }, route)).kind,
      ).toBe('pass');
    }
    expect(reads).toBe(1);
    authority.close();
  }, 30_000);

  it('decides a token already checked without I/O, until its expiry, a revocation or another route', async () => {
    let clock = Date.now();
    const authority = await Authority.create({ backend: merchant, store: Memory.create(), now: () => clock });
    const short: Authority.Route = { service: 'weather', price: 21, timeout: 30 };
    const { authorization, macaroon } = await buy(authority, short);
    const view = { method: 'GET', url: '/api/x', headers: { authorization } };
    expect(authority.cached(view, short)).toBeUndefined(); // never verified yet
    const first = await authority.authorize(view, short);
    expect(first.kind).toBe('pass');
    const hit = authority.cached(view, short);
    expect(hit?.kind).toBe('pass');
    expect(hit).toBe(first); // the same decision object, nothing re-made
    // Another route object (even with the same terms) is checked in full once.
    expect(authority.cached(view, { ...short })).toBeUndefined();
    // A second later the verdict is re-checked; just before the expiry the token still passes …
    const until = Number(
      Macaroon.firstPartyCaveats(macaroon)
        .find((c) => c.startsWith('weather_valid_until='))!
        .split('=')[1],
    );
    clock = (until - 0.5) * 1000;
    expect(authority.cached(view, short)).toBeUndefined();
    expect((await authority.authorize(view, short)).kind).toBe('pass');
    expect(authority.cached(view, short)?.kind).toBe('pass');
    // … and at the expiry the cached verdict no longer stands: refused with a fresh 402.
    clock = until * 1000;
    expect(authority.cached(view, short)).toBeUndefined();
    const expired = await authority.authorize(view, short);
    expect(expired.kind === 'respond' && expired.status).toBe(402);
    // Revocation ends a cached verdict at once.
    clock = Date.now();
    const again = await buy(authority, short);
    const view2 = { method: 'GET', url: '/api/x', headers: { authorization: again.authorization } };
    expect((await authority.authorize(view2, short)).kind).toBe('pass');
    expect(authority.cached(view2, short)?.kind).toBe('pass');
    await authority.revoke({ tokenId: again.macaroon.identifier.slice(34) });
    expect(authority.cached(view2, short)).toBeUndefined();
    expect((await authority.authorize(view2, short)).kind).toBe('respond');
    // The cache key is the credential actually used: a non-L402 Authorization beside a Macaroon header
    // never lets another Macaroon value ride on a verified one.
    const third = await buy(authority, short);
    const good = Credential.formatMacaroonHeader({ macaroon: third.macaroon, preimage: third.preimage });
    const bearer = { authorization: 'Bearer abc', macaroon: good };
    expect((await authority.authorize({ method: 'GET', url: '/x', headers: bearer }, short)).kind).toBe(
      'pass',
    );
    const forged = {
      authorization: 'Bearer abc',
      macaroon: Credential.formatMacaroonHeader({ macaroon, preimage: new Uint8Array(32) }),
    };
    expect(authority.cached({ method: 'GET', url: '/x', headers: forged }, short)).toBeUndefined();
    expect((await authority.authorize({ method: 'GET', url: '/x', headers: forged }, short)).kind).toBe(
      'respond',
    );
    authority.close();
  });

  it('never takes one cached token for another that ends the same: attenuations of one payment share a preimage', async () => {
    const authority = await Authority.create({ backend: merchant, store: Memory.create() });
    const notes: Authority.Route = { service: 'notes', price: 10, capabilities: ['read', 'write'] };
    const write: Authority.Route = { ...notes, requires: { capabilities: ['write'] } };
    const { macaroon, preimage, authorization: full } = await buy(authority, notes);
    const readOnly = Credential.format({
      macaroon: Macaroon.addFirstPartyCaveat(macaroon, Caveat.capabilities('notes', ['read'])),
      preimage,
    });
    // The same last 64 characters (the preimage hex; the front map keys on 16), different tokens.
    expect(readOnly.slice(-64)).toBe(full.slice(-64));
    expect(readOnly).not.toBe(full);
    const view = (authorization: string) => ({ method: 'GET', url: '/notes', headers: { authorization } });
    const decide = async (authorization: string) =>
      authority.cached(view(authorization), write) ?? (await authority.authorize(view(authorization), write));
    // Alternating, each answered from the caches after its first check: the full token writes, the
    // read-only one never does, however the two take turns in the cache.
    for (let i = 0; i < 4; i++) {
      expect((await decide(full)).kind).toBe('pass');
      const refused = await decide(readOnly);
      expect(refused.kind === 'respond' && refused.status).toBe(402);
      expect(authority.cached(view(readOnly), write)).toBeUndefined();
      expect(authority.cached(view(full), write)?.kind).toBe('pass');
    }
    // A header that only ends like a verified one (a forged macaroon, the real preimage) is not it.
    const forged = `${full.slice(0, 20)}${full[20] === 'A' ? 'B' : 'A'}${full.slice(21)}`;
    expect(forged.slice(-64)).toBe(full.slice(-64));
    expect(authority.cached(view(forged), write)).toBeUndefined();
    expect((await decide(forged)).kind).toBe('respond');
    authority.close();
  });

  it('derived keys: verifies with no root-key read at all, and revocation still holds', async () => {
    const store = Memory.create();
    let reads = 0;
    const counted = {
      ...store,
      rootKey: (h: Uint8Array) => {
        reads++;
        return store.rootKey(h);
      },
    } as typeof store;
    const masterKey = new Uint8Array(32).fill(7);
    const authority = await Authority.create({
      backend: merchant,
      store: counted,
      keys: { mode: 'derived', masterKey },
    });
    const { macaroon, authorization } = await buy(authority, route);
    expect(
      (await authority.authorize({ method: 'GET', url: '/', headers: { authorization } }, route)).kind,
    ).toBe('pass');
    expect(reads).toBe(0);
    const fresh = await Authority.create({ backend: merchant, store, keys: { mode: 'derived', masterKey } });
    expect((await fresh.authorize({ method: 'GET', url: '/', headers: { authorization } }, route)).kind).toBe(
      'pass',
    );
    const { Identifier } = await import('l402');
    await authority.revoke({ tokenId: Identifier.decode(macaroon.identifier).tokenId });
    expect(
      (await authority.authorize({ method: 'GET', url: '/', headers: { authorization } }, route)).kind,
    ).toBe('respond');
    const restarted = await Authority.create({
      backend: merchant,
      store,
      keys: { mode: 'derived', masterKey },
    });
    expect(
      (await restarted.authorize({ method: 'GET', url: '/', headers: { authorization } }, route)).kind,
    ).toBe('respond');
    for (const x of [authority, fresh, restarted]) x.close();
  }, 30_000);

  it('answers 503 with Retry-After and mints nothing when Lightning is down', async () => {
    const store = Memory.create();
    const down = await connect(
      `lnd://127.0.0.1:1?macaroon=00&cert=${encodeURIComponent(devnet.document.nodes.merchant!.lnd.certPath)}`,
    );
    const authority = await Authority.create({ backend: down, store });
    const d = await authority.authorize({ method: 'GET', url: '/', headers: {} }, route);
    expect(d.kind === 'respond' && d.status).toBe(503);
    expect(header(d, 'retry-after')).toEqual(['5']);
    expect(await store.transactions()).toEqual([]);
    authority.close();
    await down.close();
  });

  it('answers 503 promptly when the Lightning node hangs, instead of waiting out its timeout', async () => {
    // A node that accepts connections and never answers (not even the TLS handshake).
    const sockets: import('node:net').Socket[] = [];
    const hung = (await import('node:net')).createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const port = (hung.address() as import('node:net').AddressInfo).port;
    const backend = await connect(
      `lnd://127.0.0.1:${port}?macaroon=00&cert=${encodeURIComponent(devnet.document.nodes.merchant!.lnd.certPath)}`,
    );
    const store = Memory.create();
    const authority = await Authority.create({ backend, store, invoiceTimeoutMs: 300 });
    const d = await authority.authorize({ method: 'GET', url: '/', headers: {} }, route);
    expect(d.kind === 'respond' && d.status).toBe(503);
    expect(d.kind === 'respond' && d.error?.code).toBe('L402_BACKEND_TIMEOUT');
    expect(await store.transactions()).toEqual([]);
    authority.close();
    for (const socket of sockets) socket.destroy();
    hung.close();
    await backend.close();
  });

  it('price 0 passes, dynamic prices and path binding, 401 on skip-invoice paths, gRPC-shaped refusals', async () => {
    const store = Memory.create();
    const authority = await Authority.create({ backend: merchant, store });
    expect(
      (await authority.authorize({ method: 'GET', url: '/', headers: {} }, { service: 's', price: 0 })).kind,
    ).toBe('pass');
    const dynamic = await authority.authorize(
      { method: 'GET', url: '/big?n=3', headers: {} },
      { service: 's', price: (r) => (r.url.includes('n=3') ? 3 : 1), pathBound: true },
    );
    const offer = Challenge.l402(Challenge.parse(header(dynamic, 'www-authenticate')))!;
    expect(offer.invoice.startsWith('lnbcrt30n1')).toBe(true);
    expect(Macaroon.firstPartyCaveats(Macaroon.decode(offer.macaroon))[0]).toBe('services=s/big:0');
    const skip = await authority.authorize(
      { method: 'GET', url: '/', headers: {} },
      { ...route, skipInvoice: true },
    );
    expect(skip.kind === 'respond' && [skip.status, skip.body]).toEqual([401, 'unauthorized\n']);
    const grpc = await authority.authorize(
      { method: 'POST', url: '/pkg.Svc/Call', headers: { 'content-type': 'application/grpc' } },
      route,
    );
    expect(grpc.kind === 'respond' && grpc.status).toBe(200);
    expect(header(grpc, 'grpc-status')).toEqual(['13']);
    expect(header(grpc, 'grpc-message')).toEqual(['payment required']);
    expect(header(grpc, 'www-authenticate')).toHaveLength(2);
    authority.close();
  });

  it('never sells a token that could not work: an expired constraint is a 500, with no invoice and nothing minted', async () => {
    const store = Memory.create();
    const authority = await Authority.create({ backend: merchant, store });
    for (const constraints of [{ valid_until: '1682483169' }, { valid_until: '2020-01-01' }]) {
      const d = await authority.authorize(
        { method: 'GET', url: '/', headers: {} },
        { ...route, constraints },
      );
      expect(d.kind === 'respond' && [d.status, d.reason]).toEqual([500, 'misconfigured']);
    }
    const unreachable = await authority.authorize(
      { method: 'GET', url: '/', headers: {} },
      { ...route, requires: { capabilities: ['admin'] } },
    );
    expect(unreachable.kind === 'respond' && unreachable.reason).toBe('misconfigured');
    expect(await store.transactions()).toEqual([]);
    authority.close();
  });

  it('enforces constraint caveats: numeric limits bound the request and may only decrease', async () => {
    const store = Memory.create();
    const authority = await Authority.create({ backend: merchant, store });
    const limited: Authority.Route = {
      ...route,
      constraints: { max_items: '10', region: 'eu' },
      requires: {
        values: (r) => ({ max_items: Number(new URL(r.url, 'http://x').searchParams.get('n') ?? 1) }),
      },
    };
    const { macaroon, preimage, authorization } = await buy(authority, limited, '/items?n=1');
    const ask = async (url: string, auth = authorization) =>
      (await authority.authorize({ method: 'GET', url, headers: { authorization: auth } }, limited)).kind;
    expect(await ask('/items?n=10')).toBe('pass');
    expect(await ask('/items?n=11')).toBe('respond');
    const widened = Credential.format({
      macaroon: Macaroon.addFirstPartyCaveat(macaroon, 'max_items=50'),
      preimage,
    });
    expect(await ask('/items?n=5', widened)).toBe('respond');
    const moved = Credential.format({
      macaroon: Macaroon.addFirstPartyCaveat(macaroon, 'region=us'),
      preimage,
    });
    expect(await ask('/items?n=5', moved)).toBe('respond');
    const narrowed = Credential.format({
      macaroon: Macaroon.addFirstPartyCaveat(macaroon, 'max_items=3'),
      preimage,
    });
    expect(await ask('/items?n=3', narrowed)).toBe('pass');
    expect(await ask('/items?n=4', narrowed)).toBe('respond');
    authority.close();
  }, 30_000);
});
