/**
 * `l402 admin` as users run it: the built binary against `l402 gateway` (also the built binary, on
 * embedded defaults, which serve the admin API), with a real devnet payment in between.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { Config, Gateway, Log } from '@l402/gateway';
import { Challenge, Credential, Invoice, Macaroon } from 'l402';
import { type Backend, connect } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, root, startGateway } from './testing.js';

const bin = join(root, 'packages/cli/bin/l402.js');
const home = mkdtempSync(join(tmpdir(), 'l402-admin-cli-'));
let devnet: Devnet.Devnet;
let payer: Backend;
const children: ChildProcess[] = [];
let url: string;

beforeAll(async () => {
  ensureBuilt();
  // The devnet lives here (as `l402 devnet` would run it); the gateway joins it.
  devnet = await Devnet.start({ home });
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
  const started = await startGateway(home, children);
  const banner = started.banner;
  url = started.url;
  expect(banner).toContain(`admin      ${url}/api/admin/ (macaroon ${join(home, 'admin.macaroon')}`);
  expect(banner).toMatch(new RegExp(`dashboard  ${url.replace(/\./g, '\\.')}/dashboard#code=[0-9a-f]{32} `));
}, 120_000);

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode !== null) continue;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await payer?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

/** The built binary, run asynchronously (the devnet in this process must keep running meanwhile). */
function l402(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: unknown }).code ?? 1), stdout, stderr });
    });
  });
}

const admin = async (...args: string[]) => {
  const r = await l402('admin', '--url', url, '--home', home, ...args);
  return { ...r, json: r.code === 0 && r.stdout.startsWith('{') ? JSON.parse(r.stdout) : undefined };
};

async function offer(path: string) {
  const unpaid = await fetch(`${url}${path}`);
  await unpaid.text();
  expect(unpaid.status).toBe(402);
  return Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')!))!;
}

