/**
 * `l402/client` in a browser: bundled with esbuild for `platform: 'browser'` (no Node builtin may be
 * pulled in), then run in headless Chromium, paying a paywalled API through a WebLN shim whose
 * `sendPayment` asks a loopback endpoint backed by the devnet payer's wallet, with tokens in
 * `localStorage`.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { builtinModules } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Devnet } from '@l402/devnet';
import * as esbuild from 'esbuild';
import { type Backend, connect } from 'l402/lightning';
import * as NodeL402 from 'l402/node';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The page's program: plain browser JavaScript importing the bundle. */
const PAGE = `
try {
  const { createFetch, TokenStore, Ledger, Wallet } = await import('/l402-client.js');
  const webln = {
    enable: async () => {},
    sendPayment: async (invoice) => (await fetch('/wallet/pay', { method: 'POST', body: invoice })).json(),
  };
  const make = () => createFetch({
    wallet: Wallet.webln(webln, { network: 'regtest' }),
    store: TokenStore.localStorage(),
    ledger: Ledger.localStorage(),
  });
  const first = await make()(location.origin + '/api/data');
  const firstText = await first.text();
  // A new client in the same page: the token comes back out of localStorage.
  const again = await make()(location.origin + '/api/other');
  const stored = JSON.parse(await TokenStore.localStorage().export());
  window.result = {
    first: { status: first.status, text: firstText, payment: createFetch.payment(first) },
    again: { status: again.status, text: await again.text(), payment: createFetch.payment(again) },
    stored: stored.map((t) => ({ state: t.state, amountSats: t.amountSats })),
    spent: await Ledger.localStorage().spent(),
    keys: Object.keys(localStorage).sort(),
  };
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
`;

const root = fileURLToPath(new URL('../', import.meta.url));
const src = join(root, 'packages/l402/src');
const home = mkdtempSync(join(tmpdir(), 'l402-client-browser-'));
let devnet: Devnet.Devnet;
let payer: Backend;
let bundle: esbuild.BuildResult<{ metafile: true; write: false }>;

beforeAll(async () => {
  bundle = await esbuild.build({
    entryPoints: [join(src, 'client/index.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    // What the package's `#platform` import resolves to under every condition but `node`.
    alias: { '#platform': join(src, 'internal/platform.web.ts') },
  });
}, 60_000);

afterAll(async () => {
  await payer?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

describe('the browser bundle', () => {
  it('pulls in no Node builtin and no node-only module', () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.some((i) => i.includes('client/index.ts'))).toBe(true);
    expect(
      inputs.filter((i) => /platform\.node|client\/node\.ts|lightning\/(lnd|cln|connect)|undici/.test(i)),
    ).toEqual([]);
    const imported = Object.values(bundle.metafile.inputs).flatMap((i) => i.imports.map((x) => x.path));
    expect(imported.filter((p) => builtins.has(p) || p.startsWith('node:'))).toEqual([]);
    const output = Object.values(bundle.metafile.outputs)[0]!;
    expect(output.imports.filter((i) => i.external)).toEqual([]);
    expect(bundle.outputFiles[0]!.text).not.toMatch(/from ["']node:/);
  });

  it('pays in headless Chromium through a WebLN wallet, reusing the token from localStorage', async () => {
    devnet = await Devnet.start({ home, publish: false });
    payer = await connect(devnet.document.nodes.payer!.uris.lnd);
    const paywall = NodeL402.l402({
      backend: devnet.document.nodes.merchant!.uris.lnd,
      masterKey: 'd1'.repeat(32),
    });
    const data = paywall.protect({ service: 'browser', price: 12 }, (_req, res) =>
      res.end('paid in a browser'),
    );
    const js = bundle.outputFiles[0]!.text;
    let walletPayments = 0;
    const server = http
      .createServer(async (req, res) => {
        if (req.url === '/') {
          res.setHeader('content-type', 'text/html');
          return res.end(`<!doctype html><title>l402</title><script type="module">${PAGE}</script>`);
        }
        if (req.url === '/l402-client.js') {
          res.setHeader('content-type', 'text/javascript');
          return res.end(js);
        }
        if (req.url === '/wallet/pay' && req.method === 'POST') {
          // The WebLN shim's wallet: the devnet payer, reached over loopback.
          let body = '';
          for await (const c of req) body += c;
          walletPayments++;
          const { preimage } = await payer.pay(body, { maxFeeMsat: 10_000n });
          res.setHeader('content-type', 'application/json');
          return res.end(JSON.stringify({ preimage: Buffer.from(preimage).toString('hex') }));
        }
        if (req.url?.startsWith('/api/')) return data(req, res);
        res.statusCode = 404;
        res.end();
      })
      .listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
      const page = await browser.newPage();
      await page.goto(`${origin}/`);
      await page.waitForFunction('window.result !== undefined', undefined, { timeout: 30_000 });
      // biome-ignore lint/suspicious/noExplicitAny: the page's JSON result, checked field by field below
      const result = (await page.evaluate('window.result')) as any;
      if (result.error) throw new Error(`in the page: ${result.error}`);
      expect(result.first).toMatchObject({
        status: 200,
        text: 'paid in a browser',
        payment: { paid: true, amountSats: 12 },
      });
      expect(result.again).toMatchObject({
        status: 200,
        text: 'paid in a browser',
        payment: { reused: true },
      });
      expect(result.stored).toEqual([{ state: 'paid', amountSats: 12 }]);
      expect(result.spent).toBe(12);
      expect(result.keys).toEqual(['l402:ledger', `l402:tokens/${encodeURIComponent(origin)}`]);
      expect(walletPayments).toBe(1);
    } finally {
      await browser?.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await paywall.close();
    }
  }, 60_000);
});