describe('l402 admin', () => {
  it('runs every admin operation against the running gateway', async () => {
    // Independent commands run side by side: each is a whole Node process.
    const [info, printed, listed] = await Promise.all([
      admin('info'),
      admin('macaroon'),
      admin('services', 'list'),
    ]);
    expect(info.code).toBe(0);
    expect(info.json).toMatchObject({ network: 'regtest', insecure: true, listen_addr: new URL(url).host });
    expect(printed.stdout).toBe(`${readFileSync(join(home, 'admin.macaroon')).toString('hex')}\n`);
    expect(listed.json.services.map((s: { name: string; price: string }) => [s.name, s.price])).toEqual([
      ['free', '1'],
      ['paid', '21'],
    ]);
    const address = listed.json.services[0].address as string;

    // A real payment for /paid, then it is in the transactions, the tokens and the stats.
    const bought = await offer('/paid/cli');
    const macaroon = Macaroon.decode(bought.macaroon);
    const { preimage } = await payer.pay(bought.invoice, { maxFeeMsat: 1_000n });
    const authorization = Credential.format({ macaroon, preimage });
    expect((await fetch(`${url}/paid/cli`, { headers: { authorization } })).status).toBe(200);
    const paymentHash = Buffer.from(Invoice.decode(bought.invoice).paymentHash).toString('hex');
    const tokenId = Buffer.from(macaroon.identifier.subarray(34, 66)).toString('hex');

    const [settled, window, tokens, stats] = await Promise.all([
      admin('transactions', '--service', 'paid', '--state', 'settled', '--limit', '10'),
      admin('transactions', '--from', '2000-01-01T00:00:00Z', '--to', '2000-01-02T00:00:00Z'),
      admin('tokens', 'list'),
      admin('stats'),
    ]);
    expect(settled.json.transactions).toEqual([
      expect.objectContaining({
        payment_hash: paymentHash,
        token_id: tokenId,
        price_sats: '21',
        state: 'settled',
      }),
    ]);
    expect(window.json).toEqual({ transactions: [], total_count: '0' });
    expect(tokens.json.tokens.map((t: { token_id: string }) => t.token_id)).toEqual([tokenId]);
    expect(stats.json).toMatchObject({ total_revenue_sats: '21', transaction_count: '1' });

    // Price change (the next 402 asks the new price), and a new service, served at once, then removed.
    const [changed, created] = await Promise.all([
      admin('services', 'set', 'paid', '--price', '30'),
      admin('services', 'set', 'extra', '--address', address, '--path', '^/extra/', '--auth', 'off'),
    ]);
    expect(changed.json).toMatchObject({ name: 'paid', price: '30' });
    expect(Invoice.decode((await offer('/paid/again')).invoice).amountMsat).toBe(30_000n);
    expect(created.json).toMatchObject({ name: 'extra', auth: 'off' });
    // The demo backend answers it (its own 404 JSON): the gateway proxied it.
    expect(await (await fetch(`${url}/extra/x`)).json()).toEqual({ error: 'not found', path: '/extra/x' });
    expect((await admin('services', 'rm', 'extra')).json).toEqual({ status: 'deleted' });
    expect(await (await fetch(`${url}/extra/x`)).text()).toMatch(/no service matches this request/);

    // Revoke: the token is refused from then on.
    expect((await admin('tokens', 'revoke', tokenId)).json).toEqual({ status: 'revoked' });
    expect((await fetch(`${url}/paid/cli`, { headers: { authorization } })).status).not.toBe(200);
  }, 60_000);

  it('says what is wrong in one line, exit 2', async () => {
    const wrong = join(home, 'wrong.macaroon');
    writeFileSync(
      wrong,
      Macaroon.encode(Macaroon.create({ rootKey: new Uint8Array(32), identifier: 'admin' })),
    );
    const [bad, missing, invalid, state, refused, nowhere] = await Promise.all([
      admin('services', 'set', 'paid', '--price', 'cheap'),
      admin('services', 'rm', 'nothing'),
      admin('services', 'set', 'new', '--address', '127.0.0.1:1', '--path', '('),
      admin('transactions', '--state', 'lost'),
      l402('admin', '--url', url, '--macaroon', wrong, 'info'),
      l402('admin', '--url', 'http://127.0.0.1:1', '--home', home, 'info'),
    ]);
    expect(bad).toMatchObject({ code: 2, stderr: 'l402: --price must be a whole number, got "cheap"\n' });
    expect(missing).toMatchObject({ code: 2, stderr: 'l402: service "nothing" not found\n' });
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/^l402: invalid path_regexp: /);
    expect(state.code).toBe(2);
    expect(state.stderr).toMatch(/^l402: state: /);
    expect(refused).toMatchObject({ code: 2, stderr: 'l402: admin macaroon verification failed\n' });
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/^l402: cannot reach the gateway at http:\/\/127\.0\.0\.1:1: /);
  }, 30_000);

  it('talks to a TLS gateway with a self-signed certificate given by --tlscert, and refuses it without', async () => {
    const basedir = join(home, 'tls');
    const { config } = Config.parse(
      `listenaddr: "127.0.0.1:8443"\nbasedir: ${JSON.stringify(basedir)}\nauthenticator:\n  disable: true\nadmin:\n  enabled: true\nservices:\n  - name: open\n    pathregexp: '^/open/'\n    address: "127.0.0.1:1"\n    auth: off\n`,
      'tls.yaml',
      { env: {} },
    );
    const gateway = await Gateway.start(config, { log: Log.silent, listen: { host: '127.0.0.1', port: 0 } });
    try {
      expect(gateway.url).toMatch(/^https:/);
      const [trusted, untrusted] = await Promise.all([
        l402(
          'admin',
          '--url',
          gateway.url,
          '--home',
          basedir,
          '--tlscert',
          join(basedir, 'tls.cert'),
          'info',
        ),
        l402('admin', '--url', gateway.url, '--home', basedir, 'info'),
      ]);
      expect(trusted.code).toBe(0);
      expect(JSON.parse(trusted.stdout)).toMatchObject({ insecure: false, lightning: 'disabled' });
      expect(untrusted.code).toBe(2);
      expect(untrusted.stderr).toMatch(
        /^l402: cannot reach the gateway at https:\/\/127\.0\.0\.1:\d+: .*certificate/,
      );
    } finally {
      await gateway.close({ graceMs: 100 });
    }
  }, 30_000);
});
